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
    /** The prefill's routed-expert grouping and combine (moe_prefill.cu). */
    final KernelModule moePrefill;
    final DevicePool pool = new DevicePool();
    final Cublas cublas;
    final KernelModule elementwise, norms, conv, gemv, kda, mla, mlaDecode, mlaDecodeV2, mlaDecodeV3, moe, sample, decodeFused, mlaAbsorb;
    /** mla_flash_sm90a.cu (the wgmma flash kernels): null on a GPU other than Hopper, where MlaKernels falls back. */
    final KernelModule mlaFlashHopper;
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
        mlaDecode = KernelModule.load("mla_decode", ptx);
        mlaDecodeV2 = KernelModule.load("mla_decode_v2", ptx);
        mlaDecodeV3 = KernelModule.load("mla_decode_v3", ptx);
        moe = KernelModule.load("moe", ptx);
        moePrefill = KernelModule.load("moe_prefill", ptx);
        sample = KernelModule.load("sample", ptx);
        decodeFused = KernelModule.load("decode_fused", ptx);
        mlaAbsorb = KernelModule.load("mla_absorb", ptx);
        mlaFlashHopper = KernelModule.loadIfSupported("mla_flash_sm90a", ptx);
    }

    /** Makes the primary context current on the calling thread (once per thread). */
    void bind() {
        if (!current.get()) {
            Driver.setCurrent(context);
            current.set(true);
        }
    }

    void synchronize() {
        if (arena != null) throw new IllegalStateException("a step being recorded cannot wait for the device");
        Driver.streamSynchronize(stream);
    }

    /** The recording in progress (a decode step being captured into a graph), or null. */
    StepArena arena;
    /** Recordings alive: their pools take back the blocks they handed out. */
    final java.util.List<StepArena> arenas = new java.util.ArrayList<>();

    /** Device memory from the pool, or from the recording's own pool while a step is recorded. */
    long alloc(long bytes) {
        return (arena != null ? arena.pool : pool).allocate(bytes);
    }

    /**
     * A slice of the pinned staging ring for a copy queued now. When the ring wraps, the stream is synchronised first,
     * so no queued copy still reads the region handed out again.
     */
    synchronized MemorySegment stage(long bytes) {
        // a graph replays its copies from the same host address: the ring's slices are handed out again
        if (arena != null) throw new IllegalStateException("an upload through the staging ring cannot be recorded");
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
    private PrefillExperts.Readback moeReadback;

    /** The page-locked buffers and events of the prefill's MoE count read-backs ({@link PrefillExperts#start}). */
    synchronized PrefillExperts.Readback moeReadback() {
        if (moeReadback == null) moeReadback = new PrefillExperts.Readback();
        return moeReadback;
    }

    /** A page-locked host buffer of at least {@code bytes} for downloads (grown by doubling, kept; callers lock dev). */
    MemorySegment downloadBuffer(long bytes) {
        if (arena != null) throw new IllegalStateException("a download cannot be recorded");
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
        if (arena != null) return arena.put(new long[0], values);
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
        if (arena != null) return arena.put(longs, ints);
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
        if (arena != null) return arena.put(values);
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
        if (arena != null) return arena.put(values);
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
        return new DeviceBuffer(alloc(bytes), bytes);
    }

    void free(DeviceBuffer b) {
        if (b != null && b.bf16 != null) Bf16Copies.drop(this, b);
        if (b == null || !b.markReleased() || b.region) return;
        release(b.ptr, b.bytes);
    }

    /** Returns a block to the pool it came from: a recording's, or the shared one. */
    void release(long ptr, long bytes) {
        for (StepArena a : arenas) {
            if (a.pool.owns(ptr)) {
                a.pool.release(ptr, bytes);
                return;
            }
        }
        pool.release(ptr, bytes);
    }

    /** Blocks of 256 threads for an n-element grid-stride kernel. */
    static int blocks(long n) {
        return (int) Math.max(1, Math.min((n + 255) / 256, 65536));
    }

    @Override
    public void close() {
        arena = null;
        synchronize();
        for (StepArena a : arenas) a.close();
        arenas.clear();
        pool.close();
        cublas.close();
        Driver.streamDestroy(stream);
        Driver.releasePrimaryContext(device);
    }
}
