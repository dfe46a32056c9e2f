package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.state.KdaState;
import dev.kimimesh.engine.state.MlaCache;
import dev.kimimesh.engine.state.SequenceState;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Compares a sequence's per-layer state with the golden snapshot tensors {@code <prefix>kda.<l>.recurrent_state},
 * {@code <prefix>kda.<l>.conv_state}, {@code <prefix>mla.<l>.latent} and {@code <prefix>mla.<l>.k_rot}, whichever are
 * present.
 */
final class StateCheck {
    private static final Pattern NAME = Pattern.compile("(kda|mla)\\.(\\d+)\\.(recurrent_state|conv_state|latent|k_rot)");

    private StateCheck() {}

    static void compare(GoldenFile g, String prefix, SequenceState st, KimiLinearConfig c, Backend b, CaseTally t) {
        for (String name : g.present()) {
            if (!name.startsWith(prefix)) continue;
            Matcher m = NAME.matcher(name.substring(prefix.length()));
            if (!m.matches()) continue;
            String kind = m.group(1), field = m.group(3);
            int layer = Integer.parseInt(m.group(2));
            String family = prefix + kind + "." + field;
            if (layer < st.from() || layer >= st.to()) {
                t.fail(name + ": layer " + layer + " is not a layer of this model (0.." + (c.numHiddenLayers() - 1) + ")");
                continue;
            }
            LayerKind expected = kind.equals("kda") ? LayerKind.KDA : LayerKind.MLA;
            if (c.layerKind(layer) != expected) {
                t.fail(name + ": layer " + layer + " is " + c.layerKind(layer) + " in config.json");
                continue;
            }
            try {
                switch (field) {
                    case "recurrent_state" -> recurrent(g, name, family, st.kda(layer), c, b, t);
                    case "conv_state" -> conv(g, name, family, st.kda(layer), c, b, t);
                    case "latent" -> cache(g, name, family, st.mla(layer), st.mla(layer).latent(), c.kvLoraRank(), b, t);
                    default -> cache(g, name, family, st.mla(layer), st.mla(layer).kRot(), c.qkRopeHeadDim(), b, t);
                }
            } catch (GoldenException e) {
                t.fail(e.getMessage());
            }
        }
    }

    /** Golden [heads, k_dim, v_dim] against ours [heads * k_dim, v_dim]: the same memory order. */
    private static void recurrent(GoldenFile g, String name, String family, KdaState s, KimiLinearConfig c, Backend b, CaseTally t) {
        int heads = c.kdaNumHeads(), d = c.kdaHeadDim();
        g.requireShape(name, heads, d, d);
        t.relative(family, name, b.download(s.recurrent()), g.floats(name));
    }

    /**
     * Golden [3, P, Kg] (fla: per channel the last Kg pre-conv inputs of q, k, v, oldest first) against ours: per
     * projection [K-1, P], time-major, the last K-1 inputs. Only golden columns Kg-(K-1).. are compared; the oldest
     * drops out of the next convolution.
     */
    private static void conv(GoldenFile g, String name, String family, KdaState s, KimiLinearConfig c, Backend b, CaseTally t) {
        int p = c.kdaProjectionSize(), keep = s.convTails()[0].rows();
        long[] shape = g.shape(name);
        if (shape.length != 3 || shape[0] != s.convTails().length || shape[1] != p || shape[2] < keep) {
            g.requireShape(name, s.convTails().length, p, c.shortConvKernelSize());
        }
        int kg = (int) shape[2];
        float[] golden = g.floats(name);
        int n = s.convTails().length;
        float[] ours = new float[n * keep * p], theirs = new float[n * keep * p];
        for (int w = 0; w < n; w++) {
            float[] tail = b.download(s.convTails()[w]);
            System.arraycopy(tail, 0, ours, w * keep * p, keep * p);
            for (int r = 0; r < keep; r++) {
                for (int ch = 0; ch < p; ch++) {
                    theirs[(w * keep + r) * p + ch] = golden[(w * p + ch) * kg + kg - keep + r];
                }
            }
        }
        t.relative(family, name, ours, theirs);
    }

    /** Golden [n, width] against the first n cached positions. */
    private static void cache(GoldenFile g, String name, String family, MlaCache m, Tensor store, int width, Backend b, CaseTally t) {
        g.requireShape(name, m.length(), width);
        if (m.length() == 0 || width == 0) return;
        t.relative(family, name, b.download(store.rowSlice(0, m.length())), g.floats(name));
    }
}
