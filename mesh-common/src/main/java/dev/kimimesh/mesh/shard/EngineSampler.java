package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.generate.Sampler;
import dev.kimimesh.engine.generate.SamplingParams;

/**
 * The engine's {@link Sampler} behind the last stage's {@link TokenSampler} seam, so the mesh samples exactly as the
 * single-process generator does. Wire defaults: temperature 1, top_p 1, seed chosen here when unset.
 */
public final class EngineSampler implements TokenSampler {
    private final Sampler sampler;

    public EngineSampler(dev.kimimesh.proto.v1.SamplingParams p) {
        // max_tokens, stops and eos are the gateway's business; the stage only draws tokens
        this(new Sampler(new SamplingParams(p.hasTemperature() ? p.getTemperature() : 1.0, p.getTopK(),
                p.hasTopP() ? p.getTopP() : 1.0, p.hasSeed() ? p.getSeed() : System.nanoTime(), 1, new int[0],
                p.getIgnoreEos(), p.getLogprobs() || p.getTopLogprobs() > 0)));
    }

    /** Wraps an engine sampler (the embedded pipeline's last stage makes them from the engine's parameters). */
    public EngineSampler(Sampler sampler) {
        this.sampler = sampler;
    }

    public static Factory factory() {
        return (p, vocab) -> new EngineSampler(p);
    }

    @Override
    public double nextUniform() {
        return sampler.nextUniform();
    }

    @Override
    public int sample(float[] logits, int offset, int vocab, double uniform) {
        return sampler.sample(logits, offset, vocab, uniform);
    }

    @Override
    public RowSampling rowSampling(double uniform) {
        return sampler.rowSampling(uniform);
    }

    @Override
    public int accept(int token, float logprob, int vocab) {
        return sampler.accept(token, logprob, vocab);
    }

    @Override
    public float lastLogprob() {
        return sampler.lastLogprob();
    }
}
