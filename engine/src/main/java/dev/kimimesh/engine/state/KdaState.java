package dev.kimimesh.engine.state;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;

/**
 * Fixed-size state of one KDA layer for one sequence: the recurrent state S (per head [k_dim, v_dim], stacked as
 * [heads * head_dim, head_dim]) and the short-convolution tails of q, k and v (each the last K-1 pre-conv inputs,
 * [K-1, projection], oldest first).
 */
public record KdaState(Backend backend, Tensor recurrent, Tensor[] convTails) implements LayerState {
    public static KdaState fresh(Backend backend, int heads, int headDim, int kernel, int projection) {
        Tensor s = backend.allocate(heads * headDim, headDim);
        Tensor[] tails = new Tensor[3];
        for (int i = 0; i < 3; i++) tails[i] = backend.allocate(Math.max(1, kernel - 1), projection);
        return new KdaState(backend, s, tails);
    }

    @Override
    public void release() {
        backend.release(recurrent);
        for (Tensor t : convTails) backend.release(t);
    }
}
