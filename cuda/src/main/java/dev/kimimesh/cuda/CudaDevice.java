package dev.kimimesh.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The GPU a backend runs on: the device's primary context made current on every calling thread, one stream that orders
 * all work, the caching pool, cuBLAS on that stream, and the loaded kernel modules.
 */
final class CudaDevice implements AutoCloseable {
    final int ordinal;
    final int device;
    final String name;
    final int multiprocessors;
    final MemorySegment context;
    final MemorySegment stream;
    final DevicePool pool = new DevicePool();
    final Cublas cublas;
    final KernelModule elementwise, norms, conv, gemv, kda, mla, moe, sample;
    private static final long STAGING = 8L << 20;
    /** Pinned ring for small uploads (segment tables, ids, routing): pageable copies would stall the stream. */
    private MemorySegment staging;
    private long stagingPos;
    private final ThreadLocal<Boolean> current = ThreadLocal.withInitial(() -> false);

    CudaDevice(int ordinal) {
        Driver.init();
        int count = Driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) throw new CudaException("CUDA device " + ordinal + " does not exist (" + count + " found)");
        this.ordinal = ordinal;
        this.device = Driver.device(ordinal);
        this.name = Driver.deviceName(device);
        this.multiprocessors = Driver.attribute(device, 16);
        this.context = Driver.primaryContext(device);
        current.set(true);
        this.stream = Driver.streamCreate();
        this.cublas = new Cublas(stream);
        boolean ptx = Boolean.getBoolean("kimimesh.cuda.ptx");
        elementwise = KernelModule.load("elementwise", ptx);
        norms = KernelModule.load("norms", ptx);
        conv = KernelModule.load("conv", ptx);
        gemv = KernelModule.load("gemv", ptx);
        kda = KernelModule.load("kda", ptx);
        mla = KernelModule.load("mla", ptx);
        moe = KernelModule.load("moe", ptx);
        sample = KernelModule.load("sample", ptx);
    }

    /** Makes the primary context current on the calling thread (once per thread). */
    void bind() {
        if (!current.get()) {
            Driver.setCurrent(context);
            current.set(true);
        }
    }

    void synchronize() {
        Driver.streamSynchronize(stream);
    }

    /**
     * A slice of the pinned staging ring for a copy queued now. When the ring wraps, the stream is synchronised first,
     * so no queued copy still reads the region handed out again.
     */
    synchronized MemorySegment stage(long bytes) {
        if (staging == null) staging = Driver.memAllocHost(STAGING);
        long b = (bytes + 15) & ~15L;
        if (stagingPos + b > STAGING) {
            synchronize();
            stagingPos = 0;
        }
        MemorySegment s = staging.asSlice(stagingPos, b);
        stagingPos += b;
        return s;
    }

    private MemorySegment download;

    /** A page-locked host buffer of at least {@code bytes} for downloads (grown by doubling, kept; callers lock dev). */
    MemorySegment downloadBuffer(long bytes) {
        if (download == null || download.byteSize() < bytes) {
            if (download != null) Driver.memFreeHost(download);
            download = Driver.memAllocHost(Math.max(bytes, download == null ? 1 << 20 : 2 * download.byteSize()));
        }
        return download;
    }

    static boolean small(long bytes) {
        return bytes <= STAGING / 4;
    }

    /** A device copy of host ints, from the pool (release with {@link #free}). */
    DeviceBuffer ints(int[] values) {
        long bytes = Math.max(4, 4L * values.length);
        DeviceBuffer b = new DeviceBuffer(pool.allocate(bytes), bytes);
        if (small(bytes)) {
            MemorySegment s = stage(bytes);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_INT, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 4L * values.length, stream);
            return b;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_INT, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 4L * values.length, stream);
        }
        return b;
    }

    /**
     * One upload of a launch's small tables: {@code longs} first (8 bytes each), then each int array in turn, packed
     * without gaps; the caller computes the offsets. One copy instead of one per table.
     */
    DeviceBuffer table(long[] longs, int[]... ints) {
        long bytes = 8L * longs.length;
        for (int[] a : ints) bytes += 4L * a.length;
        bytes = Math.max(8, bytes);
        DeviceBuffer b = new DeviceBuffer(pool.allocate(bytes), bytes);
        Arena arena = small(bytes) ? null : Arena.ofConfined();
        try {
            MemorySegment s = arena == null ? stage(bytes) : arena.allocate(bytes, 16);
            MemorySegment.copy(longs, 0, s, ValueLayout.JAVA_LONG, 0, longs.length);
            long at = 8L * longs.length;
            for (int[] a : ints) {
                MemorySegment.copy(a, 0, s, ValueLayout.JAVA_INT, at, a.length);
                at += 4L * a.length;
            }
            Driver.copyHtoD(b.ptr, s, at, stream);
        } finally {
            if (arena != null) arena.close();
        }
        return b;
    }

    DeviceBuffer longs(long[] values) {
        long bytes = Math.max(8, 8L * values.length);
        DeviceBuffer b = new DeviceBuffer(pool.allocate(bytes), bytes);
        if (small(bytes)) {
            MemorySegment s = stage(bytes);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_LONG, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 8L * values.length, stream);
            return b;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_LONG, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 8L * values.length, stream);
        }
        return b;
    }

    DeviceBuffer floats(float[] values) {
        long bytes = Math.max(4, 4L * values.length);
        DeviceBuffer b = new DeviceBuffer(pool.allocate(bytes), bytes);
        if (small(bytes)) {
            MemorySegment s = stage(bytes);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_FLOAT, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 4L * values.length, stream);
            return b;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(bytes, 16);
            MemorySegment.copy(values, 0, s, ValueLayout.JAVA_FLOAT, 0, values.length);
            Driver.copyHtoD(b.ptr, s, 4L * values.length, stream);
        }
        return b;
    }

    DeviceBuffer scratch(long bytes) {
        return new DeviceBuffer(pool.allocate(bytes), bytes);
    }

    void free(DeviceBuffer b) {
        if (b != null && b.markReleased()) pool.release(b.ptr, b.bytes);
    }

    /** Blocks of 256 threads for an n-element grid-stride kernel. */
    static int blocks(long n) {
        return (int) Math.max(1, Math.min((n + 255) / 256, 65536));
    }

    @Override
    public void close() {
        synchronize();
        pool.close();
        cublas.close();
        Driver.streamDestroy(stream);
        Driver.releasePrimaryContext(device);
    }
}
