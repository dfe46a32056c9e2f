package dev.kimimesh.gateway.text;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kimimesh.engine.tokenizer.KimiTokenizer;
import dev.kimimesh.engine.tokenizer.StreamingDetokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** The Kimi tokenizer and chat template of a model (or tokenizer) directory. */
public final class KimiTextCodec implements TextCodec {
    private final KimiTokenizer tokenizer;

    private KimiTextCodec(KimiTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    public static KimiTextCodec load(Path dir) {
        return new KimiTextCodec(KimiTokenizer.load(dir));
    }

    public KimiTokenizer tokenizer() {
        return tokenizer;
    }

    @Override
    public boolean available() {
        return true;
    }

    @Override
    public int[] encode(String text, boolean addBos) {
        // Text from a client is text: special-token literals in it stay plain (no forged control tokens).
        int[] ids = tokenizer.encode(text, false);
        if (!addBos || tokenizer.bosId() < 0) return ids;
        int[] withBos = new int[ids.length + 1];
        withBos[0] = tokenizer.bosId();
        System.arraycopy(ids, 0, withBos, 1, ids.length);
        return withBos;
    }

    @Override
    public int[] encodeChat(JsonNode messages, JsonNode tools, boolean addGenerationPrompt) {
        return tokenizer.chatTemplate().encodeChat(messages, tools, addGenerationPrompt).ids();
    }

    /** The id of a special token by name, or -1. */
    public int specialIdOrNone(String name) {
        try {
            return tokenizer.specialId(name);
        } catch (RuntimeException e) {
            return -1;
        }
    }

    @Override
    public String decode(int[] ids, boolean skipSpecial) {
        return tokenizer.decode(ids, skipSpecial);
    }

    @Override
    public String tokenText(int id) {
        if (id < 0 || id >= tokenizer.vocabSize()) return "";
        return new String(tokenizer.tokenBytes(id), StandardCharsets.UTF_8);
    }

    @Override
    public Decoder decoder(boolean skipSpecial) {
        StreamingDetokenizer d = tokenizer.newStreamingDetokenizer();
        return new Decoder() {
            @Override
            public String push(int id) {
                if (skipSpecial && tokenizer.isHfSpecial(id)) return "";
                if (id < 0 || id >= tokenizer.vocabSize()) return "";
                return d.push(id);
            }

            @Override
            public String flush() {
                return d.flush();
            }
        };
    }
}
