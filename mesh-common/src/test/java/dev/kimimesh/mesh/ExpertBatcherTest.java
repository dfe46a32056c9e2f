package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.LocalExperts;
import dev.kimimesh.mesh.experts.ExpertBatcher;
import dev.kimimesh.mesh.experts.LayerExperts;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Requests queued together are computed in one backend call per layer, each answered with its own rows exactly. */
class ExpertBatcherTest {
    private static final int HIDDEN = 256;

    @Test
    void queuedRequestsOfOneLayerShareOneBackendCall() throws Exception {
        try (Checkpoint ck = Checkpoint.open(InProcessMesh.TINY)) {
            CpuBackend be = new CpuBackend();
            ExpertBatcher batcher = new ExpertBatcher(be, new LayerExperts(ck, be, List.of(3, 5), (l, e) -> true), HIDDEN, 16);
            Random rnd = new Random(3);
            List<float[]> xs = new ArrayList<>();
            List<int[]> ids = new ArrayList<>();
            List<float[]> ws = new ArrayList<>();
            List<CompletableFuture<ExpertResult>> futures = new ArrayList<>();
            int[] layers = {3, 3, 5, 3};
            int[] rows = {2, 1, 3, 4};
            for (int q = 0; q < layers.length; q++) {
                float[] x = new float[rows[q] * HIDDEN];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                int[] id = new int[rows[q] * 2];
                float[] w = new float[rows[q] * 2];
                ExpertRequest.Builder req = ExpertRequest.newBuilder().setRequestId(q).setLayer(layers[q])
                        .setRows(RawTensors.encode(x, rows[q], HIDDEN, DType.DTYPE_F32));
                for (int r = 0; r < rows[q]; r++) {
                    req.addExpertCounts(2);
                    for (int j = 0; j < 2; j++) {
                        id[r * 2 + j] = (q * 5 + r * 3 + j * 7) % 16;
                        w[r * 2 + j] = 0.5f + rnd.nextFloat();
                        req.addExpertIds(id[r * 2 + j]).addWeights(w[r * 2 + j]);
                    }
                }
                xs.add(x);
                ids.add(id);
                ws.add(w);
                futures.add(batcher.submit(req.build()));
            }
            batcher.start(); // all four were queued: layer 3's three requests make one call, layer 5's one
            for (int q = 0; q < layers.length; q++) {
                ExpertResult res = futures.get(q).get(30, TimeUnit.SECONDS);
                assertEquals(0, res.getCode(), res.getMessage());
                Tensor out = be.allocate(rows[q], HIDDEN);
                new LocalExperts(ck, be, layers[q], layers[q] + 1, e -> true)
                        .dispatch(layers[q], be.upload(xs.get(q), rows[q], HIDDEN), new Routing(rows[q], 2, ids.get(q), ws.get(q)), out);
                assertArrayEquals(be.download(out), RawTensors.decode(res.getSums(), rows[q], HIDDEN, "sums"), "request " + q);
            }
            assertEquals(2, batcher.stats().getBatches());
            assertEquals(4, batcher.stats().getRequests());
            assertEquals(2 * (2 + 1 + 3 + 4), batcher.stats().getTokens());
            batcher.close();
        }
    }
}
