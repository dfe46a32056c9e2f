package dev.kimimesh.gateway.schedule;

/** Admission control: the scheduler's queue is full; the caller should retry later (gRPC RESOURCE_EXHAUSTED, HTTP 429). */
public final class QueueFullException extends RuntimeException {
    public QueueFullException(String message) {
        super(message);
    }
}
