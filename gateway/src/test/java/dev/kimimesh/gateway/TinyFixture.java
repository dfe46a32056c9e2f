package dev.kimimesh.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.generate.Generator;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The shared tiny fixture: its directory, golden prompts and decode tokens, and prompts of many lengths. */
public final class TinyFixture {
    private TinyFixture() {}

    public static Path dir() {
        String shared = System.getProperty("kimimesh.shared", "../shared");
        Path d = Path.of(shared, "fixtures", "tiny").toAbsolutePath().normalize();
        if (!Files.isRegularFile(d.resolve("config.json"))) throw new IllegalStateException("fixture missing: " + d);
        return d;
    }

    /** Golden prompts (name -> ids) and their 16 greedy decode tokens from the reference implementation. */
    public record Golden(String name, int[] prompt, int[] decode) {}

    public static List<Golden> goldens() {
        try {
            JsonNode idx = new ObjectMapper().readTree(dir().resolve("goldens/index.json").toFile());
            List<Golden> out = new ArrayList<>();
            idx.get("prompts").properties().forEach(e -> out.add(new Golden(e.getKey(), ints(e.getValue().get("input_ids")),
                    ints(e.getValue().get("decode_tokens")))));
            return out;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Eight prompts of different lengths: the goldens' plus slices of the longest. */
    public static List<int[]> eightPrompts() {
        List<int[]> prompts = new ArrayList<>();
        Map<String, int[]> byName = new LinkedHashMap<>();
        for (Golden g : goldens()) byName.put(g.name(), g.prompt());
        prompts.addAll(byName.values());
        int[] longest = byName.values().stream().max((a, b) -> a.length - b.length).orElseThrow();
        int[] lengths = {3, 19, 33, 130, 90, 12, 41, 150};
        for (int i = 0; prompts.size() < 8; i++) {
            int len = lengths[i];
            int[] p = new int[len];
            for (int j = 0; j < len; j++) p[j] = longest[(j * 7 + i) % longest.length];
            prompts.add(p);
        }
        return prompts;
    }

    /** The single-process engine's greedy tokens for each prompt, one sequence at a time. */
    public static List<int[]> engineGreedy(List<int[]> prompts, int maxTokens) {
        try (Checkpoint ckpt = Checkpoint.open(dir()); var backend = Backends.create("cpu")) {
            KimiLinearModel model = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults());
            List<int[]> out = new ArrayList<>();
            try (Generator g = new Generator(model)) {
                for (int[] p : prompts) out.add(g.generate(List.of(p), SamplingParams.greedy(maxTokens)).getFirst());
            }
            return out;
        }
    }

    private static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).asInt();
        return v;
    }
}
