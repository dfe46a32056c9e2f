package dev.kimimesh.gateway.observe;

import dev.kimimesh.proto.v1.KimiMeshGrpc;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.concurrent.atomic.AtomicBoolean;

/** Counts the calls of the public KimiMesh gRPC service by method and final status (health and reflection are not counted). */
@ApplicationScoped
@GlobalInterceptor
public class GrpcRequestOutcomes implements ServerInterceptor {
    @Inject
    RequestCounter counter;

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (!KimiMeshGrpc.SERVICE_NAME.equals(call.getMethodDescriptor().getServiceName())) return next.startCall(call, headers);
        String endpoint = call.getMethodDescriptor().getFullMethodName();
        AtomicBoolean counted = new AtomicBoolean();
        ServerCall<Q, R> counting = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                if (counted.compareAndSet(false, true)) counter.count(endpoint, RequestCounter.outcome(status.getCode()));
                super.close(status, trailers);
            }
        };
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(next.startCall(counting, headers)) {
            @Override
            public void onCancel() {
                if (counted.compareAndSet(false, true)) counter.count(endpoint, "cancelled");
                super.onCancel();
            }
        };
    }
}
