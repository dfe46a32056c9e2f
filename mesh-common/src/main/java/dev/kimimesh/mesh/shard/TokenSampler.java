package dev.kimimesh.mesh.shard;

import dev.kimimesh.proto.v1.SamplingParams;

/**
 * Picks the next token of one sequence from its row of logits, keeping its seeded random state between steps
 * (one per sequence, on the last stage).
 */
public interface TokenSampler {
    /** The token for logits[offset, offset + vocab). */
    int sample(float[] logits, int offset, int vocab);

    /** Log-probability of the last token under the raw logits; NaN when logprobs were not asked for. */
    float lastLogprob();

    /** Makes the sampler for a sequence's parameters; throws IllegalArgumentException naming a bad parameter. */
    @FunctionalInterface
    interface Factory {
        TokenSampler create(SamplingParams params, int vocab);
    }
}
