package dev.kimimesh.mesh.experts;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertLoad;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import dev.kimimesh.proto.v1.ExpertStats;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Runs expert requests from every shard on one compute thread, coalescing what is queued: whatever requests wait
 * when the thread becomes free are merged per layer into one backend call (rows concatenated), then split back.
 * Nothing sleeps to wait for more; batching comes from requests arriving while a call runs. A request is checked
 * before it is queued, so a bad one fails alone.
 */
public final class ExpertBatcher implements AutoCloseable {
    private record Job(ExpertRequest req, float[] rows, CompletableFuture<ExpertResult> result) {}

    private final Backend backend;
    private final LayerExperts experts;
    private final int hidden, numExperts;
    private final LinkedBlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final Thread worker;
    private final AtomicLong requests = new AtomicLong(), tokens = new AtomicLong(), batches = new AtomicLong(),
            failed = new AtomicLong();
    private final Map<Integer, AtomicLongArray> load = new TreeMap<>();
    private volatile boolean closed;
    private final ExpertServiceTelemetry telemetry;

    public ExpertBatcher(Backend backend, LayerExperts experts, int hidden, int numExperts) {
        this(backend, experts, hidden, numExperts, new ExpertServiceTelemetry(MeshTelemetry.none()));
    }

    /** @param telemetry batch sizes, tokens per expert, latency and spans (see docs/observability.md) */
    public ExpertBatcher(Backend backend, LayerExperts experts, int hidden, int numExperts, ExpertServiceTelemetry telemetry) {
        this.telemetry = telemetry;
        this.backend = backend;
        this.experts = experts;
        this.hidden = hidden;
        this.numExperts = numExperts;
        for (int l : experts.layers()) load.put(l, new AtomicLongArray(numExperts));
        worker = new Thread(this::loop, "experts-compute");
        worker.setDaemon(true);
        telemetry.bind(this, experts, numExperts);
    }

    /** Starts computing; requests submitted before wait in the queue (and then run as one batch per layer). */
    public ExpertBatcher start() {
        worker.start();
        return this;
    }

    /** Queues a request; the future holds its result, or a result with an error code for a bad request. */
    public CompletableFuture<ExpertResult> submit(ExpertRequest req) {
        requests.incrementAndGet();
        CompletableFuture<ExpertResult> f = new CompletableFuture<>();
        telemetry.submitted(req, f);
        float[] rows;
        try {
            rows = check(req);
        } catch (IllegalArgumentException e) {
            failed.incrementAndGet();
            f.complete(failure(req, Status.INVALID_ARGUMENT.withDescription(e.getMessage())));
            return f;
        }
        if (closed) {
            f.complete(failure(req, Status.UNAVAILABLE.withDescription("expert service is shutting down")));
            return f;
        }
        queue.add(new Job(req, rows, f));
        return f;
    }

    private float[] check(ExpertRequest req) {
        String what = "request " + req.getRequestId() + " (layer " + req.getLayer() + ")";
        if (!load.containsKey(req.getLayer())) {
            throw new IllegalArgumentException(what + ": this service holds no experts of layer " + req.getLayer()
                    + " (it serves layers " + load.keySet() + ")");
        }
        if (!req.hasRows()) throw new IllegalArgumentException(what + ": rows are missing");
        long n = req.getRows().getShapeCount() > 0 ? req.getRows().getShape(0) : -1;
        if (n < 0 || n > Integer.MAX_VALUE / Math.max(1, hidden)) throw new IllegalArgumentException(what + ": bad rows shape " + req.getRows().getShapeList());
        float[] rows = RawTensors.decode(req.getRows(), (int) n, hidden, what + ": rows");
        if (req.getExpertCountsCount() != n) {
            throw new IllegalArgumentException(what + ": " + req.getExpertCountsCount() + " expert_counts for " + n + " rows");
        }
        long sum = 0;
        for (int c : req.getExpertCountsList()) {
            if (c < 1) throw new IllegalArgumentException(what + ": an expert count of " + c + " (>= 1 required)");
            sum += c;
        }
        if (sum != req.getExpertIdsCount() || sum != req.getWeightsCount()) {
            throw new IllegalArgumentException(what + ": expert_counts add up to " + sum + " but there are "
                    + req.getExpertIdsCount() + " expert_ids and " + req.getWeightsCount() + " weights");
        }
        for (int e : req.getExpertIdsList()) {
            if (!experts.serves(req.getLayer(), e)) {
                throw new IllegalArgumentException(what + ": expert " + e + " of layer " + req.getLayer() + " is not held here");
            }
        }
        for (float w : req.getWeightsList()) if (!Float.isFinite(w)) throw new IllegalArgumentException(what + ": a weight is " + w);
        return rows;
    }

    private void loop() {
        List<Job> jobs = new ArrayList<>();
        while (!closed) {
            try {
                jobs.add(queue.take());
            } catch (InterruptedException e) {
                break;
            }
            queue.drainTo(jobs);
            Map<Integer, List<Job>> byLayer = new LinkedHashMap<>();
            for (Job j : jobs) byLayer.computeIfAbsent(j.req().getLayer(), l -> new ArrayList<>()).add(j);
            for (var e : byLayer.entrySet()) {
                try {
                    run(e.getKey(), e.getValue());
                } catch (RuntimeException ex) {
                    failed.addAndGet(e.getValue().size());
                    for (Job j : e.getValue()) {
                        j.result().complete(failure(j.req(), Status.INTERNAL.withDescription("layer " + e.getKey() + ": " + ex)));
                    }
                }
            }
            jobs.clear();
        }
    }

    /** One backend call for all queued requests of a layer: rows concatenated, routing padded to a common top-k. */
    private void run(int layer, List<Job> jobs) {
        int rows = 0, k = 1;
        for (Job j : jobs) {
            rows += j.rows().length / hidden;
            for (int c : j.req().getExpertCountsList()) k = Math.max(k, c);
        }
        float[] x = new float[rows * hidden];
        int[] ids = new int[rows * k];
        float[] w = new float[rows * k];
        Arrays.fill(ids, -1); // an id of -1 is skipped by the backend
        AtomicLongArray perExpert = load.get(layer);
        int r = 0;
        for (Job j : jobs) {
            System.arraycopy(j.rows(), 0, x, r * hidden, j.rows().length);
            int o = 0;
            for (int cnt : j.req().getExpertCountsList()) {
                for (int i = 0; i < cnt; i++) {
                    int e = j.req().getExpertIds(o + i);
                    ids[r * k + i] = e;
                    w[r * k + i] = j.req().getWeights(o + i);
                    perExpert.incrementAndGet(e);
                }
                o += cnt;
                r++;
            }
            tokens.addAndGet(o);
        }
        long started = System.nanoTime();
        Tensor xt = backend.upload(x, rows, hidden);
        Tensor out = backend.allocate(rows, hidden);
        experts.dispatch(layer, xt, new Routing(rows, k, ids, w), out);
        float[] sums = backend.download(out);
        backend.release(xt);
        backend.release(out);
        batches.incrementAndGet();
        telemetry.computed(jobs.size(), rows, System.nanoTime() - started);
        r = 0;
        for (Job j : jobs) {
            int n = j.rows().length / hidden;
            float[] mine = Arrays.copyOfRange(sums, r * hidden, (r + n) * hidden);
            DType dt = j.req().getResultDtype() == DType.DTYPE_UNSPECIFIED ? DType.DTYPE_F32 : j.req().getResultDtype();
            j.result().complete(ExpertResult.newBuilder().setRequestId(j.req().getRequestId())
                    .setSums(RawTensors.encode(mine, n, hidden, dt)).build());
            r += n;
        }
    }

    private static ExpertResult failure(ExpertRequest req, Status s) {
        return ExpertResult.newBuilder().setRequestId(req.getRequestId()).setCode(s.getCode().value())
                .setMessage(s.getDescription()).build();
    }

    /** Requests waiting for the compute thread. */
    public int queued() {
        return queue.size();
    }

    /** Token rows expert {@code expert} has computed, over every layer served. */
    public long expertTokens(int expert) {
        long n = 0;
        for (AtomicLongArray a : load.values()) n += a.get(expert);
        return n;
    }

    /** Token-expert pairs computed for layer {@code layer}. */
    public long layerTokens(int layer) {
        AtomicLongArray a = load.get(layer);
        if (a == null) return 0;
        long n = 0;
        for (int e = 0; e < a.length(); e++) n += a.get(e);
        return n;
    }

    public ExpertStats stats() {
        ExpertStats.Builder b = ExpertStats.newBuilder().setRequests(requests.get()).setTokens(tokens.get())
                .setBatches(batches.get()).setFailed(failed.get()).setQueued(queue.size());
        load.forEach((l, a) -> {
            for (int e = 0; e < numExperts; e++) {
                long t = a.get(e);
                if (t > 0) b.addLoad(ExpertLoad.newBuilder().setLayer(l).setExpert(e).setTokens(t));
            }
        });
        return b.build();
    }

    @Override
    public void close() {
        closed = true;
        worker.interrupt();
    }
}
