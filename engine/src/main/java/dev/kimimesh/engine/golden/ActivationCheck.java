package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Compares what a one-shot prefill produced with the golden activations: logits, final_norm, hidden_states
 * [L+1, n, H] (index 0 the embedding output), mid_states [L, n, H] and the router's choices per MoE layer.
 */
final class ActivationCheck {
    private static final Pattern TOPK = Pattern.compile("moe\\.(\\d+)\\.topk_idx");

    private ActivationCheck() {}

    static void compare(GoldenFile g, ModelRun run, float[] embedding, Tensor hidden, float[] logits, CaseTally t) {
        KimiLinearConfig c = run.model.config();
        Backend b = run.backend;
        int n = hidden.rows(), h = c.hiddenSize(), layers = c.numHiddenLayers();
        guarded(t, () -> {
            if (!g.has("logits")) return;
            g.requireShape("logits", n, c.vocabSize());
            t.relative("logits", "logits", logits, g.floats("logits"));
        });
        guarded(t, () -> {
            if (!g.has("final_norm")) return;
            g.requireShape("final_norm", n, h);
            Tensor fn = run.model.finalNorm(hidden, ModelRun.allRows(n));
            t.relative("final_norm", "final_norm", b.download(fn), g.floats("final_norm"));
            b.release(fn);
        });
        guarded(t, () -> {
            if (!g.has("hidden_states")) return;
            g.requireShape("hidden_states", layers + 1, n, h);
            float[] ours = new float[(layers + 1) * n * h];
            System.arraycopy(embedding, 0, ours, 0, n * h);
            for (int l = 0; l < layers; l++) System.arraycopy(recorded(run.recorder.afterLayer(l), l), 0, ours, (l + 1) * n * h, n * h);
            t.relative("hidden_states", "hidden_states", ours, g.floats("hidden_states"));
        });
        guarded(t, () -> {
            if (!g.has("mid_states")) return;
            g.requireShape("mid_states", layers, n, h);
            float[] ours = new float[layers * n * h];
            for (int l = 0; l < layers; l++) System.arraycopy(recorded(run.recorder.afterAttention(l), l), 0, ours, l * n * h, n * h);
            t.relative("mid_states", "mid_states", ours, g.floats("mid_states"));
        });
        for (String name : g.present()) {
            Matcher m = TOPK.matcher(name);
            if (!m.matches()) continue;
            guarded(t, () -> {
                int layer = Integer.parseInt(m.group(1));
                Routing r = layer < layers ? run.recorder.routing(layer) : null;
                if (r == null) throw new GoldenException(name + ": layer " + layer + " is not a MoE layer of this model");
                g.requireShape(name, n, r.topK());
                String wName = "moe." + layer + ".topk_weight";
                float[] weights = null;
                if (g.has(wName)) {
                    g.requireShape(wName, n, r.topK());
                    weights = g.floats(wName);
                }
                t.router(name, g.ints(name), weights, r);
            });
        }
    }

    private static float[] recorded(float[] a, int layer) {
        if (a == null) throw new GoldenException("layer " + layer + " reported no residual to the observer");
        return a;
    }

    /** Runs one comparison; a golden that does not fit the model fails that comparison, not the whole case. */
    static void guarded(CaseTally t, Runnable check) {
        try {
            check.run();
        } catch (GoldenException e) {
            t.fail(e.getMessage());
        }
    }
}
