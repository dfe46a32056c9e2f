package dev.kimimesh.gateway.session;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.gateway.schedule.ScheduledSequence;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.schedule.SequenceOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The gateway's live sessions. A session owns one sequence id whose per-layer state every pipeline stage keeps
 * between requests, so a following request continues from it without recomputing its tokens. Turns of a session run
 * one at a time; an idle session expires after the TTL and its state is released on every stage.
 */
public final class Sessions implements AutoCloseable {
    private final Scheduler scheduler;
    private final Duration ttl;
    private final LongSupplier clock;
    private final Map<String, Session> live = new HashMap<>();
    private final ScheduledExecutorService sweeper;

    /** What a client may learn of a session. */
    public record Info(String sessionId, int tokens, long expiresAtMs) {}

    public Sessions(Scheduler scheduler, Duration ttl) {
        this(scheduler, ttl, System::currentTimeMillis);
    }

    Sessions(Scheduler scheduler, Duration ttl, LongSupplier clock) {
        if (ttl.isNegative() || ttl.isZero()) throw new IllegalArgumentException("the session TTL must be positive, got " + ttl);
        this.scheduler = scheduler;
        this.ttl = ttl;
        this.clock = clock;
        this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("kimimesh-sessions").daemon().unstarted(r));
        long period = Math.clamp(ttl.toMillis() / 4, 50, 5000);
        sweeper.scheduleWithFixedDelay(this::expire, period, period, TimeUnit.MILLISECONDS);
    }

    public Duration ttl() {
        return ttl;
    }

    /**
     * Starts a turn. An empty id with {@code keep} creates a session (the gateway makes its id); a non-empty id
     * continues that session. Returns null for a one-off request (no id, no keep).
     *
     * @throws SessionNotFoundException for an id that names no live session
     * @throws SessionBusyException     when the session is serving another request
     */
    public synchronized SessionTurn begin(String sessionId, boolean keep) {
        Session s;
        if (sessionId == null || sessionId.isEmpty()) {
            if (!keep) return null;
            s = new Session("sess-" + UUID.randomUUID().toString().replace("-", ""), scheduler.newSequenceId());
            live.put(s.id, s);
        } else {
            s = live.get(sessionId);
            if (s == null) throw new SessionNotFoundException(sessionId);
            if (s.busy) throw new SessionBusyException(sessionId);
        }
        s.busy = true;
        int[] prefix = s.unfed >= 0 ? new int[] {s.unfed} : new int[0];
        return new SessionTurn(s.id, keep, prefix, new SequenceOptions(0, s.sequenceId, s.position, true));
    }

    /** The turn never reached the scheduler (bad input, full queue): the session is as before; a new one goes away. */
    public synchronized void abort(SessionTurn turn) {
        Session s = live.get(turn.sessionId());
        if (s == null) return;
        s.busy = false;
        if (s.position == 0 && s.unfed < 0) live.remove(s.id); // created by this turn, holds nothing
        else if (s.releaseAfterTurn) release(s);
        else s.expiresAtMs = clock.getAsLong() + ttl.toMillis();
    }

    /**
     * The turn's sequence has finished. A clean turn (stop or length) that keeps the session records where the state
     * is; otherwise (not kept, cancelled by the client, failed, or released meanwhile) the session ends and every
     * stage drops its state.
     */
    public synchronized void end(SessionTurn turn, ScheduledSequence sequence, FinishReason reason) {
        Session s = live.get(turn.sessionId());
        if (s == null) return;
        s.busy = false;
        boolean clean = reason == FinishReason.STOP || reason == FinishReason.LENGTH;
        if (!sequence.stateKept()) {
            live.remove(s.id); // the scheduler released it (a failure)
            return;
        }
        if (!clean || !turn.keep() || s.releaseAfterTurn) {
            release(s);
            return;
        }
        s.position = sequence.position();
        s.unfed = sequence.unfedToken();
        s.expiresAtMs = clock.getAsLong() + ttl.toMillis();
    }

    /**
     * Renews a session's expiry and describes it.
     *
     * @throws SessionNotFoundException for an unknown id
     */
    public synchronized Info touch(String sessionId) {
        Session s = live.get(sessionId);
        if (s == null) throw new SessionNotFoundException(sessionId);
        if (!s.busy) s.expiresAtMs = clock.getAsLong() + ttl.toMillis();
        return new Info(s.id, s.tokens(), s.busy ? 0 : s.expiresAtMs);
    }

    /**
     * Frees a session on every stage; a busy one is freed when its running turn ends.
     *
     * @throws SessionNotFoundException for an unknown id
     */
    public synchronized void release(String sessionId) {
        Session s = live.get(sessionId);
        if (s == null) throw new SessionNotFoundException(sessionId);
        if (s.busy) s.releaseAfterTurn = true;
        else release(s);
    }

    /** Live sessions (busy or idle). */
    public synchronized int size() {
        return live.size();
    }

    private void release(Session s) {
        live.remove(s.id);
        scheduler.releaseKept(s.sequenceId);
    }

    /** Releases every idle session whose TTL has passed. */
    synchronized void expire() {
        long now = clock.getAsLong();
        List<Session> due = new ArrayList<>();
        for (Session s : live.values()) if (!s.busy && s.expiresAtMs <= now) due.add(s);
        due.forEach(this::release);
    }

    /** Stops the sweeper and releases every session. */
    @Override
    public synchronized void close() {
        sweeper.shutdownNow();
        for (Session s : List.copyOf(live.values())) release(s);
    }
}
