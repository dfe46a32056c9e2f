package dev.kimimesh.mesh.wire;

import dev.kimimesh.proto.v1.Failure;
import io.grpc.Status;

/** Turns exceptions into the gRPC status codes the mesh promises: bad input is INVALID_ARGUMENT, never INTERNAL. */
public final class Failures {
    private Failures() {}

    public static Status statusOf(Throwable t) {
        if (t instanceof io.grpc.StatusException se) return se.getStatus();
        if (t instanceof io.grpc.StatusRuntimeException se) return se.getStatus();
        if (t instanceof IllegalArgumentException) return Status.INVALID_ARGUMENT.withDescription(t.getMessage());
        if (t instanceof IllegalStateException) return Status.FAILED_PRECONDITION.withDescription(t.getMessage());
        return Status.INTERNAL.withDescription(t.toString()).withCause(t);
    }

    public static Failure failure(Status s) {
        return Failure.newBuilder().setCode(s.getCode().value())
                .setMessage(s.getDescription() == null ? s.getCode().name() : s.getDescription()).build();
    }

    public static Status status(Failure f) {
        return Status.fromCodeValue(f.getCode()).withDescription(f.getMessage());
    }
}
