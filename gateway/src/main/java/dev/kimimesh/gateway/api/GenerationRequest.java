package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.SamplingParams;
import java.util.List;

/**
 * A validated request, protocol-independent.
 *
 * @param stopStrings matched on the generated text; the match and what follows are not returned
 */
public record GenerationRequest(int[] prompt, SamplingParams params, List<String> stopStrings, boolean skipSpecial) {}
