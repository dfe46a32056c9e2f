package dev.kimimesh.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Backend.kdaProjections and Backend.swigluMlp (whose intermediates a device backend may keep in bf16) give, by
 * default, the bits of the calls the model made before: matmuls then shortConvSilus, swigluProjection then matmul.
 */
class ProjectionDefaultsTest {
    private final CpuBackend b = new CpuBackend();
    private final SplittableRandom rnd = new SplittableRandom(11);

    private CpuWeight bf16(Arena arena, String name, int rows, int cols, double scale) {
        MemorySegment m = arena.allocate((long) rows * cols * 2, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) (rnd.nextGaussian() * scale);
            m.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
        }
        return new CpuWeight(name, DType.BF16, m, rows, cols);
    }

    private CpuTensor random(int rows, int cols) {
        CpuTensor t = CpuTensor.of(rows, cols);
        for (int i = 0; i < t.data().length; i++) t.data()[i] = (float) rnd.nextGaussian();
        return t;
    }

    private static CpuTensor copy(CpuTensor t) {
        return new CpuTensor(t.data().clone(), t.offset(), t.rows(), t.cols());
    }

    @Test
    void kdaProjectionsIsMatmulsThenConvolutions() {
        int h = 64, p = 48, heads = 3;
        Segments seg = new Segments(new int[] {70, 1, 9}, new int[] {0, 5, 2});
        int t = seg.totalRows();
        try (Arena arena = Arena.ofShared()) {
            Weight[] qkv = {bf16(arena, "q", p, h, 0.1), bf16(arena, "k", p, h, 0.1), bf16(arena, "v", p, h, 0.1)};
            Weight[] conv = {bf16(arena, "qc", p, 4, 0.5), bf16(arena, "kc", p, 4, 0.5), bf16(arena, "vc", p, 4, 0.5)};
            Weight[] also = {bf16(arena, "fa", 8, h, 0.1), bf16(arena, "b", heads, h, 0.1)};
            CpuTensor x = random(t, h);
            Tensor[][] tails = new Tensor[3][seg.count()], tails2 = new Tensor[3][seg.count()];
            for (int j = 0; j < 3; j++) {
                for (int i = 0; i < seg.count(); i++) {
                    CpuTensor tl = random(3, p);
                    tails[j][i] = tl;
                    tails2[j][i] = copy(tl);
                }
            }
            CpuTensor[] out = {CpuTensor.of(t, p), CpuTensor.of(t, p), CpuTensor.of(t, p)};
            CpuTensor[] alsoOut = {CpuTensor.of(t, 8), CpuTensor.of(t, heads)};
            b.kdaProjections(x, qkv, conv, seg, tails, out, also, alsoOut);

            CpuTensor[] pre = {CpuTensor.of(t, p), CpuTensor.of(t, p), CpuTensor.of(t, p)};
            CpuTensor[] out2 = {CpuTensor.of(t, p), CpuTensor.of(t, p), CpuTensor.of(t, p)};
            CpuTensor[] alsoOut2 = {CpuTensor.of(t, 8), CpuTensor.of(t, heads)};
            b.matmuls(x, new Weight[] {qkv[0], qkv[1], qkv[2], also[0], also[1]}, new Tensor[] {pre[0], pre[1], pre[2], alsoOut2[0], alsoOut2[1]});
            b.shortConvSilus(pre, conv, seg, tails2, out2);
            for (int j = 0; j < 3; j++) {
                assertArrayEquals(out2[j].data(), out[j].data(), "q/k/v " + j);
                for (int i = 0; i < seg.count(); i++) {
                    assertArrayEquals(((CpuTensor) tails2[j][i]).data(), ((CpuTensor) tails[j][i]).data(), "tail " + j + "." + i);
                }
            }
            for (int i = 0; i < 2; i++) assertArrayEquals(alsoOut2[i].data(), alsoOut[i].data(), "also " + i);
            assertThrows(IllegalArgumentException.class,
                    () -> b.kdaProjections(x, qkv, conv, seg, tails, new Tensor[] {out[0], out[1]}, also, alsoOut));
        }
    }

    @Test
    void swigluMlpIsProjectionThenDown() {
        int t = 9, h = 40, inter = 24;
        try (Arena arena = Arena.ofShared()) {
            ExpertWeights w = new ExpertWeights(bf16(arena, "g", inter, h, 0.2), bf16(arena, "u", inter, h, 0.2), bf16(arena, "d", h, inter, 0.2));
            CpuTensor x = random(t, h), out = CpuTensor.of(t, h), act = CpuTensor.of(t, inter), out2 = CpuTensor.of(t, h);
            b.swigluMlp(x, w, out);
            b.swigluProjection(x, w.gate(), w.up(), act, new Weight[0], new Tensor[0]);
            b.matmul(act, w.down(), out2);
            assertArrayEquals(out2.data(), out.data());
        }
    }
}
