package dev.kimimesh.engine.tokenizer;

/** A tokenizer file that cannot be loaded, an id outside the vocabulary, or a chat template that fails to render. */
public class TokenizerException extends RuntimeException {
    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
