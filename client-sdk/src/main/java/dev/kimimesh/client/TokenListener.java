package dev.kimimesh.client;

import dev.kimimesh.proto.v1.GenerateResponse;

/** Callbacks of a streaming Generate or Chat; called on a gRPC thread, one at a time. */
public interface TokenListener {
    /** New tokens (and the text they complete); the last item also carries finish reason and usage. */
    void onResponse(GenerateResponse response);

    /** The stream ended normally (after the final item). */
    default void onCompleted() {}

    /** The call failed: a {@link io.grpc.StatusRuntimeException} carries the server's status and message. */
    default void onError(Throwable error) {}
}
