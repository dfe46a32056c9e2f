package dev.kimimesh.gateway.observe;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.gateway.schedule.BatchEntry;
import dev.kimimesh.gateway.schedule.MicroBatch;
import dev.kimimesh.gateway.schedule.ScheduledSequence;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.schedule.SchedulerObserver;
import dev.kimimesh.mesh.telemetry.Buckets;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The scheduler's metrics: time to first token, time per output token, queue time and end-to-end latency per
 * request; prompt and generated tokens; queue depth and running sequences; micro-batch size and round trip.
 * Names and meanings: docs/observability.md.
 */
final class GatewayMetrics implements SchedulerObserver {
    /** When a request was admitted, first scheduled and last given a token ({@link System#nanoTime()}). */
    private static final class Times {
        final long submitted = System.nanoTime();
        long scheduled, lastToken;
    }

    private final Map<Long, Times> times = new ConcurrentHashMap<>();
    private final Map<Long, Long> batchSent = new ConcurrentHashMap<>();
    private final Timer ttft, tpot, queueTime, batchOk, batchFailed;
    private final Map<FinishReason, Timer> e2e = new EnumMap<>(FinishReason.class);
    private final Map<FinishReason, Counter> finished = new EnumMap<>(FinishReason.class);
    private final Counter promptTokens, generationTokens;
    private final DistributionSummary batchTokens, batchSequences;

    GatewayMetrics(MeterRegistry r, Scheduler scheduler) {
        ttft = latency("kimimesh.gateway.time.to.first.token", "From admission of a request to its first generated token").register(r);
        tpot = latency("kimimesh.gateway.time.per.output.token", "Between consecutive generated tokens of a request").register(r);
        queueTime = latency("kimimesh.gateway.request.queue.time", "From admission of a request to its first micro-batch").register(r);
        batchOk = latency("kimimesh.gateway.micro.batch", "Round trip of a micro-batch through the whole pipeline")
                .tag("outcome", "ok").register(r);
        batchFailed = latency("kimimesh.gateway.micro.batch", "Round trip of a micro-batch through the whole pipeline")
                .tag("outcome", "failed").register(r);
        for (FinishReason reason : FinishReason.values()) {
            String tag = reason.name().toLowerCase(Locale.ROOT);
            e2e.put(reason, latency("kimimesh.gateway.e2e.request.latency", "From admission of a request to its end, by finish reason")
                    .tag("reason", tag).register(r));
            finished.put(reason, Counter.builder("kimimesh.gateway.sequences.finished").description("Requests ended, by finish reason")
                    .tag("reason", tag).register(r));
        }
        promptTokens = Counter.builder("kimimesh.gateway.prompt.tokens").baseUnit("tokens")
                .description("Prompt tokens of admitted requests").register(r);
        generationTokens = Counter.builder("kimimesh.gateway.generation.tokens").baseUnit("tokens")
                .description("Tokens generated and delivered").register(r);
        batchTokens = DistributionSummary.builder("kimimesh.gateway.micro.batch.tokens").baseUnit("tokens")
                .description("Tokens per micro-batch (decode tokens plus prefill chunks)").serviceLevelObjectives(Buckets.SIZES).register(r);
        batchSequences = DistributionSummary.builder("kimimesh.gateway.micro.batch.sequences")
                .description("Sequences per micro-batch").serviceLevelObjectives(Buckets.SIZES).register(r);
        Gauge.builder("kimimesh.gateway.queue.depth", scheduler, Scheduler::waiting)
                .description("Admitted requests waiting for a running slot").register(r);
        Gauge.builder("kimimesh.gateway.running.sequences", scheduler, Scheduler::running)
                .description("Sequences in a running slot (prefilling or decoding)").register(r);
    }

    private static Timer.Builder latency(String name, String description) {
        return Timer.builder(name).description(description).serviceLevelObjectives(Buckets.LATENCY);
    }

    @Override
    public void submitted(ScheduledSequence s) {
        times.put(s.id(), new Times());
        promptTokens.increment(s.promptLength());
    }

    @Override
    public void batchSent(MicroBatch batch) {
        long now = System.nanoTime();
        batchSent.put(batch.id(), now);
        batchTokens.record(batch.tokens());
        batchSequences.record(batch.entries().size());
        for (BatchEntry e : batch.entries()) {
            Times t = times.get(e.sequenceId());
            if (t != null && t.scheduled == 0) {
                t.scheduled = now;
                queueTime.record(now - t.submitted, TimeUnit.NANOSECONDS);
            }
        }
    }

    @Override
    public void batchCompleted(MicroBatch batch, Throwable error) {
        Long sent = batchSent.remove(batch.id());
        if (sent != null) (error == null ? batchOk : batchFailed).record(System.nanoTime() - sent, TimeUnit.NANOSECONDS);
    }

    @Override
    public void tokenDelivered(ScheduledSequence s) {
        generationTokens.increment();
        Times t = times.get(s.id());
        if (t == null) return;
        long now = System.nanoTime();
        if (t.lastToken == 0) ttft.record(now - t.submitted, TimeUnit.NANOSECONDS);
        else tpot.record(now - t.lastToken, TimeUnit.NANOSECONDS);
        t.lastToken = now;
    }

    @Override
    public void finished(ScheduledSequence s, FinishReason reason, String failure) {
        finished.get(reason).increment();
        Times t = times.remove(s.id());
        if (t != null) e2e.get(reason).record(System.nanoTime() - t.submitted, TimeUnit.NANOSECONDS);
    }
}
