package dev.kimimesh.gateway.api;

/** What a protocol adapter (gRPC, HTTP) receives of one generation; called on the scheduler's thread, must not block. */
public interface GenerationListener {
    /** A generated token and the text it completes (possibly empty); logprob is NaN unless requested. */
    void onToken(int token, float logprob, String text);

    /** Called once, last. */
    void onFinish(GenerationOutcome outcome);
}
