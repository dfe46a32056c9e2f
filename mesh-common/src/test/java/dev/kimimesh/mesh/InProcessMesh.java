package dev.kimimesh.mesh;

import dev.kimimesh.mesh.experts.ExpertAssembly;
import dev.kimimesh.mesh.experts.ExpertSettings;
import dev.kimimesh.mesh.experts.ExpertsService;
import dev.kimimesh.mesh.shard.LayerShardService;
import dev.kimimesh.mesh.shard.ShardAssembly;
import dev.kimimesh.mesh.shard.ShardSettings;
import dev.kimimesh.mesh.wire.Channels;
import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The tiny fixture as a mesh inside the test JVM: two expert services (experts 0-7 and 8-15 of every MoE layer)
 * and two shards [0, 4) -> [4, 8), each a real grpc-java server on an in-process transport.
 */
final class InProcessMesh implements AutoCloseable {
    static final Path TINY = Path.of(System.getProperty("kimimesh.shared", "../../shared"), "fixtures", "tiny");
    static final Channels CHANNELS = address -> InProcessChannelBuilder.forName(address).build();

    private final String prefix;
    private final java.util.Map<String, Server> servers = new java.util.LinkedHashMap<>();
    private final List<AutoCloseable> services = new ArrayList<>();
    private final List<ManagedChannel> channels = new ArrayList<>();

    InProcessMesh(String prefix) {
        this.prefix = prefix;
        serve("experts-a", ExpertAssembly.build(ExpertSettings.of(TINY, "all", "0-7")));
        serve("experts-b", ExpertAssembly.build(ExpertSettings.of(TINY, "all", "8-15")));
        List<String> experts = List.of(name("experts-a"), name("experts-b"));
        serve("shard-1", ShardAssembly.build(ShardSettings.of(TINY, 4, 8).withExpertServices(experts), CHANNELS));
        serve("shard-0", ShardAssembly.build(ShardSettings.of(TINY, 0, 4).withExpertServices(experts)
                .withNext(name("shard-1")), CHANNELS));
    }

    String name(String part) {
        return prefix + "-" + part;
    }

    void serve(String part, BindableService service) {
        try {
            servers.put(part, InProcessServerBuilder.forName(name(part)).addService(service).build().start());
            services.add((AutoCloseable) service);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A channel to one of the mesh's services, closed with the mesh. */
    ManagedChannel channel(String part) {
        ManagedChannel c = InProcessChannelBuilder.forName(name(part)).build();
        channels.add(c);
        return c;
    }

    /** Stops one service (to see what its callers do). */
    void stop(String part) {
        servers.get(part).shutdownNow();
    }

    @Override
    public void close() throws Exception {
        for (ManagedChannel c : channels) c.shutdownNow();
        for (Server s : servers.values()) s.shutdownNow();
        for (AutoCloseable s : services) s.close();
    }
}
