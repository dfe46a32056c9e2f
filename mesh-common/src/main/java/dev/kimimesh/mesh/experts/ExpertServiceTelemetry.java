package dev.kimimesh.mesh.experts;

import dev.kimimesh.mesh.telemetry.Buckets;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.telemetry.TraceCarrier;
import dev.kimimesh.proto.v1.ExpertRequest;
import dev.kimimesh.proto.v1.ExpertResult;
import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Metrics and spans of an expert service: batch sizes of the coalesced backend calls, tokens per expert and per
 * layer (read from the batcher's own load counters, so the compute loop pays nothing), request and compute latency,
 * and a span per request as a child of the shard's dispatch span.
 */
public final class ExpertServiceTelemetry {
    private final MeterRegistry meters;
    private final OpenTelemetry otel;
    private final Tracer tracer;
    private final Timer request, compute;
    private final Counter ok, failed;
    private final DistributionSummary batchRows, batchRequests;

    public ExpertServiceTelemetry(MeshTelemetry telemetry) {
        this.meters = telemetry.meters();
        this.otel = telemetry.otel();
        this.tracer = telemetry.tracer();
        request = Timer.builder("kimimesh.experts.request").description("One expert request from arrival to result (queue + compute)")
                .serviceLevelObjectives(Buckets.LATENCY).register(meters);
        compute = Timer.builder("kimimesh.experts.compute").description("One coalesced backend call (all queued requests of a layer)")
                .serviceLevelObjectives(Buckets.LATENCY).register(meters);
        ok = Counter.builder("kimimesh.experts.requests").description("Expert requests answered, by outcome").tag("outcome", "ok").register(meters);
        failed = Counter.builder("kimimesh.experts.requests").description("Expert requests answered, by outcome").tag("outcome", "failed").register(meters);
        batchRows = DistributionSummary.builder("kimimesh.experts.batch.rows").baseUnit("rows")
                .description("Token rows per coalesced backend call").serviceLevelObjectives(Buckets.SIZES).register(meters);
        batchRequests = DistributionSummary.builder("kimimesh.experts.batch.requests").baseUnit("requests")
                .description("Requests (from any shard) coalesced into one backend call").serviceLevelObjectives(Buckets.SIZES).register(meters);
    }

    /** Registers the gauges and counters read from the batcher: queue depth, tokens per expert and per layer. */
    void bind(ExpertBatcher batcher, LayerExperts experts, int numExperts) {
        Gauge.builder("kimimesh.experts.queued", batcher, ExpertBatcher::queued).baseUnit("requests")
                .description("Requests waiting for the compute thread").register(meters);
        for (int e = 0; e < numExperts; e++) {
            boolean held = false;
            for (int l : experts.layers()) held |= experts.serves(l, e);
            if (!held) continue;
            int expert = e;
            FunctionCounter.builder("kimimesh.experts.expert.tokens", batcher, b -> b.expertTokens(expert)).baseUnit("tokens")
                    .description("Token rows routed to this expert, summed over layers (per layer and expert: the Stats RPC)")
                    .tag("expert", Integer.toString(e)).register(meters);
        }
        for (int l : experts.layers()) {
            FunctionCounter.builder("kimimesh.experts.layer.tokens", batcher, b -> b.layerTokens(l)).baseUnit("tokens")
                    .description("Token-expert pairs computed for this MoE layer").tag("layer", Integer.toString(l)).register(meters);
        }
    }

    /** Traces and times a request from now until its result completes. */
    void submitted(ExpertRequest req, CompletableFuture<ExpertResult> result) {
        long start = System.nanoTime();
        Span span = tracer.spanBuilder("kimimesh.experts.compute").setSpanKind(SpanKind.SERVER)
                .setParent(TraceCarrier.extract(otel, req.getTraceContextMap()))
                .setAttribute("kimimesh.layer", req.getLayer()).setAttribute("kimimesh.experts.rows", req.getExpertCountsCount())
                .startSpan();
        result.whenComplete((r, error) -> {
            request.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
            int code = error != null ? Status.Code.INTERNAL.value() : r.getCode();
            if (code == 0) {
                ok.increment();
            } else {
                failed.increment();
                span.setStatus(StatusCode.ERROR, error != null ? String.valueOf(error.getMessage()) : r.getMessage());
            }
            span.end();
        });
    }

    /** One backend call of {@code requests} coalesced requests, {@code rows} rows, taking {@code nanos}. */
    void computed(int requests, int rows, long nanos) {
        compute.record(nanos, TimeUnit.NANOSECONDS);
        batchRows.record(rows);
        batchRequests.record(requests);
    }
}
