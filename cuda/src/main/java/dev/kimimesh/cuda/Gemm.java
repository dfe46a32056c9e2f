package dev.kimimesh.cuda;

import dev.kimimesh.engine.checkpoint.DType;

/** {@code out = x W^T} on the device: the GEMV kernel for few rows, cuBLAS (fp32 accumulation) for many. */
final class Gemm {
    private Gemm() {}

    static void linear(CudaBackend be, CudaTensor x, CudaWeight w, CudaTensor out, boolean bf16Gemm) {
        CudaDevice dev = be.dev;
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (w.dtype() == DType.BF16 && t <= CudaBackend.GEMV_MAX_ROWS) {
            int vec = (x.ptr() % 16 == 0 && w.ptr() % 16 == 0) ? 1 : 0;
            dev.gemv.launch("gemv_bf16", (n + 7) / 8, 1, 1, 256, 0, dev.stream, x.ptr(), w.ptr(), out.ptr(), t, n, k, vec);
        } else if (w.dtype() == DType.F32) {
            dev.cublas.gemmRowMajor(t, n, k, x.ptr(), Cublas.R_32F, k, w.ptr(), Cublas.R_32F, k, true, out.ptr(), n, false);
        } else if (bf16Gemm) {
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
