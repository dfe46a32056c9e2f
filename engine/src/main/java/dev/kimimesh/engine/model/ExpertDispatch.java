package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;

/**
 * Where routed MoE tokens are computed: in this process ({@link LocalExperts}) or by remote expert services.
 * The shared expert never goes through here; it stays with the layer.
 */
public interface ExpertDispatch {
    /**
     * {@code out[r] += sum_j routing.weight(r, j) * expert_{routing.expert(r, j)}(x[r])} for MoE layer {@code layer};
     * x [T, hidden] is the post-attention-normed input.
     */
    void dispatch(int layer, Tensor x, Routing routing, Tensor out);

    /**
     * Routes by the router logits on {@code backend}, then dispatches, when the caller does not need the routing:
     * local experts may then keep it on the device ({@link Backend#routeAndRunExperts}).
     */
    default void routeAndDispatch(int layer, Backend backend, Tensor logits, Weight bias, RouterSpec spec, Tensor x, Tensor out) {
        dispatch(layer, x, backend.route(logits, bias, spec), out);
    }

    /**
     * Routes and starts the dispatch, returning what completes it: the layer computes its shared expert in between,
     * so remote experts work while it does. {@link Pending#finish} adds the routed sums into {@code out} exactly as
     * {@link #routeAndDispatch} would (same order of additions, same result). Default: everything happens at finish.
     */
    default Pending start(int layer, Backend backend, Tensor logits, Weight bias, RouterSpec spec, Tensor x) {
        return out -> routeAndDispatch(layer, backend, logits, bias, spec, x, out);
    }

    /** A started dispatch; {@code x} must stay valid until it is finished. */
    interface Pending {
        /** Waits for the routed experts and adds their weighted sums into {@code out}. */
        void finish(Tensor out);
    }
}
