package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.model.ExpertDispatch;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.mesh.experts.DispatchTelemetry;
import dev.kimimesh.mesh.experts.ExpertClient;
import dev.kimimesh.mesh.experts.ExpertPlan;
import dev.kimimesh.mesh.experts.LayerExperts;
import dev.kimimesh.mesh.experts.RemoteExperts;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.Channels;
import dev.kimimesh.mesh.wire.ExpertSet;
import dev.kimimesh.proto.v1.ExpertInfo;
import dev.kimimesh.proto.v1.ExpertRoute;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * Builds a running layer shard from its settings: opens the checkpoint, asks every expert service what it holds
 * (failing fast, by address, when one is down), keeps the rest of the experts local, loads the layer range and
 * checks the next stage. The result is a plain grpc-java service, served by Quarkus or by a test's server.
 */
public final class ShardAssembly {
    private ShardAssembly() {}

    public static LayerShardService build(ShardSettings s, Channels channels) {
        return build(s, channels, MeshTelemetry.none());
    }

    /** As {@link #build(ShardSettings, Channels)}, reporting metrics and spans to {@code telemetry}. */
    public static LayerShardService build(ShardSettings s, Channels channels, MeshTelemetry telemetry) {
        Backend backend = Backends.create(s.backend());
        Checkpoint ckpt = Checkpoint.open(s.modelDir());
        KimiLinearConfig c = ckpt.config();
        int to = s.to() < 0 ? c.numHiddenLayers() : s.to();
        if (s.from() < 0 || to > c.numHiddenLayers() || s.from() >= to) {
            throw new IllegalArgumentException("layer range [" + s.from() + ", " + to + ") is not within the model's "
                    + c.numHiddenLayers() + " layers");
        }
        List<ExpertClient> clients = new ArrayList<>();
        List<ExpertRoute> routes = new ArrayList<>();
        NextStage next = null;
        try {
            ExpertPlan plan = new ExpertPlan(c, s.from(), to);
            for (String entry : s.expertServices()) {
                int eq = entry.indexOf('=');
                String address = eq < 0 ? entry : entry.substring(0, eq).trim();
                ExpertClient client = new ExpertClient(address, channels.open(address));
                clients.add(client);
                ExpertInfo info = client.info(s.connectTimeout());
                Set<Integer> held = new HashSet<>(info.getExpertIdsList());
                ExpertSet use = eq < 0 ? new ExpertSet(info.getExperts(), info.getExpertIdsList().stream().mapToInt(Integer::intValue).sorted().toArray())
                        : ExpertSet.parse(entry.substring(eq + 1), c.numExperts());
                for (int e : use.ids()) {
                    if (!held.contains(e)) {
                        throw new IllegalStateException("expert service " + address + " does not hold expert " + e
                                + " (it holds '" + info.getExperts() + "')");
                    }
                }
                List<Integer> layers = new ArrayList<>();
                for (int l : info.getLayersList()) {
                    if (l >= s.from() && l < to && c.isMoeLayer(l)) {
                        plan.assign(clients.size() - 1, l, use);
                        layers.add(l);
                    }
                }
                routes.add(ExpertRoute.newBuilder().setAddress(address).setExperts(use.spec()).addAllLayers(layers).build());
            }
            ExpertDispatch local = null;
            if (plan.needsLocal()) {
                if (!s.localExperts()) {
                    throw new IllegalStateException("no expert service holds these experts and local experts are off: "
                            + plan.describeLocal());
                }
                if (!clients.isEmpty()) {
                    local = new LayerExperts(ckpt, backend, IntStream.range(s.from(), to).boxed().toList(), plan::isLocal);
                }
            }
            ModelOptions opts = ModelOptions.defaults().withRouterWeights(s.routerWeights());
            if (!clients.isEmpty()) {
                opts = opts.withExperts(new RemoteExperts(backend, plan, clients, local, s.callTimeout(), s.activationDtype(),
                        new DispatchTelemetry(telemetry)));
            }
            KimiLinearModel model = KimiLinearModel.loadRange(ckpt, backend, opts, s.from(), to);
            if (!s.next().isEmpty()) {
                if (to == c.numHiddenLayers()) throw new IllegalArgumentException("the last stage (ends at layer " + to + ") cannot have a next stage");
                next = new NextStage(s.next(), channels.open(s.next()), s.callTimeout());
                next.check(to, s.connectTimeout());
            }
            ShardStage stage = new ShardStage(model, EngineSampler.factory());
            String name = s.modelDir().getFileName() == null ? "kimi_linear" : s.modelDir().getFileName().toString();
            LayerShardService service = new LayerShardService(stage, next, LayerShardService.describe(stage, name,
                    backend.name(), s.routerWeights().name().toLowerCase(Locale.ROOT), next, routes),
                    new ShardTelemetry(telemetry, stage));
            clients.forEach(service::closing);
            return service.closing(ckpt);
        } catch (RuntimeException e) {
            clients.forEach(ExpertClient::close);
            if (next != null) next.close();
            throw e;
        }
    }
}
