package dev.kimimesh.gateway.schedule;

/** A token the last stage sampled for a sequence; logprob is NaN unless the sequence asked for logprobs. */
public record SampledToken(long sequenceId, int token, float logprob) {}
