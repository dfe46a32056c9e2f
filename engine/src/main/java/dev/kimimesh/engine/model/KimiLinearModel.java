package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.CheckpointLayout;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.state.SequenceState;

/**
 * A Kimi Linear model, or the layer range [from, to) of one, on a backend. The embedding is loaded when the range
 * starts at layer 0 and the final norm and lm_head when it ends at the last layer, so a pipeline shard holds only
 * its part. Running [0, k) then [k, n) on the same hidden states equals running [0, n).
 */
public final class KimiLinearModel {
    /** {@code -Dkimimesh.fusedResidual=false}: each layer adds its FFN output itself (a separate add), for comparison. */
    private static final boolean FUSED_RESIDUAL = !"false".equals(System.getProperty("kimimesh.fusedResidual", "true"));

    private final KimiLinearConfig config;
    private final Backend backend;
    private final ModelOptions options;
    private final int from, to;
    private final DecoderLayer[] layers;
    private final Weight embedding, finalNorm, lmHead;

    private KimiLinearModel(Checkpoint ckpt, Backend backend, ModelOptions options, int from, int to) {
        this.config = ckpt.config();
        this.backend = backend;
        this.options = options;
        this.from = from;
        this.to = to;
        KimiLinearConfig c = config;
        if (from < 0 || to > c.numHiddenLayers() || from >= to) {
            throw new IllegalArgumentException("layer range [" + from + ", " + to + ") is not within 0.." + c.numHiddenLayers());
        }
        Weights root = new Weights(ckpt, backend, "");
        ExpertDispatch experts = options.experts() != null ? options.experts()
                : new LocalExperts(ckpt, backend, from, to, e -> true);
        RouterSpec spec = c.numExperts() > 0 ? RouterSpec.of(c, options.routerWeights()) : null;
        ModelOptions.Observer obs = options.observer();
        FeedForward.Moe.RoutingListener listener = obs == null ? null : obs::routed;
        layers = new DecoderLayer[to - from];
        for (int l = from; l < to; l++) {
            Weights lw = root.under(CheckpointLayout.layer(l));
            FeedForward ffn = c.isMoeLayer(l)
                    ? new FeedForward.Moe(lw.under("block_sparse_moe."), l, spec, experts, c.numSharedExperts() > 0, listener)
                    : FeedForward.Dense.load(lw.under("mlp."));
            layers[l - from] = new DecoderLayer(c, l, lw, ffn);
        }
        embedding = from == 0 || c.tieWordEmbeddings() && to == c.numHiddenLayers()
                ? root.get("model.embed_tokens.weight") : null;
        finalNorm = to == c.numHiddenLayers() ? root.get("model.norm.weight") : null;
        lmHead = to == c.numHiddenLayers()
                ? (c.tieWordEmbeddings() ? embedding : root.get("lm_head.weight")) : null;
    }

    /** The whole model. */
    public static KimiLinearModel load(Checkpoint ckpt, Backend backend, ModelOptions options) {
        return new KimiLinearModel(ckpt, backend, options, 0, ckpt.config().numHiddenLayers());
    }

    /** Layers [from, to) only, as a pipeline shard holds them. */
    public static KimiLinearModel loadRange(Checkpoint ckpt, Backend backend, ModelOptions options, int from, int to) {
        return new KimiLinearModel(ckpt, backend, options, from, to);
    }

    public KimiLinearConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public ModelOptions options() {
        return options;
    }

    public int from() {
        return from;
    }

    public int to() {
        return to;
    }

    public boolean hasEmbedding() {
        return from == 0;
    }

    public boolean hasHead() {
        return to == config.numHiddenLayers();
    }

    /** A fresh per-sequence state for this model's layers. */
    public SequenceState newState() {
        return SequenceState.fresh(backend, config, from, to);
    }

    /** Hidden states [ids.length, hidden] of the token embedding. */
    public Tensor embed(int[] ids) {
        if (embedding == null) throw new IllegalStateException("this shard [" + from + ", " + to + ") has no embedding");
        for (int id : ids) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside the model's vocabulary 0.." + (config.vocabSize() - 1));
            }
        }
        Tensor x = backend.scratch(ids.length, config.hiddenSize()); // every row is an embedding row
        backend.embed(embedding, ids, x);
        return x;
    }

    /**
     * Runs this model's layers on {@code hidden} [T, hidden] in place. The rows are the concatenated new tokens of
     * the sequences whose states are given ({@code lengths[i]} rows for {@code states[i]}); each state continues at
     * its own position and is advanced by its length.
     */
    public void forward(Tensor hidden, int[] lengths, SequenceState[] states) {
        forwardLayers(hidden, lengths, states, from, to);
    }

    /** Runs layers [a, b) (within this model's range); states advance when b is the end of their range. */
    public void forwardLayers(Tensor hidden, int[] lengths, SequenceState[] states, int a, int b) {
        if (a < from || b > to || a > b) throw new IllegalArgumentException("layers [" + a + ", " + b + ") outside [" + from + ", " + to + ")");
        if (lengths.length != states.length) throw new IllegalArgumentException("one state per segment");
        int[] positions = new int[states.length];
        int total = 0;
        for (int i = 0; i < states.length; i++) {
            positions[i] = states[i].position();
            total += lengths[i];
            if (states[i].from() > a || states[i].to() < b) {
                throw new IllegalArgumentException("sequence state covers [" + states[i].from() + ", " + states[i].to() + ")");
            }
        }
        if (total != hidden.rows()) throw new IllegalArgumentException("segments cover " + total + " rows, hidden has " + hidden.rows());
        Segments seg = new Segments(lengths, positions);
        // each layer's FFN output is added to the residual by the next layer's input norm (Backend.addRmsNorm: one
        // launch instead of an add and a norm on a device); the last layer of the range adds its own
        boolean fuse = FUSED_RESIDUAL && options.observer() == null && b - a > 1;
        Tensor ffnOut = fuse ? backend.scratch(hidden.rows(), hidden.cols()) : null;
        try {
            Tensor pending = null;
            for (int l = a; l < b; l++) {
                boolean last = l == b - 1;
                layers[l - from].forward(hidden, pending, ffnOut, !fuse || last, seg, states, options.kdaForm(), options.observer());
                pending = fuse && !last ? ffnOut : null;
            }
        } finally {
            if (ffnOut != null) backend.release(ffnOut);
        }
        for (int i = 0; i < states.length; i++) if (b == states[i].to()) states[i].advance(lengths[i]);
    }

    /** model.norm then lm_head for the given rows of the final hidden states: [rows.length, vocab]. */
    public Tensor logits(Tensor hidden, int[] rows) {
        Tensor normed = finalNorm(hidden, rows);
        Tensor logits = backend.scratch(rows.length, config.vocabSize());
        backend.matmul(normed, lmHead, logits);
        backend.release(normed);
        return logits;
    }

    /** model.norm of the given rows (the input of lm_head). */
    public Tensor finalNorm(Tensor hidden, int[] rows) {
        if (lmHead == null) throw new IllegalStateException("this shard [" + from + ", " + to + ") has no lm_head");
        Tensor sel = backend.scratch(rows.length, config.hiddenSize());
        boolean all = rows.length == hidden.rows();
        for (int i = 0; all && i < rows.length; i++) all = rows[i] == i;
        if (all) {
            // every row, in order (a decode step): the norm reads them in place, no gather
            backend.rmsNorm(hidden, finalNorm, config.rmsNormEps(), sel);
            return sel;
        }
        backend.gatherRows(hidden, rows, sel);
        backend.rmsNorm(sel, finalNorm, config.rmsNormEps(), sel);
        return sel;
    }
}
