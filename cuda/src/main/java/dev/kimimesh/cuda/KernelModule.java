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
 * build time) or else {@code kernels/NAME.ptx} (JIT-compiled by the driver for the GPU at hand).
 */
final class KernelModule {
    private final String name;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();

    private KernelModule(String name, MemorySegment module) {
        this.name = name;
        this.module = module;
    }

    static boolean present(String name) {
        return KernelModule.class.getClassLoader().getResource("kernels/" + name + ".cubin") != null
                || KernelModule.class.getClassLoader().getResource("kernels/" + name + ".ptx") != null;
    }

    static KernelModule load(String name, boolean preferPtx) {
        String[] order = preferPtx ? new String[] {".ptx", ".cubin"} : new String[] {".cubin", ".ptx"};
        CudaException last = null;
        for (String ext : order) {
            byte[] image = resource("kernels/" + name + ext);
            if (image == null) continue;
            try {
                return new KernelModule(name, Driver.moduleLoadData(image, name + ext));
            } catch (CudaException e) {
                last = e; // e.g. a cubin for another architecture: try the PTX
            }
        }
        if (last != null) throw last;
        throw new CudaException("kernels/" + name + ".cubin or .ptx is not on the class path (build the cuda module where nvcc is installed)");
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
     * Launches {@code kernel} with arguments boxed as Long (pointers, 64-bit ints), Integer or Float, in the kernel's
     * parameter order.
     */
    void launch(String kernel, int gx, int gy, int gz, int bx, int shared, MemorySegment stream, Object... args) {
        if (gx <= 0 || gy <= 0 || gz <= 0) return; // nothing to do
        MemorySegment f = function(kernel);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ValueLayout.ADDRESS, Math.max(1, args.length));
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot = switch (args[i]) {
                    case Long l -> a.allocateFrom(ValueLayout.JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(ValueLayout.JAVA_INT, n);
                    case Float x -> a.allocateFrom(ValueLayout.JAVA_FLOAT, x);
                    default -> throw new IllegalArgumentException(kernel + ": argument " + i + " has type " + args[i].getClass());
                };
                params.setAtIndex(ValueLayout.ADDRESS, i, slot);
            }
            Driver.launch(f, gx, gy, gz, bx, 1, 1, shared, stream, params, name + "." + kernel);
        }
    }
}
