package dev.kimimesh.gateway.text;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the tokenizer for a model directory: the directory itself, else a configured tokenizer directory. */
public final class TextCodecs {
    private TextCodecs() {}

    /**
     * @param tokenizerDir explicit tokenizer directory, or null to look only in the model directory
     * @throws IllegalArgumentException when an explicit directory has no tokenizer
     */
    public static TextCodec load(Path modelDir, Path tokenizerDir) {
        if (tokenizerDir != null) {
            if (!Files.isRegularFile(tokenizerDir.resolve("tiktoken.model"))) {
                throw new IllegalArgumentException("kimimesh.model.tokenizer " + tokenizerDir + " has no tiktoken.model");
            }
            return KimiTextCodec.load(tokenizerDir);
        }
        if (Files.isRegularFile(modelDir.resolve("tiktoken.model"))) return KimiTextCodec.load(modelDir);
        return new NoTextCodec("the model directory " + modelDir.getFileName() + " has no tokenizer (tiktoken.model)");
    }
}
