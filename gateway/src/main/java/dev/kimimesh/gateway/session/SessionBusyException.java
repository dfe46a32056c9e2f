package dev.kimimesh.gateway.session;

/** The session is serving another request (turns of a session run one at a time): gRPC FAILED_PRECONDITION, HTTP 409. */
public final class SessionBusyException extends RuntimeException {
    public SessionBusyException(String sessionId) {
        super("session_id: session '" + sessionId + "' is busy with another request; send the next turn when it has finished");
    }
}
