package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.gateway.schedule.SampledToken;
import dev.kimimesh.gateway.schedule.ScheduledSequence;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.schedule.SequenceSink;
import dev.kimimesh.gateway.session.SessionTurn;
import dev.kimimesh.gateway.session.Sessions;
import dev.kimimesh.gateway.text.TextCodec;
import java.util.List;

/**
 * One request in flight: feeds the scheduler's tokens through the streaming detokeniser and the stop-string matcher
 * to a protocol listener. Text that could still become a stop string is held back until it cannot.
 */
public final class Generation implements SequenceSink {
    private final GenerationRequest request;
    private final GenerationListener listener;
    private final TextCodec.Decoder decoder;
    private final int holdBack;
    private final StringBuilder pending = new StringBuilder();
    private ScheduledSequence sequence;
    private int generated;
    private volatile String stoppedBy; // a stop string matched: the cancel that follows is a STOP
    private String stopToken = "";
    private boolean finished;

    private final Sessions sessions;
    private final SessionTurn turn;

    private Generation(GenerationRequest request, GenerationListener listener, TextCodec codec, Sessions sessions, SessionTurn turn) {
        this.request = request;
        this.listener = listener;
        this.sessions = sessions;
        this.turn = turn;
        this.decoder = codec.decoder(request.skipSpecial());
        this.holdBack = request.stopStrings().stream().mapToInt(String::length).max().orElse(1) - 1;
    }

    /**
     * Submits the request to the scheduler.
     *
     * @throws IllegalArgumentException                                  for a bad prompt or sampling parameters
     * @throws dev.kimimesh.gateway.schedule.QueueFullException          when the gateway is at capacity
     */
    public static Generation start(Scheduler scheduler, TextCodec codec, GenerationRequest request, GenerationListener listener) {
        return start(scheduler, codec, request, listener, null, null);
    }

    /**
     * Submits one turn of a session: {@code request}'s prompt and sequence options already come from the turn. When it
     * finishes, the session learns where its state stands (before the listener hears of the finish, so that the
     * client's next turn finds the session free).
     */
    public static Generation start(Scheduler scheduler, TextCodec codec, GenerationRequest request, GenerationListener listener,
                                   Sessions sessions, SessionTurn turn) {
        Generation g = new Generation(request, listener, codec, sessions, turn);
        synchronized (g) {
            g.sequence = scheduler.submit(request.prompt(), request.params(), request.sequence(), g);
        }
        return g;
    }

    /** Stops the generation (client gone); every shard releases the sequence. */
    public void cancel() {
        ScheduledSequence s;
        synchronized (this) {
            s = sequence;
        }
        if (s != null) s.cancel();
    }

    /** The scheduler's handle (null only while {@link #start} runs). */
    public synchronized ScheduledSequence sequence() {
        return sequence;
    }

    @Override
    public void onSampled(SampledToken token) {
        int id = token.token();
        if (stoppedBy != null) return;
        generated++;
        for (int stop : request.params().stopTokenIds()) if (stop == id) stopToken = Integer.toString(id);
        String piece = decoder.push(id);
        if (request.stopStrings().isEmpty()) {
            listener.onToken(token, piece);
            return;
        }
        pending.append(piece);
        int at = firstStop();
        if (at >= 0) {
            String before = pending.substring(0, at);
            pending.setLength(0);
            listener.onToken(token, before);
            cancel();
            return;
        }
        int emit = Math.max(0, pending.length() - holdBack);
        String out = pending.substring(0, emit);
        pending.delete(0, emit);
        listener.onToken(token, out);
    }

    private int firstStop() {
        int best = -1;
        for (String stop : request.stopStrings()) {
            int i = pending.indexOf(stop);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
                stoppedBy = stop;
            }
        }
        if (best >= 0) {
            // the earliest match decides which stop string is reported
            for (String stop : request.stopStrings()) if (pending.indexOf(stop) == best) stoppedBy = stop;
        }
        return best;
    }

    @Override
    public void onFinish(FinishReason reason) {
        if (finished) return;
        finished = true;
        String tail = "";
        String stopReason = stopToken;
        if (stoppedBy != null) {
            reason = FinishReason.STOP;
            stopReason = stoppedBy;
        } else {
            pending.append(decoder.flush());
            tail = pending.toString();
            int at = firstStop();
            if (at >= 0) {
                tail = tail.substring(0, at);
                reason = FinishReason.STOP;
                stopReason = stoppedBy;
            }
        }
        ScheduledSequence seq = sequence(); // waits for start() to have recorded it
        String error = reason == FinishReason.ERROR ? (seq != null && seq.failure() != null ? seq.failure() : "generation failed") : null;
        if (turn != null) sessions.end(turn, seq, reason);
        int cached = request.sequence().position();
        listener.onFinish(new GenerationOutcome(reason, tail, cached + request.prompt().length, generated, stopReason, error, cached));
    }

    public List<String> stopStrings() {
        return request.stopStrings();
    }
}
