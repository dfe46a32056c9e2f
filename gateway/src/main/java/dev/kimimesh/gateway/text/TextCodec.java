package dev.kimimesh.gateway.text;

import com.fasterxml.jackson.databind.JsonNode;

/** Text in and out of token ids for the gateway: the model's tokenizer, or none (token ids only). */
public interface TextCodec {
    /** False when the model has no tokenizer: text prompts and chat are refused, output text is empty. */
    boolean available();

    /** Token ids of a prompt text; {@code addBos} prepends the tokenizer's BOS. */
    int[] encode(String text, boolean addBos);

    /** Token ids of OpenAI-style messages rendered by the chat template. */
    int[] encodeChat(JsonNode messages, JsonNode tools, boolean addGenerationPrompt);

    /** Text of ids. */
    String decode(int[] ids, boolean skipSpecial);

    /** The string form of one token (for logprobs and Tokenize). */
    String tokenText(int id);

    /** A per-sequence incremental decoder that never emits half a character. */
    Decoder decoder(boolean skipSpecial);

    /** Incremental detokenisation of one sequence. */
    interface Decoder {
        /** The text the id completes (may be empty). */
        String push(int id);

        /** What is held back, at the end of the sequence. */
        String flush();
    }
}
