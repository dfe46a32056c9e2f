package dev.kimimesh.cuda;

/**
 * bf16 copies of fp32 activations, written by the kernel that produces the activations (RMSNorm, residual add +
 * RMSNorm, the KDA output's gated RMSNorm, SwiGLU) in the same pass, for the bf16-compute mode's GEMMs that read them:
 * a GEMM of such a tensor (or of a row range of it) takes the copy instead of converting x in a pass of its own
 * (f32_to_bf16: 25 launches, 4.4 ms of a 32k prefill), and the MoE gather copies bf16 rows instead of converting fp32
 * ones. The copy holds exactly the values f32_to_bf16 would make (round to nearest even of the same fp32 values).
 *
 * <p>A copy hangs on the device block of its tensor and lives as long as the next write into that block: every
 * {@link CudaBackend} method that writes a tensor drops the copy first ({@link #drop}), a producer attaches a fresh one,
 * and freeing the block frees the copy. Copies are made only in the bf16-compute mode, for tensors of more than
 * {@link CudaBackend#GEMV_MAX_ROWS} rows (the rows a GEMM serves), and not with {@code -Dkimimesh.cuda.fusedOperands=false}.
 */
final class Bf16Copies {
    private Bf16Copies() {}

    /** The bf16 values of the fp32 region [offset, offset + rows x cols) floats of a block, at {@code mem}. */
    record Copy(DeviceBuffer mem, long offset, int rows, int cols) {}

    /**
     * {@code -Dkimimesh.cuda.fusedOperands}: {@code true} (default since its H100 check of 2026-12-06) lets the producers
     * of bf16 GEMM operands write them beside their fp32 output; {@code false} (the earlier path) converts before each
     * GEMM. The same bf16 values either way.
     */
    static final boolean ON = flag(System.getProperty("kimimesh.cuda.fusedOperands", "true"));

    private static boolean flag(String v) {
        if (v.equals("true") || v.equals("false")) return Boolean.parseBoolean(v);
        throw new IllegalArgumentException("kimimesh.cuda.fusedOperands must be true or false, not " + v);
    }

    /** Whether a producer writing {@code out} makes its bf16 copy (this process's mode and flag, or the kernel checks' override). */
    static boolean wanted(CudaBackend be, CudaTensor out) {
        boolean on = be.forceBf16Copies != null ? be.forceBf16Copies : ON && CudaBackend.gemmMode() == Gemm.Mode.BF16 && Gemm.BF16_OPERANDS;
        return on && usable(out);
    }

    /** Whether a copy of {@code out} can be made and read 4 values at a time (whatever the mode: for the kernel checks). */
    static boolean usable(CudaTensor out) {
        return out.rows() > CudaBackend.GEMV_MAX_ROWS && out.cols() % 4 == 0 && out.ptr() % 16 == 0;
    }

    /** Drops any copy of out's block and attaches a new one for out's extent; returns its device address. */
    static long attach(CudaDevice dev, CudaTensor out) {
        DeviceBuffer b = out.buffer();
        drop(dev, b);
        Copy c = new Copy(dev.scratch(2L * out.rows() * out.cols()), out.offset(), out.rows(), out.cols());
        b.bf16 = c;
        return c.mem().ptr;
    }

    /** The device address of x's bf16 values, if its block holds a copy covering x's rows in full; else 0. */
    static long of(CudaTensor x) {
        Copy c = x.buffer().bf16;
        if (c == null || c.cols() != x.cols() || x.offset() < c.offset()) return 0;
        long from = x.offset() - c.offset();
        if (from % x.cols() != 0 || from / x.cols() + x.rows() > c.rows()) return 0;
        long at = c.mem().ptr + 2 * from;
        // the conversion it replaces wrote into a fresh pool block (256-byte aligned): the same alignment, so that
        // cuBLAS picks the same kernel (and the same sums) for the GEMM
        return at % 256 == 0 ? at : 0;
    }

    /** Forgets (and frees) the copy of t's block: called before anything else writes into the block. */
    static void drop(CudaDevice dev, CudaTensor t) {
        drop(dev, t.buffer());
    }

    static void drop(CudaDevice dev, DeviceBuffer b) {
        Copy c = b.bf16;
        if (c == null) return;
        b.bf16 = null;
        dev.free(c.mem());
    }
}
