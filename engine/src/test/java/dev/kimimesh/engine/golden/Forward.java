package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.KdaState;
import dev.kimimesh.engine.state.MlaCache;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;

/** Test drivers: one call of tokens through a model (or a chain of layer-range models) and the state as floats. */
final class Forward {
    private Forward() {}

    /** Feeds {@code ids} as one call through the chain (first has the embedding, last the head); all-row logits. */
    static float[] feed(KimiLinearModel[] chain, SequenceState[] states, int... ids) {
        Tensor x = chain[0].embed(ids);
        for (int i = 0; i < chain.length; i++) chain[i].forward(x, new int[] {ids.length}, new SequenceState[] {states[i]});
        KimiLinearModel last = chain[chain.length - 1];
        Tensor l = last.logits(x, ModelRun.allRows(ids.length));
        return last.backend().download(l);
    }

    static float[] feed(KimiLinearModel m, SequenceState st, int... ids) {
        return feed(new KimiLinearModel[] {m}, new SequenceState[] {st}, ids);
    }

    /** Layer l's state flattened: KDA recurrent state then the conv tails, or the MLA latents then k_rot rows. */
    static float[] layerState(SequenceState st, int layer, LayerKind kind, Backend b) {
        if (kind == LayerKind.KDA) {
            KdaState k = st.kda(layer);
            float[] out = b.download(k.recurrent());
            for (Tensor t : k.convTails()) out = concat(out, b.download(t));
            return out;
        }
        MlaCache m = st.mla(layer);
        return concat(b.download(m.latent().rowSlice(0, m.length())), b.download(m.kRot().rowSlice(0, m.length())));
    }

    static float[] concat(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
