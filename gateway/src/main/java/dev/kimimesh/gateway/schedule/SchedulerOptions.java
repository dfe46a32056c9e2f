package dev.kimimesh.gateway.schedule;

/**
 * Scheduler knobs.
 *
 * @param maxRunning    sequences holding a slot (state on the shards) at once
 * @param maxQueued     sequences waiting for a slot; one more is refused with {@link QueueFullException}
 * @param batchTokens   tokens per micro-batch (decode tokens plus prefill chunks: the chunked-prefill budget)
 * @param inFlight      micro-batches in flight through the pipeline at once; 0 = the pipeline's depth
 * @param contextLimit  prompt + generated tokens per sequence; 0 = the model's max_position_embeddings
 */
public record SchedulerOptions(int maxRunning, int maxQueued, int batchTokens, int inFlight, int contextLimit) {
    public SchedulerOptions {
        if (maxRunning < 1) throw new IllegalArgumentException("max-running must be >= 1, got " + maxRunning);
        if (maxQueued < 0) throw new IllegalArgumentException("max-queued must be >= 0, got " + maxQueued);
        if (batchTokens < 1) throw new IllegalArgumentException("batch-tokens must be >= 1, got " + batchTokens);
        if (inFlight < 0) throw new IllegalArgumentException("in-flight must be >= 0, got " + inFlight);
        if (contextLimit < 0) throw new IllegalArgumentException("context-limit must be >= 0, got " + contextLimit);
    }

    public static SchedulerOptions defaults() {
        return new SchedulerOptions(64, 256, 512, 0, 0);
    }

    public SchedulerOptions withMaxRunning(int n) {
        return new SchedulerOptions(n, maxQueued, batchTokens, inFlight, contextLimit);
    }

    public SchedulerOptions withMaxQueued(int n) {
        return new SchedulerOptions(maxRunning, n, batchTokens, inFlight, contextLimit);
    }

    public SchedulerOptions withBatchTokens(int n) {
        return new SchedulerOptions(maxRunning, maxQueued, n, inFlight, contextLimit);
    }

    public SchedulerOptions withInFlight(int n) {
        return new SchedulerOptions(maxRunning, maxQueued, batchTokens, n, contextLimit);
    }

    public SchedulerOptions withContextLimit(int n) {
        return new SchedulerOptions(maxRunning, maxQueued, batchTokens, inFlight, n);
    }
}
