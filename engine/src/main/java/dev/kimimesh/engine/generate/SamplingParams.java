package dev.kimimesh.engine.generate;

import java.util.Arrays;

/**
 * How one sequence picks its next tokens, with the conventions of vLLM / OpenAI: temperature 0 is greedy, top-k 0
 * and top-p 1 are off; a fixed seed makes sampling reproducible.
 *
 * @param stopTokenIds tokens that end the sequence (the stop token itself is delivered, then the sequence finishes)
 * @param ignoreEos    when true the config's eos_token_id does not end the sequence
 * @param logprobs     when true each token is delivered with its log-probability under the raw logits
 */
public record SamplingParams(
        double temperature,
        int topK,
        double topP,
        long seed,
        int maxTokens,
        int[] stopTokenIds,
        boolean ignoreEos,
        boolean logprobs) {

    public SamplingParams {
        stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
    }

    /** A copy of the stop ids (the record keeps its own). */
    @Override
    public int[] stopTokenIds() {
        return stopTokenIds.clone();
    }

    /** Greedy decoding (argmax) of up to {@code maxTokens} tokens, stopping at eos. */
    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0, 0, 1, 0, maxTokens, new int[0], false, false);
    }

    /** Sampling at the given temperature with a seed, no top-k or top-p. */
    public static SamplingParams sampled(double temperature, long seed, int maxTokens) {
        return new SamplingParams(temperature, 0, 1, seed, maxTokens, new int[0], false, false);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public SamplingParams withTopK(int k) {
        return new SamplingParams(temperature, k, topP, seed, maxTokens, stopTokenIds, ignoreEos, logprobs);
    }

    public SamplingParams withTopP(double p) {
        return new SamplingParams(temperature, topK, p, seed, maxTokens, stopTokenIds, ignoreEos, logprobs);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(temperature, topK, topP, s, maxTokens, stopTokenIds, ignoreEos, logprobs);
    }

    public SamplingParams withMaxTokens(int n) {
        return new SamplingParams(temperature, topK, topP, seed, n, stopTokenIds, ignoreEos, logprobs);
    }

    public SamplingParams withStopTokenIds(int... ids) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, ids, ignoreEos, logprobs);
    }

    public SamplingParams withIgnoreEos(boolean ignore) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignore, logprobs);
    }

    public SamplingParams withLogprobs(boolean lp) {
        return new SamplingParams(temperature, topK, topP, seed, maxTokens, stopTokenIds, ignoreEos, lp);
    }

    /** Throws an {@link IllegalArgumentException} naming the first invalid parameter; returns this otherwise. */
    public SamplingParams validate() {
        if (Double.isNaN(temperature) || temperature < 0 || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0 (0 = greedy), got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        if (Double.isNaN(topP) || topP <= 0 || topP > 1) {
            throw new IllegalArgumentException("top_p must be in (0, 1] (1 = off), got " + topP);
        }
        if (maxTokens <= 0) throw new IllegalArgumentException("max_tokens must be >= 1, got " + maxTokens);
        return this;
    }

    /** Checks the stop ids against a vocabulary as well. */
    public SamplingParams validate(int vocabSize) {
        validate();
        for (int id : stopTokenIds) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("stop token id " + id + " is outside the vocabulary 0.." + (vocabSize - 1));
            }
        }
        return this;
    }

    boolean isStop(int token) {
        for (int id : stopTokenIds) if (id == token) return true;
        return false;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SamplingParams p && Double.compare(temperature, p.temperature) == 0 && topK == p.topK
                && Double.compare(topP, p.topP) == 0 && seed == p.seed && maxTokens == p.maxTokens
                && Arrays.equals(stopTokenIds, p.stopTokenIds) && ignoreEos == p.ignoreEos && logprobs == p.logprobs;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new long[] {Double.hashCode(temperature), topK, Double.hashCode(topP), seed, maxTokens,
                Arrays.hashCode(stopTokenIds), ignoreEos ? 1 : 0, logprobs ? 1 : 0});
    }

    @Override
    public String toString() {
        return "SamplingParams[temperature=" + temperature + ", topK=" + topK + ", topP=" + topP + ", seed=" + seed
                + ", maxTokens=" + maxTokens + ", stopTokenIds=" + Arrays.toString(stopTokenIds)
                + ", ignoreEos=" + ignoreEos + ", logprobs=" + logprobs + "]";
    }
}
