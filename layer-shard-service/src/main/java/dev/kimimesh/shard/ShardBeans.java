package dev.kimimesh.shard;

import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.mesh.shard.LayerShardService;
import dev.kimimesh.mesh.shard.ShardAssembly;
import dev.kimimesh.mesh.shard.ShardSettings;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import dev.kimimesh.mesh.wire.Channels;
import io.micrometer.core.instrument.MeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/** Builds the shard from the {@code kimimesh.shard.*} configuration at start-up (a down neighbour fails the start). */
@ApplicationScoped
public class ShardBeans {
    private static final Logger LOG = Logger.getLogger(ShardBeans.class);

    @Produces
    @Singleton
    LayerShardService shard(@ConfigProperty(name = "kimimesh.shard.model-dir") String modelDir,
                            @ConfigProperty(name = "kimimesh.shard.from", defaultValue = "0") int from,
                            @ConfigProperty(name = "kimimesh.shard.to", defaultValue = "-1") int to,
                            @ConfigProperty(name = "kimimesh.shard.next") Optional<String> next,
                            @ConfigProperty(name = "kimimesh.shard.expert-services") Optional<List<String>> experts,
                            @ConfigProperty(name = "kimimesh.shard.local-experts", defaultValue = "true") boolean localExperts,
                            @ConfigProperty(name = "kimimesh.shard.router-weights", defaultValue = "unbiased") String routerWeights,
                            @ConfigProperty(name = "kimimesh.shard.backend", defaultValue = "auto") String backend,
                            @ConfigProperty(name = "kimimesh.shard.activation-dtype", defaultValue = "f32") String dtype,
                            @ConfigProperty(name = "kimimesh.shard.connect-timeout", defaultValue = "10s") Duration connectTimeout,
                            @ConfigProperty(name = "kimimesh.shard.call-timeout", defaultValue = "60s") Duration callTimeout,
                            MeterRegistry meters, OpenTelemetry otel,
                            @ConfigProperty(name = "quarkus.otel.sdk.disabled") boolean tracingOff) {
        ShardSettings s = new ShardSettings(Path.of(modelDir), from, to, next.orElse(""), experts.orElse(List.of()),
                localExperts, RouterWeights.parse(routerWeights), backend, ShardSettings.parseDtype(dtype),
                connectTimeout, callTimeout);
        LayerShardService service = ShardAssembly.build(s, Channels.plaintext(), MeshTelemetry.of(meters, otel, !tracingOff));
        LOG.infof("layer shard ready: %s", service.info().toString().replace('\n', ' '));
        return service;
    }

    void close(@Disposes LayerShardService s) {
        s.close();
    }

    /** Builds the shard eagerly, so a wrong configuration or an unreachable neighbour stops the start-up. */
    void onStart(@Observes StartupEvent e, LayerShardService s) {
        s.info();
    }
}
