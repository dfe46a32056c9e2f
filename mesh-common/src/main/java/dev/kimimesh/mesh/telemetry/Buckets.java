package dev.kimimesh.mesh.telemetry;

import java.time.Duration;

/**
 * Histogram bucket bounds of the mesh's metrics: fixed, few and the same in every service, so dashboards can
 * aggregate across services (Micrometer's default percentile histogram would publish ~70 buckets per timer).
 */
public final class Buckets {
    private Buckets() {}

    /** Latencies from 0.5 ms (a decode hop on a GPU) to 60 s (a long prefill chunk on a CPU). */
    public static final Duration[] LATENCY = seconds(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
            10, 30, 60);

    /** Counts of tokens, rows or sequences per batch: powers of two up to 8192. */
    public static final double[] SIZES = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

    private static Duration[] seconds(double... s) {
        Duration[] d = new Duration[s.length];
        for (int i = 0; i < s.length; i++) d[i] = Duration.ofNanos(Math.round(s[i] * 1e9));
        return d;
    }
}
