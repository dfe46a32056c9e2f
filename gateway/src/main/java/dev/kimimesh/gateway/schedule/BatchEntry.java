package dev.kimimesh.gateway.schedule;

import dev.kimimesh.engine.generate.SamplingParams;

/**
 * One sequence's share of a micro-batch: its next tokens (a prefill chunk, or the one token being decoded).
 *
 * @param position    tokens of this sequence already fed through the pipeline (where these continue)
 * @param sample      whether the last of these tokens is sampled (a decode step, or the last chunk of the prompt)
 * @param params      the sequence's sampling parameters (the last stage creates its sampler from them on first sight)
 * @param topLogprobs most likely alternatives to report with the sampled token
 * @param newSampler  the first sample of this request: the last stage starts a fresh sampler even when the sequence
 *                    already has state there (a session's next turn)
 */
public record BatchEntry(long sequenceId, int[] tokens, int position, boolean sample, SamplingParams params, int topLogprobs,
                         boolean newSampler) {
    public BatchEntry(long sequenceId, int[] tokens, int position, boolean sample, SamplingParams params) {
        this(sequenceId, tokens, position, sample, params, 0, false);
    }
}
