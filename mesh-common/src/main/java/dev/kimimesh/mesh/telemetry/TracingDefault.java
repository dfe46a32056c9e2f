package dev.kimimesh.mesh.telemetry;

import io.smallrye.config.ConfigSourceContext;
import io.smallrye.config.ConfigSourceFactory;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.PropertiesConfigSource;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.config.spi.ConfigSource;

/**
 * Tracing is off unless an OTLP endpoint is configured: a local run has no collector, and the OpenTelemetry SDK
 * would otherwise export to localhost:4317 and log a failure for every batch of spans. This factory (registered for
 * SmallRye Config, so every Quarkus service of the mesh picks it up) sets {@code quarkus.otel.sdk.disabled} to
 * whether no endpoint is set; an explicit {@code quarkus.otel.sdk.disabled} anywhere wins (lower ordinal).
 */
public final class TracingDefault implements ConfigSourceFactory {
    static final String SDK_DISABLED = "quarkus.otel.sdk.disabled";
    static final List<String> ENDPOINTS = List.of("quarkus.otel.exporter.otlp.endpoint", "quarkus.otel.exporter.otlp.traces.endpoint");
    /** Below application.properties (250), environment (300) and system properties (400). */
    static final int ORDINAL = 150;

    @Override
    public Iterable<ConfigSource> getConfigSources(ConfigSourceContext context) {
        return List.of(new PropertiesConfigSource(Map.of(SDK_DISABLED, Boolean.toString(!endpointSet(context))),
                "kimimesh tracing default", ORDINAL));
    }

    /** Whether a user set an endpoint (in application.properties, the environment, a system property...). */
    static boolean endpointSet(ConfigSourceContext context) {
        for (String key : ENDPOINTS) {
            ConfigValue v = context.getValue(key);
            // Quarkus's own default (localhost:4317) comes from a source of ordinal <= 0: only a configured one counts
            if (v != null && v.getValue() != null && !v.getValue().isBlank() && v.getConfigSourceOrdinal() > 0) return true;
        }
        return false;
    }
}
