package dev.kimimesh.cuda;

/** The two measured ceilings that benchmark floors are computed from: device copy bandwidth and cuBLAS GEMM rate. */
public final class Ceilings {
    private Ceilings() {}

    /** Device-to-device copy bandwidth in GB/s, counting bytes read plus written (median of 10 copies). */
    public static double copyGBs(CudaBackend be, long bytes) {
        CudaDevice dev = be.dev;
        DeviceBuffer a = dev.scratch(bytes), b = dev.scratch(bytes);
        Driver.memsetD32(a.ptr, 0x3f800000, bytes / 4, dev.stream);
        float[] ms = new float[10];
        Driver.copyDtoD(b.ptr, a.ptr, bytes, dev.stream);
        for (int i = 0; i < ms.length; i++) ms[i] = be.time(() -> Driver.copyDtoD(b.ptr, a.ptr, bytes, dev.stream));
        dev.free(a);
        dev.free(b);
        return 2.0 * bytes / (median(ms) * 1e-3) / 1e9;
    }

    /** n x n x n GEMM rate in TFLOP/s with fp32 accumulation: bf16 inputs, or fp32 inputs (no TF32). Random data. */
    public static double gemmTflops(CudaBackend be, int n, boolean bf16) {
        CudaDevice dev = be.dev;
        long cnt = (long) n * n;
        DeviceBuffer a = dev.scratch(4 * cnt), b = dev.scratch(4 * cnt), c = dev.scratch(4 * cnt);
        float[] host = new float[n];
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        for (int i = 0; i < n; i++) host[i] = (float) r.nextDouble(-1, 1);
        DeviceBuffer row = dev.floats(host);
        for (int i = 0; i < n; i++) { // fill row by row from one random row, shifted, so data are not constant
            Driver.copyDtoD(a.ptr + 4L * i * n, row.ptr, 4L * n, dev.stream);
            Driver.copyDtoD(b.ptr + 4L * ((long) (i * 7 % n)) * n, row.ptr, 4L * n, dev.stream);
        }
        int type = Cublas.R_32F;
        long pa = a.ptr, pb = b.ptr;
        if (bf16) {
            dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, a.ptr, c.ptr, cnt);
            dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(cnt), 1, 1, 256, 0, dev.stream, b.ptr, c.ptr + 2 * cnt, cnt);
            pa = c.ptr;
            pb = c.ptr + 2 * cnt;
            type = Cublas.R_16BF;
        }
        long fa = pa, fb = pb;
        int t = type;
        DeviceBuffer out = dev.scratch(4 * cnt);
        Runnable gemm = () -> dev.cublas.gemmRowMajor(n, n, n, fa, t, n, fb, t, n, true, out.ptr, n, false);
        for (int i = 0; i < 3; i++) gemm.run();
        float[] ms = new float[10];
        for (int i = 0; i < ms.length; i++) ms[i] = be.time(gemm);
        for (DeviceBuffer x : new DeviceBuffer[] {a, b, c, row, out}) dev.free(x);
        return 2.0 * n * n * (double) n / (median(ms) * 1e-3) / 1e12;
    }

    public static float median(float[] v) {
        float[] s = v.clone();
        java.util.Arrays.sort(s);
        return s[s.length / 2];
    }
}
