package dev.kimimesh.cuda;

/** A failed CUDA driver or cuBLAS call, naming the call and the status it returned. */
public final class CudaException extends RuntimeException {
    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
