package dev.kimimesh.mesh.shard;

import dev.kimimesh.mesh.wire.Failures;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.ReleaseSequenceResponse;
import dev.kimimesh.proto.v1.ShardInfo;
import dev.kimimesh.proto.v1.ShardInfoRequest;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/** The downstream pipeline stage as this shard sees it: a channel, a start-up check, and one Forward stream per upstream stream. */
public final class NextStage implements AutoCloseable {
    private final String address;
    private final ManagedChannel channel;
    private final Duration callTimeout;

    public NextStage(String address, ManagedChannel channel, Duration callTimeout) {
        this.address = address;
        this.channel = channel;
        this.callTimeout = callTimeout;
    }

    public String address() {
        return address;
    }

    /**
     * Asks the next stage who it is within {@code timeout} and checks that it continues at layer {@code to};
     * throws IllegalStateException naming the address when it is down or serves the wrong layers.
     */
    public ShardInfo check(int to, Duration timeout) {
        ShardInfo info;
        try {
            info = LayerShardGrpc.newBlockingStub(channel).withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    .info(ShardInfoRequest.getDefaultInstance());
        } catch (StatusRuntimeException e) {
            throw new IllegalStateException("next stage " + address + " is not reachable within " + timeout.toMillis()
                    + " ms: " + e.getStatus().getCode() + (e.getStatus().getDescription() == null ? "" : " " + e.getStatus().getDescription()), e);
        }
        if (info.getLayerFrom() != to) {
            throw new IllegalStateException("next stage " + address + " serves layers [" + info.getLayerFrom() + ", "
                    + info.getLayerTo() + "), but this shard ends at layer " + to);
        }
        return info;
    }

    public ReleaseSequenceResponse release(ReleaseSequenceRequest req) {
        try {
            return LayerShardGrpc.newBlockingStub(channel).withDeadlineAfter(callTimeout.toMillis(), TimeUnit.MILLISECONDS)
                    .releaseSequence(req);
        } catch (StatusRuntimeException e) {
            throw e.getStatus().withDescription("next stage " + address + ": " + describe(e.getStatus())).asRuntimeException();
        }
    }

    /** Opens a Forward stream whose results go to {@code results}; a broken stream fails its pending micro-batches. */
    public Link open(Consumer<MicroBatchResult> results, Runnable completed) {
        return new Link(results, completed);
    }

    /** One Forward stream to the next stage, relaying its results upstream. */
    public final class Link {
        private final Consumer<MicroBatchResult> results;
        private final Runnable completed;
        private final Set<Long> pending = new LinkedHashSet<>();
        private ClientCallStreamObserver<MicroBatch> call;
        private boolean halfClosed;

        private Link(Consumer<MicroBatchResult> results, Runnable completed) {
            this.results = results;
            this.completed = completed;
        }

        public synchronized void send(MicroBatch mb) {
            if (call == null) call = start();
            pending.add(mb.getMicroBatchId());
            call.onNext(mb);
        }

        /** Completes upstream once every pending micro-batch has its result. */
        public synchronized void halfClose() {
            halfClosed = true;
            if (call != null) call.onCompleted();
            else completed.run();
        }

        public synchronized void cancel() {
            if (call != null) call.cancel("upstream cancelled", null);
        }

        private ClientCallStreamObserver<MicroBatch> start() {
            return (ClientCallStreamObserver<MicroBatch>) LayerShardGrpc.newStub(channel).forward(new StreamObserver<>() {
                @Override
                public void onNext(MicroBatchResult r) {
                    synchronized (Link.this) {
                        pending.remove(r.getMicroBatchId());
                    }
                    results.accept(r);
                }

                @Override
                public void onError(Throwable t) {
                    Status s = Status.fromThrowable(t);
                    Set<Long> lost;
                    boolean done;
                    synchronized (Link.this) {
                        lost = new LinkedHashSet<>(pending);
                        pending.clear();
                        call = null;
                        done = halfClosed;
                    }
                    Status failure = Status.UNAVAILABLE.withDescription("next stage " + address + " failed: " + describe(s));
                    for (long id : lost) {
                        results.accept(MicroBatchResult.newBuilder().setMicroBatchId(id).setFailure(Failures.failure(failure)).build());
                    }
                    if (done) completed.run();
                }

                @Override
                public void onCompleted() {
                    Set<Long> lost;
                    synchronized (Link.this) {
                        lost = new LinkedHashSet<>(pending);
                        pending.clear();
                        call = null;
                    }
                    Status failure = Status.INTERNAL.withDescription("next stage " + address + " ended its stream without answering");
                    for (long id : lost) {
                        results.accept(MicroBatchResult.newBuilder().setMicroBatchId(id).setFailure(Failures.failure(failure)).build());
                    }
                    completed.run();
                }
            });
        }
    }

    static String describe(Status s) {
        return s.getCode() + (s.getDescription() == null ? "" : ": " + s.getDescription());
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }
}
