package dev.kimimesh.gateway.api;

import dev.kimimesh.gateway.schedule.SampledToken;

/** What a protocol adapter (gRPC, HTTP) receives of one generation; called on the scheduler's thread, must not block. */
public interface GenerationListener {
    /**
     * A generated token (with its logprob, NaN unless requested, and its top alternatives when requested) and the
     * text it completes (possibly empty).
     */
    void onToken(SampledToken token, String text);

    /** Called once, last. */
    void onFinish(GenerationOutcome outcome);
}
