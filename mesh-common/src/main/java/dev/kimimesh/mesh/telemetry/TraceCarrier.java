package dev.kimimesh.mesh.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.util.HashMap;
import java.util.Map;

/**
 * Moves a trace context in and out of the {@code trace_context} map of a mesh message (MicroBatch, ExpertRequest).
 * The internal gRPC streams are long-lived and carry micro-batches of many requests, so call metadata (one per
 * stream) cannot say which trace a message belongs to; each message carries its own W3C traceparent instead.
 */
public final class TraceCarrier {
    private static final TextMapGetter<Map<String, String>> GETTER = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Map<String, String> carrier) {
            return carrier.keySet();
        }

        @Override
        public String get(Map<String, String> carrier, String key) {
            return carrier == null ? null : carrier.get(key);
        }
    };

    private TraceCarrier() {}

    /** The propagation fields of {@code context}; empty when tracing is off (the no-op propagator writes nothing). */
    public static Map<String, String> inject(OpenTelemetry otel, Context context) {
        Map<String, String> out = new HashMap<>(4);
        otel.getPropagators().getTextMapPropagator().inject(context, out, Map::put);
        return out;
    }

    /** The context a message's sender injected, on top of the root context; the root context when it carries none. */
    public static Context extract(OpenTelemetry otel, Map<String, String> carrier) {
        if (carrier.isEmpty()) return Context.root();
        return otel.getPropagators().getTextMapPropagator().extract(Context.root(), carrier, GETTER);
    }
}
