package dev.kimimesh.gateway.schedule;

import dev.kimimesh.engine.generate.FinishReason;

/**
 * What metrics and tracing see of the {@link Scheduler}. {@link #submitted} runs on the submitting (request)
 * thread, the others on the scheduler's loop thread; none may block.
 */
public interface SchedulerObserver {
    /** A request was admitted (it waits for a running slot). */
    default void submitted(ScheduledSequence s) {}

    /** A micro-batch is about to be sent into the pipeline. */
    default void batchSent(MicroBatch batch) {}

    /** A micro-batch came back, with its tokens or failed ({@code error} non-null). */
    default void batchCompleted(MicroBatch batch, Throwable error) {}

    /** A sampled token is about to go to the sequence's sink ({@link ScheduledSequence#generated()} counts it). */
    default void tokenDelivered(ScheduledSequence s) {}

    /**
     * The sequence is ending (once per admitted sequence), just before its sink hears of it.
     *
     * @param failure why it failed with {@link FinishReason#ERROR}, else null
     */
    default void finished(ScheduledSequence s, FinishReason reason, String failure) {}
}
