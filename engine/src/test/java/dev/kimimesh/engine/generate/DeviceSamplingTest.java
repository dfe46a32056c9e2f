package dev.kimimesh.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The generator's use of {@link Backend#sample} on the tiny fixture, with test backends that sample (CPU only): the
 * uniform numbers it hands over are the host sampler's draws, the returned ids and logprobs are what the sequences
 * stream, a backend that declines gets the host path, error codes fail only their sequence, and the host switch.
 */
class DeviceSamplingTest {
    static KimiLinearModel plain;
    static final SamplingParams[] PARAMS = {
        SamplingParams.greedy(6).withLogprobs(true),
        SamplingParams.sampled(0.8, 11, 6),
        SamplingParams.sampled(1.0, 12, 6).withTopK(20).withLogprobs(true),
        SamplingParams.sampled(0.5, 13, 6).withTopP(0.9),
        SamplingParams.sampled(2.0, 14, 6).withTopK(50).withTopP(0.7),
    };

    @BeforeAll
    static void load() throws Exception {
        GeneratorGoldenTest.load();
        plain = GeneratorGoldenTest.model;
    }

    @AfterAll
    static void close() {
        GeneratorGoldenTest.close();
        System.clearProperty(Generator.HOST_SAMPLING_PROPERTY);
    }

    /** What a backend saw: sample() calls, their rows, and downloads of logits-sized tensors. */
    static final class Calls {
        int sampleCalls, logitsDownloads;
        final List<RowSampling> rows = new ArrayList<>();
    }

    /** A CPU backend whose sample() answers with {@code sampler} (null: declines, as the default does). */
    static Backend sampling(Calls calls, int vocab, BiFunction<float[], RowSampling, int[]> sampler) {
        Backend inner = new CpuBackend();
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, a) -> {
            if (m.getName().equals("sample")) {
                calls.sampleCalls++;
                RowSampling[] rows = (RowSampling[]) a[1];
                calls.rows.addAll(List.of(rows));
                if (sampler == null) return Optional.empty();
                float[] all = inner.download((Tensor) a[0]);
                int[] tokens = new int[rows.length];
                float[] logprobs = new float[rows.length];
                for (int r = 0; r < rows.length; r++) {
                    float[] row = java.util.Arrays.copyOfRange(all, r * vocab, (r + 1) * vocab);
                    int[] tl = sampler.apply(row, rows[r]);
                    tokens[r] = tl[0];
                    logprobs[r] = Float.intBitsToFloat(tl[1]);
                }
                return Optional.of(new SampledTokens(tokens, logprobs));
            }
            if (m.getName().equals("download") && ((Tensor) a[0]).cols() == vocab) calls.logitsDownloads++;
            try {
                return m.invoke(inner, a);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    /** The host Sampler's function applied to a device row (temperatures here have exact float inverses). */
    static int[] reference(float[] row, RowSampling r) {
        SamplingParams p = r.greedy() ? SamplingParams.greedy(1)
                : SamplingParams.sampled(1.0 / r.invTemperature(), 0, 1).withTopK(r.topK()).withTopP(r.topP());
        Sampler s = new Sampler(p.withLogprobs(r.logprob()));
        int token = s.sample(row, 0, row.length, r.uniform());
        return new int[] {token, Float.floatToRawIntBits(s.lastLogprob())};
    }

    record Run(List<List<Integer>> tokens, List<List<Float>> logprobs, List<Sequence> sequences) {}

    static Run run(Backend backend) throws Exception {
        KimiLinearModel model = KimiLinearModel.load(GeneratorGoldenTest.ckpt, backend, ModelOptions.defaults());
        try (Generator g = new Generator(model)) {
            List<List<Integer>> tokens = new ArrayList<>();
            List<List<Float>> logprobs = new ArrayList<>();
            List<Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < PARAMS.length; i++) {
                List<Integer> t = new ArrayList<>();
                List<Float> l = new ArrayList<>();
                tokens.add(t);
                logprobs.add(l);
                seqs.add(g.submit(GeneratorGoldenTest.prompts.get(i), PARAMS[i], new TokenSink() {
                    public void onToken(int id, float logprob) {
                        t.add(id);
                        l.add(logprob);
                    }

                    public void onFinish(FinishReason reason) {}
                }));
            }
            g.runUntilIdle();
            return new Run(tokens, logprobs, seqs);
        }
    }

    static int vocab() {
        return plain.config().vocabSize();
    }

    @Test
    void deviceSamplingWithTheHandedUniformsGivesTheHostTokens() throws Exception {
        Calls host = new Calls(), device = new Calls();
        Run expected = run(sampling(host, vocab(), null));
        Run got = run(sampling(device, vocab(), DeviceSamplingTest::reference));
        assertEquals(expected.tokens(), got.tokens());
        assertEquals(expected.logprobs(), got.logprobs());
        assertTrue(device.sampleCalls > 0);
        assertEquals(0, device.logitsDownloads, "the generator downloaded logits although the backend sampled");
        assertTrue(host.logitsDownloads > 0, "a declining backend leaves the logits to the host sampler");
        // the uniforms the generator handed over are its samplers' draws, in order: the greedy one takes none
        SplittableRandom seed11 = new SplittableRandom(11);
        List<Double> drawn = device.rows.stream().filter(r -> !r.greedy() && r.invTemperature() == 1.25f).map(RowSampling::uniform).toList();
        assertEquals(6, drawn.size());
        for (double u : drawn) assertEquals(seed11.nextDouble(), u);
        assertTrue(device.rows.stream().filter(RowSampling::greedy).allMatch(r -> r.uniform() == 0 && r.logprob()));
    }

    @Test
    void theBackendsTokensAndLogprobsAreWhatIsStreamed() throws Exception {
        Run got = run(sampling(new Calls(), vocab(), (row, r) -> new int[] {42, Float.floatToRawIntBits(-1.5f)}));
        for (int i = 0; i < PARAMS.length; i++) {
            assertEquals(List.of(42, 42, 42, 42, 42, 42), got.tokens().get(i));
            for (float lp : got.logprobs().get(i)) assertEquals(PARAMS[i].logprobs() ? -1.5f : Float.NaN, lp);
        }
    }

    @Test
    void aDeviceErrorCodeFailsOnlyItsSequence() throws Exception {
        Run got = run(sampling(new Calls(), vocab(), (row, r) -> new int[] {r.topK() == 20 ? SampledTokens.NAN_LOGITS : 3, 0}));
        for (int i = 0; i < PARAMS.length; i++) {
            Sequence s = got.sequences().get(i);
            if (i == 2) {
                assertEquals(FinishReason.ERROR, s.finishReason());
                assertEquals("logits contain NaN", s.failure().getMessage());
            } else {
                assertEquals(FinishReason.LENGTH, s.finishReason());
            }
        }
    }

    @Test
    void theHostSwitchKeepsSamplingOnTheHost() throws Exception {
        Calls calls = new Calls();
        System.setProperty(Generator.HOST_SAMPLING_PROPERTY, "true");
        Run got;
        try {
            got = run(sampling(calls, vocab(), (row, r) -> new int[] {42, 0}));
        } finally {
            System.clearProperty(Generator.HOST_SAMPLING_PROPERTY);
        }
        assertEquals(0, calls.sampleCalls);
        assertTrue(calls.logitsDownloads > 0);
        assertEquals(run(sampling(new Calls(), vocab(), null)).tokens(), got.tokens());
    }

    @Test
    void sampleIsSampleWithTheNextUniform() {
        SplittableRandom r = new SplittableRandom(3);
        float[] logits = new float[5000];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) (r.nextGaussian() * 3);
        for (SamplingParams p : PARAMS) {
            Sampler a = new Sampler(p), b = new Sampler(p);
            for (int i = 0; i < 20; i++) {
                int ta = a.sample(logits);
                int tb = b.sample(logits, 0, logits.length, b.nextUniform());
                assertEquals(ta, tb);
                assertEquals(a.lastLogprob(), b.lastLogprob());
            }
        }
        assertArrayEquals(new int[] {0}, new int[] {new Sampler(SamplingParams.greedy(1)).sample(new float[] {1, 1}, 0, 2, 0.99)});
    }
}
