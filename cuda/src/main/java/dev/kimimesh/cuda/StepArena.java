package dev.kimimesh.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What a recorded decode step (a CUDA graph) owns besides the graph: its own pool, so that the temporaries whose
 * addresses the graph holds are never handed to anyone else; the argument region, one pinned host block and its
 * device twin, into which every small upload of the step went (tables, token ids, positions, sampling parameters),
 * copied by one host-to-device copy before each replay; and the pinned block the sampled tokens come back to.
 */
final class StepArena implements AutoCloseable {
    /** Region size: a step's tables are a few KiB per sequence (real model, 64 sequences: about 100 KiB). */
    static final long REGION = 1L << 20;

    final DevicePool pool = new DevicePool();
    final MemorySegment host;
    final long device;
    private long used;
    private MemorySegment results;
    /** Offsets in the region of the per-step inputs, -1 until the recorded step uploads them. */
    long idsAt = -1, positionsAt = -1, samplingAt = -1;
    int idsCount, positionsCount, samplingRows, vocab;

    StepArena() {
        host = Driver.memAllocHost(REGION);
        long d;
        try {
            d = Driver.memAlloc(REGION);
        } catch (RuntimeException e) {
            Driver.memFreeHost(host);
            throw e;
        }
        device = d;
    }

    /** Bytes of the region in use: what each replay copies. */
    long used() {
        return used;
    }

    /** A region slice holding {@code longs} then each int array, packed (as {@link CudaDevice#table}). */
    DeviceBuffer put(long[] longs, int[]... ints) {
        long bytes = 8L * longs.length;
        for (int[] a : ints) bytes += 4L * a.length;
        bytes = Math.max(8, bytes);
        long at = (used + 15) & ~15L;
        if (at + bytes > REGION) throw new IllegalStateException("a recorded step's tables exceed " + REGION + " bytes");
        MemorySegment.copy(longs, 0, host, ValueLayout.JAVA_LONG, at, longs.length);
        long o = at + 8L * longs.length;
        for (int[] a : ints) {
            MemorySegment.copy(a, 0, host, ValueLayout.JAVA_INT, o, a.length);
            o += 4L * a.length;
        }
        used = at + bytes;
        return new DeviceBuffer(device + at, bytes, true);
    }

    DeviceBuffer put(float[] values) {
        int[] bits = new int[values.length];
        for (int i = 0; i < bits.length; i++) bits[i] = Float.floatToRawIntBits(values[i]);
        return put(new long[0], bits);
    }

    private long offset(DeviceBuffer b, String what) {
        if (!b.region || b.ptr < device || b.ptr >= device + REGION) throw new IllegalStateException(what + " did not go to the step's region");
        return b.ptr - device;
    }

    void markIds(DeviceBuffer b, int count) {
        if (idsAt >= 0) throw new IllegalStateException("a recorded decode step embeds once");
        idsAt = offset(b, "token ids");
        idsCount = count;
    }

    void markPositions(DeviceBuffer b, int count) {
        if (positionsAt >= 0) throw new IllegalStateException("a recorded decode step has one segment table");
        positionsAt = offset(b, "positions");
        positionsCount = count;
    }

    void markSampling(DeviceBuffer b, int rows, int vocab) {
        if (samplingAt >= 0) throw new IllegalStateException("a recorded decode step samples once");
        samplingAt = offset(b, "sampling parameters");
        samplingRows = rows;
        this.vocab = vocab;
    }

    /** The pinned block the recorded step copies its sampled tokens and logprobs to. */
    MemorySegment results(long bytes) {
        if (results != null) throw new IllegalStateException("a recorded decode step samples once");
        results = Driver.memAllocHost(Math.max(16, bytes));
        return results;
    }

    MemorySegment results() {
        return results;
    }

    /** Writes ints at a region offset (a replay's new ids or positions). */
    void write(long at, int[] values) {
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_INT, at, values.length);
    }

    void write(long at, long[] values) {
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_LONG, at, values.length);
    }

    /** Frees all of it (the caller synchronised the stream and destroyed the graph). */
    @Override
    public void close() {
        pool.freeAll();
        Driver.memFree(device);
        Driver.memFreeHost(host);
        if (results != null) Driver.memFreeHost(results);
    }
}
