package dev.kimimesh.mesh.shard;

import dev.kimimesh.mesh.telemetry.Buckets;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.telemetry.TraceCarrier;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.SequenceChunk;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.util.concurrent.TimeUnit;

/**
 * Metrics and spans of one layer shard: every micro-batch is timed (waiting for the compute thread, then computing),
 * counted, and traced as a child of the span that sent it; the span is current while the layers run, so expert
 * dispatches become its children, and a micro-batch forwarded to the next stage carries it on.
 */
public final class ShardTelemetry {
    private final ShardStage stage;
    private final OpenTelemetry otel;
    private final Tracer tracer;
    private final String layers;
    private final Timer queued, computed;
    private final Counter served, failed, tokens;
    private final DistributionSummary batchTokens;

    public ShardTelemetry(MeshTelemetry telemetry, ShardStage stage) {
        this.stage = stage;
        this.otel = telemetry.otel();
        this.tracer = telemetry.tracer();
        this.layers = stage.model().from() + "-" + stage.model().to();
        MeterRegistry r = telemetry.meters();
        queued = microBatchTimer("queue", "waiting for the shard's compute thread").register(r);
        computed = microBatchTimer("compute", "running the shard's layers (expert dispatches included)").register(r);
        served = Counter.builder("kimimesh.shard.micro.batches").description("Micro-batches run by this shard, by outcome")
                .tag("layers", layers).tag("outcome", "ok").register(r);
        failed = Counter.builder("kimimesh.shard.micro.batches").description("Micro-batches run by this shard, by outcome")
                .tag("layers", layers).tag("outcome", "failed").register(r);
        tokens = Counter.builder("kimimesh.shard.tokens").baseUnit("tokens").description("Token rows run through this shard's layers")
                .tag("layers", layers).register(r);
        batchTokens = DistributionSummary.builder("kimimesh.shard.micro.batch.tokens").baseUnit("tokens")
                .description("Token rows per micro-batch").tag("layers", layers).serviceLevelObjectives(Buckets.SIZES).register(r);
        Gauge.builder("kimimesh.shard.live.sequences", stage, ShardStage::sequencesHeld)
                .description("Sequences whose state this shard holds").tag("layers", layers).register(r);
        Gauge.builder("kimimesh.shard.state", stage, ShardStage::stateBytes).baseUnit("bytes")
                .description("Bytes of per-sequence state held (KDA recurrent state and conv tails, MLA latent cache)")
                .tag("layers", layers).register(r);
    }

    private Timer.Builder microBatchTimer(String phase, String what) {
        return Timer.builder("kimimesh.shard.micro.batch").description("Micro-batch latency on this shard by phase: " + what)
                .tag("layers", layers).tag("phase", phase).serviceLevelObjectives(Buckets.LATENCY);
    }

    /** The shard's layers as a tag value ("0-4" for [0, 4)). */
    public String layers() {
        return layers;
    }

    /**
     * Runs a micro-batch through the stage (on the compute thread), timing and tracing it.
     *
     * @param arrivedNanos {@link System#nanoTime()} when the micro-batch came off the stream
     */
    public ShardStage.Outcome run(MicroBatch mb, long arrivedNanos) {
        long start = System.nanoTime();
        queued.record(start - arrivedNanos, TimeUnit.NANOSECONDS);
        int rows = 0;
        for (SequenceChunk c : mb.getSequencesList()) rows += c.getNumTokens();
        Span span = tracer.spanBuilder("kimimesh.shard.forward")
                .setParent(TraceCarrier.extract(otel, mb.getTraceContextMap()))
                .setSpanKind(SpanKind.SERVER)
                .setAttribute("kimimesh.shard.layers", layers)
                .setAttribute("kimimesh.micro_batch.id", mb.getMicroBatchId())
                .setAttribute("kimimesh.micro_batch.sequences", mb.getSequencesCount())
                .setAttribute("kimimesh.micro_batch.tokens", rows)
                .setAttribute("kimimesh.queue_wait_ms", (start - arrivedNanos) / 1e6)
                .startSpan();
        try (Scope ignored = span.makeCurrent()) {
            ShardStage.Outcome out = stage.run(mb);
            served.increment();
            tokens.increment(rows);
            batchTokens.record(rows);
            if (out instanceof ShardStage.Outcome.Forwarded f && span.getSpanContext().isValid()) {
                // the next stage's span continues this trace
                out = new ShardStage.Outcome.Forwarded(f.next().toBuilder()
                        .putAllTraceContext(TraceCarrier.inject(otel, Context.current())).build());
            }
            return out;
        } catch (RuntimeException e) {
            failed.increment();
            span.recordException(e);
            span.setStatus(StatusCode.ERROR, String.valueOf(e.getMessage()));
            throw e;
        } finally {
            computed.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
            span.end();
        }
    }
}
