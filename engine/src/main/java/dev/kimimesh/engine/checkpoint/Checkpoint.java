package dev.kimimesh.engine.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * A Hugging Face model directory: config.json plus one `model.safetensors` or shards listed by
 * `model.safetensors.index.json`. All shards are memory-mapped; tensors are looked up by their checkpoint name.
 */
public final class Checkpoint implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final KimiLinearConfig config;
    private final List<SafetensorsFile> files;
    private final Map<String, TensorInfo> tensors;

    private Checkpoint(Path dir, KimiLinearConfig config, List<SafetensorsFile> files, Map<String, TensorInfo> tensors) {
        this.dir = dir;
        this.config = config;
        this.files = files;
        this.tensors = tensors;
    }

    /** Opens and validates a model directory against its config (missing, unexpected and mis-shaped tensors). */
    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) throw new CheckpointException(dir + ": not a model directory");
        KimiLinearConfig config = KimiLinearConfig.load(dir.resolve("config.json"));
        List<SafetensorsFile> files = new ArrayList<>();
        try {
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            Path index = dir.resolve("model.safetensors.index.json");
            if (Files.exists(index)) {
                Map<String, String> weightMap = readIndex(index);
                Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
                for (String shard : new TreeSet<>(weightMap.values())) {
                    Path p = dir.resolve(shard).normalize();
                    if (!p.startsWith(dir.normalize())) {
                        throw new CheckpointException(index.getFileName() + ": shard '" + shard + "' is outside the model directory");
                    }
                    if (!Files.exists(p)) {
                        throw new CheckpointException(index.getFileName() + ": shard file '" + shard + "' is missing");
                    }
                    SafetensorsFile f = SafetensorsFile.open(p);
                    files.add(f);
                    byShard.put(shard, f);
                }
                for (Map.Entry<String, String> e : weightMap.entrySet()) {
                    SafetensorsFile f = byShard.get(e.getValue());
                    if (!f.has(e.getKey())) {
                        throw new CheckpointException("tensor '" + e.getKey() + "' is listed in " + index.getFileName()
                                + " under " + e.getValue() + " but that file does not contain it");
                    }
                    tensors.put(e.getKey(), f.tensor(e.getKey()));
                }
                for (Map.Entry<String, SafetensorsFile> shard : byShard.entrySet()) {
                    for (String name : shard.getValue().tensors().keySet()) {
                        String listed = weightMap.get(name);
                        if (listed == null) {
                            throw new CheckpointException("tensor '" + name + "' in " + shard.getKey()
                                    + " is not listed in " + index.getFileName());
                        }
                        if (!listed.equals(shard.getKey())) {
                            // a stale second copy: which one is meant is anyone's guess
                            throw new CheckpointException("tensor '" + name + "' is in " + shard.getKey() + " but "
                                    + index.getFileName() + " lists it under " + listed + " (a second copy)");
                        }
                    }
                }
            } else {
                List<Path> single;
                try (Stream<Path> s = Files.list(dir)) {
                    single = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
                }
                if (single.isEmpty()) {
                    throw new CheckpointException(dir + ": no model.safetensors and no model.safetensors.index.json");
                }
                if (single.size() > 1) {
                    throw new CheckpointException(dir + ": several .safetensors files but no model.safetensors.index.json");
                }
                SafetensorsFile f = SafetensorsFile.open(single.get(0));
                files.add(f);
                tensors.putAll(f.tensors());
            }
            Checkpoint ckpt = new Checkpoint(dir, config, Collections.unmodifiableList(files), Collections.unmodifiableMap(tensors));
            CheckpointLayout.validate(config, ckpt.tensors);
            return ckpt;
        } catch (IOException e) {
            files.forEach(SafetensorsFile::close);
            throw new CheckpointException(dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    private static Map<String, String> readIndex(Path index) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new CheckpointException(index.getFileName() + ": not valid JSON: " + e.getMessage(), e);
        }
        JsonNode wm = root == null ? null : root.get("weight_map");
        if (wm == null || !wm.isObject()) throw new CheckpointException(index.getFileName() + ": no weight_map object");
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = wm.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(index.getFileName() + ": weight_map entry '" + e.getKey() + "' is not a file name");
            }
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    public Path dir() {
        return dir;
    }

    public KimiLinearConfig config() {
        return config;
    }

    public Set<String> names() {
        return tensors.keySet();
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo tensor(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new CheckpointException(dir.getFileName() + ": missing tensor '" + name + "'");
        return t;
    }

    /** Bytes of all tensors, as stored. */
    public long totalBytes() {
        long n = 0;
        for (TensorInfo t : tensors.values()) n += t.data().byteSize();
        return n;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
