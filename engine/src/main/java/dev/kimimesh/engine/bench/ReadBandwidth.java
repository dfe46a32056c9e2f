package dev.kimimesh.engine.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's memory read bandwidth: threads summing disjoint parts of an off-heap buffer far larger than the
 * caches with the Vector API (several independent accumulators, so the loads, not the adds, are the limit); the best
 * of a few passes.
 */
public final class ReadBandwidth {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private ReadBandwidth() {}

    /** Bytes per second read by {@code threads} threads over a buffer of {@code bytes}, best of {@code passes}. */
    public static double measure(long bytes, int threads, int passes) throws Exception {
        long unit = 4L * F.vectorByteSize() * threads;
        bytes = bytes / unit * unit;
        try (Arena arena = Arena.ofShared(); ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            MemorySegment buf = arena.allocate(bytes, 64);
            long part = bytes / threads;
            run(pool, threads, t -> fill(buf.asSlice(t * part, part)));
            // compile the summing loop before it is timed
            for (int i = 0; i < 2000; i++) run(pool, threads, t -> sum(buf.asSlice(t * part, 1 << 16)));
            double best = 0;
            for (int p = 0; p < passes; p++) {
                long t0 = System.nanoTime();
                run(pool, threads, t -> sum(buf.asSlice(t * part, part)));
                best = Math.max(best, bytes / ((System.nanoTime() - t0) / 1e9));
            }
            return best;
        }
    }

    private interface Part {
        float run(int t);
    }

    private static void run(ExecutorService pool, int threads, Part body) throws Exception {
        List<Future<Float>> fs = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int tt = t;
            fs.add(pool.submit((Callable<Float>) () -> body.run(tt)));
        }
        float sink = 0;
        for (Future<Float> f : fs) sink += f.get();
        if (sink == 42.4242f) System.out.print(""); // keeps the sums alive
    }

    private static float fill(MemorySegment s) {
        for (long i = 0; i < s.byteSize(); i += 4096) s.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) 1);
        return 0;
    }

    private static float sum(MemorySegment s) {
        long n = s.byteSize(), step = F.vectorByteSize();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (long i = 0; i + 4 * step <= n; i += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, s, i, LE));
            a1 = a1.add(FloatVector.fromMemorySegment(F, s, i + step, LE));
            a2 = a2.add(FloatVector.fromMemorySegment(F, s, i + 2 * step, LE));
            a3 = a3.add(FloatVector.fromMemorySegment(F, s, i + 3 * step, LE));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }
}
