package dev.kimimesh.mesh.experts;

import dev.kimimesh.engine.config.KimiLinearConfig;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntPredicate;

/**
 * Which expert service computes each (layer, expert) of a shard's MoE layers: the index of a client, or -1 for
 * "this shard, locally". Where several services hold an expert, the first one listed wins.
 */
public final class ExpertPlan {
    private final Map<Integer, int[]> owners = new HashMap<>();

    public ExpertPlan(KimiLinearConfig config, int from, int to) {
        for (int l = from; l < to; l++) {
            if (config.isMoeLayer(l)) {
                int[] o = new int[config.numExperts()];
                Arrays.fill(o, -1);
                owners.put(l, o);
            }
        }
    }

    /** Gives service {@code client} the experts it holds of layer {@code layer} that have no service yet. */
    public void assign(int client, int layer, IntPredicate experts) {
        int[] o = owners.get(layer);
        if (o == null) return;
        for (int e = 0; e < o.length; e++) if (o[e] < 0 && experts.test(e)) o[e] = client;
    }

    public int owner(int layer, int expert) {
        int[] o = owners.get(layer);
        return o == null || expert < 0 || expert >= o.length ? -1 : o[expert];
    }

    /** True when some expert of some layer is left to this shard. */
    public boolean needsLocal() {
        for (int[] o : owners.values()) for (int v : o) if (v < 0) return true;
        return false;
    }

    /** The experts left to this shard (for LocalExperts' predicate: any layer's). */
    public boolean isLocal(int layer, int expert) {
        return owner(layer, expert) < 0;
    }

    /** A readable list of the (layer, expert) pairs left to this shard, for errors. */
    public String describeLocal() {
        StringBuilder sb = new StringBuilder();
        owners.keySet().stream().sorted().forEach(l -> {
            int[] o = owners.get(l);
            long n = Arrays.stream(o).filter(v -> v < 0).count();
            if (n > 0) sb.append(sb.isEmpty() ? "" : ", ").append("layer ").append(l).append(": ").append(n).append(" experts");
        });
        return sb.toString();
    }
}
