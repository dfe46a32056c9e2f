package dev.kimimesh.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * A caching allocator for device memory: freed blocks go back to a free list of their size class and are handed out
 * again without cuMemAlloc. Safe because all work runs on one stream in order: a block released after the kernels
 * that use it were queued is only reused by kernels queued later. Sizes round up to powers of two below 1 MiB and to
 * 2 MiB multiples above, so a decode step's temporaries all come from the lists after the first step.
 */
final class DevicePool implements AutoCloseable {
    private static final long SMALL = 1 << 20, LARGE_GRAIN = 2 << 20;

    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    /** Every block this pool got from cuMemAlloc and still holds (free or handed out), with its size class. */
    private final Map<Long, Long> owned = new HashMap<>();
    private long held, inUse, allocations;

    static long sizeClass(long bytes) {
        long b = Math.max(256, bytes);
        if (b <= SMALL) return Long.highestOneBit(b - 1) << 1;
        return (b + LARGE_GRAIN - 1) / LARGE_GRAIN * LARGE_GRAIN;
    }

    synchronized long allocate(long bytes) {
        long size = sizeClass(bytes);
        ArrayDeque<Long> list = free.get(size);
        long ptr;
        if (list != null && !list.isEmpty()) {
            ptr = list.pop();
        } else {
            try {
                ptr = Driver.memAlloc(size);
            } catch (CudaException e) {
                trim(); // give cached blocks back and try once more before failing
                ptr = Driver.memAlloc(size);
            }
            held += size;
            allocations++;
            owned.put(ptr, size);
        }
        inUse += size;
        return ptr;
    }

    synchronized void release(long ptr, long bytes) {
        long size = sizeClass(bytes);
        free.computeIfAbsent(size, s -> new ArrayDeque<>()).push(ptr);
        inUse -= size;
    }

    /** Frees every cached block (the caller synchronises the stream first). */
    synchronized void trim() {
        for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) {
            for (long p : e.getValue()) {
                Driver.memFree(p);
                held -= e.getKey();
                owned.remove(p);
            }
            e.getValue().clear();
        }
    }

    /** Whether {@code ptr} is a block of this pool (a recording's temporaries go back to the recording's pool). */
    synchronized boolean owns(long ptr) {
        return owned.containsKey(ptr);
    }

    /** Frees every block this pool holds, handed out or not (a recording's pool, once its graph is destroyed). */
    synchronized void freeAll() {
        for (long p : owned.keySet()) Driver.memFree(p);
        owned.clear();
        free.clear();
        held = inUse = 0;
    }

    synchronized String stats() {
        return String.format("pool: %.1f MiB held, %.1f MiB in use, %d cuMemAlloc calls", held / 1048576.0,
                inUse / 1048576.0, allocations);
    }

    @Override
    public synchronized void close() {
        trim();
    }
}
