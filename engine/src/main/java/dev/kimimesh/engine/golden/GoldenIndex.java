package dev.kimimesh.engine.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.config.RouterWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The index.json of a goldens directory: the router convention, the prompts and the scenario parameters. Every
 * scenario is optional; {@code tensors} is null where the index does not list a file's tensors (full directories).
 *
 * @param routerWeights null when the index does not name a convention
 */
public record GoldenIndex(Path dir, RouterWeights routerWeights, boolean slim, int decodeSteps,
                          Map<String, Prompt> prompts, Split split, Chunked chunked, Batch batch) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One prompt and its one-shot prefill file. */
    public record Prompt(String name, String file, int[] inputIds, int[] decodeTokens, List<String> tensors) {}

    /** Prefill {@code prefixLen} tokens of a prompt, then the rest one token at a time. */
    public record Split(String prompt, int prefixLen, String file, List<String> tensors) {}

    /** Prefill {@code firstLen} tokens of a prompt, then the rest in one call. */
    public record Chunked(String prompt, int firstLen, String file, List<String> tensors) {}

    /** Several prompts padded into one batch. */
    public record Batch(List<String> prompts, String padding, int padTokenId, String file, List<String> tensors) {}

    /** Reads {@code dir/index.json}; errors name the field. */
    public static GoldenIndex load(Path dir) {
        Path file = dir.resolve("index.json");
        if (!Files.isRegularFile(file)) throw new GoldenException(dir + ": no index.json (not a goldens directory)");
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new GoldenException(file + ": not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new GoldenException(file + ": not a JSON object");
        String where = file.getFileName().toString();

        RouterWeights router = null;
        JsonNode rw = root.get("router_weights");
        if (rw != null && !rw.isNull()) {
            try {
                router = RouterWeights.parse(rw.asText());
            } catch (IllegalArgumentException e) {
                throw new GoldenException(where + ": router_weights: " + e.getMessage());
            }
        }
        boolean slim = root.path("slim").asBoolean(false);
        int decodeSteps = root.has("decode_steps") ? intField(root, "decode_steps", where) : 0;

        Map<String, Prompt> prompts = new LinkedHashMap<>();
        JsonNode ps = root.get("prompts");
        if (ps != null) {
            if (!ps.isObject()) throw new GoldenException(where + ": prompts must be an object");
            for (Iterator<Map.Entry<String, JsonNode>> it = ps.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String w = where + ": prompts." + e.getKey();
                JsonNode p = e.getValue();
                prompts.put(e.getKey(), new Prompt(e.getKey(), textField(p, "file", w),
                        ints(p.get("input_ids"), w + ".input_ids"), ints(p.get("decode_tokens"), w + ".decode_tokens"),
                        names(p.get("tensors"), w + ".tensors")));
            }
        }
        Split split = null;
        JsonNode s = root.get("split_prefill");
        if (s != null && !s.isNull()) {
            String w = where + ": split_prefill";
            split = new Split(textField(s, "prompt", w), intField(s, "prefix_len", w), textField(s, "file", w),
                    names(s.get("tensors"), w + ".tensors"));
        }
        Chunked chunked = null;
        JsonNode c = root.get("chunked_prefill");
        if (c != null && !c.isNull()) {
            String w = where + ": chunked_prefill";
            chunked = new Chunked(textField(c, "prompt", w), intField(c, "first_len", w), textField(c, "file", w),
                    names(c.get("tensors"), w + ".tensors"));
        }
        Batch batch = null;
        JsonNode b = root.get("batch");
        if (b != null && !b.isNull()) {
            String w = where + ": batch";
            List<String> bp = names(b.get("prompts"), w + ".prompts");
            batch = new Batch(bp == null ? List.of() : bp, b.path("padding").asText("left"),
                    b.has("pad_token_id") ? intField(b, "pad_token_id", w) : -1, textField(b, "file", w),
                    names(b.get("tensors"), w + ".tensors"));
        }
        return new GoldenIndex(dir, router, slim, decodeSteps, prompts, split, chunked, batch);
    }

    /** The prompt a scenario names, or an error naming the scenario. */
    public Prompt prompt(String name, String scenario) {
        Prompt p = prompts.get(name);
        if (p == null) throw new GoldenException("index.json: " + scenario + " names prompt '" + name + "', which prompts does not list");
        return p;
    }

    private static String textField(JsonNode n, String field, String where) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual() || v.asText().isBlank()) throw new GoldenException(where + "." + field + " is missing or not a string");
        return v.asText();
    }

    private static int intField(JsonNode n, String field, String where) {
        JsonNode v = n.get(field);
        if (v == null || !v.canConvertToInt() || !v.isIntegralNumber()) {
            throw new GoldenException(where + "." + field + " is missing or not an integer");
        }
        return v.asInt();
    }

    private static int[] ints(JsonNode n, String where) {
        if (n == null || n.isNull()) return null;
        if (!n.isArray()) throw new GoldenException(where + " must be an array of integers");
        int[] out = new int[n.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = n.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new GoldenException(where + "[" + i + "] is not an integer");
            out[i] = v.asInt();
        }
        return out;
    }

    private static List<String> names(JsonNode n, String where) {
        if (n == null || n.isNull()) return null;
        if (!n.isArray()) throw new GoldenException(where + " must be an array of strings");
        List<String> out = new ArrayList<>();
        for (JsonNode v : n) {
            if (!v.isTextual()) throw new GoldenException(where + " must be an array of strings");
            out.add(v.asText());
        }
        return List.copyOf(out);
    }
}
