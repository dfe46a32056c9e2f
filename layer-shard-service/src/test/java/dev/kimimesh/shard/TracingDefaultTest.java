package dev.kimimesh.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kimimesh.mesh.telemetry.TracingDefault;
import io.smallrye.config.ConfigSourceContext;
import io.smallrye.config.ConfigValue;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.eclipse.microprofile.config.spi.ConfigSource;
import org.junit.jupiter.api.Test;

/** Tracing is off unless someone configured an OTLP endpoint; Quarkus's built-in default endpoint does not count. */
class TracingDefaultTest {
    @Test
    void offWithoutAnEndpoint() {
        assertEquals("true", sdkDisabled(Map.of()));
    }

    @Test
    void offWithOnlyQuarkussDefaultEndpoint() {
        assertEquals("true", sdkDisabled(Map.of("quarkus.otel.exporter.otlp.endpoint",
                value("quarkus.otel.exporter.otlp.endpoint", "http://localhost:4317/", Integer.MIN_VALUE))));
    }

    @Test
    void onWithAConfiguredEndpoint() {
        assertEquals("false", sdkDisabled(Map.of("quarkus.otel.exporter.otlp.endpoint",
                value("quarkus.otel.exporter.otlp.endpoint", "http://collector:4317", 300))));
        assertEquals("false", sdkDisabled(Map.of("quarkus.otel.exporter.otlp.traces.endpoint",
                value("quarkus.otel.exporter.otlp.traces.endpoint", "http://collector:4318", 250))));
    }

    private static ConfigValue value(String name, String v, int ordinal) {
        return ConfigValue.builder().withName(name).withValue(v).withConfigSourceOrdinal(ordinal).build();
    }

    private static String sdkDisabled(Map<String, ConfigValue> values) {
        ConfigSourceContext context = new ConfigSourceContext() {
            @Override
            public ConfigValue getValue(String name) {
                return values.get(name);
            }

            @Override
            public List<ConfigSource> getConfigSources() {
                return List.of();
            }

            @Override
            public Iterator<String> iterateNames() {
                return Collections.emptyIterator();
            }
        };
        ConfigSource source = new TracingDefault().getConfigSources(context).iterator().next();
        return source.getValue("quarkus.otel.sdk.disabled");
    }
}
