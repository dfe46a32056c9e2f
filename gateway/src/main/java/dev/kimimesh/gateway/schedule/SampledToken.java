package dev.kimimesh.gateway.schedule;

/**
 * A token the last stage sampled for a sequence; logprob is NaN unless the sequence asked for logprobs.
 *
 * @param topIds      the most likely alternatives, most likely first (empty unless top logprobs were asked for)
 * @param topLogprobs their log-probabilities
 */
public record SampledToken(long sequenceId, int token, float logprob, int[] topIds, float[] topLogprobs) {
    private static final int[] NO_IDS = new int[0];
    private static final float[] NO_LOGPROBS = new float[0];

    public SampledToken(long sequenceId, int token, float logprob) {
        this(sequenceId, token, logprob, NO_IDS, NO_LOGPROBS);
    }
}
