package dev.kimimesh.mesh.shard;

import dev.kimimesh.proto.v1.SamplingParams;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The mesh's sampler with vLLM / OpenAI conventions: greedy argmax (lowest id on ties) at temperature 0, else
 * temperature, top-k, top-p (smallest most-likely set reaching top_p) and a draw from the sequence's own seeded
 * generator. The engine's generate.Sampler replaces it once that lands on main.
 */
public final class SeededSampler implements TokenSampler {
    private final double temperature, topP;
    private final int topK;
    private final boolean logprobs;
    private final SplittableRandom random;
    private float lastLogprob = Float.NaN;

    public SeededSampler(SamplingParams p) {
        temperature = p.hasTemperature() ? p.getTemperature() : 1.0;
        topP = p.hasTopP() ? p.getTopP() : 1.0;
        topK = p.getTopK();
        logprobs = p.getLogprobs();
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0 (0 = greedy), got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1] (1 = off), got " + topP);
        random = new SplittableRandom(p.hasSeed() ? p.getSeed() : System.nanoTime());
    }

    public static Factory factory() {
        return (p, vocab) -> new SeededSampler(p);
    }

    @Override
    public int sample(float[] logits, int offset, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        int argmax = -1;
        for (int i = 0; i < vocab; i++) {
            float x = logits[offset + i];
            if (x != x) throw new IllegalStateException("logits contain NaN at token " + i);
            if (x > max) {
                max = x;
                argmax = i;
            }
        }
        if (argmax < 0) throw new IllegalStateException("logits are all -inf");
        int token = temperature == 0 ? argmax : draw(logits, offset, vocab, max);
        if (logprobs) {
            double sum = 0;
            for (int i = 0; i < vocab; i++) sum += Math.exp((double) logits[offset + i] - max);
            lastLogprob = (float) (logits[offset + token] - max - Math.log(sum));
        }
        return token;
    }

    private int draw(float[] logits, int offset, int vocab, float max) {
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) order[i] = i;
        // descending logit, ascending id on ties, so the draw is reproducible
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(logits[offset + b], logits[offset + a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int n = topK > 0 ? Math.min(topK, vocab) : vocab;
        double[] w = new double[n];
        double total = 0;
        for (int j = 0; j < n; j++) total += w[j] = Math.exp((logits[offset + order[j]] - max) / temperature);
        if (topP < 1) {
            double cum = 0, limit = topP * total;
            int kept = 0;
            while (kept < n && (kept == 0 || cum < limit)) cum += w[kept++];
            n = kept;
            total = cum;
        }
        double u = random.nextDouble() * total, cum = 0;
        for (int j = 0; j < n; j++) {
            cum += w[j];
            if (u < cum) return order[j];
        }
        return order[n - 1];
    }

    @Override
    public float lastLogprob() {
        return lastLogprob;
    }
}
