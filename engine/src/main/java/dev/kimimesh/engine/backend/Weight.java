package dev.kimimesh.engine.backend;

import dev.kimimesh.engine.checkpoint.DType;

/**
 * A checkpoint tensor made usable by a backend: a linear weight [out, in] (y = x W^T) or a vector. The CPU backend
 * reads the memory-mapped file in place; a GPU backend holds a device copy.
 */
public interface Weight {
    String name();

    DType dtype();

    /** Rows of the 2-D view: out-features of a linear weight, elements of a vector. */
    int rows();

    /** Columns of the 2-D view: in-features of a linear weight, 1 for a vector. */
    int cols();

    /** Rows [from, from + count) as a weight of its own (e.g. the latent part of kv_a_proj_with_mqa). */
    Weight rowSlice(int from, int count);
}
