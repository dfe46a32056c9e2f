package dev.kimimesh.experts;

import dev.kimimesh.mesh.experts.ExpertAssembly;
import dev.kimimesh.mesh.experts.ExpertSettings;
import dev.kimimesh.mesh.experts.ExpertsService;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import io.micrometer.core.instrument.MeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import java.nio.file.Path;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

/** Builds the expert service from the {@code kimimesh.experts.*} configuration at start-up. */
@ApplicationScoped
public class ExpertBeans {
    private static final Logger LOG = Logger.getLogger(ExpertBeans.class);

    @Produces
    @Singleton
    ExpertsService experts(@ConfigProperty(name = "kimimesh.experts.model-dir") String modelDir,
                           @ConfigProperty(name = "kimimesh.experts.layers", defaultValue = "all") String layers,
                           @ConfigProperty(name = "kimimesh.experts.experts", defaultValue = "all") String experts,
                           @ConfigProperty(name = "kimimesh.experts.backend", defaultValue = "auto") String backend,
                           MeterRegistry meters, OpenTelemetry otel,
                           @ConfigProperty(name = "quarkus.otel.sdk.disabled") boolean tracingOff) {
        ExpertsService service = ExpertAssembly.build(new ExpertSettings(Path.of(modelDir), layers, experts, backend),
                MeshTelemetry.of(meters, otel, !tracingOff));
        LOG.infof("expert service ready: layers %s, experts %s on %s", service.info().getLayersList(),
                service.info().getExperts(), service.info().getBackend());
        return service;
    }

    void close(@Disposes ExpertsService s) {
        s.close();
    }

    /** Builds the service eagerly, so a wrong configuration stops the start-up. */
    void onStart(@Observes StartupEvent e, ExpertsService s) {
        s.info();
    }
}
