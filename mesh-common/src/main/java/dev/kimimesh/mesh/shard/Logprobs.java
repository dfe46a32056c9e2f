package dev.kimimesh.mesh.shard;

import dev.kimimesh.proto.v1.SampledToken;

/** The most likely alternatives of one logits row with their log-probabilities (log-softmax of the raw logits). */
final class Logprobs {
    private Logprobs() {}

    static void top(float[] logits, int offset, int vocab, int n, SampledToken.Builder out) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp((double) logits[offset + i] - max);
        double lse = max + Math.log(sum);
        int[] best = new int[n];
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
        for (int j = 0; j < have; j++) {
            out.addTopTokenIds(best[j]);
            out.addTopLogprobs((float) (logits[offset + best[j]] - lse));
        }
    }
}
