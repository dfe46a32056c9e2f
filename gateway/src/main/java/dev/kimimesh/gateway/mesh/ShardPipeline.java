package dev.kimimesh.gateway.mesh;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.gateway.schedule.BatchEntry;
import dev.kimimesh.gateway.schedule.MicroBatch;
import dev.kimimesh.gateway.schedule.Pipeline;
import dev.kimimesh.gateway.schedule.SampledToken;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRoute;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.ReleaseSequenceResponse;
import dev.kimimesh.proto.v1.SequenceChunk;
import dev.kimimesh.proto.v1.ShardInfo;
import dev.kimimesh.proto.v1.ShardInfoRequest;
import dev.kimimesh.proto.v1.ShardStats;
import dev.kimimesh.proto.v1.ShardStatsRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * The pipeline of remote layer shards. The gateway sends a micro-batch (token ids) to the first shard; a shard that
 * answers with hidden states is followed by the next shard the gateway drives, until one answers with sampled tokens
 * (a shard configured with its own next stage relays the final answer itself). Every hop is timed.
 */
public final class ShardPipeline implements Pipeline {
    private static final Logger LOG = Logger.getLogger(ShardPipeline.class.getName());
    private static final int MAX_MESSAGE = 512 << 20;

    private final List<ShardStage> shards; // all shards, layer order
    private final List<ShardStage> driven; // the shards the gateway sends to (a chained shard's successors are not)
    private final Map<String, ExpertInfoSummary> experts;
    private final DType activationDtype;
    private final Map<Long, InFlight> pending = new ConcurrentHashMap<>();
    private volatile HopObserver hops = HopObserver.NONE;

    /** What an expert service said about itself at start. */
    public record ExpertInfoSummary(String address, List<Integer> layers, String experts) {}

    private static final class InFlight {
        final dev.kimimesh.proto.v1.MicroBatch message;
        final CompletableFuture<List<SampledToken>> done = new CompletableFuture<>();
        volatile int stage; // index into driven
        volatile long sentAt;
        volatile HopObserver.Hop hop = HopObserver.NONE.started(0, "", null);

        InFlight(dev.kimimesh.proto.v1.MicroBatch message) {
            this.message = message;
        }
    }

    private ShardPipeline(List<ShardStage> shards, Map<String, ExpertInfoSummary> experts, DType activationDtype) {
        this.shards = shards;
        this.experts = experts;
        this.activationDtype = activationDtype;
        List<ShardStage> d = new ArrayList<>();
        for (int i = 0; i < shards.size(); ) {
            d.add(shards.get(i));
            // a shard with a next stage forwards by itself: skip the shards it reaches
            while (i < shards.size() && !shards.get(i).info.getNextAddress().isEmpty()) i++;
            i++;
        }
        this.driven = d;
    }

    /**
     * Connects to the shards (in layer order) and checks the topology: every shard answers Info within the timeout,
     * the ranges cover the model's layers exactly once in order, and every expert service a shard routes to answers.
     *
     * @throws MeshUnavailableException naming the shard or expert service that is down or does not fit
     */
    public static ShardPipeline connect(List<String> addresses, KimiLinearConfig config, Duration timeout, DType activationDtype) {
        if (addresses.isEmpty()) throw new IllegalArgumentException("no shard addresses given");
        List<ShardStage> shards = new ArrayList<>();
        List<String> list = new ArrayList<>(addresses.stream().map(String::trim).toList());
        try {
            for (int i = 0; i < list.size(); i++) {
                String address = list.get(i);
                ManagedChannel channel = channel(address);
                ShardInfo info;
                try {
                    info = untilDeadline(timeout, () -> LayerShardGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(Math.max(1, timeout.toMillis()), TimeUnit.MILLISECONDS)
                            .info(ShardInfoRequest.getDefaultInstance()));
                } catch (StatusRuntimeException e) {
                    channel.shutdownNow();
                    throw new MeshUnavailableException("layer shard " + (i + 1) + " of " + list.size() + " at " + address
                            + " is not reachable (" + describe(e.getStatus()) + ") after " + timeout.toMillis() + " ms", e);
                }
                shards.add(new ShardStage(i, address, channel, info));
                String next = info.getNextAddress();
                if (!next.isEmpty()) {
                    // a chained shard names its successor: follow the chain when the list stops here
                    if (i + 1 == list.size()) {
                        list.add(next);
                    } else if (!list.get(i + 1).equals(next)) {
                        throw new MeshUnavailableException("layer shard " + address + " forwards to " + next + " but the next shard listed is "
                                + list.get(i + 1));
                    }
                }
            }
            checkCoverage(shards, config);
            Map<String, ExpertInfoSummary> experts = checkExperts(shards, timeout);
            return new ShardPipeline(List.copyOf(shards), experts, activationDtype);
        } catch (RuntimeException e) {
            shards.forEach(ShardStage::close);
            throw e;
        }
    }

    /**
     * Results are handled on the channel's event loop ({@code directExecutor}): onResult only sends the next hop or
     * completes a future whose dependant queues an event for the scheduler, so a hand-off to gRPC's default executor
     * would only add a thread wake-up to every hop.
     */
    private static ManagedChannel channel(String address) {
        return ManagedChannelBuilder.forTarget(address).usePlaintext().maxInboundMessageSize(MAX_MESSAGE).directExecutor().build();
    }

    private static void checkCoverage(List<ShardStage> shards, KimiLinearConfig config) {
        int expect = 0, layers = config.numHiddenLayers();
        for (ShardStage s : shards) {
            ShardInfo info = s.info;
            if (info.getNumHiddenLayers() != 0 && info.getNumHiddenLayers() != layers) {
                throw new MeshUnavailableException(s.name() + " serves a model of " + info.getNumHiddenLayers()
                        + " layers; the gateway's model has " + layers);
            }
            if (info.getLayerFrom() != expect) {
                throw new MeshUnavailableException(s.name() + " starts at layer " + info.getLayerFrom() + "; expected layer " + expect
                        + " (shards must be listed in layer order and cover every layer exactly once)");
            }
            expect = info.getLayerTo();
        }
        if (expect != layers) {
            throw new MeshUnavailableException("the shards cover layers [0, " + expect + ") of " + layers + ": layers ["
                    + expect + ", " + layers + ") have no shard");
        }
    }

    private static Map<String, ExpertInfoSummary> checkExperts(List<ShardStage> shards, Duration timeout) {
        Map<String, ExpertInfoSummary> found = new LinkedHashMap<>();
        for (ShardStage s : shards) {
            for (ExpertRoute route : s.info.getExpertRoutesList()) {
                String address = route.getAddress();
                if (address.isEmpty() || found.containsKey(address)) continue;
                ManagedChannel channel = channel(address);
                try {
                    var info = untilDeadline(timeout, () -> ExpertsGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(Math.max(1, timeout.toMillis()), TimeUnit.MILLISECONDS)
                            .info(ExpertInfoRequest.getDefaultInstance()));
                    found.put(address, new ExpertInfoSummary(address, info.getLayersList(), info.getExperts()));
                } catch (StatusRuntimeException e) {
                    throw new MeshUnavailableException("expert service at " + address + " (experts " + route.getExperts()
                            + ", used by " + s.name() + ") is not reachable (" + describe(e.getStatus()) + ") after "
                            + timeout.toMillis() + " ms", e);
                } finally {
                    channel.shutdownNow();
                }
            }
        }
        return found;
    }

    /** Retries a call that fails with UNAVAILABLE (a service still starting) until the timeout has passed. */
    private static <T> T untilDeadline(Duration timeout, java.util.function.Supplier<T> call) {
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return call.get();
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE || System.nanoTime() > end) throw e;
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    private static String describe(Status s) {
        return s.getCode() + (s.getDescription() != null ? ": " + s.getDescription() : "");
    }

    @Override
    public CompletableFuture<List<SampledToken>> run(MicroBatch batch) {
        var b = dev.kimimesh.proto.v1.MicroBatch.newBuilder().setMicroBatchId(batch.id()).setActivationDtype(activationDtype);
        for (BatchEntry e : batch.entries()) {
            var chunk = SequenceChunk.newBuilder()
                    .setSequenceId(e.sequenceId())
                    .setPosition(e.position())
                    .setNumTokens(e.tokens().length)
                    .setSample(e.sample());
            for (int t : e.tokens()) chunk.addTokenIds(t);
            if (e.sample()) chunk.setSampling(SamplingMessages.toProto(e.params()).toBuilder().setTopLogprobs(e.topLogprobs()));
            if (e.newSampler()) chunk.setNewSampler(true);
            b.addSequences(chunk);
        }
        InFlight f = new InFlight(b.build());
        pending.put(batch.id(), f);
        sendTo(0, f, f.message);
        return f.done;
    }

    private void sendTo(int stage, InFlight f, dev.kimimesh.proto.v1.MicroBatch message) {
        ShardStage s = driven.get(stage);
        f.stage = stage;
        f.sentAt = System.nanoTime();
        f.hop = hops.started(stage, s.name(), message);
        try {
            s.send(f.hop.message(), r -> onResult(stage, r), this::onBroken);
        } catch (RuntimeException e) {
            fail(f, message.getMicroBatchId(), s.name() + " could not be sent the micro-batch: " + e.getMessage());
        }
    }

    private void onResult(int stage, MicroBatchResult r) {
        InFlight f = pending.get(r.getMicroBatchId());
        ShardStage s = driven.get(stage);
        if (f == null) {
            LOG.warning(s.name() + " answered unknown micro-batch " + r.getMicroBatchId());
            return;
        }
        s.latency.record(System.nanoTime() - f.sentAt);
        f.hop.ended(r.hasFailure() ? r.getFailure().getMessage() : null);
        switch (r.getResultCase()) {
            case SAMPLED -> {
                pending.remove(r.getMicroBatchId());
                List<SampledToken> out = new ArrayList<>();
                for (var t : r.getSampled().getTokensList()) {
                    float[] top = new float[t.getTopLogprobsCount()];
                    for (int i = 0; i < top.length; i++) top[i] = t.getTopLogprobs(i);
                    out.add(new SampledToken(t.getSequenceId(), t.getTokenId(), t.getLogprob(),
                            t.getTopTokenIdsList().stream().mapToInt(Integer::intValue).toArray(), top));
                }
                f.done.complete(out);
            }
            case HIDDEN -> {
                if (stage + 1 >= driven.size()) {
                    fail(f, r.getMicroBatchId(), s.name() + " returned hidden states but no shard follows it");
                } else {
                    sendTo(stage + 1, f, f.message.toBuilder().setHidden(r.getHidden()).build());
                }
            }
            case FAILURE -> fail(f, r.getMicroBatchId(), s.name() + " failed the micro-batch: "
                    + Status.fromCodeValue(r.getFailure().getCode()).getCode() + ": " + r.getFailure().getMessage());
            default -> fail(f, r.getMicroBatchId(), s.name() + " sent an empty result");
        }
    }

    private void onBroken(ShardStage s, Throwable t) {
        String why = t instanceof StatusRuntimeException e ? describe(e.getStatus()) : String.valueOf(t.getMessage());
        for (var entry : pending.entrySet()) {
            if (driven.get(entry.getValue().stage) == s) fail(entry.getValue(), entry.getKey(), s.name() + " stream failed: " + why);
        }
    }

    private void fail(InFlight f, long id, String message) {
        f.hop.ended(message); // no-op when the shard's own failure answer already ended the hop
        pending.remove(id);
        f.done.completeExceptionally(new MeshUnavailableException(message));
    }

    @Override
    public void release(long sequenceId) {
        ReleaseSequenceRequest req = ReleaseSequenceRequest.newBuilder().addSequenceIds(sequenceId).setPropagate(false).build();
        for (ShardStage s : shards) {
            LayerShardGrpc.newStub(s.channel).releaseSequence(req, new StreamObserver<>() {
                @Override
                public void onNext(ReleaseSequenceResponse value) {}

                @Override
                public void onError(Throwable t) {
                    LOG.warning("release of sequence " + sequenceId + " on " + s.name() + " failed: " + t.getMessage());
                }

                @Override
                public void onCompleted() {}
            });
        }
    }

    /** Sets the observer of hops (metrics, tracing); see {@link HopObserver}. */
    public void observe(HopObserver observer) {
        hops = observer;
    }

    /** The Stats of shard {@code index} (layer order). */
    public ShardStats stats(int index) {
        return LayerShardGrpc.newBlockingStub(shards.get(index).channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .stats(ShardStatsRequest.getDefaultInstance());
    }

    public List<ShardInfo> shardInfos() {
        return shards.stream().map(s -> s.info).toList();
    }

    public List<String> shardAddresses() {
        return shards.stream().map(s -> s.address).toList();
    }

    public Map<String, ExpertInfoSummary> expertServices() {
        return experts;
    }

    /** Per-hop latency recorders, one per shard the gateway drives. */
    public List<HopLatency> hopLatencies() {
        return driven.stream().map(s -> s.latency).toList();
    }

    @Override
    public int depth() {
        return shards.size();
    }

    @Override
    public String describe() {
        StringBuilder b = new StringBuilder("mesh:");
        for (ShardStage s : shards) b.append(' ').append(s.name());
        experts.values().forEach(e -> b.append(", experts ").append(e.experts()).append(" at ").append(e.address()));
        return b.toString();
    }

    @Override
    public void close() {
        for (var f : pending.values()) f.done.completeExceptionally(new MeshUnavailableException("the gateway is shutting down"));
        pending.clear();
        shards.forEach(ShardStage::close);
    }
}
