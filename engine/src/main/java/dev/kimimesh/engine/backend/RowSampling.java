package dev.kimimesh.engine.backend;

/**
 * How to pick one row's token on a device, as the engine's {@code Sampler} does on the host: greedy argmax (lowest id
 * on ties), else the logits times {@code invTemperature}, top-k when {@code 0 < topK < vocab}, top-p (the smallest
 * prefix of the tokens sorted by probability, ties by lower id, whose mass reaches topP) when {@code topP < 1}, then
 * the token at {@code uniform} (in [0, 1), drawn by the host from the request's seeded generator) of the cumulative
 * distribution.
 *
 * @param logprob whether the chosen token's log-probability under the raw logits (log-softmax) is wanted
 */
public record RowSampling(boolean greedy, float invTemperature, int topK, double topP, double uniform, boolean logprob) {
    public RowSampling {
        if (!greedy && !(invTemperature > 0 && Float.isFinite(invTemperature))) {
            throw new IllegalArgumentException("inverse temperature must be finite and > 0, got " + invTemperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top_k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        if (!(uniform >= 0 && uniform < 1)) throw new IllegalArgumentException("uniform number must be in [0, 1), got " + uniform);
    }
}
