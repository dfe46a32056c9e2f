package dev.kimimesh.gateway.api;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.TokenSink;
import dev.kimimesh.gateway.schedule.ScheduledSequence;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.text.TextCodec;
import java.util.List;

/**
 * One request in flight: feeds the scheduler's tokens through the streaming detokeniser and the stop-string matcher
 * to a protocol listener. Text that could still become a stop string is held back until it cannot.
 */
public final class Generation implements TokenSink {
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

    private Generation(GenerationRequest request, GenerationListener listener, TextCodec codec) {
        this.request = request;
        this.listener = listener;
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
        Generation g = new Generation(request, listener, codec);
        synchronized (g) {
            g.sequence = scheduler.submit(request.prompt(), request.params(), g);
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

    @Override
    public void onToken(int id, float logprob) {
        if (stoppedBy != null) return;
        generated++;
        for (int stop : request.params().stopTokenIds()) if (stop == id) stopToken = Integer.toString(id);
        String piece = decoder.push(id);
        if (request.stopStrings().isEmpty()) {
            listener.onToken(id, logprob, piece);
            return;
        }
        pending.append(piece);
        int at = firstStop();
        if (at >= 0) {
            String before = pending.substring(0, at);
            pending.setLength(0);
            listener.onToken(id, logprob, before);
            cancel();
            return;
        }
        int emit = Math.max(0, pending.length() - holdBack);
        String out = pending.substring(0, emit);
        pending.delete(0, emit);
        listener.onToken(id, logprob, out);
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
        String error = reason == FinishReason.ERROR ? (sequence != null && sequence.failure() != null ? sequence.failure() : "generation failed") : null;
        listener.onFinish(new GenerationOutcome(reason, tail, request.prompt().length, generated, stopReason, error));
    }

    public List<String> stopStrings() {
        return request.stopStrings();
    }
}
