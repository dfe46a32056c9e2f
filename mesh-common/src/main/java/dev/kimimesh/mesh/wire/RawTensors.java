package dev.kimimesh.mesh.wire;

import com.google.protobuf.UnsafeByteOperations;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The wire form of activations: a float matrix [rows, cols] as one little-endian byte buffer in f32 or bf16.
 * Decoding checks dtype, shape and byte length and names what is wrong, so a bad tensor is a clear
 * INVALID_ARGUMENT, never a misread.
 */
public final class RawTensors {
    private RawTensors() {}

    /** Encodes rows x cols floats; bf16 rounds to nearest even (f32 is exact). */
    public static Tensor encode(float[] data, int rows, int cols, DType dtype) {
        if ((long) rows * cols != data.length) {
            throw new IllegalArgumentException(rows + "x" + cols + " does not match " + data.length + " values");
        }
        DType d = dtype == DType.DTYPE_UNSPECIFIED ? DType.DTYPE_F32 : dtype;
        ByteBuffer b;
        switch (d) {
            case DTYPE_F32 -> {
                b = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(data);
            }
            case DTYPE_BF16 -> {
                b = ByteBuffer.allocate(2 * data.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : data) b.putShort(toBf16(f));
                b.flip();
            }
            default -> throw new IllegalArgumentException("activations cannot be sent as " + d);
        }
        // the buffer is ours and never written again: wrap it instead of copying it once more
        return Tensor.newBuilder().setDtype(d).addShape(rows).addShape(cols)
                .setData(UnsafeByteOperations.unsafeWrap(b.array())).build();
    }

    /**
     * The floats of a [rows, cols] tensor named {@code what} in messages; throws {@link IllegalArgumentException}
     * when its dtype, shape or byte length is wrong.
     */
    public static float[] decode(Tensor t, int rows, int cols, String what) {
        if (t.getShapeCount() != 2) {
            throw new IllegalArgumentException(what + ": expected a 2-D tensor [" + rows + ", " + cols + "], got shape "
                    + t.getShapeList());
        }
        if (t.getShape(0) != rows || t.getShape(1) != cols) {
            throw new IllegalArgumentException(what + ": expected shape [" + rows + ", " + cols + "], got " + t.getShapeList());
        }
        int bytes = switch (t.getDtype()) {
            case DTYPE_F32 -> 4;
            case DTYPE_BF16 -> 2;
            default -> throw new IllegalArgumentException(what + ": dtype " + t.getDtype() + " is not f32 or bf16");
        };
        long expected = (long) rows * cols * bytes;
        if (t.getData().size() != expected) {
            throw new IllegalArgumentException(what + ": " + t.getData().size() + " bytes for shape " + t.getShapeList()
                    + " in " + t.getDtype() + ", expected " + expected);
        }
        float[] out = new float[rows * cols];
        ByteBuffer b = t.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        if (bytes == 4) {
            b.asFloatBuffer().get(out);
        } else {
            for (int i = 0; i < out.length; i++) out[i] = Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
        }
        return out;
    }

    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7F800000) == 0x7F800000 && (bits & 0x007FFFFF) != 0) return (short) ((bits >>> 16) | 0x40); // keep NaN a NaN
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }
}
