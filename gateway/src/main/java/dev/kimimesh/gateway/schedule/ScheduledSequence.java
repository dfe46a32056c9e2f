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
    final SequenceOptions options;
    private final Scheduler owner;

    int fed; // tokens fed through the pipeline (prompt, then generated)
    volatile int nextToken = -1; // the last sampled token, fed at the next decode step
    boolean inFlight; // part of a micro-batch not yet returned
    boolean touchedPipeline; // some stage may hold state for it
    volatile boolean stateKept; // finished with its state left on the stages for its owner (a session)
    private volatile int generated;
    private volatile boolean cancelRequested;
    private volatile FinishReason finish;
    private volatile String failure;

    ScheduledSequence(long id, int[] prompt, SamplingParams params, SequenceOptions options, TokenSink sink, Scheduler owner) {
        this.id = id;
        this.prompt = prompt;
        this.params = params;
        this.options = options;
        this.sink = sink;
        this.owner = owner;
    }

    /** Tokens in the sequence's state on every stage: the continued position plus what this request fed. */
    public int position() {
        return options.position() + fed;
    }

    /**
     * After the finish: whether the state was left on the stages ({@link SequenceOptions#keepState()} and a clean
     * end); its owner must release it.
     */
    public boolean stateKept() {
        return stateKept;
    }

    /**
     * After the finish: the last delivered token when it was not fed through the pipeline (the usual case: a sampled
     * token is fed at the next step), else -1. A continuation starts with it.
     */
    public int unfedToken() {
        int delivered = generated;
        return delivered > 0 && fed < prompt.length + delivered ? nextToken : -1;
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
