package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;

/**
 * The bf16-compute mode's linear outputs in bf16 ({@code -Dkimimesh.cuda.activations=bf16}): projections whose only
 * consumer is a kernel of the same backend method are written by cuBLAS in bf16 (fp32 accumulation, the sums rounded
 * once, as the Hugging Face model's bf16 linear layers do) and read in bf16 by that consumer, instead of being written
 * and read in fp32:
 * <ul>
 *   <li>KDA's q, k and v projections ({@code Backend.kdaProjections}): read by {@code short_conv4_silu_bf16in}, which
 *   writes the fp32 q, k, v the chunk kernels read; the conv tails (recurrent state) stay fp32;</li>
 *   <li>the SwiGLU's gate and up projections ({@code Backend.swigluProjection}: the dense MLP, the shared expert):
 *   read by {@code swiglu_bf16in_f32_bf16}, which writes the activation in fp32 and its bf16 copy for the down
 *   projection ({@link Bf16Copies}). The router's logits, computed in the same call, stay fp32.</li>
 *   <li>KDA's f_b projection ({@code Backend.kdaGates}), read by {@code kda_gate_v4_bf16in}, which writes the fp32
 *   decay gate, and its g_b projection ({@code Backend.kdaOutputNorm}), read as the output gate by
 *   {@code rms_norm_v4_gbf16_bf16} (the normed output fp32 with its bf16 copy for o_proj);</li>
 *   <li>the dense MLP ({@code Backend.swigluMlp}): its gate / up as above, its activation written only in bf16 (the
 *   down projection, its only reader, takes the bf16 values), the down projection's output fp32.</li>
 * </ul>
 * The residual stream, the router's inputs and outputs, the norms' statistics and the KDA recurrence stay fp32. Only in
 * the bf16-compute mode and at more than {@link #MAX_DECODE_ROWS} rows (a prefill's; the q / k / v path also needs a
 * segment longer than 64 rows, as the prefill convolution does), so decode steps of up to 64 sequences compute what
 * they computed before (a larger step takes these paths, recorded or eager alike).
 */
final class Bf16Activations {
    private Bf16Activations() {}

    /** {@code -Dkimimesh.cuda.activations}: {@code fp32} (default) keeps every activation fp32; {@code bf16} as above. */
    static final boolean ON = flag(System.getProperty("kimimesh.cuda.activations", "fp32"));

    private static boolean flag(String v) {
        if (v.equals("bf16") || v.equals("fp32")) return v.equals("bf16");
        throw new IllegalArgumentException("kimimesh.cuda.activations must be bf16 or fp32, not " + v);
    }

    /** Rows up to which nothing changes: the bench's largest decode batch (and every decode fusion's rows). */
    static final int MAX_DECODE_ROWS = 64;

    /** Whether this process's mode and flag (or the kernel checks' override) put x's projections in bf16. */
    static boolean wanted(CudaBackend be, CudaTensor x) {
        boolean on = be.forceBf16Activations != null ? be.forceBf16Activations : ON && CudaBackend.gemmMode() == Gemm.Mode.BF16;
        return on && x.rows() > Math.max(MAX_DECODE_ROWS, CudaBackend.GEMV_MAX_ROWS) && x.cols() > 0;
    }

    /**
     * KDA's q / k / v projections in bf16 and their convolutions reading them; the other projections fp32. Returns false
     * (nothing done) where this path does not apply: the caller then runs the fp32 one.
     */
    static boolean kdaProjections(CudaBackend be, CudaTensor x, CudaWeight[] qkv, CudaWeight[] conv, Segments seg, Tensor[][] tails,
                                  CudaTensor[] qkvOut, CudaWeight[] also, CudaTensor[] alsoOut) {
        if (!wanted(be, x) || qkv.length != conv.length || qkv.length != tails.length || qkv.length != qkvOut.length) return false;
        CudaWeight[] all = concat(qkv, also);
        if (!Gemm.manyBf16(x, all)) return false;
        int t = x.rows(), n = seg.count();
        int maxLen = 0;
        for (int i = 0; i < n; i++) maxLen = Math.max(maxLen, seg.length(i));
        if (maxLen <= 64) return false; // decode-sized segments: the fused convolution of the fp32 path
        long[][] tp = new long[qkv.length][n];
        for (int j = 0; j < qkv.length; j++) {
            int p = qkv[j].rows();
            CudaTensor o = qkvOut[j];
            if (conv[j].rows() != p || conv[j].cols() != 4 || p % 4 != 0 || o.rows() != t || o.cols() != p || o.ptr() % 16 != 0) return false;
            if (tails[j].length != n) return false;
            for (int i = 0; i < n; i++) {
                CudaTensor tl = CudaTensor.cast(tails[j][i]);
                if (tl.rows() != 3 || tl.cols() != p || tl.ptr() % 16 != 0) return false;
                tp[j][i] = tl.ptr();
            }
        }
        for (int i = 0; i < also.length; i++) {
            if (alsoOut[i].rows() != t || alsoOut[i].cols() != also[i].rows()) {
                throw new IllegalArgumentException("kdaProjections: out " + alsoOut[i] + " for " + also[i] + " and x " + x);
            }
        }
        CudaDevice dev = be.dev;
        DeviceBuffer[] pre = new DeviceBuffer[qkv.length];
        long[] at = new long[all.length];
        int[] types = new int[all.length];
        for (int j = 0; j < qkv.length; j++) {
            pre[j] = dev.scratch(2L * t * qkv[j].rows());
            at[j] = pre[j].ptr;
            types[j] = Cublas.R_16BF;
        }
        for (int i = 0; i < also.length; i++) {
            at[qkv.length + i] = alsoOut[i].ptr();
            types[qkv.length + i] = Cublas.R_32F;
        }
        Gemm.linearManyBf16(be, x, all, at, types);
        int[] st = CudaBackend.starts(seg), ln = seg.lengths();
        for (int j = 0; j < qkv.length; j++) {
            int p = qkv[j].rows();
            DeviceBuffer tab = dev.table(tp[j], st, ln);
            long ds = tab.ptr + 8L * n, dl = ds + 4L * n;
            dev.conv.launch("short_conv4_silu_bf16in", (p / 4 + 255) / 256, n, (maxLen + 63) / 64, 256, 0, dev.stream, pre[j].ptr,
                    be.floats(conv[j]), tab.ptr, ds, dl, qkvOut[j].ptr(), p);
            // the tails after the convolution (its blocks all read the old ones)
            dev.conv.launch("short_conv_tail_bf16in", (p + 255) / 256, n, 1, 256, 0, dev.stream, pre[j].ptr, tab.ptr, ds, dl, p, 4);
            dev.free(tab);
        }
        for (DeviceBuffer b : pre) dev.free(b);
        return true;
    }

    /**
     * The SwiGLU's gate and up projections in bf16, the activation fp32 with its bf16 copy; the projections in also
     * (the router) fp32. Returns false (nothing done) where this path does not apply.
     */
    static boolean swigluProjection(CudaBackend be, CudaTensor x, CudaWeight gate, CudaWeight up, CudaTensor act, CudaWeight[] also,
                                    CudaTensor[] alsoOut) {
        if (!wanted(be, x) || !Bf16Copies.usable(act)) return false;
        CudaWeight[] all = concat(also, new CudaWeight[] {gate, up});
        if (!Gemm.manyBf16(x, all)) return false;
        CudaDevice dev = be.dev;
        long cnt = (long) x.rows() * gate.rows();
        DeviceBuffer g = dev.scratch(2 * cnt), u = dev.scratch(2 * cnt);
        long[] at = new long[all.length];
        int[] types = new int[all.length];
        for (int i = 0; i < also.length; i++) {
            at[i] = alsoOut[i].ptr();
            types[i] = Cublas.R_32F;
        }
        at[also.length] = g.ptr;
        at[also.length + 1] = u.ptr;
        types[also.length] = types[also.length + 1] = Cublas.R_16BF;
        Gemm.linearManyBf16(be, x, all, at, types);
        long ob = Bf16Copies.attach(dev, act);
        dev.elementwise.launch("swiglu_bf16in_f32_bf16", CudaDevice.blocks(cnt / 4), 1, 1, 256, 0, dev.stream, g.ptr, u.ptr, act.ptr(), ob,
                cnt);
        dev.free(g);
        dev.free(u);
        return true;
    }

    /**
     * The dense MLP with its activation only in bf16: gate and up projected in bf16, the SwiGLU writing bf16 alone (the
     * fp32 activation, which only the down projection read, is not written), the down projection from it into out
     * (fp32). Returns false (nothing done) where this path does not apply.
     */
    static boolean swigluMlp(CudaBackend be, CudaTensor x, CudaWeight gate, CudaWeight up, CudaWeight down, CudaTensor out) {
        int t = x.rows(), n = gate.rows();
        if (!wanted(be, x) || n % 4 != 0 || !Gemm.manyBf16(x, new CudaWeight[] {gate, up, down})) return false;
        CudaDevice dev = be.dev;
        long cnt = (long) t * n;
        DeviceBuffer g = dev.scratch(2 * cnt), u = dev.scratch(2 * cnt), act = dev.scratch(2 * cnt);
        Gemm.linearManyBf16(be, x, new CudaWeight[] {gate, up}, new long[] {g.ptr, u.ptr}, new int[] {Cublas.R_16BF, Cublas.R_16BF});
        dev.elementwise.launch("swiglu_bf16in_f32_bf16", CudaDevice.blocks(cnt / 4), 1, 1, 256, 0, dev.stream, g.ptr, u.ptr, 0L, act.ptr,
                cnt);
        dev.free(g);
        dev.free(u);
        Gemm.linearBf16(dev, act.ptr, t, n, down, out.ptr());
        dev.free(act);
        return true;
    }

    /**
     * KDA's decay gate from the f_b projection in bf16: {@code g = kdaGate(bf16(fLow fB^T))}, g fp32 (it feeds the
     * recurrence). Returns false (nothing done) where this path does not apply. The caller applies beta's sigmoid.
     */
    static boolean kdaGate(CudaBackend be, CudaTensor fLow, CudaWeight fB, long aLog, long dtBias, int headDim, CudaTensor g) {
        int t = fLow.rows(), n = fB.rows();
        if (!wanted(be, fLow) || t > 65535 || n % 4 != 0 || headDim % 4 != 0 || g.ptr() % 16 != 0 || !Gemm.manyBf16(fLow, new CudaWeight[] {fB})) {
            return false;
        }
        CudaDevice dev = be.dev;
        DeviceBuffer f = dev.scratch(2L * t * n);
        Gemm.linearManyBf16(be, fLow, new CudaWeight[] {fB}, new long[] {f.ptr}, new int[] {Cublas.R_16BF});
        dev.elementwise.launch("kda_gate_v4_bf16in", (n / 4 + 255) / 256, t, 1, 256, 0, dev.stream, f.ptr, aLog, dtBias, g.ptr(), n, headDim);
        dev.free(f);
        return true;
    }

    /**
     * KDA's output gate from the g_b projection in bf16: {@code out = rmsNorm(o) * sigmoid(bf16(gLow gB^T))} per head,
     * written in fp32 with its bf16 copy (o_proj's operand, {@link Bf16Copies}). Returns false (nothing done) where this
     * path does not apply.
     */
    static boolean kdaOutputNorm(CudaBackend be, CudaTensor o, CudaWeight norm, float eps, CudaTensor gLow, CudaWeight gB, CudaTensor out) {
        int t = o.rows(), cols = o.cols(), group = norm.rows() * norm.cols();
        if (!wanted(be, gLow) || group == 0 || group % 4 != 0 || group > 16384 || cols % group != 0 || !Bf16Copies.usable(out)
                || !Gemm.manyBf16(gLow, new CudaWeight[] {gB})) {
            return false;
        }
        long wp = be.floats(norm);
        if ((o.ptr() | out.ptr() | wp) % 16 != 0) return false;
        CudaDevice dev = be.dev;
        DeviceBuffer gate = dev.scratch(2L * t * cols);
        Gemm.linearManyBf16(be, gLow, new CudaWeight[] {gB}, new long[] {gate.ptr}, new int[] {Cublas.R_16BF});
        long ob = Bf16Copies.attach(dev, out);
        int block = Math.min(1024, Math.max(32, (group / 4 + 31) / 32 * 32));
        dev.norms.launch("rms_norm_v4_gbf16_bf16", t, cols / group, 1, block, 0, dev.stream, o.ptr(), wp, gate.ptr, out.ptr(), ob, cols, group,
                eps);
        dev.free(gate);
        return true;
    }

    private static CudaWeight[] concat(CudaWeight[] a, CudaWeight[] b) {
        CudaWeight[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
