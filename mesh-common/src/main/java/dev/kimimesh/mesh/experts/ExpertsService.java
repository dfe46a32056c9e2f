package dev.kimimesh.mesh.experts;

import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertStats;
import dev.kimimesh.proto.v1.ExpertStatsRequest;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/** The Experts gRPC service: a thin adapter from Dispatch streams to the shared {@link ExpertBatcher}. */
public final class ExpertsService extends ExpertsGrpc.ExpertsImplBase implements AutoCloseable {
    private final ExpertBatcher batcher;
    private final ExpertInfo info;

    public ExpertsService(ExpertBatcher batcher, ExpertInfo info) {
        this.batcher = batcher;
        this.info = info;
    }

    /** What Info answers. */
    public ExpertInfo info() {
        return info;
    }

    @Override
    public StreamObserver<ExpertRequest> dispatch(StreamObserver<ExpertResult> responses) {
        var out = (ServerCallStreamObserver<ExpertResult>) responses;
        return new StreamObserver<>() {
            private int inFlight;
            private boolean halfClosed, done;

            @Override
            public void onNext(ExpertRequest req) {
                synchronized (this) {
                    inFlight++;
                }
                batcher.submit(req).thenAccept(r -> {
                    synchronized (this) {
                        inFlight--;
                        if (done || out.isCancelled()) return;
                        out.onNext(r);
                        finishIfDone();
                    }
                });
            }

            @Override
            public synchronized void onError(Throwable t) {
                done = true;
            }

            @Override
            public synchronized void onCompleted() {
                halfClosed = true;
                finishIfDone();
            }

            private void finishIfDone() {
                if (halfClosed && inFlight == 0 && !done) {
                    done = true;
                    if (!out.isCancelled()) out.onCompleted();
                }
            }
        };
    }

    @Override
    public void stats(ExpertStatsRequest req, StreamObserver<ExpertStats> out) {
        out.onNext(batcher.stats());
        out.onCompleted();
    }

    @Override
    public void info(ExpertInfoRequest req, StreamObserver<ExpertInfo> out) {
        out.onNext(info);
        out.onCompleted();
    }

    @Override
    public void close() {
        batcher.close();
    }
}
