package dev.kimimesh.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.checkpoint.RandomCheckpoint;
import dev.kimimesh.engine.config.ConfigException;
import dev.kimimesh.engine.config.ConfigOverrides;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `init-random`: writes a checkpoint of random weights in the real layout, for tests and benchmarks. */
public final class InitRandom implements Verb {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The files of a Kimi tokenizer directory that a model directory carries. */
    private static final List<String> TOKENIZER_FILES = List.of("tiktoken.model", "tokenizer_config.json", "chat_template.jinja");
    /** The real model's embedding has 256 rows past the base ranks (n_vocab 163842, vocab_size 163840). */
    private static final int MODEL_SPECIALS = 256;

    @Override
    public String name() {
        return "init-random";
    }

    @Override
    public String usage() {
        return "<out-dir> --config <config.json> [--layers N] [--experts E] [--seed S] [--shard-size-mb M] "
                + "[--vocab-from-tokenizer DIR] [--threads T]   write a random checkpoint in the real layout";
    }

    @Override
    public int run(List<String> argv) throws Exception {
        Args a = Args.parse(argv, Set.of("--config", "--layers", "--experts", "--seed", "--shard-size-mb",
                "--vocab-from-tokenizer", "--threads"), Set.of());
        Path out = Path.of(a.positional(0, "<out-dir>"));
        if (!a.has("--config")) throw new UsageException("--config <config.json> is required");
        Path configFile = Path.of(a.get("--config", null));
        if (Files.isDirectory(configFile)) configFile = configFile.resolve("config.json");
        if (!Files.isRegularFile(configFile)) throw new UsageException("--config: no file " + configFile);
        JsonNode root;
        try {
            root = JSON.readTree(configFile.toFile());
        } catch (IOException e) {
            throw new ConfigException(configFile + ": not valid JSON: " + e.getMessage(), e);
        }
        if (!(root instanceof ObjectNode cfg)) throw new ConfigException(configFile + ": config.json is not a JSON object");
        if (a.has("--layers")) ConfigOverrides.layers(cfg, a.getInt("--layers", 0));
        if (a.has("--experts")) ConfigOverrides.experts(cfg, a.getInt("--experts", 0));
        Path tok = a.has("--vocab-from-tokenizer") ? Path.of(a.get("--vocab-from-tokenizer", null)) : null;
        if (tok != null) fitVocabulary(cfg, tok);
        long shardBytes = a.getLong("--shard-size-mb", 4096) << 20;
        if (shardBytes <= 0) throw new UsageException("--shard-size-mb must be positive");
        int threads = a.getInt("--threads", Runtime.getRuntime().availableProcessors());

        long t0 = System.nanoTime();
        RandomCheckpoint.Written w = RandomCheckpoint.write(out, cfg, a.getLong("--seed", 0), shardBytes, threads);
        if (tok != null) {
            for (String f : TOKENIZER_FILES) {
                Path src = tok.resolve(f);
                if (Files.exists(src)) Files.write(out.resolve(f), Files.readAllBytes(src)); // not Files.copy: keep it writable
            }
        }
        System.out.printf("wrote %s: %d tensors, %.2f GB in %d shard(s), %.1f s%n", out, w.tensors(), w.totalBytes() / 1e9,
                w.shards(), (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    /** vocab_size = base ranks + 256 (as the real model), bos/eos/pad = the ids of [BOS], <|im_end|>, [PAD]. */
    static void fitVocabulary(ObjectNode cfg, Path tokDir) throws IOException {
        Path ranks = tokDir.resolve("tiktoken.model"), tc = tokDir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(ranks)) throw new ConfigException(tokDir + ": no tiktoken.model");
        if (!Files.isRegularFile(tc)) throw new ConfigException(tokDir + ": no tokenizer_config.json");
        int base = 0;
        try (BufferedReader r = Files.newBufferedReader(ranks)) {
            for (String line; (line = r.readLine()) != null; ) if (!line.isBlank()) base++;
        }
        JsonNode added = JSON.readTree(tc.toFile()).path("added_tokens_decoder");
        Integer bos = null, eos = null, pad = null;
        for (Iterator<Map.Entry<String, JsonNode>> it = added.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String content = e.getValue().path("content").asText();
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw new ConfigException(tc + ": added_tokens_decoder key '" + e.getKey() + "' is not an id");
            }
            switch (content) {
                case "[BOS]" -> bos = id;
                case "<|im_end|>" -> eos = id;
                case "[PAD]" -> pad = id;
                default -> { }
            }
        }
        if (bos == null || eos == null || pad == null) {
            throw new ConfigException(tc + ": added_tokens_decoder lacks one of [BOS], <|im_end|>, [PAD]");
        }
        int vocab = base + MODEL_SPECIALS;
        for (int id : new int[] {bos, eos, pad}) {
            if (id >= vocab) throw new ConfigException(tc + ": special id " + id + " is outside the model vocabulary " + vocab);
        }
        ConfigOverrides.vocabulary(cfg, vocab, bos, eos, pad);
    }
}
