package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.BackendProvider;

/** Registers the CUDA backend as "cuda": available when libcuda loads, a device exists and the kernels are built (or NVRTC can compile them). */
public final class CudaBackendProvider implements BackendProvider {
    private volatile String reason;

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 10;
    }

    @Override
    public boolean available() {
        reason = probe();
        return reason == null;
    }

    /** Null when the backend can run here, else why not. Never throws. */
    static String probe() {
        try {
            if (!Driver.loaded()) return "libcuda.so.1 could not be loaded (" + Driver.loadError() + ")";
            Driver.init();
            if (Driver.deviceCount() == 0) return "no CUDA device was found";
            String kernels = KernelModule.unavailable("kda");
            if (kernels != null) return kernels;
            try {
                NativeLibrary.load("libcublas.so.13", "libcublas.so");
            } catch (CudaException e) {
                return e.getMessage();
            }
            return null;
        } catch (Throwable t) {
            return "CUDA probe failed: " + t.getMessage();
        }
    }

    @Override
    public String unavailableReason() {
        String r = reason != null ? reason : probe();
        return r == null ? "cuda is available" : r;
    }

    @Override
    public Backend create() {
        return new CudaBackend();
    }
}
