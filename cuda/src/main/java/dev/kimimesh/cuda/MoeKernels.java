package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.config.RouterWeights;

/**
 * Routed experts on the device: the routing (on the host) is grouped by expert into one packed upload of row indices
 * and weights; per expert the rows are gathered, run through its SwiGLU FFN (GEMV kernel for few rows, cuBLAS for
 * many) and added back weighted. Experts run in index order on one stream, so the sum order is fixed.
 */
final class MoeKernels {
    /** Rows up to which routed experts run grouped on the device (one launch per stage for all experts). */
    static final int GROUPED_MAX_ROWS = Integer.getInteger("kimimesh.cuda.groupedMoeRows", 128);
    /**
     * {@code -Dkimimesh.cuda.fusedRoute}: {@code v2} (default: moe_route_group_v2, every global read issued at the start,
     * one 64-bit warp max a top-k round, a block of max(256, 32 T) threads; the default since its device check of
     * 2026-12-06), {@code v1} (moe_route_group) or {@code false} (moe_route then moe_group, two launches with serial
     * scans); the same routing each way.
     */
    private static final String ROUTE = routeMode(System.getProperty("kimimesh.cuda.fusedRoute", "v2"));
    private static final boolean FUSED_ROUTE = !ROUTE.equals("false");
    static final boolean ROUTE_V2 = ROUTE.equals("v2");

    private static String routeMode(String m) {
        if (m.equals("v2") || m.equals("v1") || m.equals("false")) return m;
        throw new IllegalArgumentException("kimimesh.cuda.fusedRoute must be v2, v1 or false, not " + m);
    }

    private MoeKernels() {}

    /**
     * Routing and experts with the routing kept on the device, for few rows: route, group pairs by expert, gate/up +
     * SwiGLU for all experts in one launch, down in one launch, weighted sum per row. No host synchronisation, 5
     * launches. Returns false (nothing queued) when the shapes do not suit it; the caller then routes on the host.
     */
    static boolean routeAndRun(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, CudaTensor x,
                               ExpertWeights[] experts, CudaTensor out) {
        CudaDevice dev = be.dev;
        int t = logits.rows(), e = logits.cols(), k = spec.topK(), h = x.cols();
        if (t == 0 || t > GROUPED_MAX_ROWS || k > 64 || e != experts.length || e > 4096) return false;
        if (x.rows() != t || out.rows() != t || out.cols() != h || h % 8 != 0 || x.ptr() % 16 != 0) return false;
        ExpertTable table = be.expertTable(experts);
        if (table == null || table.inter() % 8 != 0 || table.hidden() != h) return false;
        int p = t * k, inter = table.inter();
        DeviceBuffer route = dev.scratch(8L * p);
        long de = route.ptr, dw = route.ptr + 4L * p;
        DeviceBuffer meta = dev.scratch(4L * (1 + p + (p + 1) + p + p + 1));
        long info = meta.ptr, active = info + 4, start = active + 4L * p, pairRow = start + 4L * (p + 1), posOf = pairRow + 4L * p;
        if (FUSED_ROUTE && !spec.softmax() && spec.numExpertGroup() <= 1 && e <= 256 && k <= 32 && k <= e) {
            // routing and grouping in one warp-parallel block (the serial scans of the two kernels were 20 us a layer)
            dev.moe.launch(ROUTE_V2 ? "moe_route_group_v2" : "moe_route_group", 1, 1, 1,
                    ROUTE_V2 ? Math.max(256, 32 * Math.min(t, 32)) : 1024, 4 * p, dev.stream, logits.ptr(),
                    bias == null ? 0L : be.floats(CudaWeight.cast(bias)), t, e, k, spec.renormalize() ? 1 : 0,
                    spec.weights() == RouterWeights.BIAS_CORRECTED ? 1 : 0, spec.routedScalingFactor(), de, dw,
                    table.ptr(), info, active, start, pairRow, posOf);
        } else {
            be.routeOnDevice(logits, bias, spec, de, dw);
            dev.moe.launch("moe_group", 1, 1, 1, 256, 8 * e, dev.stream, de, p, k, e, table.ptr(), info, active, start, pairRow, posOf);
        }
        DeviceBuffer act = dev.scratch(4L * p * inter), down = dev.scratch(4L * p * h);
        // an expert has at most t pairs: tb, the tokens the tiled kernels take per pass, need not exceed it
        int tb = t == 1 ? 1 : t == 2 ? 2 : t <= 4 ? 4 : 8;
        dev.moe.launch("moe_gate_up_n1u4t" + tb, (inter + 7) / 8, p, 1, 256, 0, dev.stream, x.ptr(), table.ptr(), info, active, start,
                pairRow, act.ptr, h, inter);
        if (t == 1 && DecodeFusions.DOWN_COMBINE) {
            // one row: the down projection and the weighted sum in one launch (decode_fused.cu), the same values
            dev.decodeFused.launch(DecodeFusions.downCombineKernel(), DecodeFusions.downCombineBlocks(h), 1, 1, 256, 0, dev.stream, act.ptr,
                    table.ptr(), info, active, start, posOf, de, dw, out.ptr(), k, h, inter);
        } else {
            dev.moe.launch("moe_down_n4u2t" + tb, (h + 31) / 32, p, 1, 256, 0, dev.stream, act.ptr, table.ptr(), info, active, start,
                    down.ptr, h, inter);
            dev.moe.launch("moe_combine", t, (h + 255) / 256, 1, 256, 0, dev.stream, down.ptr, posOf, de, dw, out.ptr(), k, h);
        }
        dev.free(route);
        dev.free(meta);
        dev.free(act);
        dev.free(down);
        return true;
    }

    /** A layer's expert weight pointers on the device ({gate, up, down} per expert, 0 where served elsewhere). */
    record ExpertTable(long ptr, int hidden, int inter) {
        /** The table for experts whose weights are all bf16 of one shape, else null (the per-expert path serves them). */
        static ExpertTable build(ExpertWeights[] experts, java.util.List<Long> owned, java.lang.foreign.MemorySegment stream) {
            long[] p = new long[3 * experts.length];
            int hidden = -1, inter = -1;
            for (int i = 0; i < experts.length; i++) {
                ExpertWeights w = experts[i];
                if (w == null) continue;
                CudaWeight g = CudaWeight.cast(w.gate()), u = CudaWeight.cast(w.up()), d = CudaWeight.cast(w.down());
                if (g.dtype() != DType.BF16 || u.dtype() != DType.BF16 || d.dtype() != DType.BF16) return null;
                if (hidden < 0) {
                    hidden = g.cols();
                    inter = g.rows();
                }
                if (g.rows() != inter || g.cols() != hidden || u.rows() != inter || u.cols() != hidden || d.rows() != hidden
                        || d.cols() != inter) return null;
                if (g.ptr() % 16 != 0 || u.ptr() % 16 != 0 || d.ptr() % 16 != 0) return null;
                p[3 * i] = g.ptr();
                p[3 * i + 1] = u.ptr();
                p[3 * i + 2] = d.ptr();
            }
            if (hidden <= 0 || inter <= 0) return null;
            long ptr = Driver.memAlloc(8L * p.length);
            owned.add(ptr);
            try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                java.lang.foreign.MemorySegment s = a.allocate(8L * p.length, 16);
                java.lang.foreign.MemorySegment.copy(p, 0, s, java.lang.foreign.ValueLayout.JAVA_LONG, 0, p.length);
                Driver.copyHtoD(ptr, s, 8L * p.length, stream); // pageable: staged before the call returns
            }
            return new ExpertTable(ptr, hidden, inter);
        }
    }

    /**
     * How the batched glue feeds the expert GEMMs of the bf16-compute mode. CONVERT: fp32 gather and SwiGLU, a
     * conversion before each GEMM (the earlier path). BF16: the gather and SwiGLU write bf16 operands, one GEMM per
     * expert. BATCHED: as BF16, with the experts padded into buckets of close row counts ({@link ExpertBuckets}), one
     * pointer-array batched GEMM per bucket and projection.
     */
    enum Glue { CONVERT, BF16, BATCHED }

    /**
     * {@code -Dkimimesh.cuda.expertGemm}: {@code batched} (one batched GEMM per bucket of experts of close row counts;
     * the default since the H100 check of 2026-12-06 with the routing grouped on the device: 32k prefill 0.149 ->
     * 0.142 s) or {@code each} (one GEMM per expert); the bf16-compute mode with bf16Operands only.
     */
    static final boolean BATCHED_EXPERT_GEMM = expertGemm(System.getProperty("kimimesh.cuda.expertGemm", "batched"));

    private static boolean expertGemm(String m) {
        if (m.equals("each") || m.equals("batched")) return m.equals("batched");
        throw new IllegalArgumentException("kimimesh.cuda.expertGemm must be each or batched, not " + m);
    }

    /** Host-routed experts, their GEMMs in the backend's mode; {@code glue} applies where {@link #bf16Glue} allows it. */
    static void experts(CudaBackend be, CudaTensor x, Routing routing, ExpertWeights[] experts, CudaTensor out, Glue glue) {
        experts(be, x, routing, experts, out, null, glue);
    }

    /** {@link #experts} with the bf16-compute GEMMs whatever the backend's mode (kernel checks). */
    static void expertsBf16(CudaBackend be, CudaTensor x, Routing routing, ExpertWeights[] experts, CudaTensor out, Glue glue) {
        experts(be, x, routing, experts, out, Gemm.Mode.BF16, glue);
    }

    /** x W^T for the expert GEMMs: through {@link CudaBackend#matmul} (mode null) or in the given mode. */
    private static void linear(CudaBackend be, CudaTensor x, Weight w, CudaTensor out, Gemm.Mode mode) {
        if (mode == null) be.matmul(x, w, out);
        else if (x.rows() > 0) Gemm.linear(be, x, CudaWeight.cast(w), out, mode);
    }

    private static void experts(CudaBackend be, CudaTensor x, Routing routing, ExpertWeights[] experts, CudaTensor out,
                                Gemm.Mode mode, Glue glue) {
        CudaDevice dev = be.dev;
        int h = x.cols();
        if (out.rows() != x.rows() || out.cols() != h) throw new IllegalArgumentException("moeExperts: out " + out + " for " + x);
        if (routing.rows() != x.rows()) throw new IllegalArgumentException("moeExperts: routing of " + routing.rows() + " rows for " + x);
        int e = experts.length, k = routing.topK();
        int[] count = new int[e];
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < k; j++) {
                int ex = routing.expert(r, j);
                if (ex >= 0 && ex < e && experts[ex] != null) count[ex]++;
            }
        }
        int[] offset = new int[e + 1];
        for (int i = 0; i < e; i++) offset[i + 1] = offset[i] + count[i];
        int pairs = offset[e];
        if (pairs == 0) return;
        int[] rows = new int[pairs];
        float[] weights = new float[pairs];
        int[] fill = offset.clone();
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < k; j++) {
                int ex = routing.expert(r, j);
                if (ex < 0 || ex >= e || experts[ex] == null) continue;
                rows[fill[ex]] = r;
                weights[fill[ex]++] = routing.weight(r, j);
            }
        }
        DeviceBuffer dRows = dev.ints(rows), dW = dev.floats(weights);
        if (BATCHED_GLUE && uniformInter(experts) > 0) {
            int inter = uniformInter(experts);
            if (glue != Glue.CONVERT && !bf16Glue(x, experts, inter)) glue = Glue.CONVERT;
            batchedGlue(be, x, rows, weights, dRows, dW, count, offset, experts, inter, k, out, mode, glue);
            dev.free(dRows);
            dev.free(dW);
            return;
        }
        for (int ex = 0; ex < e; ex++) {
            int n = count[ex];
            if (n == 0) continue;
            ExpertWeights w = experts[ex];
            int inter = w.gate().rows();
            CudaTensor xe = be.uninitialised(n, h), gate = be.uninitialised(n, inter), up = be.uninitialised(n, inter);
            CudaTensor down = be.uninitialised(n, h);
            long rp = dRows.ptr + 4L * offset[ex], wp = dW.ptr + 4L * offset[ex];
            dev.elementwise.launch("gather_rows", n, 1, 1, 256, 0, dev.stream, x.ptr(), rp, xe.ptr(), h);
            linear(be, xe, w.gate(), gate, mode);
            linear(be, xe, w.up(), up, mode);
            be.swiglu(gate, up, gate);
            linear(be, gate, w.down(), down, mode);
            dev.elementwise.launch("scatter_add_rows", n, 1, 1, 256, 0, dev.stream, down.ptr(), rp, wp, out.ptr(), h);
            be.release(xe);
            be.release(gate);
            be.release(up);
            be.release(down);
        }
        dev.free(dRows);
        dev.free(dW);
    }

    /**
     * {@code -Dkimimesh.cuda.moeGlue}: {@code batched} (default: one gather, one SwiGLU and one ordered scatter for a
     * group of experts) or {@code per-expert} (three launches per expert, the earlier path, kept for comparison).
     */
    private static final boolean BATCHED_GLUE = glueMode(System.getProperty("kimimesh.cuda.moeGlue", "batched"));

    /** Routed (row, expert) pairs whose gathered rows one batched-glue group holds (65,536 x 2304 floats = 604 MB). */
    static final int GLUE_PAIRS = 1 << 16;

    private static boolean glueMode(String m) {
        if (m.equals("batched")) return true;
        if (m.equals("per-expert")) return false;
        throw new IllegalArgumentException("kimimesh.cuda.moeGlue must be batched or per-expert, not " + m);
    }

    /** The intermediate size shared by every present expert, or -1 when they differ (the per-expert path takes those). */
    static int uniformInter(ExpertWeights[] experts) {
        int inter = -1;
        for (ExpertWeights w : experts) {
            if (w == null) continue;
            if (inter < 0) inter = w.gate().rows();
            else if (w.gate().rows() != inter) return -1;
        }
        return inter;
    }

    /**
     * Whether the bf16 glue serves these experts: every present expert's weights bf16 of the shared shape, widths in
     * groups of 4 and x 16-byte aligned (moe_gather_bf16 and moe_swiglu_bf16 move 4 values a thread).
     */
    static boolean bf16Glue(CudaTensor x, ExpertWeights[] experts, int inter) {
        int h = x.cols();
        if (h % 4 != 0 || inter % 4 != 0 || x.ptr() % 16 != 0) return false;
        for (ExpertWeights w : experts) {
            if (w == null) continue;
            for (Weight one : new Weight[] {w.gate(), w.up(), w.down()}) if (CudaWeight.cast(one).dtype() != DType.BF16) return false;
            if (w.gate().cols() != h || w.up().rows() != inter || w.up().cols() != h || w.down().rows() != h || w.down().cols() != inter) {
                return false;
            }
        }
        return true;
    }

    /**
     * One glue group's expert FFNs in the bf16-compute mode with bf16 operands from the glue: moe_gather_bf16 writes the
     * group's rows in bf16, each expert's gate / up GEMM reads its slice, moe_swiglu_bf16 writes the activations in
     * bf16 for the down GEMMs. Replaces per expert three f32_to_bf16 passes (and the fp32 gather and SwiGLU writes);
     * the same bf16 values as those passes produced. An expert of at most {@link CudaBackend#GEMV_MAX_ROWS} rows goes
     * through the bf16 GEMM too here (the fp32 path gave it the GEMV kernel on fp32 rows).
     */
    static void groupBf16(CudaBackend be, CudaTensor x, long rowsPtr, int n, int e0, int e1, int[] count, int[] offset,
                                  int p0, ExpertWeights[] experts, int inter, CudaTensor gate, CudaTensor up, CudaTensor down,
                                  ExpertBuckets buckets) {
        groupBf16(be, x, rowsPtr, n, e0, e1, count, offset, p0, experts, inter, gate.ptr(), up.ptr(), down.ptr(), Cublas.R_32F,
                buckets);
    }

    /**
     * {@link #groupBf16} with gate, up and down at raw pointers of element type {@code midType}: R_32F (the fp32 sums,
     * as above) or R_16BF (the GEMMs round their sums to bf16; {@link PrefillExperts}' opt-in bf16 intermediates).
     */
    static void groupBf16(CudaBackend be, CudaTensor x, long rowsPtr, int n, int e0, int e1, int[] count, int[] offset,
                          int p0, ExpertWeights[] experts, int inter, long gate, long up, long down, int midType,
                          ExpertBuckets buckets) {
        CudaDevice dev = be.dev;
        int h = x.cols();
        int es = midType == Cublas.R_16BF ? 2 : 4;
        if ((gate | up) % 16 != 0) throw new IllegalStateException("moe bf16 glue: pool block not 16-byte aligned");
        DeviceBuffer xb = dev.scratch(2L * n * h), ab = dev.scratch(2L * n * inter);
        long copy = Bf16Copies.of(x);
        // x's bf16 values from its producer (Bf16Copies): a copy of bf16 rows, half the bytes read of the conversion
        if (copy != 0) dev.elementwise.launch("gather_rows_bf16", n, 1, 1, 256, 0, dev.stream, copy, rowsPtr, xb.ptr, h);
        else dev.moe.launch("moe_gather_bf16", n, 1, 1, 256, 0, dev.stream, x.ptr(), rowsPtr, xb.ptr, h);
        if (buckets != null) {
            bucketGemms(dev, buckets, e0, experts, h, inter, xb.ptr, ab.ptr, gate, up, down, midType);
            dev.free(xb);
            dev.free(ab);
            return;
        }
        for (int ex = e0; ex < e1; ex++) {
            if (count[ex] == 0) continue;
            int at = offset[ex] - p0;
            Gemm.linearBf16(dev, xb.ptr + 2L * at * h, count[ex], h, CudaWeight.cast(experts[ex].gate()), gate + (long) es * at * inter, midType);
            Gemm.linearBf16(dev, xb.ptr + 2L * at * h, count[ex], h, CudaWeight.cast(experts[ex].up()), up + (long) es * at * inter, midType);
        }
        swiglu(dev, gate, up, ab.ptr, (long) n * inter, midType);
        for (int ex = e0; ex < e1; ex++) {
            if (count[ex] == 0) continue;
            int at = offset[ex] - p0;
            Gemm.linearBf16(dev, ab.ptr + 2L * at * inter, count[ex], inter, CudaWeight.cast(experts[ex].down()), down + (long) es * at * h,
                    midType);
        }
        dev.free(xb);
        dev.free(ab);
    }

    /**
     * The GEMMs of {@link #groupBf16} over a padded layout: per bucket of b experts, gate and up as one
     * cublasGemmBatchedEx of 2b problems (x rows from xb), then, after the SwiGLU, down as one of b problems (activation
     * rows from ab). All pointer arrays go up in one copy; per bucket: A, B, C of gate and up (2b pointers each, the
     * gate problems first), then A, B, C of down (b each).
     */
    private static void bucketGemms(CudaDevice dev, ExpertBuckets bk, int e0, ExpertWeights[] experts, int h, int inter, long xb,
                                    long ab, long gate, long up, long down, int midType) {
        long es = midType == Cublas.R_16BF ? 2 : 4;
        int total = 0;
        for (int[] b : bk.buckets()) total += 9 * b.length;
        long[] p = new long[total];
        int at = 0;
        for (int[] b : bk.buckets()) {
            int nb = b.length;
            for (int i = 0; i < nb; i++) {
                int ex = b[i];
                long s = bk.start()[ex - e0];
                p[at + i] = xb + 2L * s * h;
                p[at + nb + i] = xb + 2L * s * h;
                p[at + 2 * nb + i] = CudaWeight.cast(experts[ex].gate()).ptr();
                p[at + 3 * nb + i] = CudaWeight.cast(experts[ex].up()).ptr();
                p[at + 4 * nb + i] = gate + es * s * inter;
                p[at + 5 * nb + i] = up + es * s * inter;
                p[at + 6 * nb + i] = ab + 2L * s * inter;
                p[at + 7 * nb + i] = CudaWeight.cast(experts[ex].down()).ptr();
                p[at + 8 * nb + i] = down + es * s * h;
            }
            at += 9 * nb;
        }
        DeviceBuffer ptrs = dev.table(p);
        int bf = Cublas.R_16BF;
        at = 0;
        for (int[] b : bk.buckets()) {
            int nb = b.length, m = bk.padded()[b[0] - e0];
            long q = ptrs.ptr + 8L * at;
            dev.cublas.gemmRowMajorPointers(m, inter, h, q, bf, h, q + 16L * nb, bf, h, true, q + 32L * nb, midType, inter, 2 * nb);
            at += 9 * nb;
        }
        swiglu(dev, gate, up, ab, (long) bk.rows() * inter, midType);
        at = 0;
        for (int[] b : bk.buckets()) {
            int nb = b.length, m = bk.padded()[b[0] - e0];
            long q = ptrs.ptr + 8L * at;
            dev.cublas.gemmRowMajorPointers(m, h, inter, q + 48L * nb, bf, inter, q + 56L * nb, bf, inter, true, q + 64L * nb, midType, h, nb);
            at += 9 * nb;
        }
        dev.free(ptrs);
    }

    /** act = bf16(silu(gate) * up) over cnt values of gate and up of type midType (fp32, or bf16 from the GEMMs). */
    private static void swiglu(CudaDevice dev, long gate, long up, long act, long cnt, int midType) {
        if (midType == Cublas.R_16BF) {
            dev.moePrefill.launch("moe_swiglu_bf16in", CudaDevice.blocks(cnt / 4), 1, 1, 256, 0, dev.stream, gate, up, act, cnt);
        } else {
            dev.moe.launch("moe_swiglu_bf16", CudaDevice.blocks(cnt / 4), 1, 1, 256, 0, dev.stream, gate, up, act, cnt);
        }
    }

    /**
     * The per-expert loop with its glue batched over groups of consecutive experts (at most {@link #GLUE_PAIRS} pairs
     * each, so the buffers stay bounded): one gather of the group's rows, each expert's gate / up / down GEMMs on its
     * slice, one SwiGLU, and one scatter that adds each row's contributions in ascending expert order - the order of
     * one scatter_add_rows launch per expert, so the result is the same. 768 glue launches of a 32k prefill become 12.
     * {@code glue} says how the GEMMs get their operands ({@link Glue}); BATCHED lays the group out padded
     * ({@link ExpertBuckets}), and the scatter then names padded rows and reads the pair weights in that layout.
     */
    private static void batchedGlue(CudaBackend be, CudaTensor x, int[] rows, float[] weights, DeviceBuffer dRows, DeviceBuffer dW,
                                    int[] count, int[] offset, ExpertWeights[] experts, int inter, int k, CudaTensor out,
                                    Gemm.Mode mode, Glue glue) {
        boolean bf16 = glue != Glue.CONVERT;
        CudaDevice dev = be.dev;
        int e = experts.length, h = x.cols();
        int[] listed = new int[x.rows()]; // pairs listed so far per row within the group
        for (int e0 = 0; e0 < e; ) {
            int e1 = e0;
            long np = 0;
            while (e1 < e && (e1 == e0 || np + count[e1] <= GLUE_PAIRS)) np += count[e1++];
            int p0 = offset[e0], n = offset[e1] - p0;
            if (n > 0) {
                ExpertBuckets bk = glue == Glue.BATCHED ? ExpertBuckets.of(count, offset, e0, e1) : null;
                // the padded layout: its own gather rows and pair weights (0 on padding rows, which no table entry names)
                int nr = bk == null ? n : bk.rows();
                DeviceBuffer padRows = null, padW = null;
                if (bk != null) {
                    float[] pw = new float[nr];
                    for (int i = 0; i < n; i++) pw[bk.pos()[i]] = weights[p0 + i];
                    padRows = dev.ints(bk.gatherRows(rows, count, offset, e0, e1));
                    padW = dev.floats(pw);
                }
                CudaTensor xg = bf16 ? null : be.uninitialised(n, h), gate = be.uninitialised(nr, inter), up = be.uninitialised(nr, inter);
                CudaTensor down = be.uninitialised(nr, h);
                if (bf16) {
                    groupBf16(be, x, bk == null ? dRows.ptr + 4L * p0 : padRows.ptr, nr, e0, e1, count, offset, p0, experts, inter, gate,
                            up, down, bk);
                } else {
                    dev.elementwise.launch("gather_rows", n, 1, 1, 256, 0, dev.stream, x.ptr(), dRows.ptr + 4L * p0, xg.ptr(), h);
                    for (int ex = e0; ex < e1; ex++) {
                        if (count[ex] == 0) continue;
                        int at = offset[ex] - p0;
                        linear(be, xg.rowSlice(at, count[ex]), experts[ex].gate(), gate.rowSlice(at, count[ex]), mode);
                        linear(be, xg.rowSlice(at, count[ex]), experts[ex].up(), up.rowSlice(at, count[ex]), mode);
                    }
                    be.swiglu(gate, up, gate);
                    for (int ex = e0; ex < e1; ex++) {
                        if (count[ex] == 0) continue;
                        int at = offset[ex] - p0;
                        linear(be, gate.rowSlice(at, count[ex]), experts[ex].down(), down.rowSlice(at, count[ex]), mode);
                    }
                }
                // per touched row, its pairs in ascending expert order (pairs are grouped by expert), -1 past the last
                java.util.Arrays.fill(listed, 0);
                int touched = 0;
                int[] order = new int[n];
                for (int i = 0; i < n; i++) if (listed[rows[p0 + i]]++ == 0) order[touched++] = rows[p0 + i];
                int[] slot = new int[x.rows()];
                int[] table = new int[touched * (k + 1)];
                java.util.Arrays.fill(table, -1);
                for (int i = 0; i < touched; i++) {
                    slot[order[i]] = i;
                    table[i * (k + 1)] = order[i];
                }
                java.util.Arrays.fill(listed, 0);
                for (int i = 0; i < n; i++) {
                    int r = rows[p0 + i];
                    table[slot[r] * (k + 1) + 1 + listed[r]++] = bk == null ? i : bk.pos()[i];
                }
                DeviceBuffer dt = dev.ints(table);
                dev.elementwise.launch("scatter_add_pairs", touched, 1, 1, 256, 0, dev.stream, down.ptr(), dt.ptr,
                        bk == null ? dW.ptr + 4L * p0 : padW.ptr, out.ptr(), k, h);
                dev.free(dt);
                if (bk != null) {
                    dev.free(padRows);
                    dev.free(padW);
                }
                for (CudaTensor t : new CudaTensor[] {xg, gate, up, down}) if (t != null) be.release(t);
            }
            e0 = e1;
        }
    }
}
