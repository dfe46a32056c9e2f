package dev.kimimesh.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;

/**
 * Bindings of NVRTC (libnvrtc.so.13, the CUDA run-time compiler) through FFM: one CUDA C++ source with in-memory
 * headers compiled to a cubin for a named GPU architecture. Used where the jar carries no nvcc-built kernels
 * ({@link RuntimeKernels}); compiling needs no GPU.
 */
final class Nvrtc {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final NativeLibrary.Probe LIB = NativeLibrary.tryLoad("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so");

    private Nvrtc() {}

    /** What one compilation gave: the cubin and NVRTC's log (warnings; empty when clean). */
    record Output(byte[] cubin, String log) {}

    static boolean loaded() {
        return LIB.loaded();
    }

    static String loadError() {
        return LIB.error();
    }

    private static MethodHandle fn(String name, FunctionDescriptor d) {
        if (!LIB.loaded()) throw new CudaException("NVRTC is not available: " + loadError());
        return LINKER.downcallHandle(LIB.lookup().find(name).orElseThrow(() -> new CudaException("libnvrtc has no symbol " + name)), d);
    }

    private static final class H {
        static final MethodHandle VERSION = fn("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle ERROR_STRING = fn("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        static final MethodHandle CREATE = fn("nvrtcCreateProgram",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle COMPILE = fn("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        static final MethodHandle LOG_SIZE = fn("nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle LOG = fn("nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle CUBIN_SIZE = fn("nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle CUBIN = fn("nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle PTX_SIZE = fn("nvrtcGetPTXSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle PTX = fn("nvrtcGetPTX", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle DESTROY = fn("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    /** "13.1": the compiler's version (part of the kernel cache key: another NVRTC may generate other code). */
    static String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT), minor = a.allocate(JAVA_INT);
            check((int) H.VERSION.invokeExact(major, minor), "nvrtcVersion");
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Driver.wrap("nvrtcVersion", t);
        }
    }

    /**
     * Compiles {@code source} (named {@code name} in messages) with {@code headers} (include name to text) and
     * {@code options} (e.g. {@code --gpu-architecture=sm_90}, which makes NVRTC emit a cubin). A compile error
     * throws a CudaException carrying the log.
     */
    static Output compile(String name, String source, Map<String, String> headers, List<String> options) {
        return run(name, source, headers, options, true);
    }

    /** The same compilation's PTX instead of its cubin (options naming a virtual architecture, compute_90). */
    static String ptx(String name, String source, Map<String, String> headers, List<String> options) {
        return new String(run(name, source, headers, options, false).cubin(), java.nio.charset.StandardCharsets.UTF_8);
    }

    private static Output run(String name, String source, Map<String, String> headers, List<String> options, boolean cubin) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment prog = a.allocate(ADDRESS);
            int n = headers.size();
            MemorySegment texts = a.allocate(ADDRESS, Math.max(1, n)), names = a.allocate(ADDRESS, Math.max(1, n));
            int i = 0;
            for (Map.Entry<String, String> h : headers.entrySet()) {
                texts.setAtIndex(ADDRESS, i, a.allocateFrom(h.getValue()));
                names.setAtIndex(ADDRESS, i, a.allocateFrom(h.getKey()));
                i++;
            }
            MemorySegment headerTexts = n == 0 ? MemorySegment.NULL : texts, headerNames = n == 0 ? MemorySegment.NULL : names;
            check((int) H.CREATE.invokeExact(prog, a.allocateFrom(source), a.allocateFrom(name), n, headerTexts, headerNames),
                    "nvrtcCreateProgram(" + name + ")");
            MemorySegment p = prog.get(ADDRESS, 0);
            try {
                MemorySegment opts = a.allocate(ADDRESS, Math.max(1, options.size()));
                for (int k = 0; k < options.size(); k++) opts.setAtIndex(ADDRESS, k, a.allocateFrom(options.get(k)));
                int rc = (int) H.COMPILE.invokeExact(p, options.size(), opts);
                String log = log(a, p);
                if (rc != 0) throw new CudaException("NVRTC could not compile " + name + " (" + errorString(rc) + "):\n" + log);
                MemorySegment size = a.allocate(JAVA_LONG);
                MethodHandle sizeOf = cubin ? H.CUBIN_SIZE : H.PTX_SIZE, get = cubin ? H.CUBIN : H.PTX;
                check((int) sizeOf.invokeExact(p, size), cubin ? "nvrtcGetCUBINSize" : "nvrtcGetPTXSize");
                long bytes = size.get(JAVA_LONG, 0);
                MemorySegment image = a.allocate(Math.max(1, bytes));
                check((int) get.invokeExact(p, image), cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX");
                // the PTX size counts its terminating NUL, which the text does not keep
                long keep = !cubin && bytes > 0 && image.get(JAVA_BYTE, bytes - 1) == 0 ? bytes - 1 : bytes;
                return new Output(image.asSlice(0, keep).toArray(JAVA_BYTE), log);
            } finally {
                int ignored = (int) H.DESTROY.invokeExact(prog);
            }
        } catch (Throwable t) {
            throw Driver.wrap("nvrtc(" + name + ")", t);
        }
    }

    private static String log(Arena a, MemorySegment prog) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        check((int) H.LOG_SIZE.invokeExact(prog, size), "nvrtcGetProgramLogSize");
        long bytes = size.get(JAVA_LONG, 0);
        if (bytes <= 1) return "";
        MemorySegment text = a.allocate(bytes);
        check((int) H.LOG.invokeExact(prog, text), "nvrtcGetProgramLog");
        return text.getString(0).strip();
    }

    private static void check(int status, String call) {
        if (status != 0) throw new CudaException(call + " failed: " + errorString(status) + " (" + status + ")");
    }

    private static String errorString(int status) {
        try {
            MemorySegment s = (MemorySegment) H.ERROR_STRING.invokeExact(status);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "nvrtcResult " + status;
        }
    }
}
