package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;

/** The FFN half of a decoder layer: a dense SwiGLU MLP, or the MoE (router, routed experts, shared expert). */
sealed interface FeedForward permits FeedForward.Dense, FeedForward.Moe {

    void forward(Tensor x, Tensor out, Workspace ws);

    /** Layer 0's dense MLP (first_k_dense_replace). */
    record Dense(Backend b, ExpertWeights w) implements FeedForward {
        static Dense load(Weights w) {
            return new Dense(w.backend(), new ExpertWeights(w.get("gate_proj.weight"), w.get("up_proj.weight"),
                    w.get("down_proj.weight")));
        }

        @Override
        public void forward(Tensor x, Tensor out, Workspace ws) {
            b.swigluMlp(x, w, out);
        }
    }

    /** Sigmoid-routed top-k experts (dispatched, maybe remotely) plus the always-on shared expert. */
    final class Moe implements FeedForward {
        interface RoutingListener {
            void routed(int layer, Routing routing);
        }

        private final Backend b;
        private final int layer;
        private final Weight gate, bias;
        private final ExpertWeights shared;
        private final RouterSpec spec;
        private final ExpertDispatch dispatch;
        private final RoutingListener listener;

        Moe(Weights w, int layer, RouterSpec spec, ExpertDispatch dispatch, boolean hasShared, RoutingListener listener) {
            this.b = w.backend();
            this.layer = layer;
            this.gate = w.get("gate.weight");
            this.bias = w.get("gate.e_score_correction_bias");
            this.shared = hasShared ? new ExpertWeights(w.get("shared_experts.gate_proj.weight"),
                    w.get("shared_experts.up_proj.weight"), w.get("shared_experts.down_proj.weight")) : null;
            this.spec = spec;
            this.dispatch = dispatch;
            this.listener = listener;
        }

        @Override
        public void forward(Tensor x, Tensor out, Workspace ws) {
            Tensor logits = ws.tensor(x.rows(), spec.numExperts());
            if (listener == null && shared != null && b.routeFirst(x.rows())) {
                // the router's product alone, then the routed experts started, then the whole shared expert: a device
                // backend waits for the routing's counts while the device runs the shared expert (same products, and
                // the shared expert still writes out before the routed sums are added)
                b.matmul(x, gate, logits);
                ExpertDispatch.Pending routed = dispatch.start(layer, b, logits, bias, spec, x);
                Tensor act = ws.tensor(x.rows(), shared.gate().rows());
                b.swigluProjection(x, shared.gate(), shared.up(), act, new Weight[0], new Tensor[0]);
                sharedDown(act, out);
                routed.finish(out);
                return;
            }
            // the router's logits and the shared expert's SwiGLU are products of the same x: one pass (one launch at
            // decode) computes both; its down projection runs after the routed experts started
            Tensor act = null;
            if (shared != null) {
                act = ws.tensor(x.rows(), shared.gate().rows());
                b.swigluProjection(x, shared.gate(), shared.up(), act, new Weight[] {gate}, new Tensor[] {logits});
            } else {
                b.matmul(x, gate, logits);
            }
            if (listener == null) {
                // nobody looks at the routing: a device backend may keep it on the device (no host synchronisation);
                // remote experts start before the shared expert's down projection and are added after it (the same
                // sum as before)
                ExpertDispatch.Pending routed = dispatch.start(layer, b, logits, bias, spec, x);
                sharedDown(act, out);
                routed.finish(out);
                return;
            }
            Routing routing = b.route(logits, bias, spec);
            listener.routed(layer, routing);
            sharedDown(act, out);
            dispatch.dispatch(layer, x, routing, out);
        }

        private void sharedDown(Tensor act, Tensor out) {
            if (shared != null) b.matmul(act, shared.down(), out);
            else b.zero(out);
        }
    }
}
