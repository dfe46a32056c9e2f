package dev.kimimesh.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The shared tokenizer fixture: a model directory in the real formats and the original's goldens. */
final class TokenizerFixtures {
    private static KimiTokenizer tokenizer;
    private static JsonNode goldens;

    private TokenizerFixtures() {}

    static Path shared() {
        return Path.of(System.getProperty("kimimesh.shared", "../shared"));
    }

    static Path modelDir() {
        return shared().resolve("fixtures/tokenizer");
    }

    static synchronized KimiTokenizer tokenizer() {
        if (tokenizer == null) tokenizer = KimiTokenizer.load(modelDir());
        return tokenizer;
    }

    static synchronized JsonNode goldens() {
        if (goldens == null) {
            try {
                goldens = new ObjectMapper().readTree(modelDir().resolve("goldens.json").toFile());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return goldens;
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
