package dev.kimimesh.gateway.mesh;

import dev.kimimesh.mesh.experts.ExpertAssembly;
import dev.kimimesh.mesh.experts.ExpertSettings;
import dev.kimimesh.mesh.shard.ShardAssembly;
import dev.kimimesh.mesh.shard.ShardSettings;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.Channels;
import io.grpc.BindableService;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The tiny fixture as a mesh of real gRPC servers on loopback ports inside the test JVM: two expert services
 * (experts 0-7 and 8-15 of every MoE layer) and two layer shards [0, 4) and [4, 8), built from the mesh services'
 * own classes.
 */
public final class LocalMesh implements AutoCloseable {
    private final List<Server> servers = new ArrayList<>();
    private final List<AutoCloseable> services = new ArrayList<>();
    public final String expertsA, expertsB, shard0, shard1;

    /** @param chained whether shard 0 forwards to shard 1 itself (else the gateway drives both) */
    public LocalMesh(Path model, boolean chained) {
        this(model, chained, MeshTelemetry.none());
    }

    /** As {@link #LocalMesh(Path, boolean)}, every service reporting metrics and spans to {@code telemetry}. */
    public LocalMesh(Path model, boolean chained, MeshTelemetry telemetry) {
        expertsA = serve(ExpertAssembly.build(ExpertSettings.of(model, "all", "0-7"), telemetry));
        expertsB = serve(ExpertAssembly.build(ExpertSettings.of(model, "all", "8-15"), telemetry));
        List<String> experts = List.of(expertsA, expertsB);
        shard1 = serve(ShardAssembly.build(ShardSettings.of(model, 4, 8).withExpertServices(experts), Channels.plaintext(), telemetry));
        ShardSettings s0 = ShardSettings.of(model, 0, 4).withExpertServices(experts);
        shard0 = serve(ShardAssembly.build(chained ? s0.withNext(shard1) : s0, Channels.plaintext(), telemetry));
    }

    private String serve(BindableService service) {
        try {
            Server s = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(service)
                    .maxInboundMessageSize(Channels.MAX_MESSAGE_BYTES).build().start();
            servers.add(s);
            services.add((AutoCloseable) service);
            return "127.0.0.1:" + s.getPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Stops the second expert service (to see who notices). */
    public void stopExpertsB() {
        servers.get(1).shutdownNow();
    }

    public List<String> shards() {
        return List.of(shard0, shard1);
    }

    @Override
    public void close() throws Exception {
        for (Server s : servers) s.shutdownNow();
        for (AutoCloseable s : services) s.close();
    }
}
