package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.Tensor;

/**
 * A float32 row-major tensor in device memory: rows x cols floats at {@code offset} floats into {@code buffer}.
 * Row views share the buffer; only the owning tensor (a view-less allocation) frees it.
 */
public record CudaTensor(DeviceBuffer buffer, long offset, int rows, int cols, boolean view) implements Tensor {

    public static CudaTensor cast(Tensor t) {
        if (t instanceof CudaTensor c) {
            if (c.buffer.released()) throw new IllegalStateException("CUDA tensor " + c + " was used after release");
            return c;
        }
        throw new IllegalArgumentException("not a CUDA tensor: " + (t == null ? "null" : t.getClass().getSimpleName()));
    }

    /** Device address of element (0, 0). */
    public long ptr() {
        return buffer.ptr + offset * 4;
    }

    /** Device address of element (r, c). */
    public long at(int r, int c) {
        return ptr() + ((long) r * cols + c) * 4;
    }

    public long bytes() {
        return (long) rows * cols * 4;
    }

    @Override
    public CudaTensor rowSlice(int from, int count) {
        if (from < 0 || count < 0 || from + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + from + ", " + (from + count) + ") of " + rows);
        }
        return new CudaTensor(buffer, offset + (long) from * cols, count, cols, true);
    }

    @Override
    public String toString() {
        return "CudaTensor[" + rows + "x" + cols + (view ? ", view" : "") + "]";
    }
}
