package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.util.Arrays;

/**
 * The fused decode calls (decode_fused.cu: Backend.swigluProjection, kdaGates, kdaOutputNorm, appendLatentRows, and the
 * routed experts of one row) against the CPU backend on fresh random inputs, outputs NaN-poisoned first, and against
 * the GPU's own unfused ops (matmuls, swiglu, kdaGate, sigmoid, gatedRmsNorm, rmsNorm + appendRows, moe_down +
 * moe_combine), which they must equal bit for bit: a decode step's results do not depend on the fusion flags.
 * Shapes: the bench model's (shared expert + router, dense layer, KDA at 32 heads x 128, MLA rank 512), batch 8 (a
 * router of another tiling, computed by its own launch), partial blocks, the K < 1024 tiling, experts served
 * elsewhere, and more rows than the GEMV takes (the unfused path).
 */
final class FusionCheck {
    private final Backend cpu = new CpuBackend();
    private final CudaBackend gpu;
    private final RandomTensors r;
    private final Compare cmp;

    FusionCheck(CudaBackend gpu, long seed, Compare cmp) {
        this.gpu = gpu;
        this.r = new RandomTensors(seed);
        this.cmp = cmp;
    }

    void run() {
        swigluProjection(1, 2304, 1024, 256);
        swigluProjection(1, 2304, 9216);
        swigluProjection(8, 2304, 1024, 256);
        swigluProjection(3, 2304, 1000, 256, 100);
        swigluProjection(1, 1024, 1001, 24);
        swigluProjection(1, 512, 300, 64);
        swigluProjection(2, 512, 300, 64);
        swigluProjection(20, 256, 64, 8);
        kdaGates(1, 32, 128, 128);
        kdaGates(8, 32, 128, 128);
        kdaGates(3, 4, 64, 72);
        kdaGates(1, 3, 32, 40);
        kdaGates(20, 4, 32, 64);
        kdaOutputNorm(1, 32, 128, 128); // one token: kda_output_norm_t1; more: the unfused path
        kdaOutputNorm(8, 32, 128, 128);
        kdaOutputNorm(5, 3, 64, 72);
        kdaOutputNorm(2, 4, 32, 40);
        kdaOutputNorm(16, 2, 128, 128);
        kdaOutputNorm(20, 4, 32, 64);
        downCombine(16, 8, 2304, 1024, false); // the bench's expert shape and top-k (16 experts: the CPU makes the weights)
        downCombine(64, 6, 128, 96, true);
        downCombine(16, 12, 136, 64, true);
        latentRows(512, 64, new int[] {4095});
        latentRows(512, 64, new int[] {3, 0, 9});
        latentRows(64, 16, new int[] {5, 1});
        latentRows(96, 0, new int[] {2, 7});
    }

    private Tensor poisoned(int rows, int cols) {
        float[] nan = new float[rows * cols];
        Arrays.fill(nan, Float.NaN);
        return gpu.upload(nan, rows, cols); // an element the kernel leaves unwritten fails the check
    }

    private void identical(String what, Tensor fused, Tensor unfused) {
        float[] a = gpu.download(fused), b = gpu.download(unfused);
        boolean same = true;
        for (int i = 0; i < a.length && same; i++) same = Float.floatToRawIntBits(a[i]) == Float.floatToRawIntBits(b[i]);
        if (same && a.length == b.length) cmp.pass(what, "bit-identical to the unfused GPU ops");
        else cmp.fail(what, "differs from the unfused GPU ops");
    }

    /** act = silu(x gate^T) * (x up^T) and x also^T for the given row counts of the other projections. */
    void swigluProjection(int t, int k, int n, int... alsoRows) {
        String name = "swigluProjection T=" + t + " K=" + k + " N=" + n + " also " + Arrays.toString(alsoRows);
        float[] x = r.floats(t * k, 1);
        Weight[] gate = pair(r.weight("gate", DType.BF16, 0, 0.05, n, k)), up = pair(r.weight("up", DType.BF16, 0, 0.05, n, k));
        Weight[][] also = new Weight[2][alsoRows.length];
        Tensor[][] alsoOut = new Tensor[2][alsoRows.length];
        for (int i = 0; i < alsoRows.length; i++) {
            Weight[] p = pair(r.weight("also" + i, DType.BF16, 0, 0.05, alsoRows[i], k));
            also[0][i] = p[0];
            also[1][i] = p[1];
            alsoOut[0][i] = cpu.allocate(t, alsoRows[i]);
            alsoOut[1][i] = poisoned(t, alsoRows[i]);
        }
        Tensor xc = cpu.upload(x, t, k), xg = gpu.upload(x, t, k);
        Tensor actC = cpu.allocate(t, n), actG = poisoned(t, n);
        cpu.swigluProjection(xc, gate[0], up[0], actC, also[0], alsoOut[0]);
        gpu.swigluProjection(xg, gate[1], up[1], actG, also[1], alsoOut[1]);
        cmp.check(name + " act", gpu.download(actG), cpu.download(actC), KernelCheck.FP32);
        for (int i = 0; i < alsoRows.length; i++) {
            cmp.check(name + " also " + i, gpu.download(alsoOut[1][i]), cpu.download(alsoOut[0][i]), KernelCheck.FP32);
        }
        // the unfused ops on the GPU: the projections by matmuls, then swiglu
        Weight[] w = Arrays.copyOf(also[1], alsoRows.length + 2);
        Tensor[] o = new Tensor[alsoRows.length + 2];
        for (int i = 0; i < alsoRows.length; i++) o[i] = gpu.allocate(t, alsoRows[i]);
        w[alsoRows.length] = gate[1];
        w[alsoRows.length + 1] = up[1];
        o[alsoRows.length] = gpu.allocate(t, n);
        o[alsoRows.length + 1] = gpu.allocate(t, n);
        gpu.matmuls(xg, w, o);
        Tensor act = gpu.allocate(t, n);
        gpu.swiglu(o[alsoRows.length], o[alsoRows.length + 1], act);
        identical(name + " act", actG, act);
        for (int i = 0; i < alsoRows.length; i++) identical(name + " also " + i, alsoOut[1][i], o[i]);
    }

    /** g = kdaGate(fLow fB^T) and beta = sigmoid(beta); dt_bias spread so that both softplus branches occur. */
    void kdaGates(int t, int heads, int d, int k) {
        String name = "kdaGates T=" + t + " heads=" + heads + " d=" + d + " K=" + k;
        int width = heads * d;
        float[] f = r.floats(t * k, 4), beta = r.floats(t * heads, 3);
        Weight[] fB = pair(r.weight("f_b", DType.BF16, 0, 0.05, width, k));
        Weight[] aLog = pair(r.weight("A_log", DType.F32, 0, 1, 1, 1, heads, 1)), dt = pair(r.weight("dt_bias", DType.F32, 0, 12, width));
        Tensor fc = cpu.upload(f, t, k), fg = gpu.upload(f, t, k);
        Tensor gc = cpu.allocate(t, width), gg = poisoned(t, width);
        Tensor bc = cpu.upload(beta, t, heads), bg = gpu.upload(beta, t, heads);
        cpu.kdaGates(fc, fB[0], aLog[0], dt[0], d, gc, bc);
        gpu.kdaGates(fg, fB[1], aLog[1], dt[1], d, gg, bg);
        cmp.check(name + " g", gpu.download(gg), cpu.download(gc), KernelCheck.FP32);
        cmp.check(name + " beta", gpu.download(bg), cpu.download(bc), KernelCheck.FP32);
        Tensor g = gpu.allocate(t, width), b = gpu.upload(beta, t, heads);
        gpu.matmul(fg, fB[1], g);
        gpu.kdaGate(g, aLog[1], dt[1], d, g);
        gpu.sigmoid(b, b);
        identical(name + " g", gg, g);
        identical(name + " beta", bg, b);
    }

    /** out = gatedRmsNorm(o, w, gLow gB^T) per head, in place as the model calls it. */
    void kdaOutputNorm(int t, int heads, int d, int k) {
        String name = "kdaOutputNorm T=" + t + " heads=" + heads + " d=" + d + " K=" + k;
        int width = heads * d;
        float[] o = r.floats(t * width, 2), gLow = r.floats(t * k, 2);
        Weight[] w = pair(r.weight("o_norm", DType.BF16, 1, 0.1, d)), gB = pair(r.weight("g_b", DType.BF16, 0, 0.1, width, k));
        Tensor oc = cpu.upload(o, t, width), og = gpu.upload(o, t, width);
        Tensor lc = cpu.upload(gLow, t, k), lg = gpu.upload(gLow, t, k);
        cpu.kdaOutputNorm(oc, w[0], 1e-5f, lc, gB[0], oc);
        gpu.kdaOutputNorm(og, w[1], 1e-5f, lg, gB[1], og);
        cmp.check(name, gpu.download(og), cpu.download(oc), KernelCheck.FP32);
        Tensor gate = gpu.allocate(t, width), ref = gpu.upload(o, t, width);
        gpu.matmul(lg, gB[1], gate);
        gpu.gatedRmsNorm(ref, w[1], 1e-5f, gate, ref);
        identical(name, og, ref);
    }

    /**
     * The routed experts of one row (moe_down_combine_t1 with the routing on the device) against the CPU backend, and
     * bit-identical to row 0 of the same rows run as a batch of 2 (moe_down then moe_combine: each row's routing and
     * sums do not depend on the other rows). {@code elsewhere}: every fifth expert is served by another process.
     */
    void downCombine(int e, int k, int h, int inter, boolean elsewhere) {
        String name = "routed experts, one row, E=" + e + " k=" + k + " H=" + h + " I=" + inter + (elsewhere ? " (some elsewhere)" : "");
        ExpertWeights[][] ex = new ExpertWeights[2][e];
        for (int i = 0; i < e; i++) {
            if (elsewhere && i % 5 == 3) continue;
            Weight[] g = pair(r.weight("w1", DType.BF16, 0, 0.1, inter, h)), u = pair(r.weight("w3", DType.BF16, 0, 0.1, inter, h));
            Weight[] d = pair(r.weight("w2", DType.BF16, 0, 0.1, h, inter));
            ex[0][i] = new ExpertWeights(g[0], u[0], d[0]);
            ex[1][i] = new ExpertWeights(g[1], u[1], d[1]);
        }
        Weight[] bias = pair(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.BIAS_CORRECTED);
        float[] logits = r.floats(2 * e, 2), x = r.floats(2 * h, 1), out = r.floats(2 * h, 1);
        float[] l1 = Arrays.copyOf(logits, e), x1 = Arrays.copyOf(x, h), o1 = Arrays.copyOf(out, h);
        Tensor oc = cpu.upload(o1, 1, h), og = gpu.upload(o1, 1, h);
        cpu.routeAndRunExperts(cpu.upload(l1, 1, e), bias[0], spec, cpu.upload(x1, 1, h), ex[0], oc);
        gpu.routeAndRunExperts(gpu.upload(l1, 1, e), bias[1], spec, gpu.upload(x1, 1, h), ex[1], og);
        cmp.check(name, gpu.download(og), cpu.download(oc), KernelCheck.FP32);
        Tensor o2 = gpu.upload(out, 2, h);
        gpu.routeAndRunExperts(gpu.upload(logits, 2, e), bias[1], spec, gpu.upload(x, 2, h), ex[1], o2);
        identical(name, og, o2.rowSlice(0, 1));
    }

    /** MLA's latent norm and both cache appends for single-token segments at the given positions (rope 0: no k_rot). */
    void latentRows(int rank, int rope, int[] positions) {
        String name = "appendLatentRows R=" + rank + " rope=" + rope + " positions " + Arrays.toString(positions);
        int n = positions.length, cap = Arrays.stream(positions).max().orElse(0) + 3;
        int[] ones = new int[n];
        Arrays.fill(ones, 1);
        Segments seg = new Segments(ones, positions);
        Weight[] norm = pair(r.weight("kv_a_layernorm", DType.BF16, 1, 0.1, rank));
        float[] latent = r.floats(n * rank, 2), kRot = r.floats(n * Math.max(1, rope), 1);
        // three sets of caches: CPU, GPU fused, GPU unfused
        Tensor[][] lat = new Tensor[3][n], rot = new Tensor[3][n];
        for (int i = 0; i < n; i++) {
            float[] l0 = r.floats(cap * rank, 1), r0 = r.floats(cap * Math.max(1, rope), 1);
            lat[0][i] = cpu.upload(l0, cap, rank);
            rot[0][i] = cpu.upload(r0, cap, Math.max(1, rope));
            for (int g = 1; g < 3; g++) {
                lat[g][i] = gpu.upload(l0, cap, rank);
                rot[g][i] = gpu.upload(r0, cap, Math.max(1, rope));
            }
        }
        Tensor lc = cpu.upload(latent, n, rank), lg = gpu.upload(latent, n, rank), lu = gpu.upload(latent, n, rank);
        Tensor kc = rope > 0 ? cpu.upload(kRot, n, rope) : null, kg = rope > 0 ? gpu.upload(kRot, n, rope) : null;
        cpu.appendLatentRows(lc, norm[0], 1e-6f, kc, lat[0], rot[0], seg);
        gpu.appendLatentRows(lg, norm[1], 1e-6f, kg, lat[1], rot[1], seg);
        gpu.rmsNorm(lu, norm[1], 1e-6f, lu);
        gpu.appendRows(lu, lat[2], seg);
        if (rope > 0) gpu.appendRows(kg, rot[2], seg);
        cmp.check(name + " latent", gpu.download(lg), cpu.download(lc), KernelCheck.FP32);
        identical(name + " latent", lg, lu);
        for (int i = 0; i < n; i++) {
            cmp.check(name + " latent cache " + i, gpu.download(lat[1][i]), cpu.download(lat[0][i]), KernelCheck.FP32);
            identical(name + " latent cache " + i, lat[1][i], lat[2][i]);
            if (rope > 0) identical(name + " k_rot cache " + i, rot[1][i], rot[2][i]);
            if (rope > 0) cmp.check(name + " k_rot cache " + i, gpu.download(rot[1][i]), cpu.download(rot[0][i]), KernelCheck.FP32);
        }
    }

    private Weight[] pair(TensorInfo t) {
        return new Weight[] {cpu.weight(t), gpu.weight(t)};
    }
}
