package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.LocalExperts;
import dev.kimimesh.mesh.experts.ExpertAssembly;
import dev.kimimesh.mesh.experts.ExpertSettings;
import dev.kimimesh.mesh.experts.ExpertsService;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertInfoRequest;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertStatsRequest;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** An expert service answers with the engine's own expert math, rejects bad requests alone, and counts load. */
class ExpertServiceTest {

    @Test
    void computesHeldExpertsAndRejectsBadRequestsOnTheSameStream() throws Exception {
        ExpertsService service = ExpertAssembly.build(ExpertSettings.of(InProcessMesh.TINY, "1-3", "even"));
        Server server = InProcessServerBuilder.forName("experts-even").addService(service).build().start();
        ManagedChannel ch = InProcessChannelBuilder.forName("experts-even").build();
        try (Checkpoint ck = Checkpoint.open(InProcessMesh.TINY)) {
            var info = ExpertsGrpc.newBlockingStub(ch).info(ExpertInfoRequest.getDefaultInstance());
            assertEquals(List.of(1, 2, 3), info.getLayersList());
            assertEquals(List.of(0, 2, 4, 6, 8, 10, 12, 14), info.getExpertIdsList());

            int hidden = 256, rows = 5;
            float[] x = new float[rows * hidden];
            Random rnd = new Random(11);
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
            // row r uses experts {2r, 2r+4} (row 4: just 8) with weights 0.25 and 1.5
            ExpertRequest.Builder good = ExpertRequest.newBuilder().setLayer(2).setRows(RawTensors.encode(x, rows, hidden, DType.DTYPE_F32));
            int[] ids = new int[rows * 2];
            float[] w = new float[rows * 2];
            for (int r = 0; r < rows; r++) {
                int n = r == 4 ? 1 : 2;
                good.addExpertCounts(n);
                for (int j = 0; j < n; j++) {
                    ids[r * 2 + j] = j == 0 ? (r == 4 ? 8 : 2 * r) : 2 * r + 4;
                    w[r * 2 + j] = j == 0 ? 0.25f : 1.5f;
                    good.addExpertIds(ids[r * 2 + j]).addWeights(w[r * 2 + j]);
                }
                if (n == 1) ids[r * 2 + 1] = -1;
            }

            LinkedBlockingQueue<ExpertResult> results = new LinkedBlockingQueue<>();
            StreamObserver<ExpertRequest> stream = ExpertsGrpc.newStub(ch).dispatch(new StreamObserver<>() {
                public void onNext(ExpertResult r) { results.add(r); }
                public void onError(Throwable t) { }
                public void onCompleted() { }
            });
            stream.onNext(good.clone().setRequestId(1).setExpertIds(0, 3).build());              // odd expert: not held
            stream.onNext(good.clone().setRequestId(2).setLayer(5).build());                     // layer not served
            var rowsTensor = good.getRows();
            stream.onNext(good.clone().setRequestId(3).setRows(rowsTensor.toBuilder()
                    .setData(rowsTensor.getData().substring(1))).build());                       // truncated tensor
            stream.onNext(good.clone().setRequestId(4).build());
            List<ExpertResult> got = new ArrayList<>();
            for (int i = 0; i < 4; i++) got.add(results.poll(30, TimeUnit.SECONDS));
            got.sort((a, b) -> Long.compare(a.getRequestId(), b.getRequestId()));
            for (int i = 0; i < 3; i++) assertEquals(Status.Code.INVALID_ARGUMENT.value(), got.get(i).getCode(), got.get(i).getMessage());
            assertTrue(got.get(0).getMessage().contains("expert 3 of layer 2 is not held"), got.get(0).getMessage());
            assertTrue(got.get(1).getMessage().contains("layer 5"), got.get(1).getMessage());
            assertTrue(got.get(2).getMessage().contains("bytes"), got.get(2).getMessage());
            assertEquals(0, got.get(3).getCode(), got.get(3).getMessage());

            // independent: the engine's own LocalExperts holding every expert of layer 2
            CpuBackend be = new CpuBackend();
            Tensor out = be.allocate(rows, hidden);
            new LocalExperts(ck, be, 2, 3, e -> true).dispatch(2, be.upload(x, rows, hidden), new Routing(rows, 2, ids, w), out);
            assertArrayEquals(be.download(out), RawTensors.decode(got.get(3).getSums(), rows, hidden, "sums"));

            var stats = ExpertsGrpc.newBlockingStub(ch).stats(ExpertStatsRequest.getDefaultInstance());
            assertEquals(4, stats.getRequests());
            assertEquals(3, stats.getFailed());
            assertEquals(9, stats.getTokens());
            long expert8 = stats.getLoadList().stream().filter(l -> l.getLayer() == 2 && l.getExpert() == 8).mapToLong(l -> l.getTokens()).sum();
            assertEquals(2, expert8); // row 2 (2r+4) and row 4
            stream.onCompleted();
        } finally {
            ch.shutdownNow();
            server.shutdownNow();
            service.close();
        }
    }
}
