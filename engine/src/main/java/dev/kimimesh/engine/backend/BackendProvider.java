package dev.kimimesh.engine.backend;

/**
 * Makes a {@link Backend}; found through {@link java.util.ServiceLoader} so that the engine needs no compile-time
 * dependency on optional backends (the CUDA module registers one in META-INF/services).
 */
public interface BackendProvider {
    /** Short name used by `--backend` ("cpu", "cuda"). */
    String name();

    /** Higher wins when `--backend auto` picks among available providers. */
    int priority();

    /** Whether this backend can run here (e.g. a GPU and its driver are present); never throws. */
    boolean available();

    /** Why {@link #available()} is false, for error messages. */
    default String unavailableReason() {
        return name() + " is not available";
    }

    Backend create();
}
