package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.mesh.wire.ExpertSet;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.Tensor;
import org.junit.jupiter.api.Test;

/** The wire format: f32 exact, bf16 rounded to nearest even, every malformed tensor named; id sets parsed. */
class RawTensorsTest {

    @Test
    void f32IsExactAndLittleEndian() {
        float[] v = {1.5f, -0.0f, Float.MIN_VALUE, 3.4e38f, (float) Math.PI, -7f};
        Tensor t = RawTensors.encode(v, 2, 3, DType.DTYPE_F32);
        assertEquals(24, t.getData().size());
        assertEquals(0x00, t.getData().byteAt(0)); // 1.5f = 0x3FC00000, low byte first
        assertEquals((byte) 0x3F, t.getData().byteAt(3));
        assertArrayEquals(v, RawTensors.decode(t, 2, 3, "t"));
    }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa (1.0);
        // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6 and goes to 1 + 2^-6
        float[] v = {1f + 0x1p-8f, 1f + 3 * 0x1p-8f, 1f + 0x1p-7f, -2.5f};
        float[] back = RawTensors.decode(RawTensors.encode(v, 1, 4, DType.DTYPE_BF16), 1, 4, "t");
        assertArrayEquals(new float[] {1f, 1f + 0x1p-6f, 1f + 0x1p-7f, -2.5f}, back);
    }

    @Test
    void malformedTensorsAreNamed() {
        Tensor t = RawTensors.encode(new float[6], 2, 3, DType.DTYPE_F32);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RawTensors.decode(t, 3, 2, "hidden"))
                .getMessage().startsWith("hidden: expected shape [3, 2]"));
        Tensor shortT = t.toBuilder().setData(t.getData().substring(1)).build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RawTensors.decode(shortT, 2, 3, "hidden"))
                .getMessage().contains("23 bytes"));
        Tensor flat = t.toBuilder().clearShape().addShape(6).build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RawTensors.decode(flat, 2, 3, "hidden"))
                .getMessage().contains("2-D"));
        Tensor ints = t.toBuilder().setDtype(DType.DTYPE_I32).build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RawTensors.decode(ints, 2, 3, "hidden"))
                .getMessage().contains("DTYPE_I32"));
    }

    @Test
    void idSets() {
        assertArrayEquals(new int[] {0, 1, 2, 3}, ExpertSet.parse("0-3", 16).ids());
        assertArrayEquals(new int[] {1, 3, 5, 7}, ExpertSet.parse("odd", 8).ids());
        assertArrayEquals(new int[] {0, 2, 4}, ExpertSet.parse("even", 6).ids());
        assertArrayEquals(new int[] {1, 5, 9, 10, 11}, ExpertSet.parse("1, 5,9-11", 16).ids());
        assertEquals(16, ExpertSet.parse("all", 16).ids().length);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ExpertSet.parse("0-16", 16)).getMessage().contains("0..15"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ExpertSet.parse("some", 16)).getMessage().contains("'some'"));
    }
}
