package dev.kimimesh.engine.backend;

/**
 * Tokens a backend sampled on the device, one per row, and their log-probabilities (NaN where not asked for). A
 * negative token is the row's error code: the logits held a NaN, were all -inf, or held +inf (the host sampler
 * throws for the same rows).
 */
public record SampledTokens(int[] tokens, float[] logprobs) {
    public static final int NAN_LOGITS = -1;
    public static final int ALL_NEGATIVE_INFINITY = -2;
    public static final int POSITIVE_INFINITY = -3;

    public SampledTokens {
        if (tokens.length != logprobs.length) {
            throw new IllegalArgumentException(tokens.length + " tokens but " + logprobs.length + " logprobs");
        }
    }
}
