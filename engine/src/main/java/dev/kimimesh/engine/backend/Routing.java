package dev.kimimesh.engine.backend;

/**
 * The experts chosen for each row of a micro-batch and their final weights: row r uses experts
 * {@code experts[r*topK .. r*topK+topK)} with weights {@code weights[...]} in the order of descending choice score.
 */
public record Routing(int rows, int topK, int[] experts, float[] weights) {
    public int expert(int row, int j) {
        return experts[row * topK + j];
    }

    public float weight(int row, int j) {
        return weights[row * topK + j];
    }
}
