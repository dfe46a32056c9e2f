package dev.kimimesh.cuda;

import dev.kimimesh.engine.checkpoint.DType;

/** {@code out = x W^T} on the device: the GEMV kernels for few rows (tiled, {@link GemvTiles}), cuBLAS (fp32 accumulation) for many. */
final class Gemm {
    private Gemm() {}

    /**
     * How a bf16 weight multiplies many fp32 rows. SPLIT (default): x = hi + mid + lo in bf16 terms, bf16 tensor-core
     * GEMM with fp32 accumulation, fp32-level accuracy. FP32: the weight widened to fp32, IEEE fp32 SIMT GEMM (the
     * reference, 51 TFLOP/s). BF16: x rounded to bf16 once, the "bf16 compute" mode (about 1e-3 relative error).
     */
    enum Mode { SPLIT, FP32, BF16 }

    static Mode mode(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "split", "bf16x3" -> Mode.SPLIT;
            case "fp32" -> Mode.FP32;
            case "bf16" -> Mode.BF16;
            default -> throw new IllegalArgumentException("kimimesh.cuda.gemm must be split, fp32 or bf16, not " + name);
        };
    }

    /** Most matrices one gemv_multi launch takes (the kernel's GEMV_MULTI_MAX). */
    static final int MULTI_MAX = 8;

    /** Whether the tiled GEMV serves x W^T (bf16 weight, few rows, K in 16-byte chunks, 16-byte aligned operands). */
    static boolean tiled(CudaTensor x, CudaWeight w) {
        return w.dtype() == DType.BF16 && x.rows() <= CudaBackend.GEMV_MAX_ROWS && x.cols() % 8 == 0 && x.ptr() % 16 == 0
                && w.ptr() % 16 == 0;
    }

    /**
     * Several projections of one x by the tiled GEMV: the matrices that get the same tiling run as one gemv_multi
     * launch (up to 8 each). The tiling alone fixes each output's summation order, so every result is bit-identical
     * to its own {@link #linear} call. Callers check that every weight is {@link #tiled} with x.
     */
    static void linearMany(CudaBackend be, CudaTensor x, CudaWeight[] w, CudaTensor[] out) {
        CudaDevice dev = be.dev;
        int t = x.rows(), k = x.cols();
        java.util.Map<GemvTiles, java.util.List<Integer>> groups = new java.util.LinkedHashMap<>();
        for (int i = 0; i < w.length; i++) groups.computeIfAbsent(GemvTiles.pick(t, w[i].rows(), k), g -> new java.util.ArrayList<>()).add(i);
        for (var e : groups.entrySet()) {
            GemvTiles g = e.getKey();
            java.util.List<Integer> all = e.getValue();
            for (int from = 0; from < all.size(); from += MULTI_MAX) {
                java.util.List<Integer> part = all.subList(from, Math.min(all.size(), from + MULTI_MAX));
                Object[] args = new Object[4 + 3 * MULTI_MAX];
                args[0] = x.ptr();
                args[1] = t;
                args[2] = k;
                args[3] = part.size();
                int blocks = 0;
                for (int j = 0; j < MULTI_MAX; j++) {
                    boolean on = j < part.size();
                    int i = on ? part.get(j) : -1;
                    args[4 + j] = on ? w[i].ptr() : 0L;
                    args[4 + MULTI_MAX + j] = on ? out[i].ptr() : 0L;
                    args[4 + 2 * MULTI_MAX + j] = on ? w[i].rows() : 0;
                    if (on) blocks += g.blocks(w[i].rows());
                }
                dev.gemv.launch(g.multiKernel(), blocks, 1, 1, 256, 0, dev.stream, args);
            }
        }
    }

    /**
     * {@code -Dkimimesh.cuda.bf16Operands}: {@code true} (default) lets the bf16-compute prefill hand its GEMMs bf16
     * operands made once by their producer (one conversion of x for several projections, the experts' gather and SwiGLU
     * writing bf16); {@code false} converts before every GEMM, the earlier path, kept for timing. The same bf16 values
     * reach the same GEMMs either way.
     */
    static final boolean BF16_OPERANDS = bf16Operands(System.getProperty("kimimesh.cuda.bf16Operands", "true"));

    private static boolean bf16Operands(String v) {
        if (v.equals("true") || v.equals("false")) return Boolean.parseBoolean(v);
        throw new IllegalArgumentException("kimimesh.cuda.bf16Operands must be true or false, not " + v);
    }

    /** Whether {@link #linearManyBf16} serves these projections of x: many rows, every weight bf16 (else the GEMV or fp32 paths). */
    static boolean manyBf16(CudaTensor x, CudaWeight[] w) {
        if (x.rows() <= CudaBackend.GEMV_MAX_ROWS || x.cols() == 0) return false;
        for (CudaWeight wi : w) if (wi.dtype() != DType.BF16) return false;
        return true;
    }

    /** {@code out = xb W^T} for an x already in bf16 ([t, k] rows at xb): the bf16-compute GEMM without its conversion. */
    static void linearBf16(CudaDevice dev, long xb, int t, int k, CudaWeight w, long out) {
        linearBf16(dev, xb, t, k, w, out, Cublas.R_32F);
    }

    /** {@link #linearBf16} with the output of type {@code outType} (R_16BF: the fp32 sums rounded to bf16 once). */
    static void linearBf16(CudaDevice dev, long xb, int t, int k, CudaWeight w, long out, int outType) {
        if (w.dtype() != DType.BF16 || w.cols() != k) throw new IllegalArgumentException("linearBf16: " + w + " for " + t + "x" + k + " bf16 rows");
        if (t == 0 || w.rows() == 0) return;
        if (outType == Cublas.R_32F) dev.cublas.gemmRowMajor(t, w.rows(), k, xb, Cublas.R_16BF, k, w.ptr(), Cublas.R_16BF, k, true, out, w.rows(), false);
        else dev.cublas.gemmRowMajorTo(t, w.rows(), k, xb, Cublas.R_16BF, k, w.ptr(), Cublas.R_16BF, k, true, out, outType, w.rows());
    }

    /**
     * Several projections of one many-row x in the bf16-compute mode ({@link #manyBf16}): x rounded to bf16 once, then
     * one GEMM per weight; the same values as one {@link #linear} call each, which converted x every time (a KDA layer
     * projects its input six times: five [T, 2304] passes saved).
     */
    static void linearManyBf16(CudaBackend be, CudaTensor x, CudaWeight[] w, CudaTensor[] out) {
        long[] at = new long[w.length];
        int[] types = new int[w.length];
        for (int i = 0; i < w.length; i++) {
            at[i] = out[i].ptr();
            types[i] = Cublas.R_32F;
        }
        linearManyBf16(be, x, w, at, types);
    }

    /**
     * {@link #linearManyBf16} into outputs at device addresses {@code out[i]} of type {@code outType[i]} (R_32F, or
     * R_16BF: the fp32 sums rounded to bf16 once, the bf16-compute mode's bf16 linear outputs, {@link Bf16Activations}).
     */
    static void linearManyBf16(CudaBackend be, CudaTensor x, CudaWeight[] w, long[] out, int[] outType) {
        CudaDevice dev = be.dev;
        int t = x.rows(), k = x.cols();
        long copy = Bf16Copies.of(x);
        if (copy != 0) {
            // x's producer wrote its bf16 values beside it (Bf16Copies): no conversion
            for (int i = 0; i < w.length; i++) linearBf16(dev, copy, t, k, w[i], out[i], outType[i]);
            return;
        }
        long cnt = (long) t * k;
        DeviceBuffer xb = dev.scratch(2 * cnt);
        dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, x.ptr(), xb.ptr, cnt);
        for (int i = 0; i < w.length; i++) linearBf16(dev, xb.ptr, t, k, w[i], out[i], outType[i]);
        dev.free(xb);
    }

    static void linear(CudaBackend be, CudaTensor x, CudaWeight w, CudaTensor out, Mode mode) {
        CudaDevice dev = be.dev;
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (tiled(x, w)) {
            GemvTiles g = GemvTiles.pick(t, n, k);
            dev.gemv.launch(g.kernel(), g.blocks(n), 1, 1, 256, 0, dev.stream, x.ptr(), w.ptr(), out.ptr(), t, n, k);
        } else if (w.dtype() == DType.BF16 && t <= CudaBackend.GEMV_MAX_ROWS) {
            dev.gemv.launch("gemv_bf16", (n + 7) / 8, 1, 1, 256, 0, dev.stream, x.ptr(), w.ptr(), out.ptr(), t, n, k);
        } else if (w.dtype() == DType.F32) {
            dev.cublas.gemmRowMajor(t, n, k, x.ptr(), Cublas.R_32F, k, w.ptr(), Cublas.R_32F, k, true, out.ptr(), n, false);
        } else if (mode == Mode.SPLIT) {
            // x split into three bf16 terms, one tensor-core GEMM of the stacked [3T, K] rows, the three results summed
            long cnt = (long) t * k, outs = (long) t * n;
            DeviceBuffer xb = dev.scratch(2 * 3 * cnt), parts = dev.scratch(4 * 3 * outs);
            dev.elementwise.launch("f32_split_bf16x3", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, x.ptr(), xb.ptr, cnt);
            dev.cublas.gemmRowMajor(3 * t, n, k, xb.ptr, Cublas.R_16BF, k, w.ptr(), Cublas.R_16BF, k, true, parts.ptr, n, false);
            dev.elementwise.launch("sum3_f32", CudaDevice.blocks(outs), 1, 1, 256, 0, dev.stream, parts.ptr, out.ptr(), outs);
            dev.free(xb);
            dev.free(parts);
        } else if (mode == Mode.BF16 && Bf16Copies.of(x) != 0) {
            dev.cublas.gemmRowMajor(t, n, k, Bf16Copies.of(x), Cublas.R_16BF, k, w.ptr(), Cublas.R_16BF, k, true, out.ptr(), n, false);
        } else if (mode == Mode.BF16) {
            long cnt = (long) t * k;
            DeviceBuffer xb = dev.scratch(2 * cnt);
            dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, x.ptr(), xb.ptr, cnt);
            dev.cublas.gemmRowMajor(t, n, k, xb.ptr, Cublas.R_16BF, k, w.ptr(), Cublas.R_16BF, k, true, out.ptr(), n, false);
            dev.free(xb);
        } else {
            long cnt = (long) n * k;
            DeviceBuffer wf = dev.scratch(4 * cnt);
            dev.elementwise.launch("bf16_to_f32", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, w.ptr(), wf.ptr, cnt);
            dev.cublas.gemmRowMajor(t, n, k, x.ptr(), Cublas.R_32F, k, wf.ptr, Cublas.R_32F, k, true, out.ptr(), n, false);
            dev.free(wf);
        }
    }
}
