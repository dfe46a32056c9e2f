package dev.kimimesh.gateway.observe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.client.Completion;
import dev.kimimesh.client.KimiMeshClient;
import dev.kimimesh.gateway.TinyFixture;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Metrics and traces of the gateway in front of a real mesh: /q/metrics counters move by what a request did, and
 * one request's trace holds the gateway's spans and the spans of both shards and the expert services, joined only
 * by the trace context the messages carry.
 */
@QuarkusTest
@TestProfile(GatewayObservabilityTest.Traced.class)
class GatewayObservabilityTest {
    /** Tracing on (it is off without an OTLP endpoint), spans kept in memory instead of exported. */
    public static final class Traced implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("quarkus.otel.sdk.disabled", "false", "quarkus.otel.exporter.otlp.enabled", "false");
        }

        @Override
        public List<TestResourceEntry> testResources() {
            return List.of(new TestResourceEntry(TracedMeshResource.class));
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    @TestHTTPResource("/")
    URL base;

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @Test
    void metricsMoveByWhatARequestDid() throws Exception {
        int[] prompt = TinyFixture.eightPrompts().get(3);
        PrometheusText before = metrics();
        HttpResponse<String> r = post("/v1/completions", completion(prompt, 5));
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(5, JSON.readTree(r.body()).get("usage").get("completion_tokens").asInt(), r.body());
        assertEquals(400, post("/v1/completions", "{\"prompt\":[],\"max_tokens\":2}").statusCode());
        try (KimiMeshClient client = KimiMeshClient.connect("127.0.0.1:" + base.getPort())) {
            Completion c = client.generate(KimiMeshClient.tokens(KimiMeshClient.greedy(3).toBuilder().setIgnoreEos(true).build(), prompt));
            assertEquals(3, c.tokenIds().length);
        }
        // the HTTP outcome is counted when the response has ended, which the client may see first
        PrometheusText after = metrics();
        for (int i = 0; i < 100 && after.sum("kimimesh_gateway_requests_total", "endpoint", "/v1/completions")
                - before.sum("kimimesh_gateway_requests_total", "endpoint", "/v1/completions") < 2; i++) {
            Thread.sleep(50);
            after = metrics();
        }

        assertDelta(1, before, after, "kimimesh_gateway_requests_total", "endpoint", "/v1/completions", "outcome", "ok");
        assertDelta(1, before, after, "kimimesh_gateway_requests_total", "endpoint", "/v1/completions", "outcome", "invalid");
        assertDelta(1, before, after, "kimimesh_gateway_requests_total", "endpoint", "kimimesh.v1.KimiMesh/Generate", "outcome", "ok");
        assertDelta(2 * prompt.length, before, after, "kimimesh_gateway_prompt_tokens_total");
        assertDelta(5 + 3, before, after, "kimimesh_gateway_generation_tokens_total");
        assertDelta(2, before, after, "kimimesh_gateway_sequences_finished_total", "reason", "length");
        assertDelta(2, before, after, "kimimesh_gateway_time_to_first_token_seconds_count");
        assertDelta(2, before, after, "kimimesh_gateway_e2e_request_latency_seconds_count", "reason", "length");
        // every token but the last of each request is fed back for the next step
        assertDelta(4 + 2, before, after, "kimimesh_gateway_time_per_output_token_seconds_count");
        // what went through the pipeline: both prompts in full, then the decode tokens
        assertDelta(2 * prompt.length + 4 + 2, before, after, "kimimesh_gateway_micro_batch_tokens_sum");
        double batches = after.sum("kimimesh_gateway_micro_batch_tokens_count") - before.sum("kimimesh_gateway_micro_batch_tokens_count");
        assertDelta(batches, before, after, "kimimesh_gateway_micro_batch_seconds_count", "outcome", "ok");
        // shard 0 forwards to shard 1 itself: the gateway drives one hop per micro-batch
        assertDelta(batches, before, after, "kimimesh_gateway_hop_seconds_count", "stage", "0");
        assertTrue(after.has("kimimesh_gateway_queue_depth") && after.has("kimimesh_gateway_running_sequences"));
        assertTrue(after.has("kimimesh_gateway_time_to_first_token_seconds_bucket"), "TTFT is a histogram");

        // the mesh's own meters (a shard and expert service publish them at their /q/metrics)
        for (String layers : List.of("0-4", "4-8")) {
            Counter ok = TracedMeshResource.METERS.find("kimimesh.shard.micro.batches").tags("layers", layers, "outcome", "ok").counter();
            assertTrue(ok != null && ok.count() >= batches, "shard " + layers + " counted " + (ok == null ? null : ok.count()));
        }
        DistributionSummary rows = TracedMeshResource.METERS.find("kimimesh.experts.batch.rows").summary();
        assertTrue(rows != null && rows.count() > 0, "expert batches");
    }

    @Test
    void oneRequestIsOneTraceAcrossTheMesh() throws Exception {
        GatewaySpans.EXPORTER.reset();
        TracedMeshResource.SPANS.reset();
        HttpResponse<String> r = post("/v1/completions", completion(TinyFixture.eightPrompts().get(0), 2));
        assertEquals(200, r.statusCode(), r.body());

        SpanData generate = await(GatewaySpans.EXPORTER::getFinishedSpanItems, s -> s.getName().equals("kimimesh.generate"));
        String trace = generate.getTraceId();
        // the server span ends once the response is written, possibly after the client read it
        SpanData server = await(GatewaySpans.EXPORTER::getFinishedSpanItems, s -> s.getSpanId().equals(generate.getParentSpanId()));
        assertEquals(trace, server.getTraceId());
        // every micro-batch (and its hops) ended before the request's last token was delivered
        List<SpanData> gateway = GatewaySpans.EXPORTER.getFinishedSpanItems();
        assertEquals(SpanKind.SERVER, server.getKind(), "the generate span's parent is the HTTP request's span: " + server);
        assertEquals(2L, generate.getAttributes().asMap().entrySet().stream()
                .filter(e -> e.getKey().getKey().equals("gen_ai.usage.output_tokens")).findFirst().orElseThrow().getValue());

        List<SpanData> batches = children(gateway, generate, "kimimesh.micro_batch");
        assertFalse(batches.isEmpty(), "micro-batch spans under the request: " + names(gateway));
        SpanData hop = children(gateway, batches.getFirst(), "kimimesh.pipeline.hop").getFirst();
        assertEquals(SpanKind.CLIENT, hop.getKind());

        // the mesh's spans, from its own SDK, continue the same trace
        SpanData shard0 = await(TracedMeshResource.SPANS::getFinishedSpanItems,
                s -> s.getName().equals("kimimesh.shard.forward") && s.getParentSpanId().equals(hop.getSpanId()));
        assertEquals(trace, shard0.getTraceId());
        assertEquals("0-4", shard0.getAttributes().asMap().entrySet().stream()
                .filter(e -> e.getKey().getKey().equals("kimimesh.shard.layers")).findFirst().orElseThrow().getValue());
        SpanData shard1 = await(TracedMeshResource.SPANS::getFinishedSpanItems,
                s -> s.getName().equals("kimimesh.shard.forward") && s.getParentSpanId().equals(shard0.getSpanId()));
        assertEquals(trace, shard1.getTraceId());
        SpanData dispatch = await(TracedMeshResource.SPANS::getFinishedSpanItems,
                s -> s.getName().equals("kimimesh.experts.dispatch") && s.getParentSpanId().equals(shard1.getSpanId()));
        assertEquals(SpanKind.CLIENT, dispatch.getKind());
        SpanData compute = await(TracedMeshResource.SPANS::getFinishedSpanItems,
                s -> s.getName().equals("kimimesh.experts.compute") && s.getParentSpanId().equals(dispatch.getSpanId()));
        assertEquals(trace, compute.getTraceId());
    }

    private static SpanData await(java.util.function.Supplier<List<SpanData>> spans, Predicate<SpanData> which) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (SpanData s : spans.get()) if (which.test(s)) return s;
            Thread.sleep(50);
        }
        throw new AssertionError("no such span among " + names(spans.get()));
    }

    private static List<SpanData> children(List<SpanData> spans, SpanData parent, String name) {
        return spans.stream().filter(s -> s.getName().equals(name) && s.getParentSpanId().equals(parent.getSpanId())
                && s.getTraceId().equals(parent.getTraceId())).collect(Collectors.toCollection(ArrayList::new));
    }

    private static String names(List<SpanData> spans) {
        return spans.stream().map(s -> s.getName() + "(" + s.getKind() + ")").toList().toString();
    }

    private static void assertDelta(double expected, PrometheusText before, PrometheusText after, String name, String... labels) {
        assertEquals(expected, after.sum(name, labels) - before.sum(name, labels), 1e-9, name + " " + Arrays.toString(labels));
    }

    private static String completion(int[] prompt, int maxTokens) {
        return "{\"prompt\":" + Arrays.toString(prompt) + ",\"max_tokens\":" + maxTokens + ",\"temperature\":0,\"ignore_eos\":true}";
    }

    private PrometheusText metrics() throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "q/metrics")).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return new PrometheusText(r.body());
    }

    private HttpResponse<String> post(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(base + path.substring(1))).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }
}
