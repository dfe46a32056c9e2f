package dev.kimimesh.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * One CUDA source file's kernels, loaded from the class path: {@code kernels/NAME.cubin} (built for sm_90 by nvcc at
 * build time) or else {@code kernels/NAME.ptx} (JIT-compiled by the driver for the GPU at hand); where the jar has
 * neither (built without nvcc), compiled from {@code kernels/NAME.cu} by NVRTC at run time ({@link RuntimeKernels}).
 * {@code -Dkimimesh.cuda.kernelSource=auto|built|nvrtc} picks: auto (the default) as just said, built only the nvcc
 * images, nvrtc always the run-time compiler (to check it against the nvcc build).
 */
final class KernelModule {
    private final String name;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();

    private KernelModule(String name, MemorySegment module) {
        this.name = name;
        this.module = module;
    }

    /** Whether nvcc built this module into the jar. */
    static boolean built(String name) {
        return KernelModule.class.getClassLoader().getResource("kernels/" + name + ".cubin") != null
                || KernelModule.class.getClassLoader().getResource("kernels/" + name + ".ptx") != null;
    }

    /** Null when {@code name} can be loaded here (built, or its source and NVRTC are at hand, as the setting allows), else why not. */
    static String unavailable(String name) {
        String source = kernelSource();
        if (!source.equals("nvrtc") && built(name)) return null;
        if (source.equals("built")) return "the CUDA kernels were not built into this jar (no nvcc at build time) and -Dkimimesh.cuda.kernelSource=built forbids NVRTC";
        if (!RuntimeKernels.hasSource(name)) return "kernels/" + name + ".cu is not on the class path";
        if (!Nvrtc.loaded()) {
            return (source.equals("nvrtc") ? "" : "the CUDA kernels were not built into this jar (no nvcc at build time) and ")
                    + "NVRTC could not be loaded: " + Nvrtc.loadError();
        }
        return null;
    }

    /** The kernelSource setting, checked. */
    static String kernelSource() {
        String s = System.getProperty("kimimesh.cuda.kernelSource", "auto");
        if (!s.equals("auto") && !s.equals("built") && !s.equals("nvrtc")) {
            throw new IllegalArgumentException("-Dkimimesh.cuda.kernelSource must be auto, built or nvrtc, not '" + s + "'");
        }
        return s;
    }

    static KernelModule load(String name, boolean preferPtx) {
        String source = kernelSource();
        CudaException last = null;
        if (!source.equals("nvrtc")) {
            String[] order = preferPtx ? new String[] {".ptx", ".cubin"} : new String[] {".cubin", ".ptx"};
            for (String ext : order) {
                byte[] image = resource("kernels/" + name + ext);
                if (image == null) continue;
                try {
                    return new KernelModule(name, Driver.moduleLoadData(image, name + ext));
                } catch (CudaException e) {
                    last = e; // e.g. a cubin for another architecture: try the PTX
                }
            }
            if (last != null || source.equals("built")) {
                if (last != null) throw last;
                throw new CudaException("kernels/" + name + ".cubin or .ptx is not on the class path (build the cuda module where nvcc is installed, or allow NVRTC)");
            }
        }
        String why = unavailable(name);
        if (why != null) throw new CudaException(why);
        int device = Driver.currentDevice();
        String arch = RuntimeKernels.arch(name, Driver.attribute(device, 75), Driver.attribute(device, 76));
        return new KernelModule(name, Driver.moduleLoadData(RuntimeKernels.cubin(name, arch), name + ".cu (NVRTC, " + arch + ")"));
    }

    /**
     * {@link #load}, or null where no image of the module loads on this GPU: for a module built for one architecture
     * only (mla_flash_sm90a: sm_90a cubin and compute_90a PTX, Hopper alone), whose callers fall back to another kernel.
     */
    static KernelModule loadIfSupported(String name, boolean preferPtx) {
        try {
            return load(name, preferPtx);
        } catch (CudaException e) {
            return null;
        }
    }

    private static byte[] resource(String path) {
        try (InputStream in = KernelModule.class.getClassLoader().getResourceAsStream(path)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("cannot read " + path + ": " + e.getMessage(), e);
        }
    }

    MemorySegment function(String kernel) {
        return functions.computeIfAbsent(kernel, k -> Driver.moduleFunction(module, k));
    }

    /**
     * Launches {@code kernel} with arguments boxed as Long (pointers, 64-bit ints), Integer or Float, or given as a
     * MemorySegment holding a by-value parameter's bytes (a tensor map: Driver.tensorMap2dBf16Swizzle128), in the
     * kernel's parameter order.
     */
    void launch(String kernel, int gx, int gy, int gz, int bx, int shared, MemorySegment stream, Object... args) {
        if (gx <= 0 || gy <= 0 || gz <= 0) return; // nothing to do
        MemorySegment f = function(kernel);
        if (args.length > Params.MAX) throw new IllegalArgumentException(kernel + ": more than " + Params.MAX + " arguments");
        Params p = PARAMS.get();
        for (int i = 0; i < args.length; i++) {
            long at = 8L * i;
            switch (args[i]) {
                case Long l -> p.values.set(ValueLayout.JAVA_LONG, at, l);
                case Integer n -> p.values.set(ValueLayout.JAVA_INT, at, n);
                case Float x -> p.values.set(ValueLayout.JAVA_FLOAT, at, x);
                // the driver reads the parameter's bytes (as many as the kernel declares) through the pointer
                case MemorySegment m -> p.pointers.setAtIndex(ValueLayout.ADDRESS, i, m);
                default -> throw new IllegalArgumentException(kernel + ": argument " + i + " has type " + args[i].getClass());
            }
        }
        // cuLaunchKernel copies the argument values before it returns, so the per-thread block is reused at once
        try {
            Driver.launch(f, gx, gy, gz, bx, 1, 1, shared, stream, p.pointers, kernel);
        } finally {
            for (int i = 0; i < args.length; i++) {
                if (args[i] instanceof MemorySegment) p.pointers.setAtIndex(ValueLayout.ADDRESS, i, p.values.asSlice(8L * i, 8));
            }
        }
    }

    private static final ThreadLocal<Params> PARAMS = ThreadLocal.withInitial(Params::new);

    /** A thread's kernel-argument block: 8-byte value slots and the pointer array cuLaunchKernel reads them through. */
    private static final class Params {
        static final int MAX = 32;
        final MemorySegment values, pointers;

        Params() {
            Arena a = Arena.ofAuto();
            values = a.allocate(8L * MAX, 16);
            pointers = a.allocate(ValueLayout.ADDRESS, MAX);
            for (int i = 0; i < MAX; i++) pointers.setAtIndex(ValueLayout.ADDRESS, i, values.asSlice(8L * i, 8));
        }
    }
}
