package dev.kimimesh.engine.golden;

/** A goldens directory that cannot be read as one: missing index.json, a bad field, a missing file or tensor. */
public final class GoldenException extends RuntimeException {
    public GoldenException(String message) {
        super(message);
    }

    public GoldenException(String message, Throwable cause) {
        super(message, cause);
    }
}
