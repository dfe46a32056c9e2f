package dev.kimimesh.gateway.session;

import dev.kimimesh.gateway.schedule.SequenceOptions;

/**
 * One request on a session, between {@link Sessions#begin} and {@link Sessions#end}.
 *
 * @param sessionId the session's id (made by the gateway when the request created the session)
 * @param keep      keep the session after this turn (else it is released when the turn ends)
 * @param prefix    tokens that precede the request's prompt (the previous turn's last token, when it was not fed)
 * @param sequence  where the prompt continues: the session's sequence id and position, state kept at the end
 */
public record SessionTurn(String sessionId, boolean keep, int[] prefix, SequenceOptions sequence) {
    /** The prompt the scheduler runs: the prefix, then the request's own tokens. */
    public int[] prompt(int[] own) {
        int[] all = new int[prefix.length + own.length];
        System.arraycopy(prefix, 0, all, 0, prefix.length);
        System.arraycopy(own, 0, all, prefix.length, own.length);
        return all;
    }
}
