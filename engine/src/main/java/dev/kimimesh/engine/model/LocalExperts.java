package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.CheckpointLayout;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntPredicate;

/**
 * Routed experts computed in this process by the backend. Holds any subset of (layer, expert) pairs, so an expert
 * service can serve just its share.
 */
public final class LocalExperts implements ExpertDispatch {
    private final Backend backend;
    private final Map<Integer, ExpertWeights[]> byLayer = new HashMap<>();

    /** Loads the experts of layers [from, to) accepted by {@code serves} (expert id). */
    public LocalExperts(Checkpoint ckpt, Backend backend, int from, int to, IntPredicate serves) {
        this.backend = backend;
        KimiLinearConfig c = ckpt.config();
        for (int l = from; l < to; l++) {
            if (!c.isMoeLayer(l)) continue;
            ExpertWeights[] ex = new ExpertWeights[c.numExperts()];
            for (int e = 0; e < ex.length; e++) {
                if (!serves.test(e)) continue;
                String p = CheckpointLayout.layer(l) + "block_sparse_moe.experts." + e + ".";
                ex[e] = new ExpertWeights(backend.weight(ckpt.tensor(p + "w1.weight")),
                        backend.weight(ckpt.tensor(p + "w3.weight")), backend.weight(ckpt.tensor(p + "w2.weight")));
            }
            byLayer.put(l, ex);
        }
    }

    public boolean serves(int layer, int expert) {
        ExpertWeights[] ex = byLayer.get(layer);
        return ex != null && expert >= 0 && expert < ex.length && ex[expert] != null;
    }

    @Override
    public void dispatch(int layer, Tensor x, Routing routing, Tensor out) {
        ExpertWeights[] ex = byLayer.get(layer);
        if (ex == null) throw new IllegalArgumentException("no experts of layer " + layer + " are loaded here");
        backend.moeExperts(x, routing, ex, out);
    }

    /**
     * On this process's backend: the backend's {@link Backend#startRoutedExperts}, so that a device backend queues the
     * routing before the layer's shared expert and waits for the routing's counts only at finish, with the shared
     * expert queued behind them (the same sums in the same order as {@link #routeAndDispatch}).
     */
    @Override
    public Pending start(int layer, Backend b, Tensor logits, Weight bias, RouterSpec spec, Tensor x) {
        ExpertWeights[] ex = byLayer.get(layer);
        if (ex == null || b != backend) return ExpertDispatch.super.start(layer, b, logits, bias, spec, x);
        Backend.RoutedExperts routed = backend.startRoutedExperts(logits, bias, spec, x, ex);
        return routed::finish;
    }

    @Override
    public void routeAndDispatch(int layer, Backend b, Tensor logits, Weight bias, RouterSpec spec, Tensor x, Tensor out) {
        ExpertWeights[] ex = byLayer.get(layer);
        if (ex == null) throw new IllegalArgumentException("no experts of layer " + layer + " are loaded here");
        if (b != backend) {
            backend.moeExperts(x, b.route(logits, bias, spec), ex, out);
            return;
        }
        backend.routeAndRunExperts(logits, bias, spec, x, ex, out);
    }
}
