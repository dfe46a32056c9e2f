package dev.kimimesh.gateway.observe;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.gateway.schedule.BatchEntry;
import dev.kimimesh.gateway.schedule.MicroBatch;
import dev.kimimesh.gateway.schedule.ScheduledSequence;
import dev.kimimesh.gateway.schedule.SchedulerObserver;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The gateway's spans: {@code kimimesh.generate} per request (a child of the HTTP or gRPC server span of the call
 * that submitted it) and {@code kimimesh.micro_batch} per micro-batch. A micro-batch serves several requests but a
 * span has one parent: it goes into the trace of its first sequence (the oldest running one) and links to the
 * requests of the others.
 */
final class GatewayTracing implements SchedulerObserver {
    private final Tracer tracer;
    private final Map<Long, Span> requests = new ConcurrentHashMap<>();
    private final Map<Long, Span> batches = new ConcurrentHashMap<>();

    GatewayTracing(OpenTelemetry otel) {
        this.tracer = otel.getTracer(MeshTelemetry.SCOPE);
    }

    @Override
    public void submitted(ScheduledSequence s) {
        SamplingParams p = s.params();
        Span span = tracer.spanBuilder("kimimesh.generate").setParent(Context.current()).setSpanKind(SpanKind.INTERNAL)
                .setAttribute("kimimesh.sequence.id", s.id())
                .setAttribute("gen_ai.usage.input_tokens", s.promptLength())
                .setAttribute("gen_ai.request.max_tokens", p.maxTokens())
                .setAttribute("gen_ai.request.temperature", p.temperature())
                .setAttribute("gen_ai.request.top_p", p.topP())
                .setAttribute("gen_ai.request.top_k", p.topK())
                .setAttribute("gen_ai.request.seed", p.seed())
                .startSpan();
        if (span.getSpanContext().isValid()) requests.put(s.id(), span); // tracing off: nothing to keep
    }

    @Override
    public void tokenDelivered(ScheduledSequence s) {
        if (s.generated() != 1) return;
        Span span = requests.get(s.id());
        if (span != null) span.addEvent("first_token");
    }

    @Override
    public void finished(ScheduledSequence s, FinishReason reason, String failure) {
        Span span = requests.remove(s.id());
        if (span == null) return;
        span.setAttribute("gen_ai.usage.output_tokens", s.generated());
        span.setAttribute("gen_ai.response.finish_reasons", reason.name().toLowerCase(Locale.ROOT));
        if (reason == FinishReason.ERROR) span.setStatus(StatusCode.ERROR, String.valueOf(failure));
        span.end();
    }

    @Override
    public void batchSent(MicroBatch batch) {
        if (requests.isEmpty()) return;
        SpanBuilder b = null;
        for (BatchEntry e : batch.entries()) {
            Span request = requests.get(e.sequenceId());
            if (request == null) continue;
            if (b == null) {
                b = tracer.spanBuilder("kimimesh.micro_batch").setParent(Context.root().with(request)).setSpanKind(SpanKind.INTERNAL)
                        .setAttribute("kimimesh.micro_batch.id", batch.id())
                        .setAttribute("kimimesh.micro_batch.sequences", batch.entries().size())
                        .setAttribute("kimimesh.micro_batch.tokens", batch.tokens());
            } else {
                b.addLink(request.getSpanContext());
            }
        }
        if (b != null) batches.put(batch.id(), b.startSpan());
    }

    @Override
    public void batchCompleted(MicroBatch batch, Throwable error) {
        Span span = batches.remove(batch.id());
        if (span == null) return;
        if (error != null) {
            span.recordException(error);
            span.setStatus(StatusCode.ERROR, String.valueOf(error.getMessage()));
        }
        span.end();
    }

    /** The context of micro-batch {@code id}'s span while it is in flight; null when it has none. */
    Context microBatch(long id) {
        Span span = batches.get(id);
        return span == null ? null : Context.root().with(span);
    }
}
