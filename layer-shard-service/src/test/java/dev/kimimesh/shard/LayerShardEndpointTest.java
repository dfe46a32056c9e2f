package dev.kimimesh.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.SamplingParams;
import dev.kimimesh.proto.v1.SequenceChunk;
import dev.kimimesh.proto.v1.ShardInfo;
import dev.kimimesh.proto.v1.ShardInfoRequest;
import dev.kimimesh.proto.v1.ShardStatsRequest;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import grpc.reflection.v1alpha.Reflection.ServerReflectionRequest;
import grpc.reflection.v1alpha.Reflection.ServerReflectionResponse;
import grpc.reflection.v1alpha.ServerReflectionGrpc;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.junit.QuarkusTest;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The Quarkus service, the whole tiny model in one stage: served over real gRPC with health and Info. */
@QuarkusTest
class LayerShardEndpointTest {
    private ManagedChannel channel;

    @BeforeEach
    void open() {
        int port = ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
        channel = Grpc.newChannelBuilder("127.0.0.1:" + port, InsecureChannelCredentials.create()).build();
    }

    @AfterEach
    void close() {
        channel.shutdownNow();
    }

    @Test
    void servesTheWholeModelAsOneStageWithHealth() throws Exception {
        ShardInfo info = LayerShardGrpc.newBlockingStub(channel).info(ShardInfoRequest.getDefaultInstance());
        assertEquals(0, info.getLayerFrom());
        assertEquals(8, info.getLayerTo());
        assertTrue(info.getFirst() && info.getLast());

        HealthCheckResponse health = HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance());
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());

        LinkedBlockingQueue<ServerReflectionResponse> reflected = new LinkedBlockingQueue<>();
        StreamObserver<ServerReflectionRequest> reflection = ServerReflectionGrpc.newStub(channel).serverReflectionInfo(new StreamObserver<>() {
            public void onNext(ServerReflectionResponse r) { reflected.add(r); }
            public void onError(Throwable t) { }
            public void onCompleted() { }
        });
        reflection.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
        ServerReflectionResponse services = reflected.poll(30, TimeUnit.SECONDS);
        reflection.onCompleted();
        assertTrue(services.getListServicesResponse().getServiceList().stream()
                .anyMatch(s -> s.getName().equals("kimimesh.v1.LayerShard")), services.toString());

        JsonNode t7 = new ObjectMapper().readTree(Path.of(System.getProperty("kimimesh.shared"), "fixtures/tiny/goldens/index.json")
                .toFile()).get("prompts").get("T7");
        SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(7).setNumTokens(t7.get("length").asInt())
                .setSample(true).setSampling(SamplingParams.newBuilder().setTemperature(0));
        t7.get("input_ids").forEach(n -> c.addTokenIds(n.asInt()));
        LinkedBlockingQueue<MicroBatchResult> results = new LinkedBlockingQueue<>();
        StreamObserver<MicroBatch> stream = LayerShardGrpc.newStub(channel).forward(new StreamObserver<>() {
            public void onNext(MicroBatchResult r) { results.add(r); }
            public void onError(Throwable t) { }
            public void onCompleted() { }
        });
        stream.onNext(MicroBatch.newBuilder().setMicroBatchId(1).addSequences(c).build());
        MicroBatchResult r = results.poll(60, TimeUnit.SECONDS);
        stream.onCompleted();
        assertEquals(t7.get("decode_tokens").get(0).asInt(), r.getSampled().getTokens(0).getTokenId(), r.toString());

        assertEquals(1, LayerShardGrpc.newBlockingStub(channel).releaseSequence(
                ReleaseSequenceRequest.newBuilder().addSequenceIds(7).build()).getReleased());
        assertEquals(0, LayerShardGrpc.newBlockingStub(channel).stats(ShardStatsRequest.getDefaultInstance()).getSequencesHeld());
    }
}
