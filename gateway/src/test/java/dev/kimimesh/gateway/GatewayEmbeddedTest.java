package dev.kimimesh.gateway;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.client.KimiMeshClient;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import grpc.reflection.v1alpha.Reflection.ServerReflectionRequest;
import grpc.reflection.v1alpha.Reflection.ServerReflectionResponse;
import grpc.reflection.v1alpha.ServerReflectionGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** The gateway with no shards configured: the whole model in-process (two local stages), same APIs, same tokens. */
@QuarkusTest
@TestProfile(GatewayEmbeddedTest.Embedded.class)
class GatewayEmbeddedTest {
    /** No kimimesh.mesh.shards: embedded mode. */
    public static final class Embedded implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("kimimesh.embedded.stages", "2", "kimimesh.embedded.backend", "cpu");
        }
    }

    @TestHTTPResource("/")
    URL base;

    @Test
    void greedyTokensByGrpcAndHttpEqualTheEngineAndTheTopologyIsInProcess() throws Exception {
        List<int[]> prompts = TinyFixture.eightPrompts().subList(0, 3);
        List<int[]> expected = TinyFixture.engineGreedy(prompts, 8);
        try (KimiMeshClient client = KimiMeshClient.connect("127.0.0.1:" + base.getPort())) {
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(expected.get(i), client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(8), prompts.get(i))).tokenIds());
            }
            var shards = client.modelInfo().getTopology().getShardsList();
            assertEquals("in-process", shards.getFirst().getAddress());
        }
        HttpClient http = HttpClient.newHttpClient();
        String ids = java.util.Arrays.toString(prompts.get(2));
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":" + ids + ",\"max_tokens\":8,\"temperature\":0}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = new ObjectMapper().readTree(r.body());
        int[] got = new int[body.at("/choices/0/token_ids").size()];
        for (int i = 0; i < got.length; i++) got[i] = body.at("/choices/0/token_ids").get(i).asInt();
        assertArrayEquals(expected.get(2), got);
    }

    @Test
    void standardHealthAndReflectionAreServedOnThePublicPort() throws Exception {
        ManagedChannel channel = Grpc.newChannelBuilder("127.0.0.1:" + base.getPort(), InsecureChannelCredentials.create()).build();
        try {
            var health = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
            assertEquals(HealthCheckResponse.ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
            assertEquals(HealthCheckResponse.ServingStatus.SERVING,
                    health.check(HealthCheckRequest.newBuilder().setService("kimimesh.v1.KimiMesh").build()).getStatus());

            LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
            StreamObserver<ServerReflectionRequest> reflection = ServerReflectionGrpc.newStub(channel).serverReflectionInfo(new StreamObserver<>() {
                public void onNext(ServerReflectionResponse r) { answers.add(r); }
                public void onError(Throwable t) { answers.add(t); }
                public void onCompleted() { }
            });
            reflection.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
            Object answer = answers.poll(30, TimeUnit.SECONDS);
            reflection.onCompleted();
            if (!(answer instanceof ServerReflectionResponse listed)) throw new AssertionError("reflection answered " + answer);
            List<String> services = listed.getListServicesResponse().getServiceList().stream().map(s -> s.getName()).toList();
            assertTrue(services.contains("kimimesh.v1.KimiMesh"), services.toString());
            assertTrue(services.contains("grpc.health.v1.Health"), services.toString());
        } finally {
            channel.shutdownNow();
        }
    }
}
