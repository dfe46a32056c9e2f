package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.state.KdaState;
import dev.kimimesh.engine.state.MlaCache;
import dev.kimimesh.engine.state.SequenceState;

/**
 * One decoder layer: {@code x += attn(rmsnorm(x)); x += ffn(rmsnorm(x))}; the second add may move into the next
 * layer's input norm.
 */
final class DecoderLayer {
    final int index;
    final LayerKind kind;
    private final Backend b;
    private final float eps;
    private final Weight inputNorm, postAttentionNorm;
    private final KdaAttention kda;
    private final MlaAttention mla;
    private final FeedForward ffn;

    DecoderLayer(KimiLinearConfig c, int index, Weights w, FeedForward ffn) {
        this.index = index;
        this.kind = c.layerKind(index);
        this.b = w.backend();
        this.eps = c.rmsNormEps();
        this.inputNorm = w.get("input_layernorm.weight");
        this.postAttentionNorm = w.get("post_attention_layernorm.weight");
        this.kda = kind == LayerKind.KDA ? new KdaAttention(c, w.under("self_attn.")) : null;
        this.mla = kind == LayerKind.MLA ? new MlaAttention(c, w.under("self_attn.")) : null;
        this.ffn = ffn;
    }

    /**
     * {@code pending}: the previous layer's FFN output, not yet added to x (null: none), added here by the input norm's
     * fused add; {@code ffnOut}: where this layer's FFN output goes (null: a temporary), added to x before returning
     * when {@code addFfn}, else left for the next layer (both only without an observer, which looks at x after each
     * layer).
     */
    void forward(Tensor x, Tensor pending, Tensor ffnOut, boolean addFfn, Segments seg, SequenceState[] states, KdaForm form,
                 ModelOptions.Observer obs) {
        int t = x.rows(), h = x.cols();
        if (obs != null && (pending != null || !addFfn)) throw new IllegalArgumentException("an observer needs each layer's residual added");
        try (Workspace ws = new Workspace(b)) {
            Tensor normed = ws.tensor(t, h);
            Tensor delta = ws.tensor(t, h);
            if (pending != null) b.addRmsNorm(x, pending, inputNorm, eps, normed);
            else b.rmsNorm(x, inputNorm, eps, normed);
            if (kda != null) {
                KdaState[] s = new KdaState[states.length];
                for (int i = 0; i < s.length; i++) s[i] = states[i].kda(index);
                kda.forward(normed, seg, s, form, delta, ws);
            } else {
                MlaCache[] s = new MlaCache[states.length];
                for (int i = 0; i < s.length; i++) s[i] = states[i].mla(index);
                mla.forward(normed, seg, s, delta, ws);
            }
            if (obs != null) {
                b.add(x, delta);
                obs.afterAttention(index, x);
                b.rmsNorm(x, postAttentionNorm, eps, normed);
            } else {
                b.addRmsNorm(x, delta, postAttentionNorm, eps, normed);
            }
            Tensor out = ffnOut != null ? ffnOut : delta;
            ffn.forward(normed, out, ws);
            if (addFfn) {
                b.add(x, out);
                if (obs != null) obs.afterLayer(index, x);
            }
        }
    }
}
