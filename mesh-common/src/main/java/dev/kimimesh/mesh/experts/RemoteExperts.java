package dev.kimimesh.mesh.experts;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.model.ExpertDispatch;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Routed experts computed by expert services: for each MoE layer the routed rows are grouped per service (one
 * request per service per layer per micro-batch, all in flight at once, sent before the layer computes its shared
 * expert), experts this shard keeps run locally meanwhile, and the weighted sums are added into the layer's output in a fixed service order (so results do not
 * depend on which service answers first).
 */
public final class RemoteExperts implements ExpertDispatch {
    private final Backend backend;
    private final ExpertPlan plan;
    private final List<ExpertClient> clients;
    private final ExpertDispatch local;
    private final Duration timeout;
    private final DType wire;
    private final DispatchTelemetry telemetry;

    /**
     * @param local  computes the experts the plan leaves to this shard (null when the plan covers every expert)
     * @param wire   dtype of the rows sent (f32 keeps the result exact)
     */
    public RemoteExperts(Backend backend, ExpertPlan plan, List<ExpertClient> clients, ExpertDispatch local,
                         Duration timeout, DType wire) {
        this(backend, plan, clients, local, timeout, wire, new DispatchTelemetry(MeshTelemetry.none()));
    }

    /** @param telemetry spans and latency of each request to an expert service */
    public RemoteExperts(Backend backend, ExpertPlan plan, List<ExpertClient> clients, ExpertDispatch local,
                         Duration timeout, DType wire, DispatchTelemetry telemetry) {
        this.telemetry = telemetry;
        this.backend = backend;
        this.plan = plan;
        this.clients = List.copyOf(clients);
        this.local = local;
        this.timeout = timeout;
        this.wire = wire;
    }

    @Override
    public void dispatch(int layer, Tensor x, Routing routing, Tensor out) {
        send(layer, x, routing).finish(out);
    }

    /** Sends the routed rows at once: the expert services work while the layer computes its shared expert. */
    @Override
    public Pending start(int layer, Backend b, Tensor logits, Weight bias, RouterSpec spec, Tensor x) {
        return send(layer, x, b.route(logits, bias, spec));
    }

    private Pending send(int layer, Tensor x, Routing routing) {
        int rows = routing.rows(), k = routing.topK(), hidden = x.cols(), n = clients.size();
        List<List<Integer>> rowsOf = new ArrayList<>(n);
        List<ExpertRequest.Builder> reqs = new ArrayList<>(n);
        for (int c = 0; c < n; c++) {
            rowsOf.add(new ArrayList<>());
            reqs.add(ExpertRequest.newBuilder().setLayer(layer).setResultDtype(wire));
        }
        boolean anyLocal = false;
        int[] count = new int[n];
        for (int r = 0; r < rows; r++) {
            java.util.Arrays.fill(count, 0);
            for (int j = 0; j < k; j++) {
                int e = routing.expert(r, j);
                int c = plan.owner(layer, e);
                if (c < 0) {
                    if (local == null) throw new IllegalStateException("expert " + e + " of layer " + layer + " is served by no expert service and not locally");
                    anyLocal = true;
                    continue;
                }
                reqs.get(c).addExpertIds(e).addWeights(routing.weight(r, j));
                count[c]++;
            }
            for (int c = 0; c < n; c++) {
                if (count[c] > 0) {
                    rowsOf.get(c).add(r);
                    reqs.get(c).addExpertCounts(count[c]);
                }
            }
        }
        List<CompletableFuture<ExpertResult>> futures = new ArrayList<>(n);
        DispatchTelemetry.Call[] calls = new DispatchTelemetry.Call[n];
        float[] xs = null;
        for (int c = 0; c < n; c++) {
            List<Integer> rs = rowsOf.get(c);
            if (rs.isEmpty()) {
                futures.add(null);
                continue;
            }
            if (xs == null) xs = backend.download(x);
            float[] sel = new float[rs.size() * hidden];
            for (int i = 0; i < rs.size(); i++) System.arraycopy(xs, rs.get(i) * hidden, sel, i * hidden, hidden);
            calls[c] = telemetry.start(layer, clients.get(c).address(), rs.size(), reqs.get(c));
            futures.add(clients.get(c).send(reqs.get(c).setRows(RawTensors.encode(sel, rs.size(), hidden, wire))));
        }
        boolean runLocal = anyLocal;
        return out -> {
            // local experts and the remote sums are added after whatever the caller put into out (the shared expert)
            if (runLocal) local.dispatch(layer, x, routing, out);
            float[] acc = null;
            for (int c = 0; c < n; c++) {
                if (futures.get(c) == null) continue;
                ExpertResult res;
                try {
                    res = await(futures.get(c), clients.get(c).address(), layer);
                } catch (RuntimeException e) {
                    calls[c].end(e);
                    throw e;
                }
                calls[c].end(null);
                List<Integer> rs = rowsOf.get(c);
                float[] sums;
                try {
                    sums = RawTensors.decode(res.getSums(), rs.size(), hidden, "expert service " + clients.get(c).address() + " layer " + layer + " sums");
                } catch (IllegalArgumentException e) {
                    throw Status.INTERNAL.withDescription(e.getMessage()).asRuntimeException();
                }
                if (acc == null) acc = new float[rows * hidden];
                for (int i = 0; i < rs.size(); i++) {
                    int o = rs.get(i) * hidden;
                    for (int h = 0; h < hidden; h++) acc[o + h] += sums[i * hidden + h];
                }
            }
            if (acc != null) {
                Tensor t = backend.upload(acc, rows, hidden);
                backend.add(out, t);
                backend.release(t);
            }
        };
    }

    private ExpertResult await(CompletableFuture<ExpertResult> f, String address, int layer) {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof StatusRuntimeException sre) throw sre;
            throw Status.UNAVAILABLE.withDescription("expert service " + address + " failed on layer " + layer + ": " + e.getCause())
                    .asRuntimeException();
        } catch (TimeoutException e) {
            f.cancel(false);
            throw Status.DEADLINE_EXCEEDED.withDescription("expert service " + address + " did not answer layer " + layer
                    + " within " + timeout.toMillis() + " ms").asRuntimeException();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Status.CANCELLED.withDescription("interrupted while waiting for expert service " + address).asRuntimeException();
        }
    }
}
