package dev.kimimesh.gateway.session;

/**
 * A conversation whose per-sequence state stays on every pipeline stage between requests, under one sequence id.
 * Mutable; guarded by the {@link Sessions} that owns it.
 */
final class Session {
    final String id;
    final long sequenceId;
    /** Tokens in the state on every stage. */
    int position;
    /** The last token of the previous turn when it was delivered but not fed (it opens the next turn), else -1. */
    int unfed = -1;
    /** A request is running on it. */
    boolean busy;
    /** Release when the running turn ends (ReleaseSession arrived while busy). */
    boolean releaseAfterTurn;
    long expiresAtMs;

    Session(String id, long sequenceId) {
        this.id = id;
        this.sequenceId = sequenceId;
    }

    /** Tokens of the conversation so far: those in the state plus the unfed one. */
    int tokens() {
        return position + (unfed >= 0 ? 1 : 0);
    }
}
