package dev.kimimesh.engine.backend;

import java.util.Optional;

/**
 * A decode step recorded by {@link Backend#captureDecode}: the same kernels on the same buffers, with the per-step
 * inputs (token ids, positions, sampling) read from device memory that each replay rewrites.
 */
public interface DecodeGraph extends AutoCloseable {
    /**
     * Runs the recorded step for these inputs (one id, position and row of sampling parameters per sequence, in the
     * recorded order) and returns the sampled tokens. Empty, with nothing run, when these sampling parameters are
     * ones the recorded sampler cannot take.
     */
    Optional<SampledTokens> replay(int[] ids, int[] positions, RowSampling[] rows);

    @Override
    void close();
}
