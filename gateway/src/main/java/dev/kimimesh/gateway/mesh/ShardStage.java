package dev.kimimesh.gateway.mesh;

import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ShardInfo;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * One layer shard as the gateway drives it: its channel, what it said about itself, and the Forward stream the
 * gateway keeps open to it (reopened after a stream failure).
 */
final class ShardStage {
    final int index;
    final String address;
    final ManagedChannel channel;
    final ShardInfo info;
    final HopLatency latency;
    private final LayerShardGrpc.LayerShardStub stub;
    private StreamObserver<MicroBatch> requests;

    ShardStage(int index, String address, ManagedChannel channel, ShardInfo info) {
        this.index = index;
        this.address = address;
        this.channel = channel;
        this.info = info;
        this.latency = new HopLatency("gateway -> shard " + index + " [" + info.getLayerFrom() + ", " + info.getLayerTo() + ") " + address);
        this.stub = LayerShardGrpc.newStub(channel);
    }

    String name() {
        return "shard " + address + " [" + info.getLayerFrom() + ", " + info.getLayerTo() + ")";
    }

    /** Sends a micro-batch on the Forward stream, opening it first when needed. */
    synchronized void send(MicroBatch batch, Consumer<MicroBatchResult> onResult, BiConsumer<ShardStage, Throwable> onBroken) {
        if (requests == null) {
            requests = stub.forward(new StreamObserver<>() {
                @Override
                public void onNext(MicroBatchResult r) {
                    onResult.accept(r);
                }

                @Override
                public void onError(Throwable t) {
                    broken();
                    onBroken.accept(ShardStage.this, t);
                }

                @Override
                public void onCompleted() {
                    broken();
                    onBroken.accept(ShardStage.this, new IllegalStateException("the shard closed its Forward stream"));
                }
            });
        }
        requests.onNext(batch);
    }

    private synchronized void broken() {
        requests = null;
    }

    synchronized void close() {
        if (requests != null) {
            try {
                requests.onCompleted();
            } catch (RuntimeException ignored) {
                // the channel is going away anyway
            }
            requests = null;
        }
        channel.shutdownNow();
    }
}
