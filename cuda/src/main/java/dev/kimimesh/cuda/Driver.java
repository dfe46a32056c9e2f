package dev.kimimesh.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Bindings of the CUDA driver API (libcuda.so.1) through FFM: init, primary context, streams, memory, modules,
 * launches and events. Every call's CUresult is checked; a failure throws a CudaException naming the call.
 */
public final class Driver {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final NativeLibrary.Probe LIB = NativeLibrary.tryLoad("libcuda.so.1", "libcuda.so");

    private Driver() {}

    /** Whether libcuda loaded (not whether a device exists). */
    public static boolean loaded() {
        return LIB.loaded();
    }

    public static String loadError() {
        return LIB.error();
    }

    static MethodHandle fn(String name, FunctionDescriptor d) {
        if (!LIB.loaded()) throw new CudaException("libcuda is not available: " + loadError());
        // "a|b": the first symbol that exists (newer drivers add _v2 entry points)
        for (String n : name.split("\\|")) {
            var sym = LIB.lookup().find(n);
            if (sym.isPresent()) return LINKER.downcallHandle(sym.get(), d);
        }
        throw new CudaException("libcuda has no symbol " + name);
    }

    private static final class H {
        static final MethodHandle INIT = fn("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        static final MethodHandle ERROR_NAME = fn("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle DEVICE_COUNT = fn("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle DEVICE_GET = fn("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle DEVICE_NAME = fn("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        static final MethodHandle DEVICE_ATTR = fn("cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        static final MethodHandle PRIMARY_RETAIN = fn("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle PRIMARY_RELEASE = fn("cuDevicePrimaryCtxRelease_v2|cuDevicePrimaryCtxRelease", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        static final MethodHandle CTX_SET = fn("cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle CTX_DEVICE = fn("cuCtxGetDevice", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle STREAM_CREATE = fn("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle STREAM_DESTROY = fn("cuStreamDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle STREAM_SYNC = fn("cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle MEM_ALLOC = fn("cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle MEM_ALLOC_HOST = fn("cuMemAllocHost_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle PROFILER_START = fn("cuProfilerStart", FunctionDescriptor.of(JAVA_INT));
        static final MethodHandle PROFILER_STOP = fn("cuProfilerStop", FunctionDescriptor.of(JAVA_INT));
        static final MethodHandle MEM_FREE_HOST = fn("cuMemFreeHost", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle MEM_FREE = fn("cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        static final MethodHandle MEM_INFO = fn("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle HTOD = fn("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        static final MethodHandle DTOH = fn("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        static final MethodHandle DTOD = fn("cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        static final MethodHandle MEMSET32 = fn("cuMemsetD32Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS));
        static final MethodHandle MODULE_LOAD = fn("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle MODULE_FUNCTION = fn("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        static final MethodHandle FUNC_ATTR = fn("cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        static final MethodHandle LAUNCH = fn("cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        static final MethodHandle EVENT_CREATE = fn("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle EVENT_RECORD = fn("cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle EVENT_SYNC = fn("cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle EVENT_ELAPSED = fn("cuEventElapsedTime_v2|cuEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        static final MethodHandle EVENT_DESTROY = fn("cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle BEGIN_CAPTURE = fn("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle END_CAPTURE = fn("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle GRAPH_INSTANTIATE = fn("cuGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        static final MethodHandle GRAPH_LAUNCH = fn("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle GRAPH_EXEC_DESTROY = fn("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle GRAPH_DESTROY = fn("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    /** Starts capturing the stream's work into a graph, in relaxed mode (allocations stay legal, outside the graph). */
    public static void beginCapture(MemorySegment stream) {
        try {
            check((int) H.BEGIN_CAPTURE.invokeExact(stream, 2), "cuStreamBeginCapture");
        } catch (Throwable t) {
            throw wrap("cuStreamBeginCapture", t);
        }
    }

    /** Ends the capture and instantiates it: {graph, executable graph}. */
    public static MemorySegment[] endCapture(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(ADDRESS), e = a.allocate(ADDRESS);
            check((int) H.END_CAPTURE.invokeExact(stream, g), "cuStreamEndCapture");
            MemorySegment graph = g.get(ADDRESS, 0);
            check((int) H.GRAPH_INSTANTIATE.invokeExact(e, graph, 0L), "cuGraphInstantiateWithFlags");
            return new MemorySegment[] {graph, e.get(ADDRESS, 0)};
        } catch (Throwable t) {
            throw wrap("cuStreamEndCapture", t);
        }
    }

    public static void graphLaunch(MemorySegment exec, MemorySegment stream) {
        try {
            check((int) H.GRAPH_LAUNCH.invokeExact(exec, stream), "cuGraphLaunch");
        } catch (Throwable t) {
            throw wrap("cuGraphLaunch", t);
        }
    }

    public static void graphDestroy(MemorySegment graph, MemorySegment exec) {
        try {
            check((int) H.GRAPH_EXEC_DESTROY.invokeExact(exec), "cuGraphExecDestroy");
            check((int) H.GRAPH_DESTROY.invokeExact(graph), "cuGraphDestroy");
        } catch (Throwable t) {
            throw wrap("cuGraphDestroy", t);
        }
    }

    /** Throws unless {@code status} is CUDA_SUCCESS. */
    static void check(int status, String call) {
        if (status != 0) throw new CudaException(call + " failed: " + errorName(status) + " (" + status + ")");
    }

    static String errorName(int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int rc = (int) H.ERROR_NAME.invokeExact(status, p);
            if (rc != 0) return "CUresult " + status;
            return p.get(ADDRESS, 0).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "CUresult " + status;
        }
    }

    static RuntimeException wrap(String call, Throwable t) {
        if (t instanceof RuntimeException r) return r;
        return new CudaException(call + " could not be called: " + t, t);
    }

    public static void init() {
        try {
            check((int) H.INIT.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw wrap("cuInit", t);
        }
    }

    public static int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check((int) H.DEVICE_COUNT.invokeExact(n), "cuDeviceGetCount");
            return n.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap("cuDeviceGetCount", t);
        }
    }

    public static int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check((int) H.DEVICE_GET.invokeExact(d, ordinal), "cuDeviceGet");
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap("cuDeviceGet", t);
        }
    }

    public static String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(256);
            check((int) H.DEVICE_NAME.invokeExact(buf, 256, device), "cuDeviceGetName");
            return buf.getString(0);
        } catch (Throwable t) {
            throw wrap("cuDeviceGetName", t);
        }
    }

    /** CU_DEVICE_ATTRIBUTE_* value (16 = multiprocessor count, 75/76 = compute capability major/minor). */
    public static int attribute(int device, int attr) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) H.DEVICE_ATTR.invokeExact(v, attr, device), "cuDeviceGetAttribute(" + attr + ")");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap("cuDeviceGetAttribute", t);
        }
    }

    /** Retains the device's primary context and makes it current on this thread. */
    public static MemorySegment primaryContext(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.PRIMARY_RETAIN.invokeExact(p, device), "cuDevicePrimaryCtxRetain");
            MemorySegment ctx = p.get(ADDRESS, 0);
            setCurrent(ctx);
            return ctx;
        } catch (Throwable t) {
            throw wrap("cuDevicePrimaryCtxRetain", t);
        }
    }

    public static void releasePrimaryContext(int device) {
        try {
            check((int) H.PRIMARY_RELEASE.invokeExact(device), "cuDevicePrimaryCtxRelease");
        } catch (Throwable t) {
            throw wrap("cuDevicePrimaryCtxRelease", t);
        }
    }

    public static void setCurrent(MemorySegment ctx) {
        try {
            check((int) H.CTX_SET.invokeExact(ctx), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw wrap("cuCtxSetCurrent", t);
        }
    }

    /** The device of the calling thread's current context. */
    public static int currentDevice() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check((int) H.CTX_DEVICE.invokeExact(d), "cuCtxGetDevice");
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw wrap("cuCtxGetDevice", t);
        }
    }

    /** A non-blocking stream (flag 1: no implicit sync with the legacy default stream). */
    public static MemorySegment streamCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.STREAM_CREATE.invokeExact(p, 1), "cuStreamCreate");
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap("cuStreamCreate", t);
        }
    }

    public static void streamDestroy(MemorySegment s) {
        try {
            check((int) H.STREAM_DESTROY.invokeExact(s), "cuStreamDestroy");
        } catch (Throwable t) {
            throw wrap("cuStreamDestroy", t);
        }
    }

    public static void streamSynchronize(MemorySegment s) {
        long w = LaunchTimeline.waitStart();
        try {
            check((int) H.STREAM_SYNC.invokeExact(s), "cuStreamSynchronize");
            LaunchTimeline.waitEnd("stream sync", w);
        } catch (Throwable t) {
            throw wrap("cuStreamSynchronize", t);
        }
    }

    public static long memAlloc(long bytes) {
        long w = LaunchTimeline.waitStart();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check((int) H.MEM_ALLOC.invokeExact(p, bytes), "cuMemAlloc(" + bytes + " bytes)");
            LaunchTimeline.waitEnd("cuMemAlloc", w);
            return p.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw wrap("cuMemAlloc", t);
        }
    }

    /** Page-locked host memory (copies from it are truly asynchronous); lives until the process ends. */
    public static MemorySegment memAllocHost(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.MEM_ALLOC_HOST.invokeExact(p, bytes), "cuMemAllocHost(" + bytes + " bytes)");
            return p.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) {
            throw wrap("cuMemAllocHost", t);
        }
    }

    /** Opens / closes the range a profiler started with profiling off (ncu --profile-from-start off) records. */
    public static void profiler(boolean on) {
        try {
            if (on) check((int) H.PROFILER_START.invokeExact(), "cuProfilerStart");
            else check((int) H.PROFILER_STOP.invokeExact(), "cuProfilerStop");
        } catch (Throwable t) {
            throw wrap("cuProfiler", t);
        }
    }

    public static void memFreeHost(MemorySegment p) {
        try {
            check((int) H.MEM_FREE_HOST.invokeExact(p), "cuMemFreeHost");
        } catch (Throwable t) {
            throw wrap("cuMemFreeHost", t);
        }
    }

    public static void memFree(long ptr) {
        try {
            check((int) H.MEM_FREE.invokeExact(ptr), "cuMemFree");
        } catch (Throwable t) {
            throw wrap("cuMemFree", t);
        }
    }

    /** {free, total} bytes of device memory. */
    public static long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG), t = a.allocate(JAVA_LONG);
            check((int) H.MEM_INFO.invokeExact(f, t), "cuMemGetInfo");
            return new long[] {f.get(JAVA_LONG, 0), t.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw wrap("cuMemGetInfo", t);
        }
    }

    /** Host to device on the stream; pageable host memory is staged before the call returns, so it may be reused. */
    public static void copyHtoD(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            LaunchTimeline.before("HtoD");
            int rc = (int) H.HTOD.invokeExact(dst, src, bytes, stream);
            LaunchTimeline.after();
            if (rc != 0) check(rc, "cuMemcpyHtoDAsync(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw wrap("cuMemcpyHtoDAsync", t);
        }
    }

    public static void copyDtoH(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            LaunchTimeline.before("DtoH");
            int rc = (int) H.DTOH.invokeExact(dst, src, bytes, stream);
            LaunchTimeline.after();
            if (rc != 0) check(rc, "cuMemcpyDtoHAsync(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw wrap("cuMemcpyDtoHAsync", t);
        }
    }

    public static void copyDtoD(long dst, long src, long bytes, MemorySegment stream) {
        try {
            LaunchTimeline.before("DtoD");
            int rc = (int) H.DTOD.invokeExact(dst, src, bytes, stream);
            LaunchTimeline.after();
            if (rc != 0) check(rc, "cuMemcpyDtoDAsync(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw wrap("cuMemcpyDtoDAsync", t);
        }
    }

    public static void memsetD32(long dst, int value, long count, MemorySegment stream) {
        try {
            LaunchTimeline.before("memset");
            check((int) H.MEMSET32.invokeExact(dst, value, count, stream), "cuMemsetD32Async");
            LaunchTimeline.after();
        } catch (Throwable t) {
            throw wrap("cuMemsetD32Async", t);
        }
    }

    /** Loads a module from cubin or NUL-terminated PTX bytes. */
    public static MemorySegment moduleLoadData(byte[] image, String what) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
            img.set(java.lang.foreign.ValueLayout.JAVA_BYTE, image.length, (byte) 0);
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.MODULE_LOAD.invokeExact(p, img), "cuModuleLoadData(" + what + ")");
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap("cuModuleLoadData", t);
        }
    }

    public static MemorySegment moduleFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.MODULE_FUNCTION.invokeExact(p, module, a.allocateFrom(name)), "cuModuleGetFunction(" + name + ")");
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap("cuModuleGetFunction", t);
        }
    }

    /** Raises a kernel's dynamic shared memory limit (attribute 8 = MAX_DYNAMIC_SHARED_SIZE_BYTES). */
    public static void setMaxDynamicShared(MemorySegment function, int bytes) {
        try {
            check((int) H.FUNC_ATTR.invokeExact(function, 8, bytes), "cuFuncSetAttribute(max dynamic shared " + bytes + ")");
        } catch (Throwable t) {
            throw wrap("cuFuncSetAttribute", t);
        }
    }

    /** Asks for the largest shared-memory carveout of the SM for a kernel (attribute 9, percent of the maximum). */
    public static void preferMaxShared(MemorySegment function) {
        try {
            check((int) H.FUNC_ATTR.invokeExact(function, 9, 100), "cuFuncSetAttribute(preferred shared carveout 100)");
        } catch (Throwable t) {
            throw wrap("cuFuncSetAttribute", t);
        }
    }

    public static void launch(MemorySegment f, int gx, int gy, int gz, int bx, int by, int bz, int shared,
                              MemorySegment stream, MemorySegment params, String name) {
        try {
            LaunchTimeline.before(name);
            int rc = (int) H.LAUNCH.invokeExact(f, gx, gy, gz, bx, by, bz, shared, stream, params, MemorySegment.NULL);
            LaunchTimeline.after();
            // the message is built only on failure: launches are the hot path of a decode step
            if (rc != 0) check(rc, "cuLaunchKernel(" + name + ", grid " + gx + "x" + gy + "x" + gz + ", block " + bx + "x" + by + "x" + bz + ")");
        } catch (Throwable t) {
            throw wrap("cuLaunchKernel", t);
        }
    }

    public static MemorySegment eventCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.EVENT_CREATE.invokeExact(p, 0), "cuEventCreate");
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap("cuEventCreate", t);
        }
    }

    /** An event for waiting only (CU_EVENT_DISABLE_TIMING: the lightest kind to record and wait on). */
    public static MemorySegment eventCreateForSync() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) H.EVENT_CREATE.invokeExact(p, 2), "cuEventCreate");
            return p.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw wrap("cuEventCreate", t);
        }
    }

    /** Waits until the work queued before the event's last record has completed. */
    public static void eventSynchronize(MemorySegment e) {
        long w = LaunchTimeline.waitStart();
        try {
            check((int) H.EVENT_SYNC.invokeExact(e), "cuEventSynchronize");
            LaunchTimeline.waitEnd("event sync", w);
        } catch (Throwable t) {
            throw wrap("cuEventSynchronize", t);
        }
    }

    public static void eventRecord(MemorySegment e, MemorySegment stream) {
        try {
            check((int) H.EVENT_RECORD.invokeExact(e, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw wrap("cuEventRecord", t);
        }
    }

    /** Milliseconds between two recorded events (waits for the second). */
    public static float elapsedMs(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            check((int) H.EVENT_SYNC.invokeExact(end), "cuEventSynchronize");
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check((int) H.EVENT_ELAPSED.invokeExact(ms, start, end), "cuEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw wrap("cuEventElapsedTime", t);
        }
    }

    public static void eventDestroy(MemorySegment e) {
        try {
            check((int) H.EVENT_DESTROY.invokeExact(e), "cuEventDestroy");
        } catch (Throwable t) {
            throw wrap("cuEventDestroy", t);
        }
    }

    /** cuTensorMapEncodeTiled (CUDA 12+), in its own holder so that an older driver without it fails only its callers. */
    private static final class TensorMapH {
        static final MethodHandle ENCODE_TILED = fn("cuTensorMapEncodeTiled", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    }

    /** Bytes of a CUtensorMap, and the alignment the driver and a kernel's by-value parameter need. */
    public static final int TENSOR_MAP_BYTES = 128, TENSOR_MAP_ALIGN = 64;
    // cuda.h enums: CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B
    private static final int BF16 = 9, SWIZZLE_128B = 3, L2_PROMOTION_128B = 2;

    /**
     * Encodes into {@code map} (TENSOR_MAP_BYTES, TENSOR_MAP_ALIGN-aligned) a 2-D tensor map for the copy engine's bulk
     * tensor copies (cp.async.bulk.tensor): bf16 elements, {@code rows} rows of {@code cols} elements {@code pitchBytes}
     * apart from device address {@code address}, boxes of {@code boxCols} x {@code boxRows} elements written to shared
     * memory with the 128-byte swizzle (so boxCols x 2 must be 128 or less); reads past the last row or column give
     * zeros. The map holds the address: it is valid for that buffer only.
     */
    public static void tensorMap2dBf16Swizzle128(MemorySegment map, long address, long rows, long cols, long pitchBytes, int boxCols,
                                                 int boxRows) {
        if (map.byteSize() < TENSOR_MAP_BYTES || map.address() % TENSOR_MAP_ALIGN != 0) {
            throw new IllegalArgumentException("a tensor map needs " + TENSOR_MAP_BYTES + " bytes aligned to " + TENSOR_MAP_ALIGN);
        }
        if (address % 16 != 0 || pitchBytes % 16 != 0 || rows <= 0 || cols <= 0 || pitchBytes < 2 * cols || boxCols * 2 > 128
                || boxCols <= 0 || boxRows <= 0 || boxRows > 256) {
            throw new IllegalArgumentException("tensor map: address " + address + " and pitch " + pitchBytes + " must be multiples of 16, "
                    + rows + " x " + cols + " must fit the pitch, box " + boxCols + " x " + boxRows + " at most 64 x 256");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dims = a.allocate(JAVA_LONG, 2), strides = a.allocate(JAVA_LONG), box = a.allocate(JAVA_INT, 2),
                    elem = a.allocate(JAVA_INT, 2);
            dims.setAtIndex(JAVA_LONG, 0, cols);
            dims.setAtIndex(JAVA_LONG, 1, rows);
            strides.set(JAVA_LONG, 0, pitchBytes);
            box.setAtIndex(JAVA_INT, 0, boxCols);
            box.setAtIndex(JAVA_INT, 1, boxRows);
            elem.setAtIndex(JAVA_INT, 0, 1);
            elem.setAtIndex(JAVA_INT, 1, 1);
            check((int) TensorMapH.ENCODE_TILED.invokeExact(map, BF16, 2, address, dims, strides, box, elem, 0, SWIZZLE_128B,
                    L2_PROMOTION_128B, 0), "cuTensorMapEncodeTiled(" + rows + " x " + cols + ", box " + boxCols + " x " + boxRows + ")");
        } catch (Throwable t) {
            throw wrap("cuTensorMapEncodeTiled", t);
        }
    }
}
