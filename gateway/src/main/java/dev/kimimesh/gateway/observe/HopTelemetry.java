package dev.kimimesh.gateway.observe;

import dev.kimimesh.gateway.mesh.HopObserver;
import dev.kimimesh.mesh.telemetry.Buckets;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.telemetry.TraceCarrier;
import dev.kimimesh.proto.v1.MicroBatch;
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
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Each hop of a micro-batch from the gateway to a shard it drives: timed per shard, and traced as a client span
 * under the micro-batch's span whose context travels in the message, so the shard's span continues the trace.
 */
final class HopTelemetry implements HopObserver {
    private final MeterRegistry meters;
    private final OpenTelemetry otel;
    private final Tracer tracer;
    private final GatewayTracing tracing;
    private final Map<Integer, Timer> timers = new ConcurrentHashMap<>();

    HopTelemetry(MeterRegistry meters, OpenTelemetry otel, GatewayTracing tracing) {
        this.meters = meters;
        this.otel = otel;
        this.tracer = otel.getTracer(MeshTelemetry.SCOPE);
        this.tracing = tracing;
    }

    @Override
    public Hop started(int stage, String shard, MicroBatch message) {
        Timer timer = timers.computeIfAbsent(stage, i -> Timer.builder("kimimesh.gateway.hop")
                .description("From sending a micro-batch to a shard the gateway drives until that shard answers")
                .tag("stage", Integer.toString(i)).tag("shard", shard).serviceLevelObjectives(Buckets.LATENCY).register(meters));
        Context parent = tracing.microBatch(message.getMicroBatchId());
        Span span = parent == null ? Span.getInvalid() : tracer.spanBuilder("kimimesh.pipeline.hop").setParent(parent)
                .setSpanKind(SpanKind.CLIENT).setAttribute("kimimesh.stage", stage).setAttribute("kimimesh.shard", shard).startSpan();
        MicroBatch out = span.getSpanContext().isValid()
                ? message.toBuilder().putAllTraceContext(TraceCarrier.inject(otel, parent.with(span))).build()
                : message;
        long start = System.nanoTime();
        AtomicBoolean ended = new AtomicBoolean();
        return new Hop() {
            @Override
            public MicroBatch message() {
                return out;
            }

            @Override
            public void ended(String failure) {
                if (!ended.compareAndSet(false, true)) return;
                timer.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                if (failure != null) span.setStatus(StatusCode.ERROR, failure);
                span.end();
            }
        };
    }
}
