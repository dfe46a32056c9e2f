package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.util.Arrays;

/** Every CUDA op against the CPU backend (the reference semantics) on fresh random inputs. */
final class KernelCheck {
    static final double FP32 = 1e-4;
    private final Backend cpu = new CpuBackend();
    private final CudaBackend gpu;
    private final RandomTensors r;
    private final Compare cmp;

    KernelCheck(CudaBackend gpu, long seed, Compare cmp) {
        this.gpu = gpu;
        this.r = new RandomTensors(seed);
        this.cmp = cmp;
        System.out.println("kernel checks vs the CPU backend, seed " + seed);
    }

    private Tensor[] up(float[] data, int rows, int cols) {
        return new Tensor[] {cpu.upload(data, rows, cols), gpu.upload(data, rows, cols)};
    }

    private Weight[] w(TensorInfo t) {
        return new Weight[] {cpu.weight(t), gpu.weight(t)};
    }

    private void same(String what, Tensor[] pair) {
        cmp.check(what, gpu.download(pair[1]), cpu.download(pair[0]), FP32);
    }

    /** {@link #same} for a result of the backend's GEMM mode: the bf16 tolerance when the run is in the bf16-compute mode. */
    private void sameInMode(String what, Tensor[] pair) {
        cmp.check(what, gpu.download(pair[1]), cpu.download(pair[0]), gpu.bf16Compute() ? GEMM_BF16 : FP32);
    }

    void run() {
        run("all");
    }

    /** groups: all, or a comma-separated list of matmul, norms, elementwise, conv, kda, mla, moe, sampler, fused, operands, activations (a shorter run). */
    void run(String groups) {
        java.util.List<String> known = java.util.List.of("all", "matmul", "norms", "elementwise", "conv", "kda", "mla", "moe", "sampler", "fused", "operands", "activations");
        java.util.List<String> g = java.util.Arrays.asList(groups.split(","));
        for (String one : g) if (!known.contains(one)) throw new IllegalArgumentException("kernel group must be one of " + known + ", not " + one);
        boolean all = g.contains("all");
        if (all || g.contains("matmul")) matmul();
        if (all || g.contains("norms")) norms();
        if (all || g.contains("elementwise")) elementwise();
        if (all || g.contains("conv")) conv();
        if (all || g.contains("kda")) kdaCases();
        if (all || g.contains("mla")) mlaCases();
        if (all || g.contains("moe")) moe();
        if (all || g.contains("sampler")) new SamplerCheck(gpu, r.rnd.nextLong(), cmp).run();
        if (all || g.contains("fused")) new FusionCheck(gpu, r.rnd.nextLong(), cmp).run();
        if (all || g.contains("operands")) new OperandCheck(gpu, r.rnd.nextLong(), cmp).run();
        if (all || g.contains("activations")) new ActivationCheck(gpu, r.rnd.nextLong(), cmp).run();
    }

    private void kdaCases() {
        for (int d : new int[] {64, 128}) for (KdaForm f : KdaForm.values()) kda(4, d, f, new int[] {1, 7, 65, 130}, new int[] {5, 0, 64, 1}, -1);
        // the chunk kernels: head dims 32 and 96, several segments with short last chunks, strong decays (A_log about
        // 2.5: per-step log decays near -16 and below) and a long prompt whose state carries through 256 chunks
        kda(3, 32, KdaForm.CHUNKED, new int[] {200, 64, 1}, new int[] {0, 3, 9}, -1);
        kda(3, 96, KdaForm.CHUNKED, new int[] {129, 2, 300}, new int[] {0, 0, 17}, -1);
        kda(2, 128, KdaForm.CHUNKED, new int[] {1000, 2500, 63, 640}, new int[] {0, 64, 3, 0}, 2.5);
        kda(2, 128, KdaForm.CHUNKED, new int[] {16384}, new int[] {0}, -1);
        // the tensor-core scan of the bf16-compute mode (TF32 products, fp32 state), in either mode, at KDA_TC
        kda(4, 128, KdaForm.CHUNKED, new int[] {1, 7, 65, 130}, new int[] {5, 0, 64, 1}, -1, true);
        kda(3, 32, KdaForm.CHUNKED, new int[] {200, 64, 1}, new int[] {0, 3, 9}, -1, true);
        kda(3, 96, KdaForm.CHUNKED, new int[] {129, 2, 300}, new int[] {0, 0, 17}, -1, true);
        kda(2, 128, KdaForm.CHUNKED, new int[] {1000, 2500, 63, 640}, new int[] {0, 64, 3, 0}, 2.5, true);
        kda(2, 128, KdaForm.CHUNKED, new int[] {16384}, new int[] {0}, -1, true);
        // prep v6 computes v5's bits (the same operations under another lane map): whole chunk path, ragged last chunks
        kdaPrepBits(3, 32, new int[] {200, 64, 1}, new int[] {0, 3, 9});
        kdaPrepBits(2, 128, new int[] {1000, 63, 640}, new int[] {0, 3, 0});
    }

    /** The chunk path with prep v6 and with prep v5 (fp32 scan) on the same inputs: outputs and states bit for bit. */
    void kdaPrepBits(int heads, int d, int[] lens, int[] pos) {
        int w = heads * d;
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows();
        Tensor q = gpu.upload(r.floats(t * w, 1), t, w), k = gpu.upload(r.floats(t * w, 1), t, w), v = gpu.upload(r.floats(t * w, 1), t, w);
        float[] gh = r.floats(t * w, 1), bh = r.floats(t * heads, 2);
        for (int i = 0; i < gh.length; i++) gh[i] = (float) -Math.exp(gh[i]); // log decays -e^N(0,1): mild to strong
        for (int i = 0; i < bh.length; i++) bh[i] = (float) (1 / (1 + Math.exp(-bh[i])));
        Tensor g = gpu.upload(gh, t, w), beta = gpu.upload(bh, t, heads);
        float[][] s0 = new float[lens.length][];
        for (int i = 0; i < lens.length; i++) s0[i] = r.floats(w * d, 0.1);
        float[][] outs = new float[2][];
        float[][][] states = new float[2][lens.length][];
        String[] preps = {"v5", "v6"};
        for (int p = 0; p < 2; p++) {
            Tensor out = gpu.allocate(t, w);
            Tensor[] st = new Tensor[lens.length];
            for (int i = 0; i < lens.length; i++) st[i] = gpu.upload(s0[i], w, d);
            gpu.kda(q, k, v, g, beta, heads, d, seg, st, KdaForm.CHUNKED, out, false, preps[p]);
            outs[p] = gpu.download(out);
            for (int i = 0; i < lens.length; i++) states[p][i] = gpu.download(st[i]);
            gpu.release(out);
            for (Tensor x : st) gpu.release(x);
        }
        boolean equal = Arrays.equals(outs[0], outs[1]);
        for (int i = 0; i < lens.length; i++) equal &= Arrays.equals(states[0][i], states[1][i]);
        String what = "kda chunked d=" + d + " " + Arrays.toString(lens) + " prep v6 = v5";
        if (equal) cmp.pass(what, "bit-identical (outputs and states)");
        else cmp.fail(what, "differs");
        for (Tensor x : new Tensor[] {q, k, v, g, beta}) gpu.release(x);
    }

    /**
     * Tolerance of the tensor-core KDA scan: its products take TF32 operands (10-bit mantissa; about 1e-3 relative),
     * the bf16-compute mode's 1e-2 as for its GEMMs and attention.
     */
    static final double KDA_TC = 1e-2;

    private void mlaCases() {
        mla(4, 32, 16, 32, 64, new int[] {1, 9, 1, 33}, new int[] {10, 0, 0, 5});
        mla(8, 128, 64, 128, 512, new int[] {1, 9, 1, 33}, new int[] {10, 0, 0, 5});
        // decode batches (mla_decode.cu): positions differ per sequence, heads not a multiple of 8
        mla(4, 32, 16, 32, 64, new int[] {1, 1, 1, 1, 1}, new int[] {0, 7, 130, 64, 3});
        mla(12, 128, 64, 128, 512, new int[] {1, 1, 1}, new int[] {300, 0, 4100});
        mla(32, 128, 64, 128, 512, new int[] {1, 1}, new int[] {63, 64});
        // a prompt longer than one score tile (2^28 floats / (heads x keys) = 8142 queries here): the causal key range
        // grows from tile to tile, and the second tile holds 50 queries
        mla(4, 32, 16, 32, 64, new int[] {8192}, new int[] {50});
        // mla_decode.cu (single-token segments): the bench shape at batch 1 over a long cache, one head per block
        // (3 heads), and a batch whose blocks walk several 128-position chunks with the online softmax (40 sequences)
        mla(32, 128, 64, 128, 512, new int[] {1}, new int[] {4095});
        mla(32, 128, 64, 128, 512, new int[] {1}, new int[] {0});
        mla(3, 32, 16, 32, 64, new int[] {1, 1}, new int[] {5, 200});
        // one sequence (mla_absorb.cu's q_lat and output kernels): a rank below one column block, nope not a multiple of 16
        mla(3, 32, 16, 32, 64, new int[] {1}, new int[] {200});
        mla(5, 72, 32, 64, 256, new int[] {1}, new int[] {77});
        int[] ones40 = new int[40], pos40 = new int[40];
        for (int i = 0; i < 40; i++) {
            ones40[i] = 1;
            pos40[i] = (i * 977) % 3000;
        }
        mla(32, 128, 64, 128, 512, ones40, pos40);
        // mla_decode_v3.cu (-Dkimimesh.cuda.mlaDecode=v3, all heads a block): the bench shape over a cache longer than
        // one range walks many 16-row tiles with the online softmax; a batch of 8 at mixed lengths (ranges empty,
        // partial and full, a sequence at position 0); head counts that split into groups of 20 (40 heads) and into
        // 17 + 16 (33 heads, the last group short); a rank whose context columns stop short of the second column set
        mla(32, 128, 64, 128, 512, new int[] {1}, new int[] {20011});
        mla(32, 128, 64, 128, 512, new int[] {1, 1, 1, 1, 1, 1, 1, 1}, new int[] {5000, 17, 1234, 0, 4096, 300, 2047, 15});
        mla(40, 64, 32, 64, 256, new int[] {1, 1, 1}, new int[] {900, 33, 0});
        mla(33, 32, 16, 32, 128, new int[] {1, 1}, new int[] {500, 70});
        appendRows(new int[] {1, 1, 1}, new int[] {0, 17, 4});
        appendRows(new int[] {1, 5, 2}, new int[] {3, 0, 9});
        // the bf16-compute prefill (MLA_BF16 tolerance: q, k, v and the probabilities rounded to bf16): the fused flash
        // kernel at Kimi Linear's head dims, with query blocks cut short, keys before the segment and single tokens
        // between (absorbed, fp32); then a shape the flash kernel does not take (two cuBLAS products, one-read softmax)
        mlaBf16(4, 128, 64, 128, 512, new int[] {1, 300, 9, 129, 64}, new int[] {10, 0, 5, 70, 1});
        mlaBf16(3, 128, 64, 128, 512, new int[] {2000}, new int[] {37});
        // the bench shape's 32 heads over several key tiles and a partial last query block (wgmma flash: 128 queries
        // a block, 128 or 64 keys a tile)
        mlaBf16(32, 128, 64, 128, 512, new int[] {700}, new int[] {300});
        mlaBf16(4, 32, 16, 32, 64, new int[] {33, 200}, new int[] {5, 0});
    }

    void matmul() {
        for (int[] s : new int[][] {{1, 512, 768}, {5, 384, 256}, {16, 256, 2304}, {17, 300, 512}, {200, 512, 768}, {3, 40, 100}, {70, 33, 100},
                // one shape per tiled GEMV choice (GemvTiles), with row counts that leave a partial block and K that
                // leaves lanes without a chunk
                {1, 1001, 1024}, {1, 333, 2304}, {1, 5, 4104}, {2, 33001, 1024}, {4, 2305, 4096}, {8, 777, 2304},
                {3, 100, 1032}, {12, 600, 4104}, {7, 4097, 128}}) {
            int t = s[0], n = s[1], k = s[2];
            float[] x = r.floats(t * k, 1);
            Tensor[] xs = up(x, t, k), out = {cpu.allocate(t, n), gpu.allocate(t, n)};
            Weight[] ws = w(r.weight("w", DType.BF16, 0, 0.05, n, k));
            cpu.matmul(xs[0], ws[0], out[0]);
            gpu.matmul(xs[1], ws[1], out[1]);
            same("matmul bf16 T=" + t + " N=" + n + " K=" + k, out);
        }
        // several projections of one input (Backend.matmuls): one gemv_multi launch per tiling; a KDA-like set
        // (tilings differ by row count at T > 1) and more matrices than one launch takes
        for (int t : new int[] {1, 8, 3}) matmuls(t, 2304, new int[] {1000, 1000, 1000, 128, 128, 32});
        matmuls(1, 1024, new int[] {64, 8, 300, 16, 24, 1000, 40, 56, 72});
        Weight[] f32 = w(r.weight("wf", DType.F32, 0, 0.05, 64, 96));
        Tensor[] xs = up(r.floats(40 * 96, 1), 40, 96), out = {cpu.allocate(40, 64), gpu.allocate(40, 64)};
        cpu.matmul(xs[0], f32[0], out[0]);
        gpu.matmul(xs[1], f32[1], out[1]);
        same("matmul f32 weight T=40", out);
        // the bf16-compute prefill's projections of one input, x rounded to bf16 once (a KDA layer's set, 300 rows)
        matmulsBf16(300, 2304, new int[] {1000, 1000, 1000, 128, 128, 32});
    }

    /** Tolerance of a bf16-compute GEMM: x rounded to bf16 (8 significant bits), fp32 sums. */
    static final double GEMM_BF16 = 1e-2;

    /** CudaBackend.matmulsBf16 against the CPU backend's fp32 matmuls; the outputs poisoned first. */
    void matmulsBf16(int t, int k, int[] ns) {
        Tensor[] xs = up(r.floats(t * k, 1), t, k);
        Weight[][] ws = new Weight[2][ns.length];
        Tensor[][] outs = new Tensor[2][ns.length];
        for (int i = 0; i < ns.length; i++) {
            Weight[] p = w(r.weight("wb" + i, DType.BF16, 0, 0.05, ns[i], k));
            ws[0][i] = p[0];
            ws[1][i] = p[1];
            outs[0][i] = cpu.allocate(t, ns[i]);
            float[] nan = new float[t * ns[i]];
            Arrays.fill(nan, Float.NaN);
            outs[1][i] = gpu.upload(nan, t, ns[i]);
        }
        cpu.matmuls(xs[0], ws[0], outs[0]);
        gpu.matmulsBf16(xs[1], ws[1], outs[1]);
        for (int i = 0; i < ns.length; i++) {
            cmp.check("matmuls bf16 (x converted once) T=" + t + " K=" + k + " N=" + ns[i], gpu.download(outs[1][i]), cpu.download(outs[0][i]),
                    GEMM_BF16);
        }
    }

    /** matmuls against the CPU backend, and bit-identical to the GPU's own matmul of each weight (the SPI's promise). */
    void matmuls(int t, int k, int[] ns) {
        Tensor[] xs = up(r.floats(t * k, 1), t, k);
        Weight[][] ws = new Weight[2][ns.length];
        Tensor[][] outs = new Tensor[2][ns.length];
        float[][] single = new float[ns.length][];
        for (int i = 0; i < ns.length; i++) {
            Weight[] p = w(r.weight("wm" + i, DType.BF16, 0, 0.05, ns[i], k));
            ws[0][i] = p[0];
            ws[1][i] = p[1];
            outs[0][i] = cpu.allocate(t, ns[i]);
            float[] nan = new float[t * ns[i]];
            Arrays.fill(nan, Float.NaN);
            outs[1][i] = gpu.upload(nan, t, ns[i]); // poisoned: an unwritten element fails the check
            Tensor one = gpu.allocate(t, ns[i]);
            gpu.matmul(xs[1], p[1], one);
            single[i] = gpu.download(one);
            gpu.release(one);
        }
        cpu.matmuls(xs[0], ws[0], outs[0]);
        gpu.matmuls(xs[1], ws[1], outs[1]);
        boolean identical = true;
        for (int i = 0; i < ns.length; i++) {
            same("matmuls T=" + t + " K=" + k + " N=" + ns[i] + " (" + (i + 1) + " of " + ns.length + ")", new Tensor[] {outs[0][i], outs[1][i]});
            identical &= Arrays.equals(gpu.download(outs[1][i]), single[i]);
        }
        String what = "matmuls T=" + t + " K=" + k + " = matmul one by one";
        if (identical) cmp.pass(what, "bit-identical");
        else cmp.fail(what, "differs from the single-matrix GEMV");
    }

    void norms() {
        int t = 9, h = 256;
        float[] x = r.floats(t * h, 2), gate = r.floats(t * h, 2);
        Weight[] full = w(r.weight("norm", DType.BF16, 1, 0.1, h)), head = w(r.weight("onorm", DType.BF16, 1, 0.1, 64));
        Tensor[] xs = up(x, t, h), gs = up(gate, t, h), out = {cpu.allocate(t, h), gpu.allocate(t, h)};
        cpu.rmsNorm(xs[0], full[0], 1e-5f, out[0]);
        gpu.rmsNorm(xs[1], full[1], 1e-5f, out[1]);
        same("rmsNorm row", out);
        cpu.rmsNorm(xs[0], head[0], 1e-6f, out[0]);
        gpu.rmsNorm(xs[1], head[1], 1e-6f, out[1]);
        same("rmsNorm per head", out);
        cpu.gatedRmsNorm(xs[0], head[0], 1e-5f, gs[0], xs[0]);
        gpu.gatedRmsNorm(xs[1], head[1], 1e-5f, gs[1], xs[1]);
        same("gatedRmsNorm in place", xs);
        // rows of the bench width (one float4 per thread), the widest register-held group (four per thread), and a
        // width that is no multiple of 4 (the plain kernel)
        for (int[] s : new int[][] {{3, 2304}, {2, 16384}, {3, 130}}) {
            Weight[] nw = w(r.weight("norm" + s[1], DType.BF16, 1, 0.1, s[1]));
            Tensor[] a = up(r.floats(s[0] * s[1], 2), s[0], s[1]), o = {cpu.allocate(s[0], s[1]), gpu.allocate(s[0], s[1])};
            cpu.rmsNorm(a[0], nw[0], 1e-5f, o[0]);
            gpu.rmsNorm(a[1], nw[1], 1e-5f, o[1]);
            same("rmsNorm " + s[0] + "x" + s[1], o);
        }
        // the residual add fused with the norm after it (add_rms_norm_v4), and a width it leaves to add + norm
        for (int[] s : new int[][] {{1, 2304}, {5, 2304}, {2, 16384}, {3, 130}}) {
            Weight[] nw = w(r.weight("norm" + s[1], DType.BF16, 1, 0.1, s[1]));
            Tensor[] acc = up(r.floats(s[0] * s[1], 2), s[0], s[1]), d = up(r.floats(s[0] * s[1], 2), s[0], s[1]);
            Tensor[] o = {cpu.allocate(s[0], s[1]), gpu.allocate(s[0], s[1])};
            cpu.addRmsNorm(acc[0], d[0], nw[0], 1e-5f, o[0]);
            gpu.addRmsNorm(acc[1], d[1], nw[1], 1e-5f, o[1]);
            same("addRmsNorm " + s[0] + "x" + s[1] + " out", o);
            same("addRmsNorm " + s[0] + "x" + s[1] + " sum", acc);
        }
    }

    void elementwise() {
        int t = 7, c = 1000;
        Tensor[] a = up(r.floats(t * c, 3), t, c), b = up(r.floats(t * c, 3), t, c), o = {cpu.allocate(t, c), gpu.allocate(t, c)};
        cpu.swiglu(a[0], b[0], o[0]);
        gpu.swiglu(a[1], b[1], o[1]);
        same("swiglu", o);
        cpu.sigmoid(a[0], o[0]);
        gpu.sigmoid(a[1], o[1]);
        same("sigmoid", o);
        cpu.add(a[0], b[0]);
        gpu.add(a[1], b[1]);
        same("add", a);
        int heads = 4, d = 64;
        Weight[] aLog = w(r.weight("A_log", DType.F32, 0, 1, 1, 1, heads, 1)), dt = w(r.weight("dt_bias", DType.F32, 0, 1, heads * d));
        Tensor[] f = up(r.floats(t * heads * d, 8), t, heads * d), g = {cpu.allocate(t, heads * d), gpu.allocate(t, heads * d)};
        cpu.kdaGate(f[0], aLog[0], dt[0], d, g[0]);
        gpu.kdaGate(f[1], aLog[1], dt[1], d, g[1]);
        same("kdaGate (softplus both branches)", g);
        Weight[] table = w(r.weight("embed", DType.BF16, 0, 1, 300, 96));
        int[] ids = {0, 299, 17, 17, 5};
        Tensor[] e = {cpu.allocate(ids.length, 96), gpu.allocate(ids.length, 96)};
        cpu.embed(table[0], ids, e[0]);
        gpu.embed(table[1], ids, e[1]);
        same("embed", e);
        int[] rows = {6, 0, 3};
        Tensor[] gr = {cpu.allocate(3, c), gpu.allocate(3, c)};
        cpu.gatherRows(a[0], rows, gr[0]);
        gpu.gatherRows(a[1], rows, gr[1]);
        same("gatherRows", gr);
    }

    void conv() {
        conv(new int[] {1, 5, 70}, new int[] {3, 0, 9}); // a segment over 64 rows: convolution, then the tail update
        conv(new int[] {1, 1, 1}, new int[] {7, 0, 2}); // decode: one launch does both
        conv(new int[] {2, 64, 1}, new int[] {5, 1, 0}); // one launch, a segment shorter than the tail
        convs(new int[] {1, 1, 1, 1}, new int[] {7, 0, 2, 300}); // decode: q, k, v in one launch
        convs(new int[] {2, 64, 1}, new int[] {5, 1, 0});
        convs(new int[] {1, 70}, new int[] {3, 0}); // over 64 rows: one convolution at a time
        // the prefill kernel (short_conv4_silu): short and long segments, a row count not a multiple of 4, KDA's width
        convPrefill(new int[] {1, 5, 70, 203}, new int[] {3, 0, 9, 0}, 300);
        convPrefill(new int[] {1000, 129}, new int[] {0, 2}, 4096);
    }

    /** shortConvSilu with the prefill kernel v2 against the CPU backend, and against v1 (the same bits). */
    void convPrefill(int[] lens, int[] positions, int p) {
        int k = 4;
        Segments seg = new Segments(lens, positions);
        int t = seg.totalRows();
        Tensor[] x = up(r.floats(t * p, 1), t, p), o = {cpu.allocate(t, p), gpu.allocate(t, p)};
        Tensor v1 = gpu.allocate(t, p);
        Weight[] cw = w(r.weight("conv", DType.BF16, 0, 0.5, p, 1, k));
        Tensor[][] tails = new Tensor[3][lens.length];
        for (int i = 0; i < lens.length; i++) {
            float[] tl = r.floats((k - 1) * p, 1);
            tails[0][i] = cpu.upload(tl, k - 1, p);
            tails[1][i] = gpu.upload(tl, k - 1, p);
            tails[2][i] = gpu.upload(tl, k - 1, p);
        }
        cpu.shortConvSilu(x[0], cw[0], seg, tails[0], o[0]);
        gpu.shortConvSilu(x[1], cw[1], seg, tails[1], o[1], true);
        gpu.shortConvSilu(x[1], cw[1], seg, tails[2], v1, false);
        String what = "shortConvSilu prefill v2 P=" + p + " " + Arrays.toString(lens);
        same(what, o);
        boolean equal = Arrays.equals(gpu.download(o[1]), gpu.download(v1));
        for (int i = 0; i < lens.length; i++) {
            same(what + " tail " + i, new Tensor[] {tails[0][i], tails[1][i]});
            equal &= Arrays.equals(gpu.download(tails[1][i]), gpu.download(tails[2][i]));
        }
        if (equal) cmp.pass(what + " = v1", "bit-identical");
        else cmp.fail(what + " = v1", "differs");
        gpu.release(v1);
    }

    void conv(int[] lens, int[] positions) {
        int p = 300, k = 4;
        Segments seg = new Segments(lens, positions);
        int t = seg.totalRows();
        Tensor[] x = up(r.floats(t * p, 1), t, p), o = {cpu.allocate(t, p), gpu.allocate(t, p)};
        Weight[] cw = w(r.weight("conv", DType.BF16, 0, 0.5, p, 1, k));
        Tensor[][] tails = new Tensor[2][lens.length];
        for (int i = 0; i < lens.length; i++) {
            Tensor[] tl = up(r.floats((k - 1) * p, 1), k - 1, p);
            tails[0][i] = tl[0];
            tails[1][i] = tl[1];
        }
        cpu.shortConvSilu(x[0], cw[0], seg, tails[0], o[0]);
        gpu.shortConvSilu(x[1], cw[1], seg, tails[1], o[1]);
        same("shortConvSilu out " + Arrays.toString(lens), o);
        for (int i = 0; i < lens.length; i++) same("shortConvSilu tail " + i, new Tensor[] {tails[0][i], tails[1][i]});
    }

    /** Three convolutions of one step (shortConvSilus: KDA's q, k, v), one launch on the device for short segments. */
    void convs(int[] lens, int[] positions) {
        int p = 300, k = 4;
        Segments seg = new Segments(lens, positions);
        int t = seg.totalRows();
        Tensor[][] x = new Tensor[2][3], o = new Tensor[2][3];
        Weight[][] cw = new Weight[2][3];
        Tensor[][][] tails = new Tensor[2][3][lens.length];
        for (int j = 0; j < 3; j++) {
            Tensor[] xj = up(r.floats(t * p, 1), t, p);
            Weight[] wj = w(r.weight("conv" + j, DType.BF16, 0, 0.5, p, 1, k));
            for (int side = 0; side < 2; side++) {
                x[side][j] = xj[side];
                cw[side][j] = wj[side];
                o[side][j] = side == 0 ? cpu.allocate(t, p) : gpu.allocate(t, p);
            }
            for (int i = 0; i < lens.length; i++) {
                Tensor[] tl = up(r.floats((k - 1) * p, 1), k - 1, p);
                tails[0][j][i] = tl[0];
                tails[1][j][i] = tl[1];
            }
        }
        cpu.shortConvSilus(x[0], cw[0], seg, tails[0], o[0]);
        gpu.shortConvSilus(x[1], cw[1], seg, tails[1], o[1]);
        for (int j = 0; j < 3; j++) {
            same("shortConvSilus conv " + j + " out " + Arrays.toString(lens), new Tensor[] {o[0][j], o[1][j]});
            for (int i = 0; i < lens.length; i++) same("shortConvSilus conv " + j + " tail " + i, new Tensor[] {tails[0][j][i], tails[1][j][i]});
        }
    }

    /** KDA in the given form vs the CPU backend; aLogMean sets how strongly the gate decays (-1 mild, 2.5 strong). */
    void kda(int heads, int d, KdaForm form, int[] lens, int[] pos, double aLogMean) {
        kda(heads, d, form, lens, pos, aLogMean, null);
    }

    /** tensorCores: null for the chunk scan kimimesh.cuda.kdaChunk selects, else the tensor-core scan or the fp32 one. */
    void kda(int heads, int d, KdaForm form, int[] lens, int[] pos, double aLogMean, Boolean tensorCores) {
        int w = heads * d;
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows();
        Tensor[] q = up(r.floats(t * w, 1), t, w), k = up(r.floats(t * w, 1), t, w), v = up(r.floats(t * w, 1), t, w);
        Weight[] aLog = w(r.weight("A_log", DType.F32, aLogMean, 0.5, 1, 1, heads, 1)), dt = w(r.weight("dt_bias", DType.F32, 0, 1, w));
        Tensor[] f = up(r.floats(t * w, 1), t, w), g = {cpu.allocate(t, w), gpu.allocate(t, w)};
        cpu.kdaGate(f[0], aLog[0], dt[0], d, g[0]);
        float[] gh = cpu.download(g[0]);
        g = up(gh, t, w);
        float[] bh = r.floats(t * heads, 2);
        for (int i = 0; i < bh.length; i++) bh[i] = (float) (1 / (1 + Math.exp(-bh[i])));
        Tensor[] beta = up(bh, t, heads), out = {cpu.allocate(t, w), gpu.allocate(t, w)};
        Tensor[][] st = new Tensor[2][lens.length];
        for (int i = 0; i < lens.length; i++) {
            Tensor[] s = up(r.floats(w * d, 0.1), w, d);
            st[0][i] = s[0];
            st[1][i] = s[1];
        }
        cpu.kda(q[0], k[0], v[0], g[0], beta[0], heads, d, seg, st[0], form, out[0]);
        if (tensorCores == null) gpu.kda(q[1], k[1], v[1], g[1], beta[1], heads, d, seg, st[1], form, out[1]);
        else gpu.kda(q[1], k[1], v[1], g[1], beta[1], heads, d, seg, st[1], form, out[1], tensorCores);
        boolean tc = tensorCores == null ? CudaBackend.kdaTensorCores() : tensorCores;
        // the tensor-core scan serves chunked segments (AUTO: those longer than one token)
        boolean anyChunked = form == KdaForm.CHUNKED || (form == KdaForm.AUTO && Arrays.stream(lens).anyMatch(l -> l > 1));
        double tol = tc && anyChunked ? KDA_TC : FP32;
        String name = "kda " + form + " d=" + d + " " + Arrays.toString(lens) + (aLogMean > 0 ? " strong decay" : "")
                + (tc && anyChunked ? " tc scan" : "");
        cmp.check(name + " out", gpu.download(out[1]), cpu.download(out[0]), tol);
        for (int i = 0; i < lens.length; i++) {
            cmp.check(name + " state " + i + " (len " + lens[i] + ")", gpu.download(st[1][i]), cpu.download(st[0][i]), tol);
        }
    }

    void mla(int heads, int nope, int rope, int vDim, int rank, int[] lens, int[] pos) {
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows(), qw = nope + rope;
        Tensor[] q = up(r.floats(t * heads * qw, 1), t, heads * qw), out = {cpu.allocate(t, heads * vDim), gpu.allocate(t, heads * vDim)};
        Weight[] kvB = w(r.weight("kv_b_proj", DType.BF16, 0, 0.1, heads * (nope + vDim), rank));
        Tensor[][][] caches = latentCaches(lens, pos, rank, rope);
        Tensor[][] lat = caches[0], rot = caches[1];
        float scale = (float) (1 / Math.sqrt(qw));
        cpu.mlaAttention(q[0], lat[0], rot[0], kvB[0], heads, nope, rope, vDim, scale, seg, out[0]);
        gpu.mlaAttention(q[1], lat[1], rot[1], kvB[1], heads, nope, rope, vDim, scale, seg, out[1]);
        String what = "mla heads=" + heads + " nope=" + nope + " R=" + rank + " " + Arrays.toString(lens) + " at " + Arrays.toString(pos);
        // a segment of several tokens takes the expanded prefill path, which rounds q, k and v to bf16 in the
        // bf16-compute mode; single-token segments stay on the fp32 latent decode kernels in every mode
        if (Arrays.stream(lens).anyMatch(n -> n > 1)) sameInMode(what, out);
        else same(what, out);
    }

    /**
     * Random latent and k_rot caches, CPU copy [0] and GPU copy [1], one per sequence, 3 rows longer than what it sees
     * (caches may be longer than what is visible): {lat, rot}.
     */
    private Tensor[][][] latentCaches(int[] lens, int[] pos, int rank, int rope) {
        Tensor[][] lat = new Tensor[2][lens.length], rot = new Tensor[2][lens.length];
        for (int i = 0; i < lens.length; i++) {
            int total = pos[i] + lens[i] + 3;
            Tensor[] l = up(r.floats(total * rank, 1), total, rank), kr = up(r.floats(total * rope, 1), total, rope);
            lat[0][i] = l[0];
            lat[1][i] = l[1];
            rot[0][i] = kr[0];
            rot[1][i] = kr[1];
        }
        return new Tensor[][][] {lat, rot};
    }

    /** The MLA cache append: single tokens in one launch at device-read positions, longer segments by copies. */
    void appendRows(int[] lens, int[] pos) {
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows(), cols = 72;
        Tensor[] rows = up(r.floats(t * cols, 1), t, cols);
        Tensor[][] caches = new Tensor[2][lens.length];
        for (int i = 0; i < lens.length; i++) {
            int cap = pos[i] + lens[i] + 5;
            Tensor[] c = up(r.floats(cap * cols, 1), cap, cols);
            caches[0][i] = c[0];
            caches[1][i] = c[1];
        }
        cpu.appendRows(rows[0], caches[0], seg);
        gpu.appendRows(rows[1], caches[1], seg);
        for (int i = 0; i < lens.length; i++) {
            same("appendRows " + Arrays.toString(lens) + " at " + Arrays.toString(pos) + " cache " + i, new Tensor[] {caches[0][i], caches[1][i]});
        }
    }

    /** Tolerance of the bf16-compute attention: bf16 operands (8 significant bits) and probabilities, fp32 sums. */
    static final double MLA_BF16 = 1e-2;

    void mlaBf16(int heads, int nope, int rope, int vDim, int rank, int[] lens, int[] pos) {
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows(), qw = nope + rope;
        Tensor[] q = up(r.floats(t * heads * qw, 1), t, heads * qw), out = {cpu.allocate(t, heads * vDim), gpu.allocate(t, heads * vDim)};
        Weight[] kvB = w(r.weight("kv_b_proj", DType.BF16, 0, 0.1, heads * (nope + vDim), rank));
        Tensor[][][] caches = latentCaches(lens, pos, rank, rope);
        Tensor[][] lat = caches[0], rot = caches[1];
        // a larger scale than 1/sqrt(qw) sharpens the softmax, so that a wrong mask or key shows as a large error
        float scale = (float) (4 / Math.sqrt(qw));
        cpu.mlaAttention(q[0], lat[0], rot[0], kvB[0], heads, nope, rope, vDim, scale, seg, out[0]);
        gpu.mlaAttentionBf16(q[1], lat[1], rot[1], kvB[1], heads, nope, rope, vDim, scale, seg, out[1]);
        cmp.check("mla bf16 prefill heads=" + heads + " nope=" + nope + " " + Arrays.toString(lens) + " at " + Arrays.toString(pos),
                gpu.download(out[1]), cpu.download(out[0]), MLA_BF16);
    }

    void moe() {
        int t = 11, e = 64, h = 128, inter = 96, k = 6;
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        for (RouterWeights rw : RouterWeights.values()) {
            for (int groups : new int[] {1, 8}) {
                RouterSpec spec = new RouterSpec(e, k, false, groups, groups == 1 ? 1 : 3, true, 2.446f, rw);
                Routing a = cpu.route(logits[0], bias[0], spec), b = gpu.route(logits[1], bias[1], spec);
                String what = "route " + rw + " groups=" + groups;
                if (!Arrays.equals(a.experts(), b.experts())) cmp.fail(what, "experts differ");
                else cmp.check(what + " weights", b.weights(), a.weights(), 1e-6);
            }
        }
        // the prefill routing kernel (a warp a row) against moe_route: the same experts and weights, bit for bit
        for (int[] c : new int[][] {{11, 64, 6}, {3000, 256, 8}, {500, 1000, 8}, {70, 256, 32}}) {
            for (RouterWeights rw : RouterWeights.values()) prefillRoute(c[0], c[1], c[2], rw);
        }
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.UNBIASED);
        Routing routing = cpu.route(logits[0], bias[0], spec);
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 5 == 3);
        Tensor[] x = up(r.floats(t * h, 1), t, h), out = up(r.floats(t * h, 1), t, h);
        cpu.moeExperts(x[0], routing, ex[0], out[0]);
        gpu.moeExperts(x[1], routing, ex[1], out[1]);
        sameInMode("moeExperts (some experts elsewhere)", out);
        hostRoutedExperts(10000, 64, 8, h, inter); // about 70,000 pairs: more than one batched-glue group (65,536 pairs)
        // the bf16-compute prefill's experts, the glue writing bf16 operands: one or two rows an expert, two glue
        // groups, and the bench model's expert shape at about 250 rows an expert
        expertsBf16(11, 64, 6, h, inter);
        expertsBf16(10000, 64, 8, h, inter);
        expertsBf16(2000, 64, 8, 2304, 1024);
        // the prefill's experts grouped on the device (moe_prefill.cu): the bench's expert shape, two glue groups,
        // 256 experts (some without rows), group-limited routing
        deviceGrouped(2000, 64, 8, 2304, 1024, 1);
        deviceGrouped(10000, 64, 8, 128, 96, 1);
        deviceGrouped(300, 256, 8, 128, 64, 1);
        deviceGrouped(500, 64, 6, 128, 64, 8);
        // the MoE layer's order with the routing started before the shared expert (moeReadback=overlap)
        startedExperts(2000, 64, 8, 2304, 1024);
        startedExperts(300, 256, 8, 128, 64);
        // routing kept on the device, experts grouped: few rows per expert, many (> 8, two row groups), one row
        for (int[] c : new int[][] {{11, 64, 6}, {40, 8, 6}, {1, 64, 6}, {64, 64, 8}}) {
            grouped(c[0], c[1], c[2], h, inter);
        }
        // the bench model's expert shape (hidden 2304, intermediate 1024) at each token-group width of the tiled kernels
        for (int tt : new int[] {1, 2, 3, 6}) grouped(tt, 16, 4, 2304, 1024);
        // the bench's router (256 experts, top 8) in one warp-parallel block, both weight conventions, 70 rows
        grouped(70, 256, 8, 128, 64, RouterWeights.UNBIASED);
        grouped(3, 256, 8, 128, 64, RouterWeights.BIAS_CORRECTED);
        // ... and at batch 1, the decode step's shape (one warp routes; moe_route_group_v2 with fusedRoute=v2)
        grouped(1, 256, 8, 128, 64, RouterWeights.UNBIASED);
        grouped(1, 256, 8, 128, 64, RouterWeights.BIAS_CORRECTED);
        grouped(40, 256, 8, 128, 64, RouterWeights.BIAS_CORRECTED);
    }

    void prefillRoute(int t, int e, int k, RouterWeights rw) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, rw);
        Routing a = gpu.routePrefill(logits[1], bias[1], spec, "block"), b = gpu.routePrefill(logits[1], bias[1], spec, "rows");
        String what = "prefill routing, a warp a row, T=" + t + " E=" + e + " k=" + k + " " + rw;
        if (Arrays.equals(a.experts(), b.experts()) && Arrays.equals(a.weights(), b.weights())) cmp.pass(what + " = moe_route", "bit-identical");
        else cmp.fail(what + " = moe_route", "differs");
        if (t > 100) return; // the CPU's scores may break a near-tie otherwise at many rows (the route cases above compare few)
        Routing c = cpu.route(logits[0], bias[0], spec);
        if (!Arrays.equals(c.experts(), b.experts())) cmp.fail(what + " vs CPU", "experts differ");
        else cmp.check(what + " weights vs CPU", b.weights(), c.weights(), 1e-6);
    }

    /** Random bf16 experts [cpu, gpu] x e; those {@code elsewhere} selects are null (served by another process). */
    private ExpertWeights[][] experts(int e, int h, int inter, java.util.function.IntPredicate elsewhere) {
        ExpertWeights[][] ex = new ExpertWeights[2][e];
        for (int i = 0; i < e; i++) {
            if (elsewhere.test(i)) continue;
            Weight[] g = w(r.weight("w1", DType.BF16, 0, 0.1, inter, h)), u = w(r.weight("w3", DType.BF16, 0, 0.1, inter, h));
            Weight[] dn = w(r.weight("w2", DType.BF16, 0, 0.1, h, inter));
            ex[0][i] = new ExpertWeights(g[0], u[0], dn[0]);
            ex[1][i] = new ExpertWeights(g[1], u[1], dn[1]);
        }
        return ex;
    }

    /** Host routing, experts through the prefill path (batched gather / SwiGLU / ordered scatter over expert groups). */
    void hostRoutedExperts(int t, int e, int k, int h, int inter) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        Routing routing = cpu.route(logits[0], bias[0], new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.UNBIASED));
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 7 == 2);
        Tensor[] x = up(r.floats(t * h, 1), t, h), out = up(r.floats(t * h, 1), t, h);
        cpu.moeExperts(x[0], routing, ex[0], out[0]);
        gpu.moeExperts(x[1], routing, ex[1], out[1]);
        sameInMode("moeExperts T=" + t + " E=" + e + " k=" + k + " (two glue groups)", out);
    }

    /**
     * Host-routed experts in the bf16-compute mode (CudaBackend.moeExpertsBf16): the bf16 glue against the CPU backend
     * (bf16 tolerance), and against the earlier bf16 path (a conversion before each GEMM), which must give the same
     * bits when every expert has more than GEMV_MAX_ROWS rows (the same bf16 operands reach the same GEMMs).
     */
    void expertsBf16(int t, int e, int k, int h, int inter) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        Routing routing = cpu.route(logits[0], bias[0], new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.UNBIASED));
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 7 == 2);
        float[] start = r.floats(t * h, 1);
        Tensor[] x = up(r.floats(t * h, 1), t, h), out = up(start, t, h);
        Tensor earlier = gpu.upload(start, t, h), batched = gpu.upload(start, t, h);
        cpu.moeExperts(x[0], routing, ex[0], out[0]);
        gpu.moeExpertsBf16(x[1], routing, ex[1], out[1], "bf16");
        gpu.moeExpertsBf16(x[1], routing, ex[1], earlier, "convert");
        gpu.moeExpertsBf16(x[1], routing, ex[1], batched, "batched");
        String what = "moeExperts bf16 glue T=" + t + " E=" + e + " k=" + k + " H=" + h;
        float[] got = gpu.download(out[1]), ref = cpu.download(out[0]);
        cmp.check(what, got, ref, GEMM_BF16);
        cmp.check(what + " batched GEMMs", gpu.download(batched), ref, GEMM_BF16);
        cmp.check(what + " earlier path", gpu.download(earlier), ref, GEMM_BF16);
        int fewest = Integer.MAX_VALUE;
        int[] rows = new int[e];
        for (int row = 0; row < t; row++) for (int j = 0; j < k; j++) rows[routing.expert(row, j)]++;
        for (int i = 0; i < e; i++) if (ex[1][i] != null && rows[i] > 0) fewest = Math.min(fewest, rows[i]);
        if (fewest > 16) { // CudaBackend.GEMV_MAX_ROWS (kimimesh.cuda.gemvRows) at its default: fewer rows took the fp32 GEMV before
            if (Arrays.equals(got, gpu.download(earlier))) cmp.pass(what + " = earlier bf16 path", "bit-identical (experts of " + fewest + "+ rows)");
            else cmp.fail(what + " = earlier bf16 path", "differs");
        }
        gpu.release(earlier);
        gpu.release(batched);
    }

    /**
     * Routing and experts of a prefill in the bf16-compute mode, grouped on the device (CudaBackend.routeAndRunExpertsBf16
     * with deviceRouting): against the CPU backend (bf16 tolerance) and against the host grouping with the same glue,
     * which must give the same bits (same layout, same GEMMs, the combine adding in the scatter's order).
     */
    void deviceGrouped(int t, int e, int k, int h, int inter, int groups) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, groups, groups == 1 ? 1 : 3, true, 2.446f, RouterWeights.BIAS_CORRECTED);
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 7 == 2);
        float[] start = r.floats(t * h, 1);
        Tensor[] x = up(r.floats(t * h, 1), t, h), out = up(start, t, h);
        cpu.routeAndRunExperts(logits[0], bias[0], spec, x[0], ex[0], out[0]);
        float[] ref = cpu.download(out[0]);
        for (String[] v : new String[][] {{"bf16", "device"}, {"batched", "device"}, {"bf16", "device-per-group"}, {"batched", "device-bf16"},
                {"bf16", "device-bf16"}}) {
            String glue = v[0];
            Tensor host = gpu.upload(start, t, h), device = gpu.upload(start, t, h);
            gpu.routeAndRunExpertsBf16(logits[1], bias[1], spec, x[1], ex[1], host, glue, "host");
            gpu.routeAndRunExpertsBf16(logits[1], bias[1], spec, x[1], ex[1], device, glue, v[1]);
            String what = "experts grouped on the " + v[1] + " (" + glue + ") T=" + t + " E=" + e + " k=" + k + " H=" + h + " groups=" + groups;
            float[] got = gpu.download(device);
            cmp.check(what, got, ref, GEMM_BF16);
            // bf16 intermediates round twice more than the host path: the CPU comparison alone
            if (!v[1].equals("device-bf16")) {
                if (Arrays.equals(got, gpu.download(host))) cmp.pass(what + " = host grouping", "bit-identical");
                else cmp.fail(what + " = host grouping", "differs");
            }
            gpu.release(host);
            gpu.release(device);
        }
    }

    /**
     * The MoE layer's order through {@link CudaBackend#startRoutedExperts}: the routing started, a shared-expert-like
     * product written into out, then finish adding the routed sums. Against the CPU backend in the run's mode, and bit
     * for bit against the product followed by routeAndRunExperts (the stream-synchronised read-back); two starts in
     * flight at once too (their count buffers must not mix).
     */
    void startedExperts(int t, int e, int k, int h, int inter) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.BIAS_CORRECTED);
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 9 == 4);
        Tensor[] x = up(r.floats(t * h, 1), t, h), act = up(r.floats(t * inter, 1), t, inter);
        Weight[] down = w(r.weight("shared_down", DType.BF16, 0, 0.05, h, inter));
        Tensor[] out = {cpu.allocate(t, h), gpu.allocate(t, h)};
        Tensor sync = gpu.allocate(t, h), second = gpu.allocate(t, h);
        cpu.matmul(act[0], down[0], out[0]);
        cpu.routeAndRunExperts(logits[0], bias[0], spec, x[0], ex[0], out[0]);
        dev.kimimesh.engine.backend.Backend.RoutedExperts a = gpu.startRoutedExperts(logits[1], bias[1], spec, x[1], ex[1]);
        dev.kimimesh.engine.backend.Backend.RoutedExperts b = gpu.startRoutedExperts(logits[1], bias[1], spec, x[1], ex[1]);
        gpu.matmul(act[1], down[1], out[1]);
        gpu.matmul(act[1], down[1], second);
        a.finish(out[1]);
        b.finish(second);
        gpu.matmul(act[1], down[1], sync);
        gpu.routeAndRunExperts(logits[1], bias[1], spec, x[1], ex[1], sync);
        String what = "startRoutedExperts, a product between, finish T=" + t + " E=" + e + " k=" + k + " H=" + h;
        sameInMode(what, out);
        float[] got = gpu.download(out[1]);
        if (Arrays.equals(got, gpu.download(sync))) cmp.pass(what + " = routeAndRunExperts after the product", "bit-identical");
        else cmp.fail(what + " = routeAndRunExperts after the product", "differs");
        if (Arrays.equals(got, gpu.download(second))) cmp.pass(what + ", two in flight", "bit-identical");
        else cmp.fail(what + ", two in flight", "differs");
        gpu.release(sync);
        gpu.release(second);
    }

    void grouped(int t, int e, int k, int h, int inter) {
        grouped(t, e, k, h, inter, RouterWeights.UNBIASED);
    }

    void grouped(int t, int e, int k, int h, int inter, RouterWeights rw) {
        Tensor[] logits = up(r.floats(t * e, 2), t, e);
        Weight[] bias = w(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, rw);
        ExpertWeights[][] ex = experts(e, h, inter, i -> i % 5 == 3 && e > 8);
        Tensor[] x = up(r.floats(t * h, 1), t, h), out = up(r.floats(t * h, 1), t, h);
        cpu.routeAndRunExperts(logits[0], bias[0], spec, x[0], ex[0], out[0]);
        gpu.routeAndRunExperts(logits[1], bias[1], spec, x[1], ex[1], out[1]);
        same("routeAndRunExperts grouped on the device T=" + t + " E=" + e + " k=" + k + " " + rw, out);
    }
}
