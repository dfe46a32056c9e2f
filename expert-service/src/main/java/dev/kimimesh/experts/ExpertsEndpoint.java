package dev.kimimesh.experts;

import dev.kimimesh.mesh.experts.ExpertsService;
import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertStats;
import dev.kimimesh.proto.v1.ExpertStatsRequest;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import jakarta.inject.Inject;

/** The Experts service as Quarkus serves it: delegates to the framework-free {@link ExpertsService}. */
@GrpcService
public class ExpertsEndpoint extends ExpertsGrpc.ExpertsImplBase {
    @Inject
    ExpertsService experts;

    @Override
    public StreamObserver<ExpertRequest> dispatch(StreamObserver<ExpertResult> responses) {
        return experts.dispatch(responses); // non-blocking: requests are queued to the batcher's compute thread
    }

    @Override
    public void stats(ExpertStatsRequest req, StreamObserver<ExpertStats> out) {
        experts.stats(req, out);
    }

    @Override
    public void info(ExpertInfoRequest req, StreamObserver<ExpertInfo> out) {
        experts.info(req, out);
    }
}
