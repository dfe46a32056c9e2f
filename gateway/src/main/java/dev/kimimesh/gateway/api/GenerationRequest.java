package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.gateway.schedule.SequenceOptions;
import java.util.List;

/**
 * A validated request, protocol-independent.
 *
 * @param stopStrings matched on the generated text; the match and what follows are not returned
 * @param sequence    top alternatives per token, and the session state it continues (if any)
 */
public record GenerationRequest(int[] prompt, SamplingParams params, List<String> stopStrings, boolean skipSpecial,
                                SequenceOptions sequence) {
    public GenerationRequest(int[] prompt, SamplingParams params, List<String> stopStrings, boolean skipSpecial) {
        this(prompt, params, stopStrings, skipSpecial, SequenceOptions.NONE);
    }

    public GenerationRequest withSequence(SequenceOptions s) {
        return new GenerationRequest(prompt, params, stopStrings, skipSpecial, s);
    }

    public GenerationRequest withParams(SamplingParams p) {
        return new GenerationRequest(prompt, p, stopStrings, skipSpecial, sequence);
    }
}
