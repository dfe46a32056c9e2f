package dev.kimimesh.gateway.schedule;

import dev.kimimesh.engine.generate.TokenSink;

/** A {@link TokenSink} that also receives each token's top alternatives. */
public interface SequenceSink extends TokenSink {
    void onSampled(SampledToken token);

    @Override
    default void onToken(int id, float logprob) {
        onSampled(new SampledToken(0, id, logprob));
    }
}
