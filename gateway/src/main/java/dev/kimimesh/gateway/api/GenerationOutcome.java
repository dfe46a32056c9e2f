package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.FinishReason;

/**
 * How a generation ended.
 *
 * @param text               trailing text held back until the end (a partial character or a possible stop-string prefix)
 * @param promptTokens       the tokens the reply is conditioned on: a session's earlier tokens plus this prompt
 * @param stopReason         the stop string or token id that ended it, or empty
 * @param error              the failure message with {@link FinishReason#ERROR}, else null
 * @param cachedPromptTokens prompt tokens not recomputed (already in a session's state)
 */
public record GenerationOutcome(FinishReason reason, String text, int promptTokens, int completionTokens, String stopReason,
                                String error, int cachedPromptTokens) {
    public int totalTokens() {
        return promptTokens + completionTokens;
    }
}
