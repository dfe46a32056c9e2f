package dev.kimimesh.gateway.embedded;

import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.generate.Sampler;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;
import dev.kimimesh.mesh.shard.EngineSampler;
import dev.kimimesh.mesh.shard.LastStageSampling;
import dev.kimimesh.mesh.shard.Logprobs;
import dev.kimimesh.mesh.shard.TokenSampler;
import dev.kimimesh.gateway.schedule.BatchEntry;
import dev.kimimesh.gateway.schedule.MicroBatch;
import dev.kimimesh.gateway.schedule.SampledToken;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Layers [from, to) of the model in this process, on their own thread, holding the per-sequence state of those
 * layers; the first stage embeds, the last one computes logits and samples. Work for a stage runs in arrival order,
 * so a release always follows the sequence's last forward.
 */
final class LocalStage implements AutoCloseable {
    private final KimiLinearModel model;
    private final ExecutorService thread;
    private final Map<Long, SequenceState> states = new HashMap<>();
    private final Map<Long, TokenSampler> samplers = new HashMap<>();

    LocalStage(KimiLinearModel model, int index) {
        this.model = model;
        this.thread = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name("kimimesh-stage-" + index).daemon().unstarted(r));
    }

    KimiLinearModel model() {
        return model;
    }

    ExecutorService thread() {
        return thread;
    }

    /** Sequences whose state this stage holds. */
    int sequences() {
        return states.size();
    }

    /** Embeds the micro-batch's tokens (first stage only). */
    Tensor embed(MicroBatch batch) {
        return model.embed(batch.concatenatedTokens());
    }

    /** Runs this stage's layers in place on the micro-batch's hidden states. */
    void forward(MicroBatch batch, Tensor hidden) {
        List<BatchEntry> entries = batch.entries();
        SequenceState[] st = new SequenceState[entries.size()];
        for (int i = 0; i < st.length; i++) {
            BatchEntry e = entries.get(i);
            SequenceState s = states.get(e.sequenceId());
            if (s == null) {
                if (e.position() != 0) {
                    throw new IllegalStateException("stage [" + model.from() + ", " + model.to() + ") holds no state for sequence "
                            + e.sequenceId() + " at position " + e.position());
                }
                s = model.newState();
                states.put(e.sequenceId(), s);
            } else if (s.position() != e.position()) {
                throw new IllegalStateException("sequence " + e.sequenceId() + " is at position " + s.position()
                        + " on stage [" + model.from() + ", " + model.to() + "), the micro-batch says " + e.position());
            }
            st[i] = s;
        }
        model.forward(hidden, batch.lengths(), st);
    }

    /** Logits of the sampled rows and one token for each (last stage only). */
    List<SampledToken> sample(MicroBatch batch, Tensor hidden) {
        List<BatchEntry> entries = batch.entries();
        List<Integer> rows = new ArrayList<>();
        List<BatchEntry> sampled = new ArrayList<>();
        int row = 0;
        for (BatchEntry e : entries) {
            row += e.tokens().length;
            if (e.sample()) {
                rows.add(row - 1);
                sampled.add(e);
            }
        }
        List<SampledToken> out = new ArrayList<>(sampled.size());
        if (sampled.isEmpty()) return out;
        int vocab = model.config().vocabSize();
        TokenSampler[] draws = new TokenSampler[sampled.size()];
        boolean topWanted = false;
        for (int j = 0; j < draws.length; j++) {
            BatchEntry e = sampled.get(j);
            // a request's first sample starts a fresh sampler (a session's next turn continues the state, not the sampler)
            TokenSampler sampler = e.newSampler() ? null : samplers.get(e.sequenceId());
            if (sampler == null) sampler = new EngineSampler(new Sampler(e.params()));
            samplers.put(e.sequenceId(), sampler);
            draws[j] = sampler;
            topWanted |= e.topLogprobs() > 0;
        }
        Tensor logits = model.logits(hidden, rows.stream().mapToInt(Integer::intValue).toArray());
        LastStageSampling.Draw draw;
        try {
            // on the device when the backend samples, unless a row wants top logprobs (those need the whole row)
            draw = LastStageSampling.draw(model.backend(), logits, draws, topWanted, vocab);
        } finally {
            model.backend().release(logits);
        }
        for (int j = 0; j < draws.length; j++) {
            BatchEntry e = sampled.get(j);
            int n = Math.min(e.topLogprobs(), vocab);
            int[] topIds = new int[n];
            float[] topLogprobs = new float[n];
            if (n > 0) Logprobs.top(draw.logits(), j * vocab, vocab, topIds, topLogprobs);
            out.add(new SampledToken(e.sequenceId(), draw.tokens()[j], draw.logprobs()[j], topIds, topLogprobs));
        }
        return out;
    }

    /** Frees the sequence's state and sampler (on this stage's thread). */
    void release(long sequenceId) {
        SequenceState s = states.remove(sequenceId);
        if (s != null) s.release();
        samplers.remove(sequenceId);
    }

    @Override
    public void close() {
        thread.submit(() -> {
            states.values().forEach(SequenceState::release);
            states.clear();
            samplers.clear();
        });
        thread.shutdown();
    }
}
