package dev.kimimesh.cuda.check;

import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/** Fresh random inputs for the kernel checks: float arrays and checkpoint-like weights (bf16 or f32) in native memory. */
final class RandomTensors {
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    final SplittableRandom rnd;

    RandomTensors(long seed) {
        rnd = new SplittableRandom(seed);
    }

    float[] floats(int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (gaussian() * scale);
        return f;
    }

    double gaussian() {
        double u = rnd.nextDouble(1e-12, 1), v = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    /** A weight of the given shape with values offset + scale * N(0,1), stored as bf16 or f32. */
    TensorInfo weight(String name, DType dtype, double offset, double scale, long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        MemorySegment seg = Arena.global().allocate(n * dtype.bytes(), 16);
        for (long i = 0; i < n; i++) {
            float v = (float) (offset + gaussian() * scale);
            if (dtype == DType.BF16) seg.set(LE_SHORT, i * 2, (short) (Float.floatToRawIntBits(v) >>> 16));
            else seg.set(LE_FLOAT, i * 4, v);
        }
        return new TensorInfo(name, dtype, shape, seg, null);
    }
}
