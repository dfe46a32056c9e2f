package dev.kimimesh.engine.backend;

/**
 * A float32 row-major matrix [rows, cols] in a backend's memory (heap or device). Activations, KDA states and MLA
 * caches are all tensors; a row view shares storage with its parent.
 */
public interface Tensor {
    int rows();

    int cols();

    /** Rows [from, from + count) of this tensor, sharing its storage. */
    Tensor rowSlice(int from, int count);

    default long size() {
        return (long) rows() * cols();
    }
}
