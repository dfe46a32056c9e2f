package dev.kimimesh.mesh.experts;

import dev.kimimesh.mesh.telemetry.Buckets;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.telemetry.TraceCarrier;
import dev.kimimesh.proto.v1.ExpertRequest;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The shard's side of expert dispatch: a span per request to an expert service (a child of the shard's micro-batch
 * span, its context put on the request) and the round-trip latency per service.
 */
public final class DispatchTelemetry {
    private final MeterRegistry meters;
    private final OpenTelemetry otel;
    private final Tracer tracer;
    private final Map<String, Timer> latency = new ConcurrentHashMap<>();

    public DispatchTelemetry(MeshTelemetry telemetry) {
        this.meters = telemetry.meters();
        this.otel = telemetry.otel();
        this.tracer = telemetry.tracer();
    }

    /** One request in flight; {@link #end} it once. */
    public final class Call {
        private final Span span;
        private final Timer timer;
        private final long start = System.nanoTime();

        private Call(Span span, Timer timer) {
            this.span = span;
            this.timer = timer;
        }

        /** @param error the failure, or null */
        public void end(Throwable error) {
            timer.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
            if (error != null) {
                span.recordException(error);
                span.setStatus(StatusCode.ERROR, String.valueOf(error.getMessage()));
            }
            span.end();
        }
    }

    /** Starts the span of a request of {@code rows} rows of layer {@code layer} to {@code service}, tagging {@code req}. */
    public Call start(int layer, String service, int rows, ExpertRequest.Builder req) {
        Span span = tracer.spanBuilder("kimimesh.experts.dispatch").setSpanKind(SpanKind.CLIENT)
                .setAttribute("kimimesh.layer", layer).setAttribute("kimimesh.experts.service", service)
                .setAttribute("kimimesh.experts.rows", rows).startSpan();
        if (span.getSpanContext().isValid()) req.putAllTraceContext(TraceCarrier.inject(otel, Context.current().with(span)));
        Timer t = latency.computeIfAbsent(service, s -> Timer.builder("kimimesh.shard.expert.dispatch")
                .description("Round trip of one expert request from this shard to an expert service")
                .tag("service", s).serviceLevelObjectives(Buckets.LATENCY).register(meters));
        return new Call(span, t);
    }
}
