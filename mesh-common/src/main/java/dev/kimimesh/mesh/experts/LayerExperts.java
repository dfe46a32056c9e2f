package dev.kimimesh.mesh.experts;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.model.ExpertDispatch;
import dev.kimimesh.engine.model.LocalExperts;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/** Local experts chosen per layer (LocalExperts takes one expert predicate for a range, so one per layer here). */
public final class LayerExperts implements ExpertDispatch {
    /** Which experts of a layer to hold. */
    @FunctionalInterface
    public interface Choice {
        boolean holds(int layer, int expert);
    }

    private final Map<Integer, LocalExperts> byLayer = new TreeMap<>();

    /** Loads only the chosen experts of the MoE layers among {@code layers}. */
    public LayerExperts(Checkpoint ckpt, Backend backend, Iterable<Integer> layers, Choice choice) {
        for (int l : layers) {
            if (!ckpt.config().isMoeLayer(l)) continue;
            int layer = l;
            IntPredicate p = e -> choice.holds(layer, e);
            byLayer.put(l, new LocalExperts(ckpt, backend, l, l + 1, p));
        }
    }

    public boolean serves(int layer, int expert) {
        LocalExperts le = byLayer.get(layer);
        return le != null && le.serves(layer, expert);
    }

    public java.util.Set<Integer> layers() {
        return byLayer.keySet();
    }

    @Override
    public void dispatch(int layer, Tensor x, Routing routing, Tensor out) {
        LocalExperts le = byLayer.get(layer);
        if (le == null) throw new IllegalArgumentException("no experts of layer " + layer + " are held here");
        le.dispatch(layer, x, routing, out);
    }
}
