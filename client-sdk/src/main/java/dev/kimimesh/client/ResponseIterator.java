package dev.kimimesh.client;

import dev.kimimesh.proto.v1.GenerateResponse;
import io.grpc.Context;
import java.util.Iterator;

/**
 * A streaming answer read as an iterator (blocking); {@link #close()} before the end cancels the call on the server.
 * {@code next()} throws {@link io.grpc.StatusRuntimeException} when the call fails.
 */
public final class ResponseIterator implements Iterator<GenerateResponse>, AutoCloseable {
    private final Iterator<GenerateResponse> delegate;
    private final Context.CancellableContext context;

    ResponseIterator(Iterator<GenerateResponse> delegate, Context.CancellableContext context) {
        this.delegate = delegate;
        this.context = context;
    }

    @Override
    public boolean hasNext() {
        return delegate.hasNext();
    }

    @Override
    public GenerateResponse next() {
        return delegate.next();
    }

    /** Cancels the call (the server frees the sequence) unless it has already ended. */
    @Override
    public void close() {
        context.cancel(null);
    }
}
