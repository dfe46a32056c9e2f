package dev.kimimesh.gateway.schedule;

/**
 * What a request asks of its sequence beyond the engine's sampling parameters.
 *
 * @param topLogprobs most likely alternatives reported with each token (0..20)
 * @param sequenceId  the pipeline slot to use; 0 = a fresh one (a session's later turns reuse the session's slot)
 * @param position    tokens already in the slot's state on every stage (a session's continuation); 0 = a new sequence
 * @param keepState   leave the state on the stages when the sequence finishes (its owner releases it later)
 */
public record SequenceOptions(int topLogprobs, long sequenceId, int position, boolean keepState) {
    public static final SequenceOptions NONE = new SequenceOptions(0, 0, 0, false);

    public SequenceOptions {
        if (topLogprobs < 0 || topLogprobs > 20) throw new IllegalArgumentException("top_logprobs must be in 0..20, got " + topLogprobs);
        if (position < 0) throw new IllegalArgumentException("position must be >= 0, got " + position);
        if (position > 0 && sequenceId == 0) throw new IllegalArgumentException("a continuation names its sequence");
    }

    public static SequenceOptions topLogprobs(int n) {
        return new SequenceOptions(n, 0, 0, false);
    }

    public SequenceOptions withTopLogprobs(int n) {
        return new SequenceOptions(n, sequenceId, position, keepState);
    }
}
