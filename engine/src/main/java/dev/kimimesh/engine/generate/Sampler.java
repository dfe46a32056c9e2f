package dev.kimimesh.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token of one sequence from a row of logits: greedy argmax (lowest index on ties) at temperature 0,
 * else temperature, then top-k, then top-p (the smallest set of most likely tokens whose probability reaches top_p,
 * at least one), then a draw from the sequence's own seeded generator. Reuses its buffers: one sampler per sequence,
 * not thread-safe. The full vocabulary is never sorted.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;
    private final float invTemperature;
    private float[] weights = new float[0];
    private float[] nucleusWeights = new float[0];
    private long[] order = new long[0];
    private float[] heapValue = new float[0];
    private int[] heapIndex = new int[0];
    private float lastLogprob = Float.NaN;

    public Sampler(SamplingParams params) {
        this.params = params.validate();
        this.random = new SplittableRandom(params.seed());
        this.invTemperature = params.isGreedy() ? 0f : (float) (1.0 / params.temperature());
    }

    public SamplingParams params() {
        return params;
    }

    /** The next token for a whole logits vector. */
    public int sample(float[] logits) {
        return sample(logits, 0, logits.length);
    }

    /** The next token for the logits {@code logits[offset, offset + vocab)} (one row of a batch). */
    public int sample(float[] logits, int offset, int vocab) {
        if (vocab <= 0 || offset < 0 || offset + vocab > logits.length) {
            throw new IllegalArgumentException("logits row [" + offset + ", " + (offset + vocab) + ") outside " + logits.length);
        }
        // One pass: max, argmax and (when logprobs are wanted) the sum of exp(x - max), rescaled as the max grows.
        boolean wantLogprob = params.logprobs();
        float max = Float.NEGATIVE_INFINITY;
        int argmax = -1;
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            float x = logits[offset + i];
            if (x > max) {
                if (wantLogprob) sum = sum * Math.exp((double) max - x) + 1;
                max = x;
                argmax = i;
            } else if (wantLogprob) {
                sum += Math.exp((double) x - max);
            } else if (x != x) {
                throw new IllegalStateException("logits contain NaN at token " + i);
            }
        }
        if (argmax < 0) throw new IllegalStateException("logits are all -inf or NaN");
        if (wantLogprob && Double.isNaN(sum)) throw new IllegalStateException("logits contain NaN");
        int token;
        if (params.isGreedy()) {
            token = argmax;
        } else if (params.topK() > 0 && params.topK() < vocab) {
            token = sampleTopK(logits, offset, vocab);
        } else {
            token = sampleFull(logits, offset, vocab, max);
        }
        lastLogprob = wantLogprob ? (float) (logits[offset + token] - max - Math.log(sum)) : Float.NaN;
        return token;
    }

    /** Log-probability of the last sampled token under the raw logits (log-softmax); NaN unless params.logprobs. */
    public float lastLogprob() {
        return lastLogprob;
    }

    /** Top-k by a min-heap of k entries (one pass over the vocabulary), then softmax, top-p and a draw among them. */
    private int sampleTopK(float[] logits, int offset, int vocab) {
        int k = params.topK();
        if (heapValue.length < k) {
            heapValue = new float[k];
            heapIndex = new int[k];
        }
        for (int i = 0; i < k; i++) {
            heapValue[i] = logits[offset + i];
            heapIndex[i] = i;
        }
        for (int i = k / 2 - 1; i >= 0; i--) siftDown(i, k);
        for (int i = k; i < vocab; i++) {
            float x = logits[offset + i];
            // Strictly greater: among equal logits the lower index (seen first) stays, as in greedy.
            if (x > heapValue[0]) {
                heapValue[0] = x;
                heapIndex[0] = i;
                siftDown(0, k);
            }
        }
        long[] keys = orderBuffer(k);
        for (int i = 0; i < k; i++) keys[i] = key(heapValue[i], heapIndex[i]);
        Arrays.sort(keys, 0, k);
        float top = logits[offset + indexOf(keys[k - 1])];
        float[] w = weightBuffer(k);
        double total = 0;
        for (int j = 0; j < k; j++) {
            // descending order: j = 0 is the most likely
            w[j] = (float) Math.exp((logits[offset + indexOf(keys[k - 1 - j])] - top) * invTemperature);
            total += w[j];
        }
        int kept = nucleus(w, k, total);
        return indexOf(keys[k - 1 - draw(w, kept)]);
    }

    /** Softmax over the whole vocabulary; top-p sorts only the tokens that can be in the nucleus. */
    private int sampleFull(float[] logits, int offset, int vocab, float max) {
        float[] w = weightBuffer(vocab);
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            w[i] = (float) Math.exp((logits[offset + i] - max) * invTemperature);
            total += w[i];
        }
        if (params.topP() >= 1) {
            double u = random.nextDouble() * total, cum = 0;
            int last = 0;
            for (int i = 0; i < vocab; i++) {
                if (w[i] > 0) last = i;
                cum += w[i];
                if (u < cum) return i;
            }
            return last;
        }
        // A token with probability below (1 - top_p) / (vocab - 1) cannot be in the nucleus: if it were needed, the
        // tokens from it on (at most vocab - 1 of them, each no more likely) would hold more than 1 - top_p.
        double cutoff = vocab > 1 ? (1 - params.topP()) / (vocab - 1) * total : 0;
        long[] keys = orderBuffer(Math.min(vocab, 1024));
        int n = 0;
        for (int i = 0; i < vocab; i++) {
            if (w[i] >= cutoff) {
                if (n == keys.length) keys = orderBuffer(Math.min(vocab, 2 * n));
                keys[n++] = key(w[i], i);
            }
        }
        Arrays.sort(keys, 0, n);
        if (nucleusWeights.length < n) nucleusWeights = new float[Math.max(n, 2 * nucleusWeights.length)];
        float[] sorted = nucleusWeights;
        for (int j = 0; j < n; j++) sorted[j] = w[indexOf(keys[n - 1 - j])];
        int kept = nucleus(sorted, n, total);
        return indexOf(keys[n - 1 - draw(sorted, kept)]);
    }

    /** How many of the descending weights make up the nucleus: while the mass before a token is below top_p. */
    private int nucleus(float[] descending, int n, double total) {
        if (params.topP() >= 1) return n;
        double limit = params.topP() * total, cum = 0;
        int kept = 0;
        while (kept < n && (kept == 0 || cum < limit)) cum += descending[kept++];
        return kept;
    }

    /** An index in [0, n) drawn with probability proportional to w. */
    private int draw(float[] w, int n) {
        double total = 0;
        for (int j = 0; j < n; j++) total += w[j];
        double u = random.nextDouble() * total, cum = 0;
        for (int j = 0; j < n; j++) {
            cum += w[j];
            if (u < cum) return j;
        }
        return n - 1;
    }

    private void siftDown(int i, int n) {
        while (true) {
            int l = 2 * i + 1, smallest = i;
            if (l < n && worse(l, smallest)) smallest = l;
            if (l + 1 < n && worse(l + 1, smallest)) smallest = l + 1;
            if (smallest == i) return;
            float v = heapValue[i];
            int x = heapIndex[i];
            heapValue[i] = heapValue[smallest];
            heapIndex[i] = heapIndex[smallest];
            heapValue[smallest] = v;
            heapIndex[smallest] = x;
            i = smallest;
        }
    }

    /** The heap's root is the entry to evict first: the smallest value, and the highest index among equals. */
    private boolean worse(int a, int b) {
        return heapValue[a] < heapValue[b] || heapValue[a] == heapValue[b] && heapIndex[a] > heapIndex[b];
    }

    /**
     * A long that sorts ascending by value, then by descending index (so the last entry is the best token and ties
     * go to the lower index). Float bits are made order-preserving as signed ints.
     */
    private static long key(float value, int index) {
        int bits = Float.floatToIntBits(value);
        bits ^= (bits >> 31) & 0x7FFFFFFF;
        return ((long) bits << 32) | (Integer.MAX_VALUE - index);
    }

    private static int indexOf(long key) {
        return Integer.MAX_VALUE - (int) (key & 0xFFFFFFFFL);
    }

    private float[] weightBuffer(int n) {
        if (weights.length < n) weights = new float[n];
        return weights;
    }

    private long[] orderBuffer(int n) {
        if (order.length < n) order = Arrays.copyOf(order, n);
        return order;
    }
}
