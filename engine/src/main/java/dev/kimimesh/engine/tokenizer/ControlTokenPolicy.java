package dev.kimimesh.engine.tokenizer;

/** Whether special-token literals typed inside message content may become control ids when a chat is encoded. */
public enum ControlTokenPolicy {
    /**
     * Default: only markers the template writes become control ids; a literal such as {@code <|im_end|>} inside
     * message content, names, tool arguments or tool schemas is encoded as the plain text it is.
     */
    TEMPLATE_ONLY,
    /**
     * Exactly the original ({@code apply_chat_template(tokenize=True)} = {@code encode(rendered)}): every literal,
     * including one typed by a user, becomes its control id. Lets a user forge turns; use only for trusted input.
     */
    AS_ORIGINAL
}
