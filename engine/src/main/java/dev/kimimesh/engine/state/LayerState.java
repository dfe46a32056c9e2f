package dev.kimimesh.engine.state;

/** The per-sequence state one decoder layer keeps between calls. */
public sealed interface LayerState permits KdaState, MlaCache {
    /** Frees backend memory. */
    void release();
}
