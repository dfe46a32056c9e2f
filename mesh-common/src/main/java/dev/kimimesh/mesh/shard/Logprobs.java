package dev.kimimesh.mesh.shard;

import dev.kimimesh.proto.v1.SampledToken;

/** The most likely alternatives of one logits row with their log-probabilities (log-softmax of the raw logits). */
public final class Logprobs {
    private Logprobs() {}

    static void top(float[] logits, int offset, int vocab, int n, SampledToken.Builder out) {
        int[] ids = new int[Math.min(n, vocab)];
        float[] lps = new float[ids.length];
        top(logits, offset, vocab, ids, lps);
        for (int j = 0; j < ids.length; j++) {
            out.addTopTokenIds(ids[j]);
            out.addTopLogprobs(lps[j]);
        }
    }

    /**
     * Fills {@code ids} with the {@code ids.length} most likely tokens of the row (most likely first, lowest id on
     * ties) and {@code logprobs} with their log-probabilities.
     */
    public static void top(float[] logits, int offset, int vocab, int[] ids, float[] logprobs) {
        int n = ids.length;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp((double) logits[offset + i] - max);
        double lse = max + Math.log(sum);
        int[] best = ids;
        int have = 0;
        for (int i = 0; i < vocab; i++) {
            float x = logits[offset + i];
            if (have == n && !(x > logits[offset + best[n - 1]])) continue;
            int j = have < n ? have++ : n - 1;
            while (j > 0 && x > logits[offset + best[j - 1]]) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = i;
        }
        for (int j = 0; j < have; j++) logprobs[j] = (float) (logits[offset + best[j]] - lse);
    }
}
