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

    static void linear(CudaBackend be, CudaTensor x, CudaWeight w, CudaTensor out, Mode mode) {
        CudaDevice dev = be.dev;
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (w.dtype() == DType.BF16 && t <= CudaBackend.GEMV_MAX_ROWS) {
            if (x.ptr() % 16 == 0 && w.ptr() % 16 == 0 && k % 8 == 0) {
                GemvTiles g = GemvTiles.pick(t, n, k);
                dev.gemv.launch(g.kernel(), g.blocks(n), 1, 1, 256, 0, dev.stream, x.ptr(), w.ptr(), out.ptr(), t, n, k);
            } else {
                dev.gemv.launch("gemv_bf16", (n + 7) / 8, 1, 1, 256, 0, dev.stream, x.ptr(), w.ptr(), out.ptr(), t, n, k);
            }
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
