package dev.kimimesh.engine.tokenizer;

/** A rendered chat prompt and its token ids. */
public record ChatEncoding(String text, int[] ids) {
}
