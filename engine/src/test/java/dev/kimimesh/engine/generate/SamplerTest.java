package dev.kimimesh.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The sampler against exact probabilities computed here, independently, in double precision. */
class SamplerTest {
    static final int DRAWS = 20_000;

    /** Draws DRAWS tokens and checks each frequency against p within 5 standard deviations (and 0 stays 0). */
    static void assertFrequencies(Sampler s, float[] logits, double[] p) {
        int[] counts = new int[logits.length];
        for (int i = 0; i < DRAWS; i++) counts[s.sample(logits)]++;
        for (int t = 0; t < p.length; t++) {
            if (p[t] == 0) {
                assertEquals(0, counts[t], "token " + t + " is outside the allowed set");
                continue;
            }
            double mean = DRAWS * p[t], sd = Math.sqrt(DRAWS * p[t] * (1 - p[t]));
            assertTrue(Math.abs(counts[t] - mean) <= 5 * sd + 1,
                    "token " + t + ": " + counts[t] + " draws, expected " + mean + " +- " + sd + " " + Arrays.toString(counts));
        }
    }

    static double[] softmax(double[] x, double temperature) {
        double max = Arrays.stream(x).max().orElseThrow(), sum = 0;
        double[] p = new double[x.length];
        for (int i = 0; i < x.length; i++) sum += p[i] = Math.exp((x[i] - max) / temperature);
        for (int i = 0; i < x.length; i++) p[i] /= sum;
        return p;
    }

    @Test
    void greedyTakesTheLowestIndexAmongTies() {
        Sampler s = new Sampler(SamplingParams.greedy(1));
        assertEquals(1, s.sample(new float[] {1f, 3f, 3f, 2f}));
        assertEquals(0, s.sample(new float[] {-1f, -1f}));
        assertEquals(1, s.sample(new float[] {9f, 0f, -1f, 5f, 5f}, 2, 3)); // index within the row
    }

    @Test
    void temperatureOneTopKTwoMatchesExactProbabilities() {
        float[] logits = {1.0f, 2.0f, 0.5f};
        double z = Math.exp(1.0) + Math.exp(2.0);
        double[] p = {Math.exp(1.0) / z, Math.exp(2.0) / z, 0};
        assertFrequencies(new Sampler(SamplingParams.sampled(1.0, 7, 1).withTopK(2)), logits, p);
    }

    @Test
    void temperatureScalesTheSoftmax() {
        float[] logits = {0.3f, -1.2f, 2.0f, 1.1f};
        double[] x = {0.3f, -1.2f, 2.0f, 1.1f};
        assertFrequencies(new Sampler(SamplingParams.sampled(0.7, 11, 1)), logits, softmax(x, 0.7));
        assertFrequencies(new Sampler(SamplingParams.sampled(2.5, 12, 1)), logits, softmax(x, 2.5));
    }

    @Test
    void topPKeepsExactlyTheNucleus() {
        // probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.75 keeps {0, 1} (0.5 < 0.75 before token 1, 0.8 before token 2)
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        assertFrequencies(new Sampler(SamplingParams.sampled(1.0, 3, 1).withTopP(0.75)), logits,
                new double[] {0.5 / 0.8, 0.3 / 0.8, 0, 0});
        // a top_p below the best token's probability still keeps one token
        assertFrequencies(new Sampler(SamplingParams.sampled(1.0, 4, 1).withTopP(0.1)), logits, new double[] {1, 0, 0, 0});
        // top-k first, then top-p on the renormalised top-k: {0.5, 0.3, 0.15}/0.95, top_p 0.6 keeps {0, 1}
        assertFrequencies(new Sampler(SamplingParams.sampled(1.0, 5, 1).withTopK(3).withTopP(0.6)), logits,
                new double[] {0.5 / 0.8, 0.3 / 0.8, 0, 0});
    }

    @Test
    void topPOverALargeVocabularyDrawsOnlyFromTheSortedNucleus() {
        int vocab = 2000;
        Random r = new Random(1);
        float[] logits = new float[vocab];
        for (int i = 0; i < vocab; i++) logits[i] = (float) (3 * r.nextGaussian());
        double temperature = 0.8, topP = 0.9;
        double[] x = IntStream.range(0, vocab).mapToDouble(i -> logits[i]).toArray();
        double[] p = softmax(x, temperature);
        Integer[] order = IntStream.range(0, vocab).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -p[i]));
        Set<Integer> nucleus = new HashSet<>();
        double cum = 0;
        for (int i : order) {
            if (cum >= topP) break;
            nucleus.add(i);
            cum += p[i];
        }
        double[] expected = new double[vocab];
        for (int i : nucleus) expected[i] = p[i] / cum;
        assertFrequencies(new Sampler(SamplingParams.sampled(temperature, 9, 1).withTopP(topP)), logits, expected);
    }

    /**
     * Ties at the nucleus boundary enter in index order, whether the sampler sorts the candidates (few) or bisects
     * for the boundary value (more than {@link Sampler#SORT_LIMIT}): tokens [0, a) have logit 0, the rest -2.
     */
    @Test
    void flatNucleusWithTiesBothWays() {
        for (int a : new int[] {600, 6000}) {
            int vocab = a * 10 / 6;
            float[] logits = new float[vocab];
            for (int i = a; i < vocab; i++) logits[i] = -2f;
            double z = a + (vocab - a) * Math.exp(-2.0), limit = 0.5 * z;
            int r = (int) Math.ceil(limit); // ties j = 0, 1, ... kept while j < limit (each weighs 1)
            assertTrue(r < a);
            Sampler s = new Sampler(SamplingParams.sampled(1.0, a, 1).withTopP(0.5));
            int[] bins = new int[4];
            int draws = 2000;
            for (int i = 0; i < draws; i++) {
                int t = s.sample(logits);
                assertTrue(t < r, "token " + t + " outside the nucleus [0, " + r + ") for " + a);
                bins[t * 4 / r]++;
            }
            for (int b = 0; b < 4; b++) {
                double p = (Math.min(r, (b + 1) * r / 4.0) - b * r / 4.0) / r; // about a quarter each
                double mean = draws * p, sd = Math.sqrt(draws * p * (1 - p));
                assertTrue(Math.abs(bins[b] - mean) < 5 * sd + 2, Arrays.toString(bins) + " for " + a);
            }
        }
    }

    @Test
    void topKOnTheRealVocabularySizeDrawsFromTheTopK() {
        int vocab = 163_840, k = 50;
        Random r = new Random(2);
        float[] logits = new float[vocab];
        for (int i = 0; i < vocab; i++) logits[i] = (float) r.nextGaussian();
        Set<Integer> top = new HashSet<>();
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        float kth = sorted[vocab - k];
        for (int i = 0; i < vocab; i++) if (logits[i] >= kth) top.add(i);
        assertEquals(k, top.size());
        Sampler s = new Sampler(SamplingParams.sampled(1.0, 3, 1).withTopK(k));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 500; i++) seen.add(s.sample(logits));
        assertTrue(top.containsAll(seen), "sampled outside the top-k");
        assertTrue(seen.size() > k / 3, "only " + seen.size() + " of the top-" + k + " seen");
    }

    @Test
    void aFixedSeedReproducesTheDraws() {
        float[] logits = new float[100];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) Math.sin(i);
        SamplingParams p = SamplingParams.sampled(1.3, 42, 1).withTopP(0.95);
        int[] a = draws(new Sampler(p), logits), b = draws(new Sampler(p), logits);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, draws(new Sampler(p.withSeed(43)), logits)));
    }

    static int[] draws(Sampler s, float[] logits) {
        return IntStream.range(0, 200).map(i -> s.sample(logits)).toArray();
    }

    @Test
    void logprobIsTheLogSoftmaxOfTheRawLogits() {
        float[] logits = {0.5f, 4f, -2f, 3.5f};
        double[] x = {0.5, 4, -2, 3.5};
        double[] p = softmax(x, 1);
        Sampler greedy = new Sampler(SamplingParams.greedy(1).withLogprobs(true));
        assertEquals(1, greedy.sample(logits));
        assertEquals(Math.log(p[1]), greedy.lastLogprob(), 1e-6);
        Sampler hot = new Sampler(SamplingParams.sampled(3.0, 1, 1).withLogprobs(true));
        for (int i = 0; i < 50; i++) {
            int t = hot.sample(logits);
            assertEquals(Math.log(p[t]), hot.lastLogprob(), 1e-6, "token " + t); // not the temperature-scaled one
        }
        assertTrue(Float.isNaN(new Sampler(SamplingParams.greedy(1)).lastLogprob()));
    }

    @Test
    void nanLogitsAreAnError() {
        Sampler s = new Sampler(SamplingParams.greedy(1));
        assertThrows(IllegalStateException.class, () -> s.sample(new float[] {1f, Float.NaN, 2f}));
    }

    @Test
    void invalidParametersAreRejectedByName() {
        assertMessage("temperature", SamplingParams.sampled(-0.1, 1, 1));
        assertMessage("temperature", SamplingParams.sampled(Double.NaN, 1, 1));
        assertMessage("top_p", SamplingParams.sampled(1, 1, 1).withTopP(0));
        assertMessage("top_p", SamplingParams.sampled(1, 1, 1).withTopP(1.5));
        assertMessage("top_p", SamplingParams.sampled(1, 1, 1).withTopP(Double.NaN));
        assertMessage("top_k", SamplingParams.sampled(1, 1, 1).withTopK(-1));
        assertMessage("max_tokens", SamplingParams.greedy(0));
        assertMessage("max_tokens", SamplingParams.greedy(-5));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SamplingParams.greedy(4).withStopTokenIds(5000).validate(2048));
        assertTrue(e.getMessage().contains("stop token id 5000"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Sampler(SamplingParams.greedy(0)));
        SamplingParams.greedy(1).validate();
        SamplingParams.sampled(0.8, 1, 10).withTopK(40).withTopP(0.95).validate();
    }

    static void assertMessage(String field, SamplingParams p) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, p::validate);
        assertTrue(e.getMessage().startsWith(field), field + ": " + e.getMessage());
    }
}
