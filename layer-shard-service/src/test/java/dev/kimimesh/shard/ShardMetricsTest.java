package dev.kimimesh.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.SamplingParams;
import dev.kimimesh.proto.v1.SequenceChunk;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/** /q/metrics of the shard moves by what one micro-batch did, and the held state shows up and goes away. */
@QuarkusTest
class ShardMetricsTest {
    private static final int PROMPT = 9;

    @Test
    void aMicroBatchMovesTheCountersAndTheStateGauges() throws Exception {
        int port = ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
        ManagedChannel channel = Grpc.newChannelBuilder("127.0.0.1:" + port, InsecureChannelCredentials.create()).build();
        try {
            SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(901).setNumTokens(PROMPT).setSample(true)
                    .setSampling(SamplingParams.newBuilder().setTemperature(0));
            for (int i = 0; i < PROMPT; i++) c.addTokenIds(10 + 3 * i);
            // no OTLP endpoint is configured here: tracing stays off (see TracingDefault)
            assertTrue(ConfigProvider.getConfig().getValue("quarkus.otel.sdk.disabled", Boolean.class));
            String before = metrics(port);
            LinkedBlockingQueue<MicroBatchResult> results = new LinkedBlockingQueue<>();
            StreamObserver<MicroBatch> stream = LayerShardGrpc.newStub(channel).forward(new StreamObserver<>() {
                public void onNext(MicroBatchResult r) { results.add(r); }
                public void onError(Throwable t) { }
                public void onCompleted() { }
            });
            stream.onNext(MicroBatch.newBuilder().setMicroBatchId(1).addSequences(c).build());
            MicroBatchResult r = results.poll(60, TimeUnit.SECONDS);
            stream.onCompleted();
            assertTrue(r.hasSampled(), r.toString());
            String held = metrics(port);

            assertEquals(1, delta(before, held, "kimimesh_shard_micro_batches_total", "outcome=\"ok\""));
            // with tracing off no span was built, so no metric carries a trace exemplar
            assertTrue(!held.contains("trace_id="), "an exemplar with a trace id: a span was built");
            assertEquals(PROMPT, delta(before, held, "kimimesh_shard_tokens_total", "layers=\"0-8\""));
            assertEquals(1, delta(before, held, "kimimesh_shard_micro_batch_seconds_count", "phase=\"compute\""));
            assertEquals(1, delta(before, held, "kimimesh_shard_micro_batch_seconds_count", "phase=\"queue\""));
            assertEquals(PROMPT, delta(before, held, "kimimesh_shard_micro_batch_tokens_sum", "layers=\"0-8\""));
            assertEquals(1, delta(before, held, "kimimesh_shard_live_sequences", "layers=\"0-8\""));
            assertTrue(delta(before, held, "kimimesh_shard_state_bytes", "layers=\"0-8\"") > 0);

            LayerShardGrpc.newBlockingStub(channel).releaseSequence(ReleaseSequenceRequest.newBuilder().addSequenceIds(901).build());
            String released = metrics(port);
            assertEquals(0, delta(before, released, "kimimesh_shard_live_sequences", "layers=\"0-8\""));
            assertEquals(0, delta(before, released, "kimimesh_shard_state_bytes", "layers=\"0-8\""));
        } finally {
            channel.shutdownNow();
        }
    }

    private static double delta(String before, String after, String name, String label) {
        return value(after, name, label) - value(before, name, label);
    }

    private static String metrics(int port) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/q/metrics"))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    /** The value of the sample {@code name} whose labels contain {@code label} (k="v"); 0 when absent. */
    private static double value(String text, String name, String label) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*})? (\\S+)").matcher(text);
        while (m.find()) {
            if ((m.group(1) == null ? "" : m.group(1)).contains(label)) return Double.parseDouble(m.group(2));
        }
        return 0;
    }
}
