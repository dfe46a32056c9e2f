package dev.kimimesh.gateway.observe;

import dev.kimimesh.gateway.app.MeshRuntime;
import dev.kimimesh.gateway.mesh.ShardPipeline;
import io.micrometer.core.instrument.MeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/** Attaches metrics and tracing to the scheduler and the shard pipeline at start (docs/observability.md). */
@ApplicationScoped
public class Observability {
    void attach(@Observes StartupEvent e, MeshRuntime runtime, MeterRegistry meters, OpenTelemetry sdk,
                @ConfigProperty(name = "quarkus.otel.sdk.disabled") boolean tracingOff) {
        // a disabled SDK still builds spans (exporting nothing): with tracing off, build none
        OpenTelemetry otel = MeshTelemetry.of(meters, sdk, !tracingOff).otel();
        GatewayTracing tracing = new GatewayTracing(otel);
        runtime.scheduler().observe(new GatewayMetrics(meters, runtime.scheduler()));
        runtime.scheduler().observe(tracing);
        if (runtime.pipeline() instanceof ShardPipeline shards) shards.observe(new HopTelemetry(meters, otel, tracing));
    }
}
