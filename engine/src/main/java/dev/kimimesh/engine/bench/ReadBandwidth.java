package dev.kimimesh.engine.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's memory read bandwidth as a decode step sees it: threads summing disjoint, contiguous shares of
 * the very weight segments a step reads (memory-mapped checkpoint pages), with the Vector API; the best of a few
 * passes. The bytes must be far larger than the caches (a decode step reads 1.5 GB here), so every pass comes from
 * DRAM.
 *
 * <p>The summing loop runs over 1 MiB slices with an int index: a long-indexed loop over a whole multi-GB segment
 * kept its bounds checks in the loop and measured 20-30% less (on the 2-core EPYC of docs/benchmarks.md: 22 against
 * 27-33 GB/s, the same bytes read by a C loop 30-35 GB/s).
 */
public final class ReadBandwidth {
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int SLICE = 1 << 20;
    private static final int UNROLL_BYTES = 4 * I.vectorByteSize();

    private ReadBandwidth() {}

    /** Bytes per second with which {@code threads} threads read all of {@code segments} once, best of {@code passes}. */
    public static double overSegments(List<MemorySegment> segments, int threads, int passes) throws Exception {
        List<MemorySegment> slices = slices(segments);
        long total = 0;
        for (MemorySegment s : slices) total += s.byteSize();
        // contiguous shares of about total / threads bytes each, as the matmuls split their rows
        List<List<MemorySegment>> shares = new ArrayList<>();
        long per = (total + threads - 1) / threads, acc = 0;
        for (int t = 0; t < threads; t++) shares.add(new ArrayList<>());
        for (MemorySegment s : slices) {
            shares.get((int) Math.min(threads - 1, acc / per)).add(s);
            acc += s.byteSize();
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            // compile the summing loop before it is timed
            MemorySegment first = slices.getFirst();
            for (int i = 0; i < 3000; i++) run(pool, threads, t -> sum(first));
            double best = 0;
            for (int p = 0; p < passes; p++) {
                long t0 = System.nanoTime();
                run(pool, threads, t -> {
                    float s = 0;
                    for (MemorySegment seg : shares.get(t)) s += sum(seg);
                    return s;
                });
                best = Math.max(best, total / ((System.nanoTime() - t0) / 1e9));
            }
            return best;
        }
    }

    /** The same over a fresh off-heap buffer of {@code bytes} (anonymous memory, not the checkpoint's pages). */
    public static double offHeap(long bytes, int threads, int passes) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(bytes / SLICE * SLICE, 1 << 21);
            for (long i = 0; i < buf.byteSize(); i += 4096) buf.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
            return overSegments(List.of(buf), threads, passes);
        }
    }

    /** The segments cut into slices of at most 1 MiB whose length is a multiple of the unrolled step. */
    private static List<MemorySegment> slices(List<MemorySegment> segments) {
        List<MemorySegment> out = new ArrayList<>();
        for (MemorySegment s : segments) {
            long n = s.byteSize() / UNROLL_BYTES * UNROLL_BYTES;
            for (long o = 0; o < n; o += SLICE) out.add(s.asSlice(o, Math.min(SLICE, n - o)));
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no bytes to read");
        return out;
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

    /**
     * Four independent accumulators, so the loads, not the add latency, are the limit; integer adds, since weight
     * bytes read as floats may be subnormal, which some CPUs add in microcode.
     */
    private static float sum(MemorySegment s) {
        int n = (int) s.byteSize(), step = I.vectorByteSize();
        IntVector a0 = IntVector.zero(I), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i + 4 * step <= n; i += 4 * step) {
            a0 = a0.add(IntVector.fromMemorySegment(I, s, i, LE));
            a1 = a1.add(IntVector.fromMemorySegment(I, s, i + step, LE));
            a2 = a2.add(IntVector.fromMemorySegment(I, s, i + 2 * step, LE));
            a3 = a3.add(IntVector.fromMemorySegment(I, s, i + 3 * step, LE));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }
}
