package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.SamplingParams;
import java.security.SecureRandom;
import java.util.List;

/**
 * Builds engine sampling parameters from a request's fields with the OpenAI / vLLM defaults, and checks them.
 * Every problem is an {@link IllegalArgumentException} naming the field.
 */
public final class SamplingDefaults {
    private static final SecureRandom SEEDS = new SecureRandom();

    private SamplingDefaults() {}

    /**
     * @param temperature null = 1.0
     * @param topP        null = 1.0
     * @param seed        null = a fresh random seed
     * @param maxTokens   null = the rest of the context
     */
    public static SamplingParams of(Double temperature, Double topP, int topK, Long seed, Integer maxTokens, List<Integer> stopTokenIds,
                                    boolean ignoreEos, boolean logprobs, int promptLength, int contextLimit) {
        double t = temperature == null ? 1.0 : temperature;
        double p = topP == null ? 1.0 : topP;
        if (Double.isNaN(t) || t < 0) throw new IllegalArgumentException("temperature must be >= 0 (0 = greedy), got " + t);
        if (Double.isNaN(p) || p <= 0 || p > 1) throw new IllegalArgumentException("top_p must be in (0, 1], got " + p);
        if (topK < 0) throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        int room = Math.max(1, contextLimit - promptLength);
        int max = maxTokens == null ? room : maxTokens;
        if (max <= 0) throw new IllegalArgumentException("max_tokens must be >= 1, got " + max);
        long s = seed == null ? SEEDS.nextLong() & Long.MAX_VALUE : seed;
        int[] stops = stopTokenIds == null ? new int[0] : stopTokenIds.stream().mapToInt(Integer::intValue).toArray();
        return new SamplingParams(t, topK, p, s, max, stops, ignoreEos, logprobs).validate();
    }
}
