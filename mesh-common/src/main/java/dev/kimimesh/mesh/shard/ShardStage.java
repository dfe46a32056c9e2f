package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.SampledToken;
import dev.kimimesh.proto.v1.SampledTokens;
import dev.kimimesh.proto.v1.SequenceChunk;
import dev.kimimesh.proto.v1.SequenceSnapshot;
import dev.kimimesh.proto.v1.ShardStats;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One pipeline stage's engine side: the model's layers [from, to) and the per-sequence states of those layers.
 * It checks a micro-batch completely before touching any state, so a bad one changes nothing. Not thread-safe:
 * the service runs every call on one compute thread.
 */
public final class ShardStage {
    /** What a micro-batch produced: activations for the next stage, or (last stage) sampled tokens. */
    public sealed interface Outcome {
        record Forwarded(MicroBatch next) implements Outcome {}

        record Sampled(SampledTokens tokens) implements Outcome {}
    }

    private final KimiLinearModel model;
    private final KimiLinearConfig config;
    private final Backend backend;
    private final TokenSampler.Factory samplers;
    private final Map<Long, SequenceState> states = new TreeMap<>();
    private final Map<Long, TokenSampler> samplerOf = new HashMap<>();
    private long microBatches, tokens, failed;
    // read by metrics from other threads; refreshed on the compute thread whenever the states change
    private volatile int held;
    private volatile long heldBytes;

    public ShardStage(KimiLinearModel model, TokenSampler.Factory samplers) {
        this.model = model;
        this.config = model.config();
        this.backend = model.backend();
        this.samplers = samplers;
    }

    public KimiLinearModel model() {
        return model;
    }

    public String range() {
        return "[" + model.from() + ", " + model.to() + ")";
    }

    /** Runs one micro-batch through this stage's layers; throws StatusRuntimeException for a bad micro-batch. */
    public Outcome run(MicroBatch mb) {
        try {
            Outcome out = runChecked(mb);
            microBatches++;
            return out;
        } catch (RuntimeException e) {
            failed++;
            throw e;
        } finally {
            account();
        }
    }

    private Outcome runChecked(MicroBatch mb) {
        String where = "micro-batch " + mb.getMicroBatchId() + " on shard " + range();
        List<SequenceChunk> chunks = mb.getSequencesList();
        if (chunks.isEmpty()) throw invalid(where + " has no sequences");
        int n = chunks.size(), total = 0;
        int[] lengths = new int[n];
        SequenceState[] st = new SequenceState[n];
        TokenSampler[] newSamplers = new TokenSampler[n];
        Set<Long> seen = new HashSet<>();
        for (int i = 0; i < n; i++) {
            SequenceChunk c = chunks.get(i);
            long id = c.getSequenceId();
            if (!seen.add(id)) throw invalid(where + ": sequence " + id + " appears twice");
            if (c.getNumTokens() < 1) throw invalid(where + ": sequence " + id + " has num_tokens " + c.getNumTokens() + " (>= 1 required)");
            if (c.getPosition() < 0) throw invalid(where + ": sequence " + id + " has a negative position " + c.getPosition());
            if ((long) c.getPosition() + c.getNumTokens() > config.maxPositionEmbeddings()) {
                throw invalid(where + ": sequence " + id + " would pass the context length " + config.maxPositionEmbeddings());
            }
            if (model.hasEmbedding() && c.getTokenIdsCount() != c.getNumTokens()) {
                throw invalid(where + ": sequence " + id + " has " + c.getTokenIdsCount() + " token_ids for num_tokens "
                        + c.getNumTokens() + " (the first stage embeds token ids)");
            }
            if (c.getPosition() > 0) {
                SequenceState s = states.get(id);
                if (s == null) {
                    throw precondition(where + ": sequence " + id + " is unknown here but arrives at position " + c.getPosition()
                            + " (start it at position 0 or restore its snapshot)");
                }
                if (s.position() != c.getPosition()) {
                    throw precondition(where + ": sequence " + id + " is at position " + s.position()
                            + " here, the micro-batch says " + c.getPosition());
                }
                st[i] = s;
            }
            if (c.getSample()) {
                // every stage checks the parameters, so a bad one fails before any stage has advanced a state
                TokenSampler fresh;
                try {
                    fresh = samplers.create(c.getSampling(), config.vocabSize());
                } catch (IllegalArgumentException e) {
                    throw invalid(where + ": sequence " + id + ": " + e.getMessage());
                }
                if (model.hasHead() && (c.getPosition() == 0 || c.getNewSampler() || !samplerOf.containsKey(id))) newSamplers[i] = fresh;
            }
            lengths[i] = c.getNumTokens();
            total += c.getNumTokens();
        }
        Tensor hidden = input(mb, chunks, total, where);
        // Checked: from here on the micro-batch is applied.
        for (int i = 0; i < n; i++) {
            long id = chunks.get(i).getSequenceId();
            if (st[i] == null) {
                SequenceState old = states.remove(id);
                if (old != null) old.release();
                samplerOf.remove(id);
                st[i] = model.newState();
                states.put(id, st[i]);
            }
            if (newSamplers[i] != null) samplerOf.put(id, newSamplers[i]);
        }
        try {
            model.forward(hidden, lengths, st);
            tokens += total;
            return model.hasHead() ? sample(hidden, chunks) : forwarded(mb, chunks, hidden, total);
        } catch (RuntimeException e) {
            // layers before the failure have advanced these states: they cannot be continued
            List<Long> dropped = new ArrayList<>();
            for (SequenceChunk c : chunks) {
                dropped.add(c.getSequenceId());
                release(c.getSequenceId());
            }
            Status s = e instanceof StatusRuntimeException sre ? sre.getStatus() : Status.INTERNAL.withCause(e);
            throw new DroppedSequences(s.withDescription(where + " failed: "
                    + (s.getDescription() != null ? s.getDescription() : e.toString()) + "; sequences " + dropped + " "
                    + DroppedSequences.RELEASED), dropped);
        } finally {
            backend.release(hidden);
        }
    }

    private Tensor input(MicroBatch mb, List<SequenceChunk> chunks, int total, String where) {
        if (model.hasEmbedding()) {
            if (mb.hasHidden()) throw invalid(where + ": the first stage takes token_ids, not hidden states");
            int[] ids = new int[total];
            int o = 0;
            for (SequenceChunk c : chunks) {
                for (int t : c.getTokenIdsList()) {
                    if (t < 0 || t >= config.vocabSize()) {
                        throw invalid(where + ": sequence " + c.getSequenceId() + " has token id " + t
                                + " outside the vocabulary 0.." + (config.vocabSize() - 1));
                    }
                    ids[o++] = t;
                }
            }
            return model.embed(ids);
        }
        if (!mb.hasHidden()) throw invalid(where + ": hidden states are missing (this stage starts at layer " + model.from() + ")");
        float[] h;
        try {
            h = RawTensors.decode(mb.getHidden(), total, config.hiddenSize(), where + ": hidden");
        } catch (IllegalArgumentException e) {
            throw invalid(e.getMessage());
        }
        return backend.upload(h, total, config.hiddenSize());
    }

    private Outcome forwarded(MicroBatch mb, List<SequenceChunk> chunks, Tensor hidden, int total) {
        MicroBatch.Builder next = MicroBatch.newBuilder().setMicroBatchId(mb.getMicroBatchId())
                .setActivationDtype(mb.getActivationDtype());
        for (SequenceChunk c : chunks) next.addSequences(c.toBuilder().clearTokenIds());
        DType dt = mb.getActivationDtype() == DType.DTYPE_UNSPECIFIED ? DType.DTYPE_F32 : mb.getActivationDtype();
        next.setHidden(RawTensors.encode(backend.download(hidden), total, config.hiddenSize(), dt));
        return new Outcome.Forwarded(next.build());
    }

    private Outcome sample(Tensor hidden, List<SequenceChunk> chunks) {
        List<Integer> rows = new ArrayList<>();
        int o = 0;
        for (SequenceChunk c : chunks) {
            o += c.getNumTokens();
            if (c.getSample()) rows.add(o - 1);
        }
        SampledTokens.Builder out = SampledTokens.newBuilder();
        if (rows.isEmpty()) return new Outcome.Sampled(out.build());
        int vocab = config.vocabSize();
        List<SequenceChunk> sampled = new ArrayList<>(rows.size());
        boolean topWanted = false;
        for (SequenceChunk c : chunks) {
            if (!c.getSample()) continue;
            sampled.add(c);
            topWanted |= c.getSampling().getTopLogprobs() > 0;
        }
        TokenSampler[] samplers = new TokenSampler[sampled.size()];
        for (int i = 0; i < samplers.length; i++) samplers[i] = samplerOf.get(sampled.get(i).getSequenceId());
        Tensor logits = model.logits(hidden, rows.stream().mapToInt(Integer::intValue).toArray());
        LastStageSampling.Draw draw;
        try {
            // on the device when the backend samples, unless a row wants top logprobs (those need the whole row)
            draw = LastStageSampling.draw(backend, logits, samplers, topWanted, vocab);
        } finally {
            backend.release(logits);
        }
        for (int r = 0; r < samplers.length; r++) {
            SequenceChunk c = sampled.get(r);
            SampledToken.Builder t = SampledToken.newBuilder().setSequenceId(c.getSequenceId()).setTokenId(draw.tokens()[r])
                    .setLogprob(draw.logprobs()[r]);
            int top = Math.min(c.getSampling().getTopLogprobs(), vocab);
            if (top > 0) Logprobs.top(draw.logits(), r * vocab, vocab, top, t);
            out.addTokens(t);
        }
        return new Outcome.Sampled(out.build());
    }

    /** Frees a sequence's state; true when it had one here. */
    public boolean release(long id) {
        samplerOf.remove(id);
        SequenceState s = states.remove(id);
        if (s == null) return false;
        s.release();
        account();
        return true;
    }

    /** Sequences whose state this stage holds; safe to read from any thread. */
    public int sequencesHeld() {
        return held;
    }

    /** Bytes of the states this stage holds; safe to read from any thread. */
    public long stateBytes() {
        return heldBytes;
    }

    private void account() {
        long bytes = 0;
        for (SequenceState s : states.values()) bytes += s.byteSize();
        heldBytes = bytes;
        held = states.size();
    }

    public SequenceSnapshot snapshot(long id) {
        SequenceState s = states.get(id);
        if (s == null) throw Status.NOT_FOUND.withDescription("sequence " + id + " has no state on shard " + range()).asRuntimeException();
        return SequenceSnapshot.newBuilder().setSequenceId(id).setLayerFrom(s.from()).setLayerTo(s.to())
                .setPosition(s.position()).setState(com.google.protobuf.ByteString.copyFrom(s.serialize(backend))).build();
    }

    /** Installs a snapshot of the same layer range; the sequence's sampler starts afresh at its next sample. */
    public int restore(SequenceSnapshot snap) {
        if (snap.getLayerFrom() != model.from() || snap.getLayerTo() != model.to()) {
            throw invalid("snapshot of sequence " + snap.getSequenceId() + " covers layers [" + snap.getLayerFrom() + ", "
                    + snap.getLayerTo() + "), this shard serves " + range());
        }
        SequenceState s;
        try {
            s = SequenceState.deserialize(backend, config, snap.getState().toByteArray());
        } catch (IllegalArgumentException e) {
            throw invalid("snapshot of sequence " + snap.getSequenceId() + ": " + e.getMessage());
        }
        if (s.from() != model.from() || s.to() != model.to()) {
            s.release();
            throw invalid("snapshot state of sequence " + snap.getSequenceId() + " covers [" + s.from() + ", " + s.to()
                    + "), this shard serves " + range());
        }
        release(snap.getSequenceId());
        states.put(snap.getSequenceId(), s);
        account();
        return s.position();
    }

    public ShardStats stats() {
        long bytes = 0;
        for (SequenceState s : states.values()) bytes += s.byteSize();
        return ShardStats.newBuilder().setLayerFrom(model.from()).setLayerTo(model.to()).setSequencesHeld(states.size())
                .setStateBytes(bytes).setMicroBatchesServed(microBatches).setTokensServed(tokens)
                .setMicroBatchesFailed(failed).addAllSequenceIds(states.keySet()).build();
    }


    private static StatusRuntimeException invalid(String msg) {
        return Status.INVALID_ARGUMENT.withDescription(msg).asRuntimeException();
    }

    private static StatusRuntimeException precondition(String msg) {
        return Status.FAILED_PRECONDITION.withDescription(msg).asRuntimeException();
    }
}
