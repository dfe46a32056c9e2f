package dev.kimimesh.engine.generate;

import dev.kimimesh.engine.state.SequenceState;

/**
 * One sequence submitted to a {@link Generator}: its prompt, sampler, state and progress. The handle may be read
 * and cancelled from any thread; everything else belongs to the thread driving the generator.
 */
public final class Sequence {
    private final long id;
    final int[] prompt;
    final Sampler sampler;
    final TokenSink sink;
    final Generator owner;

    SequenceState state; // null until admitted, and again once finished
    int prefilled; // prompt tokens already fed
    int nextToken = -1; // the last sampled token, fed at the next decode step
    private volatile int generated;
    private volatile boolean cancelRequested;
    private volatile FinishReason finish;
    private volatile Throwable failure;

    Sequence(long id, int[] prompt, SamplingParams params, TokenSink sink, Generator owner) {
        this.id = id;
        this.prompt = prompt;
        this.sampler = new Sampler(params);
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
        return sampler.params();
    }

    /** Tokens generated so far. */
    public int generated() {
        return generated;
    }

    /** Null while running. */
    public FinishReason finishReason() {
        return finish;
    }

    public boolean isFinished() {
        return finish != null;
    }

    /** Why it ended with {@link FinishReason#ERROR}; null otherwise. */
    public Throwable failure() {
        return failure;
    }

    /** Stops the sequence and frees its state (at once, or at the end of the step now running). */
    public void cancel() {
        cancelRequested = true;
        owner.reapCancelled();
    }

    boolean cancelRequested() {
        return cancelRequested;
    }

    boolean decoding() {
        return prefilled == prompt.length;
    }

    void countToken() {
        generated++;
    }

    /** Frees the state and tells the sink; the caller holds the generator's step lock. */
    void finish(FinishReason reason, Throwable cause) {
        if (finish != null) return;
        if (state != null) {
            state.release();
            state = null;
        }
        failure = cause;
        finish = reason;
        try {
            sink.onFinish(reason);
        } catch (RuntimeException e) {
            // The sequence is over either way; a failing sink must not disturb the others.
            if (failure == null) failure = e;
        }
    }
}
