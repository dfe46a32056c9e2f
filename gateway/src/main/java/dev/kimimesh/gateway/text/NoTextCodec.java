package dev.kimimesh.gateway.text;

import com.fasterxml.jackson.databind.JsonNode;

/** For a model directory without tokenizer files: prompts must be token ids and answers carry ids, no text. */
public final class NoTextCodec implements TextCodec {
    private final String why;

    public NoTextCodec(String why) {
        this.why = why;
    }

    @Override
    public boolean available() {
        return false;
    }

    @Override
    public int[] encode(String text, boolean addBos) {
        throw new IllegalArgumentException(why + ": give the prompt as token ids");
    }

    @Override
    public int[] encodeChat(JsonNode messages, JsonNode tools, boolean addGenerationPrompt) {
        throw new IllegalArgumentException(why + ": chat needs a tokenizer and its chat template");
    }

    @Override
    public String decode(int[] ids, boolean skipSpecial) {
        return "";
    }

    @Override
    public String tokenText(int id) {
        // vLLM's convention for a token without text: distinct alternatives stay distinct in OpenAI's logprob maps
        return "token_id:" + id;
    }

    @Override
    public Decoder decoder(boolean skipSpecial) {
        return new Decoder() {
            @Override
            public String push(int id) {
                return "";
            }

            @Override
            public String flush() {
                return "";
            }
        };
    }
}
