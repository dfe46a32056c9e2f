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
import java.util.concurrent.CountDownLatch;
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
            return Map.of("kimimesh.embedded.stages", "2", "kimimesh.embedded.backend", "cpu", "kimimesh.sessions.ttl", "3s");
        }
    }

    @TestHTTPResource("/")
    URL base;

    @jakarta.inject.Inject
    dev.kimimesh.gateway.app.MeshRuntime runtime;

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

    // ---- OpenAI compatibility (what tools/openai-compat found with the official client)

    private HttpResponse<String> post(String path, String body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static int[] ids(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    @Test
    void unsupportedOpenAiParametersAre400NamingThemAndDefaultValuesAreAccepted() throws Exception {
        ObjectMapper json = new ObjectMapper();
        Map<String, String> unsupported = new java.util.LinkedHashMap<>();
        unsupported.put("presence_penalty", "0.5");
        unsupported.put("frequency_penalty", "1");
        unsupported.put("logit_bias", "{\"5\": 10}");
        unsupported.put("echo", "true");
        unsupported.put("suffix", "\"x\"");
        unsupported.put("response_format", "{\"type\": \"json_object\"}");
        unsupported.put("best_of", "3");
        unsupported.put("no_such_field", "1");
        unsupported.put("messages", "[]"); // a chat field on /v1/completions
        for (var e : unsupported.entrySet()) {
            HttpResponse<String> r = post("/v1/completions", "{\"prompt\": [1, 2, 3], \"max_tokens\": 2, \"" + e.getKey() + "\": " + e.getValue() + "}");
            assertEquals(400, r.statusCode(), e.getKey() + " -> " + r.body());
            JsonNode err = json.readTree(r.body()).get("error");
            assertEquals(e.getKey(), err.get("param").asText(), r.body());
            assertEquals("invalid_request_error", err.get("type").asText(), r.body());
        }
        HttpResponse<String> ok = post("/v1/completions", "{\"prompt\": [1, 2, 3], \"max_tokens\": 2, \"presence_penalty\": 0,"
                + " \"frequency_penalty\": 0, \"logit_bias\": {}, \"echo\": false, \"user\": \"u1\", \"best_of\": 1}");
        assertEquals(200, ok.statusCode(), ok.body());

        HttpResponse<String> model = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + base.getPort() + "/v1/models/tiny")).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, model.statusCode(), model.body());
        assertEquals("tiny", json.readTree(model.body()).get("id").asText());
        HttpResponse<String> missing = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + base.getPort() + "/v1/models/gpt-9")).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(404, missing.statusCode(), missing.body());
        assertEquals("model", json.readTree(missing.body()).at("/error/param").asText());
    }

    @Test
    void nChoicesAreIndependentSequencesSeededWithSeedPlusIndex() throws Exception {
        ObjectMapper json = new ObjectMapper();
        int[] prompt = TinyFixture.eightPrompts().get(1);
        String ids = java.util.Arrays.toString(prompt);
        int[] greedy = TinyFixture.engineGreedy(List.of(prompt), 6).getFirst();
        JsonNode two = json.readTree(post("/v1/completions", "{\"prompt\": " + ids + ", \"max_tokens\": 6, \"temperature\": 0, \"n\": 2}").body());
        assertEquals(2, two.get("choices").size(), two.toString());
        for (int i = 0; i < 2; i++) {
            assertEquals(i, two.at("/choices/" + i + "/index").asInt());
            assertArrayEquals(greedy, ids(two.at("/choices/" + i + "/token_ids")), "greedy choice " + i);
        }
        assertEquals(prompt.length, two.at("/usage/prompt_tokens").asInt(), "the prompt counts once");
        assertEquals(2 * greedy.length, two.at("/usage/completion_tokens").asInt());

        String sampled = "{\"prompt\": " + ids + ", \"max_tokens\": 8, \"temperature\": 1, \"ignore_eos\": true, \"seed\": SEED, \"n\": N}";
        JsonNode three = json.readTree(post("/v1/completions", sampled.replace("SEED", "11").replace("N", "3")).body());
        for (int i = 0; i < 3; i++) {
            JsonNode alone = json.readTree(post("/v1/completions", sampled.replace("SEED", Integer.toString(11 + i)).replace("N", "1")).body());
            assertArrayEquals(ids(alone.at("/choices/0/token_ids")), ids(three.at("/choices/" + i + "/token_ids")), "choice " + i + " = seed " + (11 + i));
        }
        assertEquals(400, post("/v1/completions", "{\"prompt\": [1], \"n\": 0}").statusCode());
        assertEquals(400, post("/v1/completions", "{\"prompt\": [1], \"n\": 17}").statusCode());
    }

    @Test
    void completionLogprobsCarryTopAlternativesInOpenAisShape() throws Exception {
        JsonNode r = new ObjectMapper().readTree(post("/v1/completions", "{\"prompt\": " + java.util.Arrays.toString(TinyFixture.eightPrompts().get(2))
                + ", \"max_tokens\": 4, \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": 3}").body());
        JsonNode lp = r.at("/choices/0/logprobs");
        assertEquals(4, lp.get("tokens").size(), r.toString());
        assertEquals(4, lp.get("text_offset").size());
        for (int i = 0; i < 4; i++) {
            JsonNode top = lp.get("top_logprobs").get(i);
            assertEquals(3, top.size(), top.toString());
            double sampled = lp.get("token_logprobs").get(i).asDouble(), best = Double.NEGATIVE_INFINITY;
            for (JsonNode v : top) best = Math.max(best, v.asDouble());
            assertEquals(best, sampled, 1e-4, "greedy: the sampled token is the most likely alternative");
            int token = r.at("/choices/0/token_ids").get(i).asInt();
            assertTrue(top.has("token_id:" + token), top + " holds the sampled token " + token);
        }
    }

    // ---- sessions

    /** Sequences whose state each local stage holds. */
    private int[] held() {
        return ((dev.kimimesh.gateway.embedded.LocalPipeline) runtime.pipeline()).heldSequences();
    }

    private void awaitHeld(int n) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < end && !java.util.Arrays.stream(held()).allMatch(h -> h == n)) Thread.sleep(20);
        assertArrayEquals(new int[] {n, n}, held(), "sequences held by the two stages");
    }

    @Test
    void twoTurnsOfASessionGiveTheTokensOfOneRunOverTheConcatenationAndReleaseFreesTheStages() throws Exception {
        int[] first = TinyFixture.eightPrompts().get(5), second = TinyFixture.eightPrompts().get(0);
        try (KimiMeshClient client = KimiMeshClient.connect("127.0.0.1:" + base.getPort())) {
            // the session calls first, the engine's reference afterwards: the test profile's TTL is 3 s
            var turn1 = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(5), first).toBuilder().setKeepSession(true).build());
            String session = turn1.sessionId();
            assertTrue(session.startsWith("sess-"), session);
            awaitHeld(1);
            var turn2 = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(6), second).toBuilder()
                    .setSessionId(session).setKeepSession(true).build());
            var info = client.resumeSession(session);
            assertTrue(client.releaseSession(session));
            awaitHeld(0);
            var gone = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class, () -> client.generate(
                    KimiMeshClient.tokens(KimiMeshClient.greedy(2), second).toBuilder().setSessionId(session).build()));
            assertEquals(io.grpc.Status.Code.NOT_FOUND, gone.getStatus().getCode());
            assertEquals(io.grpc.Status.Code.NOT_FOUND, org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class,
                    () -> client.releaseSession(session)).getStatus().getCode());

            assertArrayEquals(TinyFixture.engineGreedy(List.of(first), 5).getFirst(), turn1.tokenIds());
            int[] whole = SessionsFixture.concat(first, turn1.tokenIds(), second);
            assertArrayEquals(TinyFixture.engineGreedy(List.of(whole), 6).getFirst(), turn2.tokenIds(), "turn 2 = one run over the concatenation");
            // everything before the previous turn's last token (sampled, not yet fed) was not recomputed
            assertEquals(first.length + turn1.tokenIds().length - 1, turn2.usage().getCachedPromptTokens());
            assertEquals(whole.length, turn2.usage().getPromptTokens());
            assertEquals(session, turn2.sessionId());
            assertEquals(whole.length + turn2.tokenIds().length, info.getNumTokens());
            assertTrue(info.getExpiresUnixMs() > 0);
        }
    }

    @Test
    void aBusySessionIsFailedPreconditionAndAnIdleOneExpiresAfterTheTtl() throws Exception {
        try (KimiMeshClient client = KimiMeshClient.connect("127.0.0.1:" + base.getPort())) {
            String session = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(2), 5, 6, 7).toBuilder().setKeepSession(true).build()).sessionId();
            CountDownLatch streaming = new CountDownLatch(2);
            var endless = client.generate(KimiMeshClient.tokens(dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTemperature(0)
                    .setMaxTokens(100_000).setIgnoreEos(true).build(), 8, 9).toBuilder().setSessionId(session).setKeepSession(true).build(),
                    new dev.kimimesh.client.TokenListener() {
                        @Override
                        public void onResponse(dev.kimimesh.proto.v1.GenerateResponse r) {
                            streaming.countDown();
                        }
                    });
            assertTrue(streaming.await(60, TimeUnit.SECONDS));
            var busy = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class, () -> client.generate(
                    KimiMeshClient.tokens(KimiMeshClient.greedy(2), 1).toBuilder().setSessionId(session).build()));
            assertEquals(io.grpc.Status.Code.FAILED_PRECONDITION, busy.getStatus().getCode());
            HttpResponse<String> http = post("/v1/completions", "{\"prompt\": [1], \"max_tokens\": 2, \"session_id\": \"" + session + "\"}");
            assertEquals(409, http.statusCode(), http.body());
            endless.cancel(); // a cancelled turn ends its session
            awaitHeld(0);

            String idle = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(2), 5, 6, 7).toBuilder().setKeepSession(true).build()).sessionId();
            awaitHeld(1);
            Thread.sleep(3000); // the test profile's TTL
            awaitHeld(0);
            HttpResponse<String> expired = post("/v1/completions", "{\"prompt\": [1], \"max_tokens\": 2, \"session_id\": \"" + idle + "\"}");
            assertEquals(404, expired.statusCode(), expired.body());
            assertEquals("session_id", new ObjectMapper().readTree(expired.body()).at("/error/param").asText());
        }
    }
}
