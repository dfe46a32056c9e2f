package dev.kimimesh.mesh.telemetry;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Tracer;
import java.util.Objects;

/**
 * Where a mesh service reports: a Micrometer registry for the {@code kimimesh_*} metrics and an OpenTelemetry for
 * traces. The Quarkus services pass theirs (Prometheus registry, the configured SDK); plain tests pass {@link #none()}.
 */
public record MeshTelemetry(MeterRegistry meters, OpenTelemetry otel) {
    /** The instrumentation scope of every span the mesh makes. */
    public static final String SCOPE = "dev.kimimesh.mesh";

    public MeshTelemetry {
        Objects.requireNonNull(meters, "meters");
        Objects.requireNonNull(otel, "otel");
    }

    /**
     * A service's telemetry; with {@code tracing} off its spans are not even built. (An OpenTelemetry SDK that is
     * merely disabled still creates spans and propagates their context, exporting nothing: wasted work per
     * micro-batch.)
     */
    public static MeshTelemetry of(MeterRegistry meters, OpenTelemetry otel, boolean tracing) {
        return new MeshTelemetry(meters, tracing ? otel : OpenTelemetry.noop());
    }

    /** Reports nowhere: a registry with no backing registry (its meters are no-ops) and the no-op OpenTelemetry. */
    public static MeshTelemetry none() {
        return new MeshTelemetry(new CompositeMeterRegistry(), OpenTelemetry.noop());
    }

    public Tracer tracer() {
        return otel.getTracer(SCOPE);
    }
}
