package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight read in place from the memory-mapped checkpoint: [rows, cols] of bf16, f16 or f32. Small vectors (norm
 * weights, biases) are also widened once to a float array, since they are read on every token.
 */
public final class CpuWeight implements Weight {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int SMALL = 1 << 16;

    private final String name;
    private final DType dtype;
    private final MemorySegment data;
    private final int rows, cols;
    private float[] floats;

    CpuWeight(String name, DType dtype, MemorySegment data, int rows, int cols) {
        this.name = name;
        this.dtype = dtype;
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    static CpuWeight of(TensorInfo t) {
        long[] s = t.shape();
        long rows = s.length == 0 ? 1 : s[0];
        long cols = rows == 0 ? 0 : t.numel() / rows;
        if (s.length == 4 || (s.length == 3 && s[1] == 1 && s[0] != 1)) {
            // A_log [1,1,heads,1] is a vector of heads; conv1d [P,1,K] is [P, K].
            rows = s.length == 4 ? t.numel() : s[0];
            cols = t.numel() / rows;
        }
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) throw new IllegalArgumentException(t.where() + " too large");
        if (t.dtype() != DType.BF16 && t.dtype() != DType.F16 && t.dtype() != DType.F32) {
            throw new IllegalArgumentException(t.where() + ": dtype " + t.dtype() + " is not a weight dtype");
        }
        return new CpuWeight(t.name(), t.dtype(), t.data(), (int) rows, (int) cols);
    }

    public static CpuWeight cast(Weight w) {
        if (w instanceof CpuWeight c) return c;
        throw new IllegalArgumentException("not a CPU weight: " + w.getClass().getSimpleName());
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

    public MemorySegment data() {
        return data;
    }

    /** Byte offset of row r in {@link #data()}. */
    public long rowOffset(int r) {
        return (long) r * cols * dtype.bytes();
    }

    @Override
    public CpuWeight rowSlice(int from, int count) {
        if (from < 0 || from + count > rows) throw new IndexOutOfBoundsException(name + ": rows " + from + "+" + count);
        return new CpuWeight(name + "[" + from + ":" + (from + count) + "]", dtype,
                data.asSlice(rowOffset(from), (long) count * cols * dtype.bytes()), count, cols);
    }

    public float get(long i) {
        return switch (dtype) {
            case BF16 -> Float.intBitsToFloat((data.get(LE_SHORT, i * 2) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(data.get(LE_SHORT, i * 2));
            default -> data.get(LE_FLOAT, i * 4);
        };
    }

    /** The whole weight as floats, cached (for vectors and small matrices only). */
    public float[] floats() {
        float[] f = floats;
        if (f == null) {
            long n = (long) rows * cols;
            if (n > SMALL * 64L) throw new IllegalStateException(name + " is too large to widen on the heap");
            f = new float[(int) n];
            for (int i = 0; i < f.length; i++) f[i] = get(i);
            floats = f;
        }
        return f;
    }

    /** Row r widened into {@code dst[off..off+cols)}. */
    public void row(int r, float[] dst, int off) {
        long base = (long) r * cols;
        for (int c = 0; c < cols; c++) dst[off + c] = get(base + c);
    }

    @Override
    public String toString() {
        return name + " " + dtype + "[" + rows + "x" + cols + "]";
    }
}
