package dev.kimimesh.mesh.shard;

import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The driver's side of a shard pipeline (what a gateway's scheduler uses): one Forward stream into the first stage,
 * micro-batch ids assigned here, one future per micro-batch. A broken stream fails the pending futures with its
 * status, and the next submit opens a new stream.
 */
public final class PipelineClient implements AutoCloseable {
    private final Channel firstStage;
    private final Map<Long, CompletableFuture<MicroBatchResult>> pending = new HashMap<>();
    private StreamObserver<MicroBatch> stream;
    private long nextId;

    public PipelineClient(Channel firstStage) {
        this.firstStage = firstStage;
    }

    /** Sends a micro-batch (its id is set here); the future completes with its result, failure results included. */
    public synchronized CompletableFuture<MicroBatchResult> submit(MicroBatch.Builder mb) {
        if (stream == null) stream = open();
        long id = ++nextId;
        CompletableFuture<MicroBatchResult> f = new CompletableFuture<>();
        pending.put(id, f);
        stream.onNext(mb.setMicroBatchId(id).build());
        return f;
    }

    /** Frees sequences on every stage; returns how many the first stage held. */
    public int release(Iterable<Long> sequenceIds) {
        return LayerShardGrpc.newBlockingStub(firstStage).releaseSequence(ReleaseSequenceRequest.newBuilder()
                .addAllSequenceIds(sequenceIds).setPropagate(true).build()).getReleased();
    }

    private StreamObserver<MicroBatch> open() {
        return LayerShardGrpc.newStub(firstStage).forward(new StreamObserver<>() {
            @Override
            public void onNext(MicroBatchResult r) {
                CompletableFuture<MicroBatchResult> f;
                synchronized (PipelineClient.this) {
                    f = pending.remove(r.getMicroBatchId());
                }
                if (f != null) f.complete(r);
            }

            @Override
            public void onError(Throwable t) {
                failAll(Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                failAll(Status.INTERNAL.withDescription("the first stage ended the stream"));
            }
        });
    }

    private void failAll(Status s) {
        Map<Long, CompletableFuture<MicroBatchResult>> lost;
        synchronized (this) {
            lost = new HashMap<>(pending);
            pending.clear();
            stream = null;
        }
        lost.values().forEach(f -> f.completeExceptionally(s.asRuntimeException()));
    }

    @Override
    public synchronized void close() {
        if (stream != null) stream.onCompleted();
        stream = null;
    }
}
