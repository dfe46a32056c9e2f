package dev.kimimesh.engine.bench;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.SafetensorsWriter;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** The backend's own matmul throughput on a large square bf16 problem: the compute peak prefill is held against. */
public final class MatmulPeak {
    private MatmulPeak() {}

    /** Best FLOP/s of {@code out[t, n] = x[t, n] W[n, n]^T} over {@code reps} runs. */
    public static double measure(Backend be, int t, int n, int reps) {
        SplittableRandom rnd = new SplittableRandom(1);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = arena.allocate((long) n * n * 2, 64);
            for (long i = 0; i < (long) n * n; i++) {
                w.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, SafetensorsWriter.bf16((float) rnd.nextGaussian() * 0.02f));
            }
            Weight wt = be.weight(new TensorInfo("peak.weight", DType.BF16, new long[] {n, n}, w, null));
            float[] xs = new float[t * n];
            for (int i = 0; i < xs.length; i++) xs[i] = (float) rnd.nextGaussian();
            Tensor x = be.upload(xs, t, n), out = be.allocate(t, n);
            double best = 0;
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                be.matmul(x, wt, out);
                be.download(out.rowSlice(0, 1));
                best = Math.max(best, 2.0 * t * n * n / ((System.nanoTime() - t0) / 1e9));
            }
            be.release(x);
            be.release(out);
            return best;
        }
    }
}
