package dev.kimimesh.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kimimesh.engine.checkpoint.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** One fused pass over several projections gives each the bits of its own matmul, whatever the row counts. */
class FusedMatmulTest {

    private static CpuWeight bf16(Arena arena, String name, int rows, int cols, SplittableRandom rnd) {
        MemorySegment m = arena.allocate((long) rows * cols * 2, 64);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) rnd.nextGaussian() * 0.05f;
            m.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
        }
        return new CpuWeight(name, DType.BF16, m, rows, cols);
    }

    @Test
    void fusedEqualsSeparateBitForBit() {
        SplittableRandom rnd = new SplittableRandom(7);
        // row counts that are not multiples of the 4-row group, one tiny weight among large ones; k with and without
        // a tail past the packed loop; a decode row and a small batch
        int[] rows = {4096, 37, 1, 130, 4};
        for (int k : new int[] {256, 100}) {
            for (int t : new int[] {1, 5}) {
                try (Arena arena = Arena.ofShared()) {
                    CpuWeight[] w = new CpuWeight[rows.length];
                    for (int i = 0; i < rows.length; i++) w[i] = bf16(arena, "w" + i, rows[i], k, rnd);
                    CpuTensor x = CpuTensor.of(t, k);
                    for (int i = 0; i < x.data().length; i++) x.data()[i] = (float) rnd.nextGaussian();
                    CpuTensor[] fused = new CpuTensor[rows.length];
                    for (int i = 0; i < rows.length; i++) fused[i] = CpuTensor.of(t, rows[i]);
                    MatMul.matmuls(x, w, fused);
                    for (int i = 0; i < rows.length; i++) {
                        CpuTensor alone = CpuTensor.of(t, rows[i]);
                        MatMul.matmul(x, w[i], alone);
                        assertArrayEquals(alone.data(), fused[i].data(), "weight " + i + " k=" + k + " t=" + t);
                    }
                }
            }
        }
    }

    @Test
    void mismatchedShapesAreRejected() {
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rnd = new SplittableRandom(1);
            CpuWeight[] w = {bf16(arena, "a", 8, 64, rnd), bf16(arena, "b", 8, 32, rnd)};
            CpuTensor x = CpuTensor.of(1, 64);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MatMul.matmuls(x, w, new CpuTensor[] {CpuTensor.of(1, 8), CpuTensor.of(1, 8)}));
            assertEquals(true, e.getMessage().contains("b BF16[8x32]"), e.getMessage());
        }
    }

    @Test
    void rangesCoverEveryIndexOnceFromManyThreadsAndNested() throws Exception {
        int n = 1000;
        Thread[] callers = new Thread[4];
        int[][] hits = new int[callers.length][n * 3];
        for (int c = 0; c < callers.length; c++) {
            int[] h = hits[c];
            callers[c] = new Thread(() -> {
                for (int round = 0; round < 50; round++) {
                    Parallel.range(n, 1, (from, to) -> {
                        for (int i = from; i < to; i++) {
                            h[i]++;
                            int base = i;
                            // a range inside a chunk (runs on the chunk's thread): indices n + 2i, n + 2i + 1
                            Parallel.range(2, 1, (a, b) -> {
                                for (int j = a; j < b; j++) h[n + 2 * base + j]++;
                            });
                        }
                    });
                }
            });
        }
        for (Thread c : callers) c.start();
        for (Thread c : callers) c.join();
        for (int[] h : hits) {
            for (int i = 0; i < n; i++) assertEquals(50, h[i], "index " + i);
            for (int i = n; i < n + 2 * n; i++) assertEquals(50, h[i], "nested index " + i);
        }
    }

    @Test
    void aFailingChunkFailsTheCallAndLeavesTheTeamUsable() {
        IllegalStateException boom = new IllegalStateException("boom");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.range(64, 1, (from, to) -> {
            if (from == 0) throw boom;
        }));
        assertSame(boom, e);
        int[] hits = new int[64];
        Parallel.range(64, 1, (from, to) -> {
            for (int i = from; i < to; i++) hits[i]++;
        });
        for (int h : hits) assertEquals(1, h);
    }
}
