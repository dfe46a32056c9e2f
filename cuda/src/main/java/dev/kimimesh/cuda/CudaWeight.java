package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;

/**
 * A checkpoint tensor uploaded once to device memory, in its own dtype (bf16 or f32; f16 is widened to f32 at upload).
 * {@code floats} is an fp32 copy kept for small tensors (norm weights, biases, conv taps, kv_b_proj for MLA) that
 * kernels read as float; null where none was made.
 */
public final class CudaWeight implements Weight {
    private final String name;
    private final DType dtype;
    private final long ptr;
    private final int rows, cols;
    long floats;
    /** The host-side tensor (the mapped checkpoint) for routing on the host; may be null. */
    final dev.kimimesh.engine.checkpoint.TensorInfo host;

    CudaWeight(String name, DType dtype, long ptr, int rows, int cols, long floats,
               dev.kimimesh.engine.checkpoint.TensorInfo host) {
        this.name = name;
        this.dtype = dtype;
        this.ptr = ptr;
        this.rows = rows;
        this.cols = cols;
        this.floats = floats;
        this.host = host;
    }

    public static CudaWeight cast(Weight w) {
        if (w instanceof CudaWeight c) return c;
        throw new IllegalArgumentException("not a CUDA weight: " + (w == null ? "null" : w.getClass().getSimpleName()));
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    /** Device address of the stored elements (dtype()). */
    public long ptr() {
        return ptr;
    }

    public boolean bf16() {
        return dtype == DType.BF16;
    }

    @Override
    public CudaWeight rowSlice(int from, int count) {
        if (from < 0 || count < 0 || from + count > rows) throw new IndexOutOfBoundsException(name + ": rows " + from + "+" + count);
        long off = (long) from * cols;
        return new CudaWeight(name + "[" + from + ":" + (from + count) + "]", dtype, ptr + off * dtype.bytes(), count, cols,
                floats == 0 ? 0 : floats + off * 4, null);
    }

    @Override
    public String toString() {
        return name + " " + dtype + "[" + rows + "x" + cols + "] on the GPU";
    }
}
