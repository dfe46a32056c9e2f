package dev.kimimesh.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes a checkpoint of random weights in the real layout: config.json, shards {@code model-0000i-of-0000n.safetensors}
 * and {@code model.safetensors.index.json}, every tensor of {@link CheckpointLayout#expected} in its stored dtype.
 * Values keep activations finite and routing varied: linear weights ~ N(0, 0.02), norms 1, A_log = log U(1, 16).
 * The bytes depend only on the seed, never on the thread count.
 */
public final class RandomCheckpoint {
    /** Elements generated per task: small enough to spread a large tensor over all threads. */
    private static final int CHUNK = 1 << 21;
    private static final ObjectMapper JSON = new ObjectMapper();

    private RandomCheckpoint() {}

    /** What was written. */
    public record Written(int shards, int tensors, long totalBytes) {}

    public static Written write(Path dir, ObjectNode configJson, long seed, long shardBytes, int threads) throws IOException {
        KimiLinearConfig config = KimiLinearConfig.parse(configJson);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(configJson) + "\n");

        List<List<SafetensorsWriter.Entry>> shards = new ArrayList<>();
        List<SafetensorsWriter.Entry> cur = new ArrayList<>();
        long curBytes = 0, total = 0;
        int count = 0;
        for (Map.Entry<String, long[]> e : CheckpointLayout.expected(config).entrySet()) {
            SafetensorsWriter.Entry en = new SafetensorsWriter.Entry(e.getKey(), CheckpointLayout.storedDType(e.getKey()), e.getValue());
            if (!cur.isEmpty() && curBytes + en.bytes() > shardBytes) {
                shards.add(cur);
                cur = new ArrayList<>();
                curBytes = 0;
            }
            cur.add(en);
            curBytes += en.bytes();
            total += en.bytes();
            count++;
        }
        if (!cur.isEmpty()) shards.add(cur);

        Map<String, String> weightMap = new TreeMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
        try {
            int n = shards.size();
            for (int s = 0; s < n; s++) {
                String file = String.format("model-%05d-of-%05d.safetensors", s + 1, n);
                try (SafetensorsWriter w = SafetensorsWriter.create(dir.resolve(file), shards.get(s), Map.of("format", "pt"))) {
                    List<Future<?>> tasks = new ArrayList<>();
                    for (SafetensorsWriter.Entry e : shards.get(s)) {
                        weightMap.put(e.name(), file);
                        Init init = Init.of(e.name());
                        long numel = e.numel();
                        for (long from = 0, chunk = 0; from < numel; from += CHUNK, chunk++) {
                            long f = from, c = chunk;
                            int len = (int) Math.min(CHUNK, numel - from);
                            tasks.add(pool.submit(() -> fill(w, e, init, seed, f, c, len)));
                        }
                    }
                    for (Future<?> t : tasks) t.get();
                }
                leavePageCache(dir.resolve(file));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while writing " + dir, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UncheckedIOException u) throw u.getCause();
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IOException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode wm = index.putObject("weight_map");
        weightMap.forEach(wm::put);
        Files.writeString(dir.resolve("model.safetensors.index.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index) + "\n");
        return new Written(shards.size(), count, total);
    }

    /**
     * Writes the shard to disk and drops it from the page cache, where writing left it in 4 KiB folios: the next
     * process to map it reads it cold, in the 2 MiB pages its mapping asks for (MappedPages).
     */
    private static void leavePageCache(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        MappedPages.dropCached(file);
    }

    private static void fill(SafetensorsWriter w, SafetensorsWriter.Entry e, Init init, long seed, long from, long chunk, int len) {
        ByteBuffer b = ByteBuffer.allocate(len * e.dtype().bytes()).order(ByteOrder.LITTLE_ENDIAN);
        long state = mix(seed ^ mix(e.name().hashCode() * 0x9E3779B97F4A7C15L + chunk));
        if (state == 0) state = 1;
        for (int i = 0; i < len; i++) {
            float v;
            if (init.kind == Kind.CONSTANT) {
                v = init.scale;
            } else {
                state ^= state << 13;
                state ^= state >>> 7;
                state ^= state << 17;
                long r = state * 0x2545F4914F6CDD1DL;
                if (init.kind == Kind.NORMAL) {
                    // Irwin-Hall of four 16-bit uniforms: mean 2, variance 1/3, so (sum - 2) * sqrt(3) ~ N(0, 1)
                    long s = (r & 0xFFFF) + ((r >>> 16) & 0xFFFF) + ((r >>> 32) & 0xFFFF) + (r >>> 48);
                    v = (float) ((s * (1.0 / 65536) - 2.0) * 1.7320508075688772) * init.scale;
                } else { // LOG_UNIFORM_1_16
                    double u = (r >>> 11) * 0x1.0p-53;
                    v = (float) Math.log(1 + 15 * u);
                }
            }
            if (e.dtype() == DType.F32) b.putFloat(v);
            else b.putShort(SafetensorsWriter.bf16(v));
        }
        w.write(e.name(), from * e.dtype().bytes(), b.flip());
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private enum Kind { NORMAL, CONSTANT, LOG_UNIFORM_1_16 }

    /** How one tensor is initialised, chosen from its checkpoint name. */
    private record Init(Kind kind, float scale) {
        static Init of(String name) {
            if (name.endsWith("norm.weight")) return new Init(Kind.CONSTANT, 1f); // every RMSNorm weight
            if (name.endsWith(".A_log")) return new Init(Kind.LOG_UNIFORM_1_16, 0f);
            if (name.endsWith(".dt_bias")) return new Init(Kind.NORMAL, 0.1f);
            if (name.endsWith("e_score_correction_bias")) return new Init(Kind.NORMAL, 0.01f);
            if (name.contains("_conv1d.")) return new Init(Kind.NORMAL, 0.5f); // kernel 4: torch's default conv scale
            return new Init(Kind.NORMAL, 0.02f);
        }
    }
}
