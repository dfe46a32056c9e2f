package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Tensor;

/** A tensor on the Java heap: rows x cols floats of {@code data} starting at {@code offset}, row-major. */
public record CpuTensor(float[] data, int offset, int rows, int cols) implements Tensor {

    public static CpuTensor of(int rows, int cols) {
        return new CpuTensor(new float[Math.multiplyExact(rows, cols)], 0, rows, cols);
    }

    public static CpuTensor cast(Tensor t) {
        if (t instanceof CpuTensor c) return c;
        throw new IllegalArgumentException("not a CPU tensor: " + t.getClass().getSimpleName());
    }

    @Override
    public CpuTensor rowSlice(int from, int count) {
        if (from < 0 || count < 0 || from + count > rows) {
            throw new IndexOutOfBoundsException("rows [" + from + ", " + (from + count) + ") of " + rows);
        }
        return new CpuTensor(data, offset + from * cols, count, cols);
    }

    /** Index of element (r, c) in {@link #data}. */
    public int at(int r, int c) {
        return offset + r * cols + c;
    }

    @Override
    public String toString() {
        return "CpuTensor[" + rows + "x" + cols + "]";
    }
}
