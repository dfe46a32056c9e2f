package dev.kimimesh.engine.backend;

/** One SwiGLU FFN: {@code down(silu(gate x) * up x)}; routed experts store gate/down/up as w1/w2/w3. */
public record ExpertWeights(Weight gate, Weight up, Weight down) {}
