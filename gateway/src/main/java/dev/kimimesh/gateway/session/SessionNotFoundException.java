package dev.kimimesh.gateway.session;

/** No live session has this id (never created, released, or expired): gRPC NOT_FOUND, HTTP 404. */
public final class SessionNotFoundException extends RuntimeException {
    public SessionNotFoundException(String sessionId) {
        super("session_id: no session '" + sessionId + "' (unknown, released or expired; start a new one with keep_session)");
    }
}
