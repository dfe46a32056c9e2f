package dev.kimimesh.engine.checkpoint;

/** A checkpoint or safetensors file that cannot be used as it is: the message names the file and the tensor. */
public final class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
