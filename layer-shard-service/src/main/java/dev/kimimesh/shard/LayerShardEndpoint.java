package dev.kimimesh.shard;

import dev.kimimesh.mesh.shard.LayerShardService;
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
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import jakarta.inject.Inject;

/** The LayerShard service as Quarkus serves it: delegates to the framework-free {@link LayerShardService}. */
@GrpcService
public class LayerShardEndpoint extends LayerShardGrpc.LayerShardImplBase {
    @Inject
    LayerShardService shard;

    @Override
    public StreamObserver<MicroBatch> forward(StreamObserver<MicroBatchResult> responses) {
        return shard.forward(responses); // non-blocking: micro-batches are queued to the shard's compute thread
    }

    @Override
    @Blocking
    public void releaseSequence(ReleaseSequenceRequest req, StreamObserver<ReleaseSequenceResponse> out) {
        shard.releaseSequence(req, out);
    }

    @Override
    @Blocking
    public void snapshotSequence(SnapshotSequenceRequest req, StreamObserver<SequenceSnapshot> out) {
        shard.snapshotSequence(req, out);
    }

    @Override
    @Blocking
    public void restoreSequence(SequenceSnapshot req, StreamObserver<RestoreSequenceResponse> out) {
        shard.restoreSequence(req, out);
    }

    @Override
    @Blocking
    public void stats(ShardStatsRequest req, StreamObserver<ShardStats> out) {
        shard.stats(req, out);
    }

    @Override
    public void info(ShardInfoRequest req, StreamObserver<ShardInfo> out) {
        shard.info(req, out);
    }
}
