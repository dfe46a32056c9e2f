package dev.kimimesh.gateway.schedule;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.TokenSink;

/**
 * One request inside the {@link Scheduler}: prompt, progress and the sink its tokens go to. The handle may be read and
 * cancelled from any thread; the progress fields belong to the scheduler's loop thread.
 */
public final class ScheduledSequence {
    private final long id;
    final int[] prompt;
    final SamplingParams params;
    final TokenSink sink;
    private final Scheduler owner;

    int fed; // tokens fed through the pipeline (prompt, then generated)
    int nextToken = -1; // the last sampled token, fed at the next decode step
    boolean inFlight; // part of a micro-batch not yet returned
    boolean touchedPipeline; // some stage may hold state for it
    private volatile int generated;
    private volatile boolean cancelRequested;
    private volatile FinishReason finish;
    private volatile String failure;

    ScheduledSequence(long id, int[] prompt, SamplingParams params, TokenSink sink, Scheduler owner) {
        this.id = id;
        this.prompt = prompt;
        this.params = params;
        this.sink = sink;
        this.owner = owner;
    }

    public long id() {
        return id;
    }

    public int promptLength() {
        return prompt.length;
    }

    public SamplingParams params() {
        return params;
    }

    /** Tokens generated so far. */
    public int generated() {
        return generated;
    }

    /** Null while running. */
    public FinishReason finishReason() {
        return finish;
    }

    /** Why it ended with ERROR; null otherwise. */
    public String failure() {
        return failure;
    }

    public boolean isFinished() {
        return finish != null;
    }

    /** Stops generation; the pipeline is told to release the sequence's state on every stage. Idempotent. */
    public void cancel() {
        if (finish != null || cancelRequested) return;
        cancelRequested = true;
        owner.cancel(this);
    }

    boolean cancelRequested() {
        return cancelRequested;
    }

    boolean decoding() {
        return fed >= prompt.length;
    }

    void countToken() {
        generated++;
    }

    /** Marks it finished and tells the sink (once). */
    void finish(FinishReason reason, String why) {
        if (finish != null) return;
        failure = why;
        finish = reason;
        try {
            sink.onFinish(reason);
        } catch (RuntimeException e) {
            // the sequence is over either way; a failing sink must not disturb the loop
        }
    }
}
