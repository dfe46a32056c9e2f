package dev.kimimesh.gateway.observe;

import dev.kimimesh.gateway.TinyFixture;
import dev.kimimesh.gateway.mesh.LocalMesh;
import dev.kimimesh.mesh.telemetry.MeshTelemetry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.util.Map;

/**
 * The two-shard, two-expert-service mesh with telemetry of its own, as separate processes would have: an
 * OpenTelemetry SDK (W3C propagation) exporting to memory, and a meter registry. Only the trace context carried in
 * the messages can join its spans to the gateway's.
 */
public final class TracedMeshResource implements QuarkusTestResourceLifecycleManager {
    static final InMemorySpanExporter SPANS = InMemorySpanExporter.create();
    static final SimpleMeterRegistry METERS = new SimpleMeterRegistry();
    private static OpenTelemetrySdk sdk;
    private LocalMesh mesh;

    @Override
    public Map<String, String> start() {
        sdk = OpenTelemetrySdk.builder()
                .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(SPANS)).build())
                .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance()))
                .build();
        mesh = new LocalMesh(TinyFixture.dir(), true, new MeshTelemetry(METERS, sdk));
        return Map.of("kimimesh.mesh.shards", String.join(",", mesh.shards()));
    }

    @Override
    public void stop() {
        try {
            if (mesh != null) mesh.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        } finally {
            if (sdk != null) sdk.close();
        }
    }
}
