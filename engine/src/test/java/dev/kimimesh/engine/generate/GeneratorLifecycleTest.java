package dev.kimimesh.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Stopping, cancelling, validation and failure isolation of the generator on the tiny fixture. */
class GeneratorLifecycleTest {
    static Checkpoint ckpt;
    static final Set<Tensor> live = Collections.newSetFromMap(new IdentityHashMap<>());
    static volatile boolean failNextMatmul;
    static KimiLinearModel model;
    static int[] t7, t200, gold7, gold200;

    @BeforeAll
    static void load() throws Exception {
        GeneratorGoldenTest.load();
        ckpt = GeneratorGoldenTest.ckpt;
        model = KimiLinearModel.load(ckpt, counting(new CpuBackend()), ModelOptions.defaults());
        t7 = GeneratorGoldenTest.prompts.get(1);
        gold7 = GeneratorGoldenTest.expected.get(1);
        t200 = GeneratorGoldenTest.prompts.get(4);
        gold200 = GeneratorGoldenTest.expected.get(4);
    }

    @AfterAll
    static void close() {
        GeneratorGoldenTest.close();
    }

    /** A backend that tracks which tensors are allocated and not yet released. */
    static Backend counting(Backend inner) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, a) -> {
            Object r;
            if (failNextMatmul && m.getName().equals("matmul")) {
                failNextMatmul = false;
                throw new IllegalStateException("device lost");
            }
            try {
                r = m.invoke(inner, a);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            synchronized (live) {
                if (m.getName().equals("allocate") || m.getName().equals("upload")) live.add((Tensor) r);
                if (m.getName().equals("release")) live.remove((Tensor) a[0]);
            }
            return r;
        });
    }

    static int liveTensors() {
        synchronized (live) {
            return live.size();
        }
    }

    static class Recorder implements TokenSink {
        final List<Integer> tokens = new ArrayList<>();
        final List<Float> logprobs = new ArrayList<>();
        final List<FinishReason> finishes = new ArrayList<>();

        @Override
        public void onToken(int id, float logprob) {
            tokens.add(id);
            logprobs.add(logprob);
        }

        @Override
        public void onFinish(FinishReason r) {
            finishes.add(r);
        }

        int[] ids() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    @Test
    void cancellationFreesTheStateAndSparesTheOthers() {
        Generator g = new Generator(model, Generator.Options.defaults().withMaxPrefillTokens(48));
        int before = liveTensors();
        Recorder a = new Recorder(), b = new Recorder();
        Sequence sa = g.submit(t200, SamplingParams.greedy(16), a);
        Sequence sb = g.submit(t7, SamplingParams.greedy(16), b);
        g.step();
        g.step();
        assertTrue(liveTensors() > before, "running sequences hold state tensors");
        assertFalse(sa.isFinished());
        sa.cancel(); // between steps: freed at once
        assertEquals(FinishReason.CANCELLED, sa.finishReason());
        assertEquals(List.of(FinishReason.CANCELLED), a.finishes);
        assertEquals(1, g.running());
        g.runUntilIdle();
        assertArrayEquals(gold7, b.ids());
        assertEquals(List.of(FinishReason.LENGTH), b.finishes);
        assertEquals(before, liveTensors(), "every state and temporary is released");
        assertTrue(a.tokens.isEmpty());
    }

    @Test
    void cancellingFromTheSinkDuringAStepEndsOnlyThatSequence() {
        Generator g = new Generator(model);
        int before = liveTensors();
        Recorder other = new Recorder();
        Sequence[] self = new Sequence[1];
        Recorder cancelling = new Recorder() {
            @Override
            public void onToken(int id, float logprob) {
                super.onToken(id, logprob);
                if (tokens.size() == 3) self[0].cancel();
            }
        };
        self[0] = g.submit(t7, SamplingParams.greedy(16), cancelling);
        g.submit(t7, SamplingParams.greedy(16), other);
        g.runUntilIdle();
        assertArrayEquals(Arrays.copyOf(gold7, 3), cancelling.ids());
        assertEquals(List.of(FinishReason.CANCELLED), cancelling.finishes);
        assertArrayEquals(gold7, other.ids());
        assertEquals(before, liveTensors());
    }

    @Test
    void aWaitingSequenceCanBeCancelledBeforeItStarts() {
        Generator g = new Generator(model);
        Recorder r = new Recorder();
        Sequence s = g.submit(t7, SamplingParams.greedy(4), r);
        s.cancel();
        assertEquals(FinishReason.CANCELLED, s.finishReason());
        assertFalse(g.step());
        assertTrue(g.idle());
    }

    @Test
    void stopTokenEndsTheSequenceAfterDeliveringIt() {
        Generator g = new Generator(model);
        Recorder r = new Recorder();
        Sequence s = g.submit(t7, SamplingParams.greedy(16).withStopTokenIds(gold7[3]), r);
        g.runUntilIdle();
        assertArrayEquals(Arrays.copyOf(gold7, 4), r.ids());
        assertEquals(FinishReason.STOP, s.finishReason());
        assertEquals(List.of(FinishReason.STOP), r.finishes);
    }

    @Test
    void maxTokensAndTheContextLimitEndWithLength() {
        Recorder r = new Recorder();
        Generator g = new Generator(model);
        Sequence s = g.submit(t7, SamplingParams.greedy(5), r);
        g.runUntilIdle();
        assertArrayEquals(Arrays.copyOf(gold7, 5), r.ids());
        assertEquals(FinishReason.LENGTH, s.finishReason());

        Generator small = new Generator(model, Generator.Options.defaults().withContextLimit(10));
        Recorder c = new Recorder();
        Sequence sc = small.submit(t7, SamplingParams.greedy(16), c);
        small.runUntilIdle();
        assertArrayEquals(Arrays.copyOf(gold7, 3), c.ids()); // 7 prompt + 3 generated = 10
        assertEquals(FinishReason.LENGTH, sc.finishReason());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> small.submit(new int[10], SamplingParams.greedy(1), r));
        assertTrue(e.getMessage().contains("10 tokens") && e.getMessage().contains("context"), e.getMessage());
    }

    @Test
    void badPromptsAreRejectedWithClearMessages() {
        Generator g = new Generator(model);
        Recorder r = new Recorder();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> g.submit(new int[0], SamplingParams.greedy(1), r))
                .getMessage().contains("empty"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> g.submit(new int[] {5, 2048}, SamplingParams.greedy(1), r));
        assertTrue(e.getMessage().contains("2048") && e.getMessage().contains("vocabulary"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> g.generate(List.of(t7, new int[] {-3}), SamplingParams.greedy(1)));
        assertTrue(e.getMessage().contains("-3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> g.submit(t7, SamplingParams.greedy(1).withTopP(2), r));
        assertTrue(e.getMessage().contains("top_p"), e.getMessage());
        assertTrue(g.idle(), "nothing was queued by the rejected calls");
    }

    @Test
    void aThrowingSinkEndsOnlyItsSequence() {
        Generator g = new Generator(model);
        Recorder good = new Recorder();
        Recorder bad = new Recorder() {
            @Override
            public void onToken(int id, float logprob) {
                throw new IllegalStateException("client went away");
            }
        };
        Sequence sb = g.submit(t7, SamplingParams.greedy(16), bad);
        g.submit(t7, SamplingParams.greedy(16), good);
        g.runUntilIdle();
        assertEquals(FinishReason.ERROR, sb.finishReason());
        assertEquals("client went away", sb.failure().getMessage());
        assertArrayEquals(gold7, good.ids());
    }

    @Test
    void aFailingStepEndsItsSequencesAndTheGeneratorCarriesOn() {
        Generator g = new Generator(model);
        int before = liveTensors();
        Recorder a = new Recorder(), b = new Recorder();
        Sequence sa = g.submit(t7, SamplingParams.greedy(16), a);
        Sequence sb = g.submit(t200, SamplingParams.greedy(16), b);
        failNextMatmul = true;
        assertTrue(g.step());
        assertEquals(FinishReason.ERROR, sa.finishReason());
        assertEquals(FinishReason.ERROR, sb.finishReason());
        assertEquals("device lost", sa.failure().getMessage());
        assertEquals(before, liveTensors(), "failed states and temporaries are released");
        assertArrayEquals(gold7, g.generate(List.of(t7), SamplingParams.greedy(16)).get(0));
        failNextMatmul = true;
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> g.generate(List.of(t7), SamplingParams.greedy(4)));
        assertTrue(e.getMessage().contains("device lost"), e.getMessage());
    }

    @Test
    void seededSamplingIsReproducibleAndPerSequence() {
        SamplingParams p = SamplingParams.sampled(1.0, 1234, 12).withTopK(50).withTopP(0.9);
        Generator g = new Generator(model);
        List<int[]> first = g.generate(List.of(t7, t7), p);
        List<int[]> again = g.generate(List.of(t7, t7), p);
        assertArrayEquals(first.get(0), again.get(0));
        assertArrayEquals(first.get(0), first.get(1)); // same prompt, same seed: same draws, whatever the batch
        assertFalse(Arrays.equals(first.get(0), g.generate(List.of(t7), p.withSeed(99)).get(0)));
    }

    @Test
    void logprobsMatchTheGoldenDecodeLogits() throws Exception {
        Generator g = new Generator(model);
        Recorder r = new Recorder();
        g.submit(t7, SamplingParams.greedy(16).withLogprobs(true), r);
        g.runUntilIdle();
        try (SafetensorsFile f = SafetensorsFile.open(GeneratorGoldenTest.fixture().resolve("goldens/prefill_T7.safetensors"))) {
            float[] logits = f.tensor("decode.logits").toFloatArray();
            int vocab = model.config().vocabSize();
            for (int s = 0; s < 16; s++) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int i = 0; i < vocab; i++) max = Math.max(max, logits[s * vocab + i]);
                for (int i = 0; i < vocab; i++) sum += Math.exp(logits[s * vocab + i] - max);
                double expected = logits[s * vocab + gold7[s]] - max - Math.log(sum);
                assertEquals(expected, r.logprobs.get(s), 1e-3, "step " + s);
            }
        }
    }
}
