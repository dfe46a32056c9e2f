package dev.kimimesh.client;

import io.grpc.stub.ClientCallStreamObserver;

/** A streaming call in progress; {@link #cancel()} stops it and makes the server free the sequence. */
public final class StreamHandle {
    private volatile ClientCallStreamObserver<?> call;

    void attach(ClientCallStreamObserver<?> call) {
        this.call = call;
    }

    public void cancel() {
        ClientCallStreamObserver<?> c = call;
        if (c != null) c.cancel("cancelled by the client", null);
    }
}
