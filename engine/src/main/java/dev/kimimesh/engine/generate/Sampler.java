package dev.kimimesh.engine.generate;

import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token of one sequence from a row of logits: greedy argmax (lowest index on ties) at temperature 0,
 * else temperature, then top-k, then top-p (the smallest set of most likely tokens whose probability reaches top_p,
 * at least one), then a draw from the sequence's own seeded generator: one uniform number per non-greedy token
 * ({@link #nextUniform}), so a backend that samples on the device ({@link dev.kimimesh.engine.backend.Backend#sample})
 * with that number gives the same tokens. The full vocabulary is never sorted: top-k keeps a heap of k entries,
 * top-p sorts only the tokens that can be in the nucleus. Vocabulary-sized buffers are shared by the samplers of one
 * thread (the generator's driver), so a sampler per sequence costs almost nothing. Not thread-safe.
 */
public final class Sampler {
    /** Vocabulary-sized buffers, one set per thread that samples. */
    private static final class Scratch {
        float[] weights = new float[0];
        float[] nucleus = new float[0];
        long[] keys = new long[0];
        float[] heapValue = new float[0];
        int[] heapIndex = new int[0];
    }

    /** Above this many nucleus candidates, bisection on the boundary value beats sorting them. */
    static final int SORT_LIMIT = 4096;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final SamplingParams params;
    private final SplittableRandom random;
    private final float invTemperature;
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

    /** The next token (an index within the row) for the logits {@code logits[offset, offset + vocab)}. */
    public int sample(float[] logits, int offset, int vocab) {
        return sample(logits, offset, vocab, nextUniform());
    }

    /**
     * The uniform number in [0, 1) that the next draw uses, taken from this sequence's seeded generator (greedy takes
     * none and gets 0). {@link #sample(float[], int, int)} is {@code sample(logits, offset, vocab, nextUniform())}; a
     * device sampler given the same number picks the same token.
     */
    public double nextUniform() {
        return params.isGreedy() ? 0 : random.nextDouble();
    }

    /**
     * The token this sampler's parameters pick from the logits row for the uniform number {@code uniform} (from
     * {@link #nextUniform}); a pure function of the row and the number. Sets {@link #lastLogprob}.
     */
    public int sample(float[] logits, int offset, int vocab, double uniform) {
        if (vocab <= 0 || offset < 0 || offset + vocab > logits.length) {
            throw new IllegalArgumentException("logits row [" + offset + ", " + (offset + vocab) + ") outside " + logits.length);
        }
        if (!(uniform >= 0 && uniform < 1)) throw new IllegalArgumentException("uniform number " + uniform + " outside [0, 1)");
        float max = LogitsKernels.max(logits, offset, vocab);
        checkMax(max);
        int token;
        if (params.isGreedy()) {
            token = LogitsKernels.firstIndexOf(logits, offset, vocab, max);
        } else if (params.topK() > 0 && params.topK() < vocab) {
            token = sampleTopK(logits, offset, vocab, uniform);
        } else {
            token = sampleFull(logits, offset, vocab, max, uniform);
        }
        if (params.logprobs()) {
            double sum = LogitsKernels.sumExp(logits, offset, vocab, max, 1f, null);
            lastLogprob = (float) (logits[offset + token] - max - Math.log(sum));
        }
        return token;
    }

    /** The row maxima a sampler cannot draw from, as errors (a device sampler reports the same cases by code). */
    static void checkMax(float max) {
        if (Float.isNaN(max)) throw new IllegalStateException("logits contain NaN");
        if (max == Float.NEGATIVE_INFINITY) throw new IllegalStateException("logits are all -inf");
        if (max == Float.POSITIVE_INFINITY) throw new IllegalStateException("logits contain +inf");
    }

    /**
     * Takes a token a backend sampled on the device with this sampler's parameters and {@link #nextUniform}: checks
     * its error code (as {@link #sample} would have thrown) and records its logprob.
     */
    public int accept(int token, float logprob, int vocab) {
        switch (token) {
            case SampledTokens.NAN_LOGITS -> checkMax(Float.NaN);
            case SampledTokens.ALL_NEGATIVE_INFINITY -> checkMax(Float.NEGATIVE_INFINITY);
            case SampledTokens.POSITIVE_INFINITY -> checkMax(Float.POSITIVE_INFINITY);
            default -> {
                if (token < 0 || token >= vocab) throw new IllegalStateException("device sampler returned token " + token + " outside 0.." + (vocab - 1));
            }
        }
        lastLogprob = params.logprobs() ? logprob : Float.NaN;
        return token;
    }

    /** The device-side form of this sampler's parameters with the uniform number for the next draw. */
    public RowSampling rowSampling(double uniform) {
        return new RowSampling(params.isGreedy(), invTemperature, params.topK(), params.topP(), uniform, params.logprobs());
    }

    /** Log-probability of the last sampled token under the raw logits (log-softmax); NaN unless params.logprobs. */
    public float lastLogprob() {
        return lastLogprob;
    }

    /** Top-k by a min-heap of k entries (one vectorised pass), then softmax, top-p and a draw among them. */
    private int sampleTopK(float[] logits, int offset, int vocab, double uniform) {
        int k = params.topK();
        Scratch s = SCRATCH.get();
        if (s.heapValue.length < k) {
            s.heapValue = new float[k];
            s.heapIndex = new int[k];
        }
        float[] hv = s.heapValue;
        int[] hi = s.heapIndex;
        for (int i = 0; i < k; i++) {
            hv[i] = logits[offset + i];
            hi[i] = i;
        }
        for (int i = k / 2 - 1; i >= 0; i--) siftDown(hv, hi, i, k);
        // Strictly greater: among equal logits the lower index (seen first) stays, as in greedy.
        for (int i = LogitsKernels.nextAbove(logits, offset, k, vocab, hv[0]); i < vocab;
                i = LogitsKernels.nextAbove(logits, offset, i + 1, vocab, hv[0])) {
            hv[0] = logits[offset + i];
            hi[0] = i;
            siftDown(hv, hi, 0, k);
        }
        long[] keys = keys(s, k);
        for (int i = 0; i < k; i++) keys[i] = key(hv[i], hi[i]);
        Arrays.sort(keys, 0, k);
        float top = logits[offset + indexOf(keys[k - 1])];
        float[] w = weights(s, k);
        double total = 0;
        for (int j = 0; j < k; j++) {
            // descending order: j = 0 is the most likely
            w[j] = (float) Math.exp((logits[offset + indexOf(keys[k - 1 - j])] - top) * invTemperature);
            total += w[j];
        }
        int kept = nucleus(w, k, total);
        return indexOf(keys[k - 1 - draw(w, kept, uniform)]);
    }

    /** Softmax over the whole vocabulary; top-p sorts only the tokens that can be in the nucleus. */
    private int sampleFull(float[] logits, int offset, int vocab, float max, double uniform) {
        Scratch s = SCRATCH.get();
        float[] w = weights(s, vocab);
        double total = LogitsKernels.sumExp(logits, offset, vocab, max, invTemperature, w);
        if (params.topP() >= 1) return LogitsKernels.cumulativeSearch(w, vocab, uniform * total);
        // A token with probability below (1 - top_p) / (vocab - 1) cannot be in the nucleus: if it were needed, the
        // tokens from it on (at most vocab - 1 of them, each no more likely) would hold more than 1 - top_p.
        float cutoff = vocab > 1 ? (float) ((1 - params.topP()) / (vocab - 1) * total) : 0f;
        if (LogitsKernels.countAtLeast(w, vocab, cutoff) > SORT_LIMIT) return sampleNucleusByThreshold(w, vocab, total, uniform);
        long[] keys = keys(s, vocab);
        int n = LogitsKernels.collectAtLeast(w, vocab, cutoff, keys, Sampler::key);
        Arrays.sort(keys, 0, n);
        if (s.nucleus.length < n) s.nucleus = new float[Math.max(n, 2 * s.nucleus.length)];
        float[] sorted = s.nucleus;
        for (int j = 0; j < n; j++) sorted[j] = w[indexOf(keys[n - 1 - j])];
        int kept = nucleus(sorted, n, total);
        return indexOf(keys[n - 1 - draw(sorted, kept, uniform)]);
    }

    /**
     * Top-p for a flat distribution, where sorting the candidates would cost more than a few passes: the nucleus is
     * every token above the boundary value v (the largest weight whose "at least v" mass reaches top_p), plus the
     * tokens equal to v in index order while the mass before them is below top_p. v is found by bisecting the bit
     * patterns of the positive float weights, which order like the values. Draws in index order: the same
     * distribution as the sorted order.
     */
    private int sampleNucleusByThreshold(float[] w, int vocab, double total, double uniform) {
        double limit = params.topP() * total;
        int lo = 0, hi = Float.floatToIntBits(LogitsKernels.max(w, 0, vocab)); // mass(>= lo) >= limit always
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (LogitsKernels.massAtLeast(w, vocab, Float.intBitsToFloat(mid), false) >= limit) lo = mid;
            else hi = mid - 1;
        }
        float v = Float.intBitsToFloat(lo);
        double above = LogitsKernels.massAtLeast(w, vocab, v, true);
        int ties = LogitsKernels.count(w, vocab, v), keptTies = 0;
        while (keptTies < ties && (keptTies == 0 && above == 0 || above + (double) keptTies * v < limit)) keptTies++;
        double mass = above + (double) keptTies * v;
        double u = uniform * mass, cum = 0;
        int last = -1, tiesSeen = 0;
        for (int i = 0; i < vocab; i++) {
            float x = w[i];
            if (x > v || x == v && tiesSeen++ < keptTies) {
                last = i;
                cum += x;
                if (u < cum) return i;
            }
        }
        return last;
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
    private static int draw(float[] w, int n, double uniform) {
        double total = 0;
        for (int j = 0; j < n; j++) total += w[j];
        double u = uniform * total, cum = 0;
        for (int j = 0; j < n; j++) {
            cum += w[j];
            if (u < cum) return j;
        }
        return n - 1;
    }

    private static void siftDown(float[] hv, int[] hi, int i, int n) {
        while (true) {
            int l = 2 * i + 1, smallest = i;
            if (l < n && worse(hv, hi, l, smallest)) smallest = l;
            if (l + 1 < n && worse(hv, hi, l + 1, smallest)) smallest = l + 1;
            if (smallest == i) return;
            float v = hv[i];
            int x = hi[i];
            hv[i] = hv[smallest];
            hi[i] = hi[smallest];
            hv[smallest] = v;
            hi[smallest] = x;
            i = smallest;
        }
    }

    /** The heap's root is the entry to evict first: the smallest value, and the highest index among equals. */
    private static boolean worse(float[] hv, int[] hi, int a, int b) {
        return hv[a] < hv[b] || hv[a] == hv[b] && hi[a] > hi[b];
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

    private static float[] weights(Scratch s, int n) {
        if (s.weights.length < n) s.weights = new float[n];
        return s.weights;
    }

    private static long[] keys(Scratch s, int n) {
        if (s.keys.length < n) s.keys = new long[n];
        return s.keys;
    }
}
