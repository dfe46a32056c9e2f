package dev.kimimesh.gateway;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.client.Completion;
import dev.kimimesh.client.KimiMeshClient;
import dev.kimimesh.client.ResponseIterator;
import dev.kimimesh.client.StreamHandle;
import dev.kimimesh.client.TokenListener;
import dev.kimimesh.proto.v1.FinishReason;
import dev.kimimesh.proto.v1.GenerateRequest;
import dev.kimimesh.proto.v1.GenerateResponse;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.SamplingParams;
import dev.kimimesh.proto.v1.ShardStatsRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.common.QuarkusTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway in front of a real mesh (two layer shards, two expert services on loopback ports): greedy tokens by
 * gRPC (the client SDK) and HTTP equal the single-process engine's, cancellation frees every shard, bad input gets
 * the right status and the services keep serving.
 */
@QuarkusTest
@QuarkusTestResource(value = MeshResource.class, restrictToAnnotatedClass = true)
class GatewayMeshTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_TOKENS = 12;
    private static List<int[]> prompts, expected;

    @TestHTTPResource("/")
    URL base;

    private KimiMeshClient client;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @BeforeAll
    static void reference() {
        prompts = TinyFixture.eightPrompts();
        expected = TinyFixture.engineGreedy(prompts, MAX_TOKENS);
    }

    @BeforeEach
    void connect() {
        client = KimiMeshClient.connect("127.0.0.1:" + base.getPort());
    }

    @AfterEach
    void disconnect() throws Exception {
        client.close();
        awaitShardsEmpty();
    }

    private static String model() {
        return TinyFixture.dir().getFileName().toString();
    }

    // ---- exact tokens

    @Test
    void eightConcurrentRequestsByGrpcAndEightByHttpGiveTheEnginesGreedyTokens() throws Exception {
        List<CompletableFuture<int[]>> grpc = new ArrayList<>(), web = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            GenerateRequest req = KimiMeshClient.tokens(KimiMeshClient.greedy(MAX_TOKENS), prompts.get(i));
            grpc.add(switch (i % 5) {
                case 0 -> CompletableFuture.supplyAsync(() -> client.generate(req).tokenIds());
                case 1 -> client.generateAsync(req).thenApply(Completion::tokenIds);
                case 2 -> streamed(req);
                case 3 -> published(req);
                default -> CompletableFuture.supplyAsync(() -> iterated(req));
            });
            String body = completionBody(prompts.get(i), i % 2 == 0);
            web.add(i % 2 == 0 ? CompletableFuture.supplyAsync(() -> sseTokens(body)) : CompletableFuture.supplyAsync(() -> jsonTokens(body)));
        }
        for (int i = 0; i < prompts.size(); i++) {
            String what = "prompt " + i + " (" + prompts.get(i).length + " tokens)";
            assertArrayEquals(expected.get(i), grpc.get(i).get(120, TimeUnit.SECONDS), "gRPC " + what);
            assertArrayEquals(expected.get(i), web.get(i).get(120, TimeUnit.SECONDS), "HTTP " + what);
        }
    }

    @Test
    void usageAndFinishReasonAreReported() throws Exception {
        Completion c = client.generate(KimiMeshClient.tokens(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(5)
                .setIgnoreEos(true).setLogprobs(true).build(), prompts.get(1)));
        assertEquals(FinishReason.FINISH_REASON_LENGTH, c.finishReason());
        assertEquals(prompts.get(1).length, c.usage().getPromptTokens());
        assertEquals(5, c.usage().getCompletionTokens());
        assertEquals(prompts.get(1).length + 5, c.usage().getTotalTokens());
        assertEquals(5, c.logprobs().size());
        for (float lp : c.logprobs()) assertTrue(lp <= 0 && !Float.isNaN(lp), "logprob " + lp);

        // top alternatives come from the last shard: greedy picks the most likely one
        int tops = 0;
        try (ResponseIterator it = client.generateIterator(KimiMeshClient.tokens(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(4)
                .setIgnoreEos(true).setLogprobs(true).setTopLogprobs(3).build(), prompts.get(1)))) {
            while (it.hasNext()) {
                for (var lp : it.next().getLogprobsList()) {
                    assertEquals(3, lp.getTopCount(), lp.toString());
                    assertEquals(lp.getTokenId(), lp.getTop(0).getTokenId(), lp.toString());
                    assertEquals(lp.getLogprob(), lp.getTop(0).getLogprob(), 1e-4f);
                    tops++;
                }
            }
        }
        assertEquals(4, tops);

        JsonNode r = post("/v1/completions", completionBody(prompts.get(1), false).replace("\"max_tokens\":12", "\"max_tokens\":5,\"ignore_eos\":true"));
        assertEquals(prompts.get(1).length, r.at("/usage/prompt_tokens").asInt());
        assertEquals(5, r.at("/usage/completion_tokens").asInt());
        assertEquals(prompts.get(1).length + 5, r.at("/usage/total_tokens").asInt());
        assertEquals("length", r.at("/choices/0/finish_reason").asText());
        assertEquals("text_completion", r.get("object").asText());
    }

    private CompletableFuture<int[]> streamed(GenerateRequest req) {
        CompletableFuture<int[]> f = new CompletableFuture<>();
        List<Integer> ids = new ArrayList<>();
        client.generate(req, new TokenListener() {
            @Override
            public void onResponse(GenerateResponse r) {
                ids.addAll(r.getTokenIdsList());
            }

            @Override
            public void onCompleted() {
                f.complete(ids.stream().mapToInt(Integer::intValue).toArray());
            }

            @Override
            public void onError(Throwable error) {
                f.completeExceptionally(error);
            }
        });
        return f;
    }

    private CompletableFuture<int[]> published(GenerateRequest req) {
        CompletableFuture<int[]> f = new CompletableFuture<>();
        List<Integer> ids = new ArrayList<>();
        client.generatePublisher(req).subscribe(new java.util.concurrent.Flow.Subscriber<>() {
            @Override
            public void onSubscribe(java.util.concurrent.Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(GenerateResponse r) {
                ids.addAll(r.getTokenIdsList());
            }

            @Override
            public void onError(Throwable t) {
                f.completeExceptionally(t);
            }

            @Override
            public void onComplete() {
                f.complete(ids.stream().mapToInt(Integer::intValue).toArray());
            }
        });
        return f;
    }

    private int[] iterated(GenerateRequest req) {
        List<Integer> ids = new ArrayList<>();
        try (ResponseIterator it = client.generateIterator(req)) {
            it.forEachRemaining(r -> ids.addAll(r.getTokenIdsList()));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static String completionBody(int[] prompt, boolean stream) {
        String ids = Arrays.stream(prompt).mapToObj(Integer::toString).collect(Collectors.joining(","));
        return "{\"model\":\"" + model() + "\",\"prompt\":[" + ids + "],\"max_tokens\":" + MAX_TOKENS
                + ",\"temperature\":0,\"stream\":" + stream + "}";
    }

    private int[] jsonTokens(String body) {
        JsonNode r = post("/v1/completions", body);
        List<Integer> ids = new ArrayList<>();
        r.at("/choices/0/token_ids").forEach(n -> ids.add(n.asInt()));
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private int[] sseTokens(String body) {
        try {
            HttpResponse<java.util.stream.Stream<String>> resp = http.send(request("/v1/completions", body), HttpResponse.BodyHandlers.ofLines());
            assertEquals(200, resp.statusCode());
            assertTrue(resp.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
            List<String> data = resp.body().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
            assertEquals("[DONE]", data.getLast());
            List<Integer> ids = new ArrayList<>();
            JsonNode last = null;
            for (String d : data.subList(0, data.size() - 1)) {
                last = JSON.readTree(d);
                last.at("/choices/0/token_ids").forEach(n -> ids.add(n.asInt()));
            }
            assertEquals(ids.size(), last.at("/usage/completion_tokens").asInt(), "usage of the final chunk");
            return ids.stream().mapToInt(Integer::intValue).toArray();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- cancellation

    @Test
    void grpcCancelMidStreamFreesTheSequenceOnEveryShard() throws Exception {
        CountDownLatch first = new CountDownLatch(3);
        StreamHandle h = client.generate(endless(prompts.get(2)), new TokenListener() {
            @Override
            public void onResponse(GenerateResponse response) {
                first.countDown();
            }
        });
        assertTrue(first.await(60, TimeUnit.SECONDS), "tokens streamed");
        assertTrue(shardsHeld().stream().allMatch(n -> n == 1), "both shards hold the sequence: " + shardsHeld());
        h.cancel();
        awaitShardsEmpty();
    }

    @Test
    void httpClientThatHangsUpFreesTheSequenceOnEveryShard() throws Exception {
        String body = "{\"prompt\":[5,6,7],\"max_tokens\":100000,\"ignore_eos\":true,\"temperature\":0,\"stream\":true}";
        try (Socket socket = new Socket("127.0.0.1", base.getPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            int chunks = 0;
            for (String line; chunks < 3 && (line = in.readLine()) != null; ) if (line.startsWith("data: {")) chunks++;
            assertEquals(3, chunks);
            assertTrue(shardsHeld().stream().allMatch(n -> n == 1), "both shards hold the sequence: " + shardsHeld());
        }
        awaitShardsEmpty();
    }

    private static GenerateRequest endless(int[] prompt) {
        return KimiMeshClient.tokens(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(100_000).setIgnoreEos(true).build(), prompt);
    }

    private List<Long> shardsHeld() {
        List<Long> held = new ArrayList<>();
        for (String address : MeshResource.mesh.shards()) {
            ManagedChannel ch = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
            try {
                held.add(LayerShardGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .stats(ShardStatsRequest.getDefaultInstance()).getSequencesHeld());
            } finally {
                ch.shutdownNow();
            }
        }
        return held;
    }

    private void awaitShardsEmpty() throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < end && shardsHeld().stream().anyMatch(n -> n != 0)) Thread.sleep(50);
        assertEquals(List.of(0L, 0L), shardsHeld(), "sequences held by shard 0 and shard 1");
    }

    // ---- sessions

    @Test
    void twoTurnsOfASessionOverHttpGiveOneRunsTokensAndReleaseAndExpiryFreeEveryShard() throws Exception {
        int[] first = prompts.get(6), second = prompts.get(0);
        JsonNode turn1 = post("/v1/completions", completionBody(first, false).replace("\"stream\":false", "\"stream\":false,\"keep_session\":true"));
        String session = turn1.get("session_id").asText();
        int[] gen1 = ints(turn1.at("/choices/0/token_ids"));
        assertArrayEquals(expected.get(6), gen1);
        assertEquals(List.of(1L, 1L), shardsHeld(), "the idle session's state stays on both shards");

        JsonNode turn2 = post("/v1/completions", completionBody(second, false)
                .replace("\"stream\":false", "\"stream\":false,\"keep_session\":true,\"session_id\":\"" + session + "\""));
        HttpResponse<String> deleted = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + "/v1/sessions/" + session))
                .DELETE().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, deleted.statusCode(), deleted.body());
        awaitShardsEmpty();
        HttpResponse<String> unknown = http.send(request("/v1/completions", completionBody(second, false)
                .replace("\"stream\":false", "\"stream\":false,\"session_id\":\"" + session + "\"")), HttpResponse.BodyHandlers.ofString());
        assertEquals(404, unknown.statusCode(), unknown.body());
        // the engine's reference after the session calls (MeshResource's TTL is 3 s)
        int[] whole = SessionsFixture.concat(first, gen1, second);
        assertArrayEquals(TinyFixture.engineGreedy(List.of(whole), MAX_TOKENS).getFirst(), ints(turn2.at("/choices/0/token_ids")),
                "turn 2 = one uninterrupted run over the concatenation");
        assertEquals(first.length + gen1.length - 1, turn2.at("/usage/prompt_tokens_details/cached_tokens").asInt(), turn2.toString());
        assertEquals(whole.length, turn2.at("/usage/prompt_tokens").asInt());

        String idle = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(3), prompts.get(2)).toBuilder().setKeepSession(true).build()).sessionId();
        assertFalse(idle.isEmpty());
        assertEquals(List.of(1L, 1L), shardsHeld());
        Thread.sleep(3000); // MeshResource's session TTL
        awaitShardsEmpty();
        var expired = assertThrows(StatusRuntimeException.class, () -> client.resumeSession(idle));
        assertEquals(Status.Code.NOT_FOUND, expired.getStatus().getCode());
    }

    private static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) v[i] = a.get(i).asInt();
        return v;
    }

    // ---- bad input

    @Test
    void badGrpcRequestsAreInvalidArgumentAndTheGatewayKeepsServing() throws Exception {
        SamplingParams ok = KimiMeshClient.greedy(3);
        List<GenerateRequest> bad = List.of(
                GenerateRequest.newBuilder().setSampling(ok).build(), // no prompt
                KimiMeshClient.tokens(ok), // empty token list
                KimiMeshClient.tokens(ok, new int[3000]), // longer than the context
                KimiMeshClient.tokens(ok, 1, 2, 99_999), // outside the vocabulary
                KimiMeshClient.tokens(ok.toBuilder().setMaxTokens(-1).build(), 1, 2),
                KimiMeshClient.tokens(ok.toBuilder().setTemperature(-0.5).build(), 1, 2),
                KimiMeshClient.tokens(ok.toBuilder().setTopP(0).build(), 1, 2),
                KimiMeshClient.tokens(ok.toBuilder().setTopP(1.5).build(), 1, 2),
                KimiMeshClient.text("hello", ok)); // the fixture has no tokenizer
        for (GenerateRequest r : bad) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.generate(r), r.toString());
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), r.toString());
            assertFalse(e.getStatus().getDescription() == null || e.getStatus().getDescription().isBlank());
        }
        var tooLong = assertThrows(StatusRuntimeException.class, () -> client.generate(bad.get(2)));
        assertTrue(tooLong.getStatus().getDescription().contains("context"), tooLong.getStatus().getDescription());
        var topP = assertThrows(StatusRuntimeException.class, () -> client.generate(bad.get(7)));
        assertTrue(topP.getStatus().getDescription().contains("top_p"), topP.getStatus().getDescription());
        assertArrayEquals(expected.get(0), client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(MAX_TOKENS), prompts.get(0))).tokenIds());
    }

    @Test
    void badHttpRequestsGetOpenAiErrorsAndTheGatewayKeepsServing() throws Exception {
        record Case(String path, String body, int status, String param) {}
        List<Case> cases = List.of(
                new Case("/v1/completions", "{\"prompt\": [1, 2", 400, null),
                new Case("/v1/completions", "[1,2]", 400, null),
                new Case("/v1/completions", "{\"prompt\": []}", 400, "prompt"),
                new Case("/v1/completions", "{\"prompt\": \"\"}", 400, "prompt"),
                new Case("/v1/completions", "{\"max_tokens\": 3}", 400, "prompt"),
                new Case("/v1/completions", "{\"prompt\": [" + "1,".repeat(3000) + "1]}", 400, "prompt"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"max_tokens\": 0}", 400, "max_tokens"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"max_tokens\": -4}", 400, "max_tokens"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"temperature\": -1}", 400, "temperature"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"top_p\": 0}", 400, "top_p"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"top_p\": 1.01}", 400, "top_p"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"n\": 0}", 400, "n"),
                new Case("/v1/completions", "{\"prompt\": [1,2], \"presence_penalty\": 0.5}", 400, "presence_penalty"),
                new Case("/v1/completions", "{\"prompt\": [1,\"x\"]}", 400, "prompt"),
                new Case("/v1/completions", "{\"prompt\": \"hello\"}", 400, "prompt"),
                new Case("/v1/completions", "{\"model\": \"gpt-9\", \"prompt\": [1,2]}", 404, "model"),
                new Case("/v1/chat/completions", "{\"model\": \"gpt-9\", \"messages\": [{\"role\":\"user\",\"content\":\"hi\"}]}", 404, "model"),
                new Case("/v1/chat/completions", "{\"messages\": []}", 400, "messages"),
                new Case("/v1/chat/completions", "{\"messages\": [{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "messages"),
                new Case("/v1/chat/completions", "not json", 400, null));
        for (Case c : cases) {
            HttpResponse<String> r = http.send(request(c.path, c.body), HttpResponse.BodyHandlers.ofString());
            String what = c.path + " " + (c.body.length() > 80 ? c.body.substring(0, 80) + "..." : c.body);
            assertEquals(c.status, r.statusCode(), what + " -> " + r.body());
            JsonNode err = JSON.readTree(r.body()).get("error");
            assertFalse(err.get("message").asText().isBlank(), what);
            assertEquals(c.status == 404 ? "invalid_request_error" : "invalid_request_error", err.get("type").asText(), what);
            if (c.param != null) assertEquals(c.param, err.get("param").asText(), what + " -> " + r.body());
        }
        assertArrayEquals(expected.get(3), jsonTokens(completionBody(prompts.get(3), false)));
    }

    @Test
    void fullQueueIsResourceExhaustedAndHttp429() throws Exception {
        List<StreamHandle> handles = new ArrayList<>();
        // capacity in this test's configuration: 8 running + 12 queued
        for (int i = 0; i < 20; i++) handles.add(client.generate(endless(new int[] {1 + i, 2, 3}), new TokenListener() {
            @Override
            public void onResponse(GenerateResponse response) {}
        }));
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < end) {
            JsonNode h = get("/health");
            if (h.get("running").asInt() + h.get("waiting").asInt() == 20) break;
            Thread.sleep(20);
        }
        var e = assertThrows(StatusRuntimeException.class, () -> client.generate(endless(new int[] {9})));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        HttpResponse<String> r = http.send(request("/v1/completions", "{\"prompt\":[1,2],\"max_tokens\":2}"), HttpResponse.BodyHandlers.ofString());
        assertEquals(429, r.statusCode(), r.body());
        assertFalse(JSON.readTree(r.body()).at("/error/message").asText().isBlank());
        handles.forEach(StreamHandle::cancel);
        awaitShardsEmpty();
        end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < end && get("/health").get("running").asInt() + get("/health").get("waiting").asInt() > 0) Thread.sleep(20);
        assertArrayEquals(expected.get(4), client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(MAX_TOKENS), prompts.get(4))).tokenIds());
    }

    // ---- discovery

    @Test
    void modelsHealthAndModelInfoDescribeTheMesh() throws Exception {
        JsonNode models = get("/v1/models");
        assertEquals("list", models.get("object").asText());
        assertEquals(model(), models.at("/data/0/id").asText());
        assertEquals("UP", get("/health").get("status").asText());
        var info = client.modelInfo();
        assertEquals(2048, info.getVocabSize());
        assertEquals(8, info.getNumHiddenLayers());
        assertEquals(List.of(0, 4), info.getTopology().getShardsList().stream().map(s -> s.getLayerFrom()).toList());
        assertEquals(List.of(4, 8), info.getTopology().getShardsList().stream().map(s -> s.getLayerTo()).toList());
        assertEquals(2, info.getTopology().getExpertServicesCount());
        assertEquals(IntStream.range(0, 16).boxed().toList().size(), 16);
    }

    // ---- HTTP plumbing

    private HttpRequest request(String path, String body) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + path)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private JsonNode post(String path, String body) {
        try {
            HttpResponse<String> r = http.send(request(path, body), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            return JSON.readTree(r.body());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode get(String path) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + base.getPort() + path)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }
}
