package dev.kimimesh.engine.bench;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

/** A backend that times every operation of the one it wraps, by kind (matmuls by weight name), to see where a step goes. */
public final class OpProfile implements Backend {
    private final Backend b;
    private final Map<String, long[]> nanos = new TreeMap<>();

    public OpProfile(Backend b) {
        this.b = b;
    }

    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    private void time(String key, Runnable r) {
        time(key, 0, r);
    }

    /** {@code weightBytes}: bytes of weights the operation reads (for its bandwidth), 0 where that is not the point. */
    private void time(String key, long weightBytes, Runnable r) {
        time(key, weightBytes, () -> {
            r.run();
            return null;
        });
    }

    private <T> T time(String key, Supplier<T> r) {
        return time(key, 0, r);
    }

    /** Wall time, and CPU time of the whole process (on a shared machine the better measure of the work done). */
    private <T> T time(String key, long weightBytes, Supplier<T> r) {
        long c0 = OS.getProcessCpuTime(), t0 = System.nanoTime();
        T v = r.get();
        long[] c = nanos.computeIfAbsent(key, k -> new long[4]);
        c[0] += System.nanoTime() - t0;
        c[1]++;
        c[2] += OS.getProcessCpuTime() - c0;
        c[3] += weightBytes;
        return v;
    }

    private static long bytes(Weight w) {
        return w == null ? 0 : (long) w.rows() * w.cols() * w.dtype().bytes();
    }

    /** Bytes of the distinct experts a routing touches among those held here. */
    private static long bytes(Routing routing, ExpertWeights[] experts) {
        java.util.BitSet seen = new java.util.BitSet();
        long b = 0;
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < routing.topK(); j++) {
                int e = routing.expert(r, j);
                if (e < 0 || e >= experts.length || experts[e] == null || seen.get(e)) continue;
                seen.set(e);
                b += bytes(experts[e].gate()) + bytes(experts[e].up()) + bytes(experts[e].down());
            }
        }
        return b;
    }

    public void reset() {
        nanos.clear();
    }

    /** Milliseconds and call counts per kind, largest first. */
    public String report(int steps) {
        StringBuilder sb = new StringBuilder();
        long total = 0;
        for (long[] c : nanos.values()) total += c[0];
        long tot = total;
        nanos.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0])).forEach(e -> {
            long[] c = e.getValue();
            // weight bytes over wall time: the bandwidth this op drew, to hold against the read floor
            String bw = c[3] == 0 ? "" : String.format("  %6.1f GB/s", c[3] / (double) c[0]);
            sb.append(String.format("  %-48s %9.2f ms %5.1f%%  cpu %9.2f ms  (%d calls)%s%n", e.getKey(), c[0] / 1e6 / steps,
                    100.0 * c[0] / tot, c[2] / 1e6 / steps, c[1] / steps, bw));
        });
        long cpu = 0;
        for (long[] c : nanos.values()) cpu += c[2];
        sb.append(String.format("  %-48s %9.2f ms        cpu %9.2f ms%n", "total in backend", total / 1e6 / steps, cpu / 1e6 / steps));
        return sb.toString();
    }

    /** "self_attn.q_proj.weight" out of "model.layers.3.self_attn.q_proj.weight[0:512]". */
    private static String kind(Weight w) {
        String n = w.name();
        if (n.startsWith("model.layers.")) n = n.substring(n.indexOf('.', 13) + 1);
        int br = n.indexOf('[');
        return br < 0 ? n : n.substring(0, br);
    }

    @Override public String name() { return b.name(); }
    @Override public Tensor allocate(int rows, int cols) { return b.allocate(rows, cols); }
    @Override public Tensor upload(float[] data, int rows, int cols) { return b.upload(data, rows, cols); }
    @Override public float[] download(Tensor t) { return b.download(t); }
    @Override public void copy(Tensor src, Tensor dst) { time("copy", () -> b.copy(src, dst)); }
    @Override public void zero(Tensor t) { b.zero(t); }
    @Override public void release(Tensor t) { b.release(t); }
    @Override public Weight weight(TensorInfo t) { return b.weight(t); }
    @Override public void synchronize() { b.synchronize(); }
    @Override public void embed(Weight table, int[] ids, Tensor out) { time("embed", () -> b.embed(table, ids, out)); }
    @Override public void matmul(Tensor x, Weight w, Tensor out) { time("matmul " + kind(w), bytes(w), () -> b.matmul(x, w, out)); }

    /** A fused group counts as one operation, named by its weights. */
    @Override public void matmuls(Tensor x, Weight[] w, Tensor[] out) {
        StringBuilder key = new StringBuilder("matmuls");
        long bytes = 0;
        for (int i = 0; i < w.length; i++) {
            key.append(i == 0 ? " " : " + ").append(kind(w[i]));
            bytes += bytes(w[i]);
        }
        time(key.toString(), bytes, () -> b.matmuls(x, w, out));
    }
    @Override public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) { time("rmsNorm", () -> b.rmsNorm(x, w, eps, out)); }
    @Override public void gatedRmsNorm(Tensor x, Weight w, float eps, Tensor gate, Tensor out) {
        time("gatedRmsNorm", () -> b.gatedRmsNorm(x, w, eps, gate, out));
    }
    @Override public void add(Tensor acc, Tensor x) { time("add", () -> b.add(acc, x)); }
    @Override public void swiglu(Tensor gate, Tensor up, Tensor out) { time("swiglu", () -> b.swiglu(gate, up, out)); }
    @Override public void sigmoid(Tensor x, Tensor out) { time("sigmoid", () -> b.sigmoid(x, out)); }
    @Override public void gatherRows(Tensor x, int[] rows, Tensor out) { time("gatherRows", () -> b.gatherRows(x, rows, out)); }
    @Override public void copyRows(Tensor src, Tensor dst, int row) { time("copyRows", () -> b.copyRows(src, dst, row)); }
    @Override public void shortConvSilu(Tensor x, Weight conv, Segments seg, Tensor[] tails, Tensor out) {
        time("shortConvSilu", () -> b.shortConvSilu(x, conv, seg, tails, out));
    }
    @Override public void kdaGate(Tensor f, Weight aLog, Weight dtBias, int headDim, Tensor g) {
        time("kdaGate", () -> b.kdaGate(f, aLog, dtBias, headDim, g));
    }
    @Override public void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
                              Tensor[] states, KdaForm form, Tensor out) {
        time("kda", () -> b.kda(q, k, v, g, beta, heads, headDim, seg, states, form, out));
    }
    @Override public void mlaAttention(Tensor q, Tensor[] latents, Tensor[] kRots, Weight kvB, int heads, int nope, int rope,
                                       int vDim, float scale, Segments seg, Tensor out) {
        time("mlaAttention", () -> b.mlaAttention(q, latents, kRots, kvB, heads, nope, rope, vDim, scale, seg, out));
    }
    @Override public Routing route(Tensor logits, Weight bias, RouterSpec spec) { return time("route", () -> b.route(logits, bias, spec)); }
    @Override public void moeExperts(Tensor x, Routing routing, ExpertWeights[] experts, Tensor out) {
        time("moeExperts", bytes(routing, experts), () -> b.moeExperts(x, routing, experts, out));
    }
    @Override public void close() { b.close(); }
}
