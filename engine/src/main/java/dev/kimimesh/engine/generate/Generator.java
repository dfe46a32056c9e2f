package dev.kimimesh.engine.generate;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The serving loop of one process over a whole model: continuous batching of many sequences. Each {@link #step()}
 * runs one micro-batch holding the next token of every decoding sequence plus prompt chunks of prefilling ones (up to
 * {@link Options#maxPrefillTokens} prompt tokens per step), with one embed, one forward and one logits call, then
 * samples and streams a token for every sequence whose prompt is complete. A backend that samples on the device
 * ({@link Backend#sample}) returns only the ids (and logprobs); otherwise the logits rows come to the host sampler.
 * Sequences join between steps and can be cancelled at any time; a finished or cancelled sequence frees its state at
 * once.
 *
 * <p>{@link #submit} and {@link Sequence#cancel()} may be called from any thread; steps run one at a time.
 */
public final class Generator implements AutoCloseable {
    /**
     * {@code -Dkimimesh.sampler.host=true} (read when a generator is made): always download the logits and sample on
     * the host, even where the backend can sample on the device (for comparisons; the tokens are the same).
     */
    public static final String HOST_SAMPLING_PROPERTY = "kimimesh.sampler.host";

    /**
     * @param maxPrefillTokens prompt tokens per step, summed over sequences (chunked prefill)
     * @param maxSequences     sequences running at once; more wait in the queue
     * @param contextLimit     prompt + generated tokens per sequence; 0 = the config's max_position_embeddings
     */
    public record Options(int maxPrefillTokens, int maxSequences, int contextLimit) {
        public Options {
            if (maxPrefillTokens <= 0) throw new IllegalArgumentException("maxPrefillTokens must be >= 1, got " + maxPrefillTokens);
            if (maxSequences <= 0) throw new IllegalArgumentException("maxSequences must be >= 1, got " + maxSequences);
            if (contextLimit < 0) throw new IllegalArgumentException("contextLimit must be >= 0, got " + contextLimit);
        }

        public static Options defaults() {
            return new Options(512, 256, 0);
        }

        public Options withMaxPrefillTokens(int n) {
            return new Options(n, maxSequences, contextLimit);
        }

        public Options withMaxSequences(int n) {
            return new Options(maxPrefillTokens, n, contextLimit);
        }

        public Options withContextLimit(int n) {
            return new Options(maxPrefillTokens, maxSequences, n);
        }
    }

    /** Throughput so far; a step that feeds any prompt token counts as prefill time, the others as decode time. */
    public record Stats(long prefillTokens, long prefillNanos, long decodeTokens, long decodeNanos, long steps) {
        public double prefillTokensPerSecond() {
            return prefillNanos == 0 ? 0 : prefillTokens * 1e9 / prefillNanos;
        }

        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeTokens * 1e9 / decodeNanos;
        }
    }

    private final KimiLinearModel model;
    private final Backend backend;
    private final KimiLinearConfig config;
    private final Options options;
    private final int contextLimit;
    private final boolean hostSampling = Boolean.getBoolean(HOST_SAMPLING_PROPERTY);
    private final Queue<Sequence> waiting = new ConcurrentLinkedQueue<>();
    private final List<Sequence> running = new ArrayList<>();
    private final ReentrantLock stepLock = new ReentrantLock();
    private final AtomicLong ids = new AtomicLong();
    private long prefillTokens, prefillNanos, decodeTokens, decodeNanos, steps;
    /** Pure decode steps replayed from a recording (a CUDA graph) where the backend records them. */
    private final DecodeGraphs graphs;

    public Generator(KimiLinearModel model, Options options) {
        if (!model.hasEmbedding() || !model.hasHead()) {
            throw new IllegalArgumentException("the generator needs the whole model; this one holds layers ["
                    + model.from() + ", " + model.to() + ")");
        }
        this.model = model;
        this.backend = model.backend();
        this.config = model.config();
        this.options = options;
        long limit = options.contextLimit() > 0 ? options.contextLimit() : config.maxPositionEmbeddings();
        this.contextLimit = (int) Math.min(Integer.MAX_VALUE, limit);
        this.graphs = new DecodeGraphs(model);
    }

    public Generator(KimiLinearModel model) {
        this(model, Options.defaults());
    }

    public KimiLinearModel model() {
        return model;
    }

    /** Prompt + generated tokens allowed per sequence. */
    public int contextLimit() {
        return contextLimit;
    }

    /**
     * Queues a sequence; its tokens go to {@code sink} from the thread that runs {@link #step()}.
     *
     * @throws IllegalArgumentException for an empty prompt, one that leaves no room in the context, ids outside the
     *                                  vocabulary, or invalid sampling parameters
     */
    public Sequence submit(int[] prompt, SamplingParams params, TokenSink sink) {
        validatePrompt(prompt);
        params.validate(config.vocabSize());
        if (sink == null) throw new IllegalArgumentException("a token sink is required");
        Sequence s = new Sequence(ids.incrementAndGet(), prompt.clone(), params, sink, this);
        waiting.add(s);
        return s;
    }

    private void validatePrompt(int[] prompt) {
        if (prompt == null || prompt.length == 0) throw new IllegalArgumentException("the prompt is empty: give at least one token id");
        if (prompt.length >= contextLimit) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens; the context holds " + contextLimit
                    + ", which leaves no room to generate");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("prompt token " + i + " has id " + prompt[i]
                        + ", outside the vocabulary 0.." + (config.vocabSize() - 1));
            }
        }
    }

    /** Sequences admitted and not finished. */
    public int running() {
        stepLock.lock();
        try {
            return running.size();
        } finally {
            stepLock.unlock();
        }
    }

    /** Sequences submitted and not yet admitted. */
    public int waiting() {
        return waiting.size();
    }

    public boolean idle() {
        return waiting.isEmpty() && running() == 0;
    }

    public Stats stats() {
        stepLock.lock();
        try {
            return new Stats(prefillTokens, prefillNanos, decodeTokens, decodeNanos, steps);
        } finally {
            stepLock.unlock();
        }
    }

    /**
     * Runs one micro-batch. Returns false when there was nothing to do. A failure of the model ends the sequences of
     * this micro-batch with ERROR and no others; the generator stays usable.
     */
    public boolean step() {
        stepLock.lock();
        try {
            admit();
            reap();
            if (running.isEmpty()) return false;
            runBatch();
            return true;
        } finally {
            stepLock.unlock();
        }
    }

    /** Steps until every submitted sequence has finished. */
    public void runUntilIdle() {
        while (step() || !waiting.isEmpty()) {
            // each step makes progress on at least one sequence
        }
    }

    /**
     * Generates for several prompts together (one batch) and blocks until all finish; returns the generated ids of
     * each, in order (a stop token included).
     */
    public List<int[]> generate(List<int[]> prompts, SamplingParams params) {
        for (int[] p : prompts) validatePrompt(p);
        params.validate(config.vocabSize());
        List<Sequence> seqs = new ArrayList<>();
        List<TokenCollector> outs = new ArrayList<>();
        for (int[] p : prompts) {
            TokenCollector c = new TokenCollector();
            outs.add(c);
            seqs.add(submit(p, params, c));
        }
        while (!seqs.stream().allMatch(Sequence::isFinished)) step();
        List<int[]> result = new ArrayList<>();
        for (int i = 0; i < seqs.size(); i++) {
            Sequence s = seqs.get(i);
            if (s.finishReason() == FinishReason.ERROR) {
                throw new IllegalStateException("generation failed for prompt " + i + ": " + s.failure(), s.failure());
            }
            result.add(outs.get(i).tokens());
        }
        return result;
    }

    /** Frees every sequence's state (CANCELLED). */
    @Override
    public void close() {
        stepLock.lock();
        try {
            for (Sequence s; (s = waiting.poll()) != null; ) s.finish(FinishReason.CANCELLED, null);
            for (Sequence s : running) s.finish(FinishReason.CANCELLED, null);
            running.clear();
            graphs.close();
        } finally {
            stepLock.unlock();
        }
    }

    /** Called by {@link Sequence#cancel()}: frees at once unless a step is running (then at its end). */
    void reapCancelled() {
        // Inside a step (a sink cancelling), the step reaps at its end.
        if (stepLock.isHeldByCurrentThread()) return;
        if (stepLock.tryLock()) {
            try {
                waiting.removeIf(s -> {
                    if (!s.cancelRequested()) return false;
                    s.finish(FinishReason.CANCELLED, null);
                    return true;
                });
                reap();
            } finally {
                stepLock.unlock();
            }
        }
    }

    private void admit() {
        while (running.size() < options.maxSequences()) {
            Sequence s = waiting.poll();
            if (s == null) break;
            if (s.cancelRequested()) {
                s.finish(FinishReason.CANCELLED, null);
                continue;
            }
            s.state = model.newState();
            running.add(s);
        }
    }

    private void reap() {
        for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.cancelRequested() && !s.isFinished()) s.finish(FinishReason.CANCELLED, null);
            if (s.isFinished()) it.remove();
        }
    }

    private void runBatch() {
        long t0 = System.nanoTime();
        int n = running.size();
        // Decoding sequences first (one token each), then prompt chunks within the prefill budget.
        Sequence[] batch = new Sequence[n];
        int[] lengths = new int[n];
        int m = 0, tokens = 0, budget = options.maxPrefillTokens();
        for (Sequence s : running) {
            if (s.decoding()) {
                batch[m] = s;
                lengths[m++] = 1;
                tokens++;
            }
        }
        int decodeRows = m;
        for (Sequence s : running) {
            if (!s.decoding() && budget > 0) {
                int len = Math.min(budget, s.prompt.length - s.prefilled);
                batch[m] = s;
                lengths[m++] = len;
                tokens += len;
                budget -= len;
            }
        }
        int[] ids = new int[tokens];
        SequenceState[] states = new SequenceState[m];
        int[] sampleRows = new int[m];
        Sequence[] sampled = new Sequence[m];
        int rows = 0, samples = 0;
        for (int i = 0; i < m; i++) {
            Sequence s = batch[i];
            states[i] = s.state;
            if (i < decodeRows) {
                ids[rows] = s.nextToken;
            } else {
                System.arraycopy(s.prompt, s.prefilled, ids, rows, lengths[i]);
            }
            rows += lengths[i];
            if (i < decodeRows || s.prefilled + lengths[i] == s.prompt.length) {
                sampleRows[samples] = rows - 1;
                sampled[samples++] = s;
            }
        }
        double[] uniforms = new double[samples];
        for (int j = 0; j < samples; j++) uniforms[j] = sampled[j].sampler.nextUniform();
        StepOutput out;
        try {
            out = forward(ids, Arrays.copyOf(lengths, m), states, Arrays.copyOf(sampleRows, samples), sampled, uniforms);
        } catch (RuntimeException e) {
            for (int i = 0; i < m; i++) batch[i].finish(FinishReason.ERROR, e);
            reap();
            return;
        }
        for (int i = decodeRows; i < m; i++) batch[i].prefilled += lengths[i];
        int vocab = config.vocabSize();
        for (int j = 0; j < samples; j++) deliver(sampled[j], out, j, vocab, uniforms[j]);
        reap();

        steps++;
        long dt = System.nanoTime() - t0;
        if (decodeRows < m) {
            prefillTokens += tokens - decodeRows;
            prefillNanos += dt;
        } else {
            decodeTokens += decodeRows;
            decodeNanos += dt;
        }
    }

    /** A step's result: the tokens the backend sampled, or else the logits of the sampled rows (row-major). */
    private record StepOutput(SampledTokens sampled, float[] logits) {}

    /**
     * One embed + forward + logits over the micro-batch, then the backend samples the rows when it can (only ids and
     * logprobs come back), else the logits are downloaded for the host sampler.
     */
    private StepOutput forward(int[] ids, int[] lengths, SequenceState[] states, int[] sampleRows, Sequence[] sampled,
                               double[] uniforms) {
        RowSampling[] rows = null;
        if (!hostSampling && sampleRows.length > 0) {
            rows = new RowSampling[sampleRows.length];
            for (int j = 0; j < rows.length; j++) rows[j] = sampled[j].sampler.rowSampling(uniforms[j]);
            // one token per sequence, every row sampled: a recorded decode step, replayed
            if (ids.length == states.length && sampleRows.length == states.length) {
                Optional<SampledTokens> replayed = graphs.step(ids, states, rows);
                if (replayed.isPresent()) return new StepOutput(replayed.get(), null);
            }
        }
        Tensor hidden = model.embed(ids);
        try {
            model.forward(hidden, lengths, states);
            if (sampleRows.length == 0) return new StepOutput(null, new float[0]);
            Tensor logits = model.logits(hidden, sampleRows);
            try {
                if (rows != null) {
                    Optional<SampledTokens> onDevice = backend.sample(logits, rows);
                    if (onDevice.isPresent()) return new StepOutput(onDevice.get(), null);
                }
                return new StepOutput(null, backend.download(logits));
            } finally {
                backend.release(logits);
            }
        } finally {
            backend.release(hidden);
        }
    }

    private void deliver(Sequence s, StepOutput out, int j, int vocab, double uniform) {
        if (s.cancelRequested()) return; // reaped below, without a token
        try {
            int token = out.sampled() != null
                    ? s.sampler.accept(out.sampled().tokens()[j], out.sampled().logprobs()[j], vocab)
                    : s.sampler.sample(out.logits(), j * vocab, vocab, uniform);
            s.countToken();
            s.sink.onToken(token, s.sampler.lastLogprob());
            SamplingParams p = s.sampler.params();
            if (p.isStop(token) || !p.ignoreEos() && token == config.eosTokenId() && config.eosTokenId() >= 0) {
                s.finish(FinishReason.STOP, null);
            } else if (s.generated() >= p.maxTokens() || s.prompt.length + s.generated() >= contextLimit) {
                s.finish(FinishReason.LENGTH, null);
            } else {
                s.nextToken = token;
            }
        } catch (RuntimeException e) {
            s.finish(FinishReason.ERROR, e);
        }
    }

    /** Collects a blocking call's tokens. */
    private static final class TokenCollector implements TokenSink {
        private int[] tokens = new int[16];
        private int n;

        @Override
        public void onToken(int id, float logprob) {
            if (n == tokens.length) tokens = Arrays.copyOf(tokens, 2 * n);
            tokens[n++] = id;
        }

        @Override
        public void onFinish(FinishReason reason) {}

        int[] tokens() {
            return Arrays.copyOf(tokens, n);
        }
    }
}
