package dev.kimimesh.mesh.shard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.generate.Generator;
import dev.kimimesh.engine.generate.Sampler;
import dev.kimimesh.proto.v1.SamplingParams;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The last stage's draw on a backend that samples (a CPU backend whose {@code sample} answers as a device would): the
 * same tokens and logprobs as the host path with the samplers' own uniform numbers, no logits download; the host path
 * when a row wants top logprobs, when the backend declines, or with the host switch; device error codes as errors.
 */
class LastStageSamplingTest {
    static final int VOCAB = 3000, ROWS = 5;

    static SamplingParams[] params() {
        return new SamplingParams[] {
            SamplingParams.newBuilder().setTemperature(0).setLogprobs(true).build(),
            SamplingParams.newBuilder().setTemperature(0.8).setSeed(11).build(),
            SamplingParams.newBuilder().setTemperature(1.0).setTopK(20).setSeed(12).setLogprobs(true).build(),
            SamplingParams.newBuilder().setTemperature(0.5).setTopP(0.9).setSeed(13).build(),
            SamplingParams.newBuilder().setTemperature(2.0).setTopK(50).setTopP(0.7).setSeed(14).setLogprobs(true).build(),
        };
    }

    static TokenSampler[] samplers() {
        return Arrays.stream(params()).map(EngineSampler::new).toArray(TokenSampler[]::new);
    }

    /** What a backend saw: sample() calls and downloads. */
    static final class Calls {
        int sampleCalls, downloads;
    }

    /** A CPU backend whose sample() answers with {@code device} (null: declines, as the default does). */
    static Backend backend(Calls calls, BiFunction<float[], RowSampling, int[]> device) {
        Backend inner = new CpuBackend();
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (p, m, a) -> {
            if (m.getName().equals("sample")) {
                calls.sampleCalls++;
                if (device == null) return Optional.empty();
                RowSampling[] rows = (RowSampling[]) a[1];
                float[] all = inner.download((Tensor) a[0]);
                int[] tokens = new int[rows.length];
                float[] logprobs = new float[rows.length];
                for (int r = 0; r < rows.length; r++) {
                    int[] tl = device.apply(Arrays.copyOfRange(all, r * VOCAB, (r + 1) * VOCAB), rows[r]);
                    tokens[r] = tl[0];
                    logprobs[r] = Float.intBitsToFloat(tl[1]);
                }
                return Optional.of(new SampledTokens(tokens, logprobs));
            }
            if (m.getName().equals("download")) calls.downloads++;
            try {
                return m.invoke(inner, a);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    /** The host sampler's function applied to one row, as a device sampler computes it (exact inverse temperatures). */
    static int[] reference(float[] row, RowSampling r) {
        dev.kimimesh.engine.generate.SamplingParams p = r.greedy() ? dev.kimimesh.engine.generate.SamplingParams.greedy(1)
                : dev.kimimesh.engine.generate.SamplingParams.sampled(1.0 / r.invTemperature(), 0, 1).withTopK(r.topK()).withTopP(r.topP());
        Sampler s = new Sampler(p.withLogprobs(r.logprob()));
        int token = s.sample(row, 0, row.length, r.uniform());
        return new int[] {token, Float.floatToRawIntBits(s.lastLogprob())};
    }

    static float[] logits(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] l = new float[ROWS * VOCAB];
        for (int i = 0; i < l.length; i++) l[i] = (float) (r.nextGaussian() * 3);
        return l;
    }

    /** Eight steps of draws with fresh logits per step. */
    static LastStageSampling.Draw[] steps(Backend b, boolean logitsWanted) {
        TokenSampler[] s = samplers();
        LastStageSampling.Draw[] out = new LastStageSampling.Draw[8];
        for (int step = 0; step < out.length; step++) {
            Tensor t = b.upload(logits(step), ROWS, VOCAB);
            out[step] = LastStageSampling.draw(b, t, s, logitsWanted, VOCAB);
            b.release(t);
        }
        return out;
    }

    @AfterEach
    void clearSwitch() {
        System.clearProperty(Generator.HOST_SAMPLING_PROPERTY);
    }

    @Test
    void aSamplingBackendGivesTheHostTokensWithoutDownloadingLogits() {
        Calls host = new Calls(), device = new Calls();
        LastStageSampling.Draw[] expected = steps(backend(host, null), false);
        LastStageSampling.Draw[] got = steps(backend(device, LastStageSamplingTest::reference), false);
        for (int step = 0; step < expected.length; step++) {
            assertArrayEquals(expected[step].tokens(), got[step].tokens(), "step " + step);
            assertArrayEquals(expected[step].logprobs(), got[step].logprobs(), "step " + step);
            assertNull(got[step].logits());
            assertNotNull(expected[step].logits());
        }
        assertEquals(8, device.sampleCalls);
        assertEquals(0, device.downloads, "the logits were downloaded although the backend sampled");
        assertEquals(8, host.downloads);
        // not a constant: the sampled rows moved between steps
        assertTrue(Arrays.stream(got).map(d -> d.tokens()[1]).distinct().count() > 1);
    }

    @Test
    void topLogprobsKeepTheDrawOnTheHost() {
        Calls calls = new Calls();
        LastStageSampling.Draw[] got = steps(backend(calls, (row, r) -> new int[] {42, 0}), true);
        assertEquals(0, calls.sampleCalls);
        assertEquals(8, calls.downloads);
        LastStageSampling.Draw[] host = steps(backend(new Calls(), null), false);
        for (int step = 0; step < got.length; step++) {
            assertArrayEquals(host[step].tokens(), got[step].tokens());
            assertEquals(ROWS * VOCAB, got[step].logits().length);
        }
    }

    @Test
    void theHostSwitchKeepsSamplingOnTheHost() {
        System.setProperty(Generator.HOST_SAMPLING_PROPERTY, "true");
        Calls calls = new Calls();
        LastStageSampling.Draw[] got = steps(backend(calls, (row, r) -> new int[] {42, 0}), false);
        assertEquals(0, calls.sampleCalls);
        System.clearProperty(Generator.HOST_SAMPLING_PROPERTY);
        LastStageSampling.Draw[] host = steps(backend(new Calls(), null), false);
        for (int step = 0; step < got.length; step++) assertArrayEquals(host[step].tokens(), got[step].tokens());
    }

    @Test
    void theBackendsTokensAndLogprobsAreTakenAndItsErrorCodesThrow() {
        Backend b = backend(new Calls(), (row, r) -> new int[] {7, Float.floatToRawIntBits(-1.25f)});
        Tensor t = b.upload(logits(1), ROWS, VOCAB);
        LastStageSampling.Draw d = LastStageSampling.draw(b, t, samplers(), false, VOCAB);
        assertArrayEquals(new int[] {7, 7, 7, 7, 7}, d.tokens());
        // logprobs only where asked for
        assertArrayEquals(new float[] {-1.25f, Float.NaN, -1.25f, Float.NaN, -1.25f}, d.logprobs());
        Backend bad = backend(new Calls(), (row, r) -> new int[] {r.topK() == 20 ? SampledTokens.NAN_LOGITS : 3, 0});
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> LastStageSampling.draw(bad, t, samplers(), false, VOCAB));
        assertEquals("logits contain NaN", e.getMessage());
        Backend outside = backend(new Calls(), (row, r) -> new int[] {VOCAB, 0});
        assertThrows(IllegalStateException.class, () -> LastStageSampling.draw(outside, t, samplers(), false, VOCAB));
    }
}
