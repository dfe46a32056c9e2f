package dev.kimimesh.gateway.schedule;

import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.TokenSink;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Continuous batching over a {@link Pipeline}: admits requests into slots, builds micro-batches of decode tokens and
 * prefill chunks (a token budget per micro-batch), and keeps several micro-batches in flight so that every pipeline
 * stage has work (while stage 2 runs group A, stage 1 runs group B). A sequence is in at most one micro-batch at a
 * time, since its next token depends on the last. Everything but {@link #submit} and cancellation runs on one loop
 * thread, so the bookkeeping needs no locks.
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Scheduler.class.getName());

    private final Pipeline pipeline;
    private final SchedulerOptions options;
    private final int vocabSize, eosTokenId, contextLimit, inFlightLimit;
    private final BlockingQueue<Runnable> events = new LinkedBlockingQueue<>();
    private final AtomicInteger admitted = new AtomicInteger(); // waiting + running, for admission control
    private final AtomicLong ids = new AtomicLong();
    private final AtomicLong batches = new AtomicLong(), batchTokens = new AtomicLong();
    private final Thread loop;
    private volatile boolean closed;
    private final List<SchedulerObserver> observers = new java.util.concurrent.CopyOnWriteArrayList<>();

    // loop-thread state
    private final ArrayDeque<ScheduledSequence> waiting = new ArrayDeque<>();
    private final List<ScheduledSequence> running = new ArrayList<>();
    private final Map<Long, MicroBatch> inFlight = new HashMap<>();
    private volatile int waitingCount, runningCount;

    /**
     * @param vocabSize    the model's vocabulary (prompt ids and stop ids are checked against it)
     * @param eosTokenId   ends a sequence unless its params ignore eos (negative: none)
     * @param maxPositions the model's context length (used when options.contextLimit is 0)
     */
    public Scheduler(Pipeline pipeline, SchedulerOptions options, int vocabSize, int eosTokenId, long maxPositions) {
        this.pipeline = pipeline;
        this.options = options;
        this.vocabSize = vocabSize;
        this.eosTokenId = eosTokenId;
        long limit = options.contextLimit() > 0 ? options.contextLimit() : maxPositions;
        this.contextLimit = (int) Math.min(Integer.MAX_VALUE, limit);
        this.inFlightLimit = options.inFlight() > 0 ? options.inFlight() : Math.max(1, pipeline.depth());
        this.loop = Thread.ofPlatform().name("kimimesh-scheduler").daemon().start(this::runLoop);
    }

    public Pipeline pipeline() {
        return pipeline;
    }

    /** Adds an observer (metrics, tracing); see {@link SchedulerObserver} for the threads it is called on. */
    public void observe(SchedulerObserver observer) {
        observers.add(observer);
    }

    public SchedulerOptions options() {
        return options;
    }

    /** Prompt + generated tokens allowed per sequence. */
    public int contextLimit() {
        return contextLimit;
    }

    /** Micro-batches kept in flight at most. */
    public int inFlightLimit() {
        return inFlightLimit;
    }

    public int waiting() {
        return waitingCount;
    }

    public int running() {
        return runningCount;
    }

    /** Micro-batches sent so far and their tokens. */
    public long batchesSent() {
        return batches.get();
    }

    public long tokensSent() {
        return batchTokens.get();
    }

    /**
     * Queues a request; its tokens go to {@code sink} from the scheduler's thread (the sink must not block).
     *
     * @throws IllegalArgumentException for an empty prompt, one that leaves no room in the context, ids outside the
     *                                  vocabulary, or invalid sampling parameters
     * @throws QueueFullException       when max-running + max-queued requests are already admitted
     */
    public ScheduledSequence submit(int[] prompt, SamplingParams params, TokenSink sink) {
        return submit(prompt, params, SequenceOptions.NONE, sink);
    }

    /**
     * Queues a request with options: top alternatives, or the continuation of a sequence whose state the stages
     * kept (a session's next turn: {@code prompt} follows the {@code sequence.position()} tokens already there).
     */
    public ScheduledSequence submit(int[] prompt, SamplingParams params, SequenceOptions sequence, TokenSink sink) {
        validatePrompt(prompt, sequence.position());
        params.validate(vocabSize);
        if (closed) throw new IllegalStateException("the scheduler is shut down");
        int limit = options.maxRunning() + options.maxQueued();
        if (admitted.incrementAndGet() > limit) {
            admitted.decrementAndGet();
            throw new QueueFullException("the gateway is at capacity: " + options.maxRunning() + " running and "
                    + options.maxQueued() + " queued requests; retry later");
        }
        long id = sequence.sequenceId() != 0 ? sequence.sequenceId() : newSequenceId();
        ScheduledSequence s = new ScheduledSequence(id, prompt.clone(), params, sequence, sink, this);
        for (SchedulerObserver o : observers) o.submitted(s);
        events.add(() -> {
            waiting.add(s);
            waitingCount = waiting.size();
        });
        return s;
    }

    /** A sequence id no other sequence of this scheduler uses (for a session that keeps its slot across requests). */
    public long newSequenceId() {
        return ids.incrementAndGet();
    }

    /** Tells every stage to drop a sequence whose state was kept (after any work already queued for it). */
    public void releaseKept(long sequenceId) {
        pipeline.release(sequenceId);
    }

    /** Throws an IllegalArgumentException naming what is wrong with the prompt. */
    public void validatePrompt(int[] prompt) {
        validatePrompt(prompt, 0);
    }

    /** As {@link #validatePrompt(int[])} for a prompt that follows {@code position} tokens already in the state. */
    public void validatePrompt(int[] prompt, int position) {
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt is empty: give at least one token");
        if ((long) position + prompt.length >= contextLimit) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens"
                    + (position > 0 ? " after the session's " + position : "") + "; the context holds " + contextLimit
                    + ", which leaves no room to generate");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocabSize) {
                throw new IllegalArgumentException("prompt token " + i + " has id " + prompt[i] + ", outside the vocabulary 0.."
                        + (vocabSize - 1));
            }
        }
    }

    void cancel(ScheduledSequence s) {
        events.add(() -> {
            if (s.isFinished()) return;
            if (waiting.remove(s)) {
                waitingCount = waiting.size();
                end(s, FinishReason.CANCELLED, null);
            } else if (!s.inFlight) {
                end(s, FinishReason.CANCELLED, null);
                running.remove(s);
                runningCount = running.size();
            }
            // in flight: ended when its micro-batch returns
        });
    }

    /** Cancels everything and stops the loop; the pipeline is not closed (its owner closes it). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        events.add(() -> {
            for (ScheduledSequence s : waiting) end(s, FinishReason.CANCELLED, null);
            for (ScheduledSequence s : running) end(s, FinishReason.CANCELLED, null);
            waiting.clear();
            running.clear();
        });
        try {
            loop.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void runLoop() {
        while (true) {
            Runnable event;
            try {
                event = events.take();
            } catch (InterruptedException e) {
                return;
            }
            do {
                try {
                    event.run();
                } catch (RuntimeException e) {
                    LOG.log(Level.SEVERE, "scheduler event failed", e);
                }
            } while ((event = events.poll()) != null);
            if (closed && inFlight.isEmpty()) {
                return;
            }
            if (!closed) schedule();
        }
    }

    private void schedule() {
        while (running.size() < options.maxRunning() && !waiting.isEmpty()) {
            ScheduledSequence s = waiting.poll();
            running.add(s);
        }
        waitingCount = waiting.size();
        runningCount = running.size();
        while (inFlight.size() < inFlightLimit) {
            MicroBatch batch = nextBatch();
            if (batch == null) break;
            send(batch);
        }
    }

    /**
     * Decode tokens first, then prompt chunks within the token budget. A micro-batch takes at most its share
     * (running / in-flight limit) of the sequences, so the groups in flight stay balanced.
     */
    private MicroBatch nextBatch() {
        int share = Math.max(1, (running.size() + inFlightLimit - 1) / inFlightLimit);
        int budget = options.batchTokens();
        List<ScheduledSequence> chosen = new ArrayList<>();
        List<BatchEntry> entries = new ArrayList<>();
        for (ScheduledSequence s : running) {
            if (chosen.size() >= share || budget == 0) break;
            if (s.inFlight || !s.decoding() || s.isFinished()) continue;
            entries.add(new BatchEntry(s.id(), new int[] {s.nextToken}, s.position(), true, s.params, s.options.topLogprobs(), false));
            chosen.add(s);
            budget--;
        }
        for (ScheduledSequence s : running) {
            if (chosen.size() >= share || budget == 0) break;
            if (s.inFlight || s.decoding() || s.isFinished()) continue;
            int len = Math.min(budget, s.prompt.length - s.fed);
            int[] chunk = Arrays.copyOfRange(s.prompt, s.fed, s.fed + len);
            boolean last = s.fed + len == s.prompt.length;
            entries.add(new BatchEntry(s.id(), chunk, s.position(), last, s.params, s.options.topLogprobs(), last));
            chosen.add(s);
            budget -= len;
        }
        if (entries.isEmpty()) return null;
        for (ScheduledSequence s : chosen) {
            s.inFlight = true;
            s.touchedPipeline = true;
        }
        return new MicroBatch(batches.incrementAndGet(), List.copyOf(entries));
    }

    private void send(MicroBatch batch) {
        inFlight.put(batch.id(), batch);
        batchTokens.addAndGet(batch.tokens());
        for (SchedulerObserver o : observers) o.batchSent(batch);
        try {
            pipeline.run(batch).whenComplete((tokens, error) -> events.add(() -> complete(batch, tokens, error)));
        } catch (RuntimeException e) {
            events.add(() -> complete(batch, null, e));
        }
    }

    private void complete(MicroBatch batch, List<SampledToken> tokens, Throwable error) {
        inFlight.remove(batch.id());
        Map<Long, SampledToken> byId = new HashMap<>();
        if (tokens != null) for (SampledToken t : tokens) byId.put(t.sequenceId(), t);
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        for (SchedulerObserver o : observers) o.batchCompleted(batch, cause);
        for (BatchEntry e : batch.entries()) {
            ScheduledSequence s = find(e.sequenceId());
            if (s == null) continue;
            s.inFlight = false;
            if (s.isFinished()) continue;
            if (cause != null) {
                end(s, FinishReason.ERROR, "the pipeline failed: " + cause.getMessage());
                continue;
            }
            s.fed += e.tokens().length;
            if (s.cancelRequested()) {
                end(s, FinishReason.CANCELLED, null);
                continue;
            }
            if (e.sample()) {
                SampledToken t = byId.get(s.id());
                if (t == null) {
                    end(s, FinishReason.ERROR, "the pipeline returned no token for sequence " + s.id());
                } else {
                    deliver(s, t);
                }
            }
        }
        for (Iterator<ScheduledSequence> it = running.iterator(); it.hasNext(); ) {
            if (it.next().isFinished()) it.remove();
        }
        runningCount = running.size();
    }

    private ScheduledSequence find(long id) {
        for (ScheduledSequence s : running) if (s.id() == id) return s;
        return null;
    }

    private void deliver(ScheduledSequence s, SampledToken t) {
        int token = t.token();
        s.countToken();
        s.nextToken = token;
        for (SchedulerObserver o : observers) o.tokenDelivered(s);
        try {
            if (s.sink instanceof SequenceSink q) q.onSampled(t);
            else s.sink.onToken(token, t.logprob());
        } catch (RuntimeException e) {
            end(s, FinishReason.ERROR, "the token sink failed: " + e.getMessage());
            return;
        }
        SamplingParams p = s.params;
        boolean stop = false;
        for (int id : p.stopTokenIds()) stop |= id == token;
        if (stop || !p.ignoreEos() && eosTokenId >= 0 && token == eosTokenId) {
            end(s, FinishReason.STOP, null);
        } else if (s.generated() >= p.maxTokens() || s.options.position() + s.prompt.length + s.generated() >= contextLimit) {
            end(s, FinishReason.LENGTH, null);
        }
    }

    /**
     * Finishes a sequence that is not in flight and releases its state on every stage, unless it asked to keep it and
     * ended cleanly (after a failure the stages may have dropped or half-advanced it).
     */
    private void end(ScheduledSequence s, FinishReason reason, String why) {
        if (s.isFinished()) return;
        boolean keep = s.options.keepState() && reason != FinishReason.ERROR;
        s.stateKept = keep;
        if (!keep && (s.touchedPipeline || s.options.position() > 0)) {
            try {
                pipeline.release(s.id());
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "release of sequence " + s.id() + " failed", e);
            }
        }
        admitted.decrementAndGet();
        for (SchedulerObserver o : observers) o.finished(s, reason, why); // before the client can see the end
        s.finish(reason, why);
    }
}
