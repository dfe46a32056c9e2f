package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.Failures;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.ReleaseSequenceResponse;
import dev.kimimesh.proto.v1.RestoreSequenceResponse;
import dev.kimimesh.proto.v1.SequenceSnapshot;
import dev.kimimesh.proto.v1.ShardInfo;
import dev.kimimesh.proto.v1.ShardInfoRequest;
import dev.kimimesh.proto.v1.ShardStats;
import dev.kimimesh.proto.v1.ShardStatsRequest;
import dev.kimimesh.proto.v1.SnapshotSequenceRequest;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import dev.kimimesh.proto.v1.SequenceChunk;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The LayerShard gRPC service: a thin adapter that runs every call touching model or state on one compute thread
 * (the engine is not thread-safe) and chains micro-batches to the next stage, relaying its results back.
 * Micro-batches of a stream are computed in arrival order while earlier ones are still downstream (pipelining).
 */
public final class LayerShardService extends LayerShardGrpc.LayerShardImplBase implements AutoCloseable {
    /** Micro-batches a stream may have queued here before gRPC stops reading it (the sender then waits). */
    static final int WINDOW = 8;

    private final ShardStage stage;
    private final NextStage next;
    private final ShardInfo info;
    private final ExecutorService compute;
    private final ShardTelemetry telemetry;
    private final List<AutoCloseable> resources = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * @param next   the following stage, or null when this stage returns its own results
     * @param info   the static description answered by Info (layers, backend, expert routes)
     */
    public LayerShardService(ShardStage stage, NextStage next, ShardInfo info) {
        this(stage, next, info, new ShardTelemetry(MeshTelemetry.none(), stage));
    }

    /** @param telemetry metrics and spans of the stage's micro-batches (see docs/observability.md) */
    public LayerShardService(ShardStage stage, NextStage next, ShardInfo info, ShardTelemetry telemetry) {
        this.telemetry = telemetry;
        this.stage = stage;
        this.next = next;
        this.info = info;
        this.compute = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "shard" + stage.range().replace(" ", "") + "-compute");
            t.setDaemon(true);
            return t;
        });
    }

    /** The Info answer for a stage, from its model and wiring. */
    public static ShardInfo describe(ShardStage stage, String modelName, String backend, String routerWeights, NextStage next,
                                     List<dev.kimimesh.proto.v1.ExpertRoute> routes) {
        KimiLinearConfig c = stage.model().config();
        return ShardInfo.newBuilder().setModelName(modelName).setLayerFrom(stage.model().from())
                .setLayerTo(stage.model().to()).setNumHiddenLayers(c.numHiddenLayers()).setHiddenSize(c.hiddenSize())
                .setVocabSize(c.vocabSize()).setFirst(stage.model().hasEmbedding()).setLast(stage.model().hasHead())
                .setNextAddress(next == null ? "" : next.address()).setBackend(backend).setRouterWeights(routerWeights)
                .addAllExpertRoutes(routes).setConfigSummary(c.describe()).build();
    }

    /** What Info answers. */
    public ShardInfo info() {
        return info;
    }

    @Override
    public StreamObserver<MicroBatch> forward(StreamObserver<MicroBatchResult> responses) {
        var call = (ServerCallStreamObserver<MicroBatchResult>) responses;
        // flow control: at most WINDOW micro-batches of a stream wait for this stage's compute thread
        call.disableAutoRequest();
        call.request(WINDOW);
        Upstream up = new Upstream(call);
        Map<Long, List<Long>> forwarded = new ConcurrentHashMap<>();
        NextStage.Link link = next == null ? null : next.open(r -> relay(r, forwarded.remove(r.getMicroBatchId()), up), up::complete);
        return new StreamObserver<>() {
            @Override
            public void onNext(MicroBatch mb) {
                long arrived = System.nanoTime();
                compute.execute(() -> {
                    call.request(1);
                    MicroBatchResult.Builder r = MicroBatchResult.newBuilder().setMicroBatchId(mb.getMicroBatchId());
                    try {
                        switch (telemetry.run(mb, arrived)) {
                            case ShardStage.Outcome.Sampled s -> up.send(r.setSampled(s.tokens()).build());
                            case ShardStage.Outcome.Forwarded f when link != null -> {
                                forwarded.put(mb.getMicroBatchId(), f.next().getSequencesList().stream()
                                        .map(SequenceChunk::getSequenceId).toList());
                                link.send(f.next());
                            }
                            case ShardStage.Outcome.Forwarded f -> up.send(r.setHidden(f.next().getHidden()).build());
                        }
                    } catch (DroppedSequences e) {
                        MicroBatchResult failed = r.setFailure(Failures.failure(e.status())).build();
                        up.defer();
                        releaseDownstreamThen(e.sequenceIds(), () -> up.sendDeferred(failed));
                    } catch (RuntimeException e) {
                        up.send(r.setFailure(Failures.failure(Failures.statusOf(e))).build());
                    }
                });
            }

            @Override
            public void onError(Throwable t) {
                if (link != null) link.cancel();
            }

            @Override
            public void onCompleted() {
                compute.execute(() -> {
                    if (link != null) link.halfClose();
                    else up.complete();
                });
            }
        };
    }

    /**
     * Passes a downstream result upstream. A failure of a micro-batch this stage ran and forwarded means its
     * sequences advanced here but not everywhere: they are released here (and, unless a later stage already did,
     * on every later stage) before the failure goes up.
     */
    private void relay(MicroBatchResult r, List<Long> sequenceIds, Upstream up) {
        if (!r.hasFailure() || sequenceIds == null) {
            up.send(r);
            return;
        }
        String msg = r.getFailure().getMessage();
        boolean releasedBelow = msg.contains(DroppedSequences.RELEASED);
        MicroBatchResult failed = releasedBelow ? r : r.toBuilder().setFailure(r.getFailure().toBuilder()
                .setMessage(msg + "; sequences " + sequenceIds + " " + DroppedSequences.RELEASED)).build();
        up.defer();
        compute.execute(() -> {
            for (long id : sequenceIds) stage.release(id);
            if (releasedBelow) up.sendDeferred(failed);
            else releaseDownstreamThen(sequenceIds, () -> up.sendDeferred(failed));
        });
    }

    /**
     * Releases sequences on the later stages, then reports: the failure must not reach the client before the release,
     * or a restart of the sequence could be overtaken by it. Runs off the compute thread; a stage that is down holds
     * nothing, so its error is ignored.
     */
    private void releaseDownstreamThen(List<Long> ids, Runnable then) {
        if (next == null || ids.isEmpty()) {
            then.run();
            return;
        }
        Thread.ofVirtual().start(() -> {
            try {
                next.release(ReleaseSequenceRequest.newBuilder().addAllSequenceIds(ids).setPropagate(true).build());
            } catch (RuntimeException ignored) {
                // reported as released either way: see above
            } finally {
                then.run();
            }
        });
    }

    /** The upstream response stream; gRPC observers are not thread-safe, and results arrive from two threads. */
    private static final class Upstream {
        private final ServerCallStreamObserver<MicroBatchResult> out;
        private boolean done;

        Upstream(ServerCallStreamObserver<MicroBatchResult> out) {
            this.out = out;
        }

        private int deferred;
        private boolean completeWanted;

        synchronized void send(MicroBatchResult r) {
            if (done || out.isCancelled()) return;
            out.onNext(r);
        }

        /** A result that will be sent later (after releases): the stream is not completed before it. */
        synchronized void defer() {
            deferred++;
        }

        synchronized void sendDeferred(MicroBatchResult r) {
            deferred--;
            send(r);
            if (completeWanted && deferred == 0) complete();
        }

        synchronized void complete() {
            if (done) return;
            if (deferred > 0) {
                completeWanted = true;
                return;
            }
            done = true;
            if (!out.isCancelled()) out.onCompleted();
        }
    }

    @Override
    public void releaseSequence(ReleaseSequenceRequest req, StreamObserver<ReleaseSequenceResponse> out) {
        unary(out, () -> {
            int released = 0;
            for (long id : req.getSequenceIdsList()) if (stage.release(id)) released++;
            return released;
        }, released -> {
            if (req.getPropagate() && next != null) next.release(req); // off the compute thread: it waits on the network
            return ReleaseSequenceResponse.newBuilder().setReleased(released).build();
        });
    }

    @Override
    public void snapshotSequence(SnapshotSequenceRequest req, StreamObserver<SequenceSnapshot> out) {
        unary(out, () -> stage.snapshot(req.getSequenceId()), s -> s);
    }

    @Override
    public void restoreSequence(SequenceSnapshot req, StreamObserver<RestoreSequenceResponse> out) {
        unary(out, () -> stage.restore(req), p -> RestoreSequenceResponse.newBuilder().setPosition(p).build());
    }

    @Override
    public void stats(ShardStatsRequest req, StreamObserver<ShardStats> out) {
        unary(out, stage::stats, s -> s);
    }

    @Override
    public void info(ShardInfoRequest req, StreamObserver<ShardInfo> out) {
        out.onNext(info);
        out.onCompleted();
    }

    private <T, R> void unary(StreamObserver<R> out, Callable<T> onCompute, java.util.function.Function<T, R> after) {
        try {
            Future<T> f = compute.submit(onCompute);
            R r = after.apply(f.get());
            out.onNext(r);
            out.onCompleted();
        } catch (ExecutionException e) {
            out.onError(Failures.statusOf(e.getCause()).asRuntimeException());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            out.onError(Status.CANCELLED.withDescription("interrupted").asRuntimeException());
        } catch (RuntimeException e) {
            out.onError(Failures.statusOf(e).asRuntimeException());
        }
    }

    /** Closes {@code r} (an expert client, a checkpoint) with this service. */
    public LayerShardService closing(AutoCloseable r) {
        resources.add(r);
        return this;
    }

    @Override
    public void close() {
        compute.shutdownNow();
        if (next != null) next.close();
        for (AutoCloseable r : resources) {
            try {
                r.close();
            } catch (Exception ignored) {
                // closing the rest matters more
            }
        }
    }
}
