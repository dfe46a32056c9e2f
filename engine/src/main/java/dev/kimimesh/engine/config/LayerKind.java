package dev.kimimesh.engine.config;

/** The attention of a decoder layer: Kimi Delta Attention (linear, fixed-size state) or MLA (full attention). */
public enum LayerKind {
    KDA,
    MLA
}
