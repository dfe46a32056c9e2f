package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.proto.v1.SamplingParams;

/**
 * Picks the next token of one sequence from its row of logits, keeping its seeded random state between steps
 * (one per sequence, on the last stage). A draw is a pure function of the row and one uniform number taken from the
 * sequence's generator ({@link #nextUniform}), so a backend sampling on the device with {@link #rowSampling} and the
 * same number picks the same token ({@link LastStageSampling}).
 */
public interface TokenSampler {
    /** The uniform number in [0, 1) the next draw uses (a greedy sampler takes none and answers 0). */
    double nextUniform();

    /** The token for logits[offset, offset + vocab) at the uniform number {@code uniform}; sets the last logprob. */
    int sample(float[] logits, int offset, int vocab, double uniform);

    /** The token for logits[offset, offset + vocab), drawing the next uniform number. */
    default int sample(float[] logits, int offset, int vocab) {
        return sample(logits, offset, vocab, nextUniform());
    }

    /** The device-side form of this sampler's parameters with the uniform number for the next draw. */
    RowSampling rowSampling(double uniform);

    /**
     * Takes a token a backend sampled with {@link #rowSampling}: checks its error code (throwing as {@link #sample}
     * would for the same logits) and records its logprob. Returns the token.
     */
    int accept(int token, float logprob, int vocab);

    /** Log-probability of the last token under the raw logits; NaN when logprobs were not asked for. */
    float lastLogprob();

    /** Makes the sampler for a sequence's parameters; throws IllegalArgumentException naming a bad parameter. */
    @FunctionalInterface
    interface Factory {
        TokenSampler create(SamplingParams params, int vocab);
    }
}
