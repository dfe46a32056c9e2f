package dev.kimimesh.engine.generate;

/** Why a sequence stopped generating. */
public enum FinishReason {
    /** It produced a stop token or the end-of-sequence token (delivered before the finish). */
    STOP,
    /** It reached max_tokens or the model's context length. */
    LENGTH,
    /** It was cancelled; its state has been freed. */
    CANCELLED,
    /** The step that ran it failed (or its sink threw); see {@link Sequence#failure()}. */
    ERROR
}
