package dev.kimimesh.mesh.experts;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.ExpertSet;
import dev.kimimesh.proto.v1.ExpertInfo;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Builds an expert service from its settings, loading only the chosen experts of the chosen MoE layers. */
public final class ExpertAssembly {
    private ExpertAssembly() {}

    public static ExpertsService build(ExpertSettings s) {
        return build(s, MeshTelemetry.none());
    }

    /** As {@link #build(ExpertSettings)}, reporting metrics and spans to {@code telemetry}. */
    public static ExpertsService build(ExpertSettings s, MeshTelemetry telemetry) {
        Backend backend = Backends.create(s.backend());
        Checkpoint ckpt = Checkpoint.open(s.modelDir());
        KimiLinearConfig c = ckpt.config();
        ExpertSet layerSet = ExpertSet.parse(s.layers(), c.numHiddenLayers());
        ExpertSet expertSet = ExpertSet.parse(s.experts(), c.numExperts());
        if (expertSet.isEmpty()) throw new IllegalArgumentException("expert set '" + s.experts() + "' is empty");
        List<Integer> layers = new ArrayList<>();
        for (int l : layerSet.ids()) if (c.isMoeLayer(l)) layers.add(l);
        if (layers.isEmpty()) throw new IllegalArgumentException("layer set '" + s.layers() + "' has no MoE layer");
        LayerExperts experts = new LayerExperts(ckpt, backend, layers, (l, e) -> expertSet.test(e));
        ExpertBatcher batcher = new ExpertBatcher(backend, experts, c.hiddenSize(), c.numExperts(),
                new ExpertServiceTelemetry(telemetry)).start();
        String name = s.modelDir().getFileName() == null ? "kimi_linear" : s.modelDir().getFileName().toString();
        ExpertInfo info = ExpertInfo.newBuilder().setModelName(name).addAllLayers(layers).setExperts(expertSet.spec())
                .addAllExpertIds(Arrays.stream(expertSet.ids()).boxed().toList()).setHiddenSize(c.hiddenSize())
                .setNumExperts(c.numExperts()).setBackend(backend.name()).build();
        return new ExpertsService(batcher, info);
    }
}
