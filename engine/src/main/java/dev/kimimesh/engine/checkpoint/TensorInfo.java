package dev.kimimesh.engine.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a safetensors file: name, dtype, shape and its bytes as a slice of the memory-mapped file
 * (never copied onto the heap).
 */
public record TensorInfo(String name, DType dtype, long[] shape, MemorySegment data, Path file) {

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int i) {
        return shape[i];
    }

    /** Element i as a float, whatever the stored dtype (for small tensors, goldens and tests; not a hot path). */
    public float getFloat(long i) {
        return switch (dtype) {
            case BF16 -> Float.intBitsToFloat((data.get(LE_SHORT, i * 2) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(data.get(LE_SHORT, i * 2));
            case F32 -> data.get(LE_FLOAT, i * 4);
            case F64 -> (float) data.get(LE_DOUBLE, i * 8);
            case I64 -> data.get(LE_LONG, i * 8);
            case I32 -> data.get(LE_INT, i * 4);
            case I8 -> data.get(ValueLayout.JAVA_BYTE, i);
            case U8, BOOL -> data.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
        };
    }

    public long getLong(long i) {
        return switch (dtype) {
            case I64 -> data.get(LE_LONG, i * 8);
            case I32 -> data.get(LE_INT, i * 4);
            default -> (long) getFloat(i);
        };
    }

    /** The whole tensor widened to float32 on the heap (small tensors only: norms, biases, goldens). */
    public float[] toFloatArray() {
        long n = numel();
        if (n > Integer.MAX_VALUE) throw new CheckpointException(where() + " is too large to copy to the heap");
        float[] out = new float[(int) n];
        for (int i = 0; i < out.length; i++) out[i] = getFloat(i);
        return out;
    }

    public long[] toLongArray() {
        long[] out = new long[(int) numel()];
        for (int i = 0; i < out.length; i++) out[i] = getLong(i);
        return out;
    }

    public int[] toIntArray() {
        int[] out = new int[(int) numel()];
        for (int i = 0; i < out.length; i++) out[i] = Math.toIntExact(getLong(i));
        return out;
    }

    /** "tensor 'x' in file.safetensors", for error messages. */
    public String where() {
        return "tensor '" + name + "' in " + (file == null ? "?" : file.getFileName());
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
