package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.model.ModelOptions;
import java.util.HashMap;
import java.util.Map;

/**
 * Copies the residual stream after each layer's attention and after each whole layer, and each MoE layer's routing,
 * while switched on (one prefill call at a time); off, it costs nothing.
 */
final class LayerRecorder implements ModelOptions.Observer {
    private final Backend backend;
    private final Map<Integer, float[]> afterAttention = new HashMap<>();
    private final Map<Integer, float[]> afterLayer = new HashMap<>();
    private final Map<Integer, Routing> routing = new HashMap<>();
    private boolean on;

    LayerRecorder(Backend backend) {
        this.backend = backend;
    }

    void start() {
        afterAttention.clear();
        afterLayer.clear();
        routing.clear();
        on = true;
    }

    void stop() {
        on = false;
    }

    float[] afterAttention(int layer) {
        return afterAttention.get(layer);
    }

    float[] afterLayer(int layer) {
        return afterLayer.get(layer);
    }

    Routing routing(int layer) {
        return routing.get(layer);
    }

    @Override
    public void afterAttention(int layer, Tensor residual) {
        if (on) afterAttention.put(layer, backend.download(residual));
    }

    @Override
    public void afterLayer(int layer, Tensor residual) {
        if (on) afterLayer.put(layer, backend.download(residual));
    }

    @Override
    public void routed(int layer, Routing r) {
        if (on) routing.put(layer, r);
    }
}
