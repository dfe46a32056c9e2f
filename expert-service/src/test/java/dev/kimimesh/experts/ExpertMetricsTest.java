package dev.kimimesh.experts;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertsGrpc;
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

/** /q/metrics of the expert service moves by what one Dispatch request did. */
@QuarkusTest
class ExpertMetricsTest {
    @Test
    void oneRequestMovesTheCounters() throws Exception {
        int port = ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
        ManagedChannel channel = Grpc.newChannelBuilder("127.0.0.1:" + port, InsecureChannelCredentials.create()).build();
        try {
            ExpertInfo info = ExpertsGrpc.newBlockingStub(channel).info(ExpertInfoRequest.getDefaultInstance());
            int hidden = info.getHiddenSize();
            float[] rows = new float[2 * hidden];
            for (int i = 0; i < rows.length; i++) rows[i] = (float) Math.sin(i);
            // row 0 goes to experts 8 and 9, row 1 to expert 10 (this service holds 8-15)
            ExpertRequest req = ExpertRequest.newBuilder().setRequestId(1).setLayer(1)
                    .setRows(RawTensors.encode(rows, 2, hidden, DType.DTYPE_F32))
                    .addExpertCounts(2).addExpertCounts(1).addExpertIds(8).addExpertIds(9).addExpertIds(10)
                    .addWeights(0.5f).addWeights(0.25f).addWeights(1f).build();
            String before = metrics(port);
            LinkedBlockingQueue<ExpertResult> results = new LinkedBlockingQueue<>();
            StreamObserver<ExpertRequest> stream = ExpertsGrpc.newStub(channel).dispatch(new StreamObserver<>() {
                public void onNext(ExpertResult r) { results.add(r); }
                public void onError(Throwable t) { }
                public void onCompleted() { }
            });
            stream.onNext(req);
            ExpertResult r = results.poll(60, TimeUnit.SECONDS);
            stream.onCompleted();
            assertEquals(0, r.getCode(), r.getMessage());
            String after = metrics(port);

            assertEquals(1, value(after, "kimimesh_experts_requests_total", "outcome=\"ok\"") - value(before, "kimimesh_experts_requests_total", "outcome=\"ok\""));
            assertEquals(1, value(after, "kimimesh_experts_batch_rows_count", "") - value(before, "kimimesh_experts_batch_rows_count", ""));
            assertEquals(2, value(after, "kimimesh_experts_batch_rows_sum", "") - value(before, "kimimesh_experts_batch_rows_sum", ""));
            assertEquals(1, value(after, "kimimesh_experts_expert_tokens_total", "expert=\"8\"") - value(before, "kimimesh_experts_expert_tokens_total", "expert=\"8\""));
            assertEquals(1, value(after, "kimimesh_experts_expert_tokens_total", "expert=\"10\"") - value(before, "kimimesh_experts_expert_tokens_total", "expert=\"10\""));
            assertEquals(0, value(after, "kimimesh_experts_expert_tokens_total", "expert=\"11\"") - value(before, "kimimesh_experts_expert_tokens_total", "expert=\"11\""));
            assertEquals(3, value(after, "kimimesh_experts_layer_tokens_total", "layer=\"1\"") - value(before, "kimimesh_experts_layer_tokens_total", "layer=\"1\""));
            assertEquals(1, value(after, "kimimesh_experts_request_seconds_count", "") - value(before, "kimimesh_experts_request_seconds_count", ""));
        } finally {
            channel.shutdownNow();
        }
    }

    private static String metrics(int port) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/q/metrics"))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    /** The value of the sample {@code name} whose labels contain {@code label} (k="v"), or whose name stands alone; 0 when absent. */
    private static double value(String text, String name, String label) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*})? (\\S+)").matcher(text);
        while (m.find()) {
            String labels = m.group(1) == null ? "" : m.group(1);
            if (labels.contains(label)) return Double.parseDouble(m.group(2));
        }
        return 0;
    }
}
