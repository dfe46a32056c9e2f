package dev.kimimesh.mesh.experts;

import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** One expert service as a shard sees it: a Dispatch stream shared by all layers, with results matched by request id. */
public final class ExpertClient implements AutoCloseable {
    private final String address;
    private final ManagedChannel channel;
    private final Map<Long, CompletableFuture<ExpertResult>> pending = new HashMap<>();
    private StreamObserver<ExpertRequest> stream;
    private long nextId;

    public ExpertClient(String address, ManagedChannel channel) {
        this.address = address;
        this.channel = channel;
    }

    public String address() {
        return address;
    }

    /** What the service serves, asked within {@code timeout}; throws IllegalStateException naming the address when it is down. */
    public ExpertInfo info(Duration timeout) {
        try {
            return ExpertsGrpc.newBlockingStub(channel).withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    .info(ExpertInfoRequest.getDefaultInstance());
        } catch (StatusRuntimeException e) {
            throw new IllegalStateException("expert service " + address + " is not reachable within " + timeout.toMillis()
                    + " ms: " + e.getStatus().getCode() + (e.getStatus().getDescription() == null ? "" : " " + e.getStatus().getDescription()), e);
        }
    }

    /** Sends a request (its id is assigned here); the future fails with a status naming this service. */
    public synchronized CompletableFuture<ExpertResult> send(ExpertRequest.Builder req) {
        if (stream == null) stream = open();
        long id = ++nextId;
        CompletableFuture<ExpertResult> f = new CompletableFuture<>();
        pending.put(id, f);
        stream.onNext(req.setRequestId(id).build());
        return f;
    }

    private StreamObserver<ExpertRequest> open() {
        return ExpertsGrpc.newStub(channel).dispatch(new StreamObserver<>() {
            @Override
            public void onNext(ExpertResult r) {
                CompletableFuture<ExpertResult> f;
                synchronized (ExpertClient.this) {
                    f = pending.remove(r.getRequestId());
                }
                if (f == null) return;
                if (r.getCode() != 0) {
                    f.completeExceptionally(Status.fromCodeValue(r.getCode())
                            .withDescription("expert service " + address + ": " + r.getMessage()).asRuntimeException());
                } else {
                    f.complete(r);
                }
            }

            @Override
            public void onError(Throwable t) {
                failAll(Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                failAll(Status.INTERNAL.withDescription("stream ended"));
            }
        });
    }

    private void failAll(Status s) {
        Map<Long, CompletableFuture<ExpertResult>> lost;
        synchronized (this) {
            lost = new HashMap<>(pending);
            pending.clear();
            stream = null;
        }
        StatusRuntimeException e = Status.UNAVAILABLE.withDescription("expert service " + address + " failed: " + s.getCode()
                + (s.getDescription() == null ? "" : " " + s.getDescription())).asRuntimeException();
        lost.values().forEach(f -> f.completeExceptionally(e));
    }

    @Override
    public void close() {
        synchronized (this) {
            if (stream != null) {
                try {
                    stream.onCompleted();
                } catch (RuntimeException ignored) {
                    // the channel is going away anyway
                }
            }
        }
        channel.shutdownNow();
    }
}
