package dev.kimimesh.gateway.mesh;

/** A shard or expert service of the configured topology cannot be reached or does not fit; names which one. */
public final class MeshUnavailableException extends RuntimeException {
    public MeshUnavailableException(String message) {
        super(message);
    }

    public MeshUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
