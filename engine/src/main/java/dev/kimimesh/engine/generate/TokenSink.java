package dev.kimimesh.engine.generate;

/**
 * Receives one sequence's tokens as they are sampled. Called on the thread that drives the {@link Generator};
 * implementations should hand work off rather than block. An exception thrown here ends only this sequence (ERROR).
 */
public interface TokenSink {
    /** A generated token; {@code logprob} is its log-probability under the raw logits, NaN unless requested. */
    void onToken(int id, float logprob);

    /** Called exactly once, after the last token. */
    void onFinish(FinishReason reason);
}
