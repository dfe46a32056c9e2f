package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.generate.Generator;
import java.util.Optional;

/**
 * The last stage's draw of one token per logits row, on the backend when it samples (a GPU: only ids and logprobs
 * come back instead of [rows, vocab] logits, 42 MB a step at batch 64 of the real vocabulary) and no row needs the
 * logits themselves (top logprobs), else over the downloaded logits. Each sampler's uniform number is drawn first
 * and used either way, so both give the same tokens, as the engine's generator does. {@code -Dkimimesh.sampler.host=true}
 * keeps sampling on the host.
 */
public final class LastStageSampling {
    private LastStageSampling() {}

    /**
     * Tokens and their logprobs for the rows of {@code logits} ([samplers.length, vocab]); {@code logits} is the
     * downloaded matrix when the host sampled (for top logprobs), else null.
     */
    public record Draw(int[] tokens, float[] logprobs, float[] logits) {}

    public static Draw draw(Backend backend, Tensor logits, TokenSampler[] samplers, boolean logitsWanted, int vocab) {
        int n = samplers.length;
        double[] uniform = new double[n];
        for (int i = 0; i < n; i++) uniform[i] = samplers[i].nextUniform();
        int[] tokens = new int[n];
        float[] logprobs = new float[n];
        if (!logitsWanted && !Boolean.getBoolean(Generator.HOST_SAMPLING_PROPERTY)) {
            RowSampling[] rows = new RowSampling[n];
            for (int i = 0; i < n; i++) rows[i] = samplers[i].rowSampling(uniform[i]);
            Optional<SampledTokens> onDevice = backend.sample(logits, rows);
            if (onDevice.isPresent()) {
                SampledTokens s = onDevice.get();
                for (int i = 0; i < n; i++) {
                    tokens[i] = samplers[i].accept(s.tokens()[i], s.logprobs()[i], vocab);
                    logprobs[i] = samplers[i].lastLogprob();
                }
                return new Draw(tokens, logprobs, null);
            }
        }
        float[] l = backend.download(logits);
        for (int i = 0; i < n; i++) {
            tokens[i] = samplers[i].sample(l, i * vocab, vocab, uniform[i]);
            logprobs[i] = samplers[i].lastLogprob();
        }
        return new Draw(tokens, logprobs, l);
    }
}
