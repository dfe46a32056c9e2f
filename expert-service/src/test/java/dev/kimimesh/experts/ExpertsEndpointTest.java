package dev.kimimesh.experts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.mesh.shard.ShardAssembly;
import dev.kimimesh.mesh.shard.ShardSettings;
import dev.kimimesh.mesh.wire.Channels;
import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertStatsRequest;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.quarkus.test.junit.QuarkusTest;
import java.nio.file.Path;
import java.util.List;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/** The Quarkus expert service (experts 8-15 of every MoE layer) over real gRPC, checked by a shard that uses it. */
@QuarkusTest
class ExpertsEndpointTest {

    @Test
    void servesItsExpertsWithHealthAndAShardStartsAgainstIt() {
        int port = ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
        String address = "127.0.0.1:" + port;
        ManagedChannel channel = Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
        try {
            ExpertInfo info = ExpertsGrpc.newBlockingStub(channel).info(ExpertInfoRequest.getDefaultInstance());
            assertEquals(List.of(1, 2, 3, 4, 5, 6, 7), info.getLayersList());
            assertEquals(List.of(8, 9, 10, 11, 12, 13, 14, 15), info.getExpertIdsList());
            HealthCheckResponse health = HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance());
            assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.getStatus());

            // a shard keeping experts 0-7 local and sending 8-15 here, over TCP
            Path tiny = Path.of(System.getProperty("kimimesh.shared"), "fixtures", "tiny");
            try (var shard = ShardAssembly.build(ShardSettings.of(tiny, 0, 8).withExpertServices(List.of(address + "=8-15")),
                    Channels.plaintext())) {
                assertEquals("8-15", shard.info().getExpertRoutes(0).getExperts());
                assertEquals(List.of(1, 2, 3, 4, 5, 6, 7), shard.info().getExpertRoutes(0).getLayersList());
            }
            assertTrue(ExpertsGrpc.newBlockingStub(channel).stats(ExpertStatsRequest.getDefaultInstance()).getFailed() == 0);
        } finally {
            channel.shutdownNow();
        }
    }
}
