package dev.kimimesh.gateway.mesh;

import java.util.Arrays;

/** Latencies of one hop (send of a micro-batch to a shard until its answer), kept in a ring for percentiles. */
public final class HopLatency {
    private final String hop;
    private final long[] ring = new long[65536];
    private long count;

    public HopLatency(String hop) {
        this.hop = hop;
    }

    public String hop() {
        return hop;
    }

    public synchronized void record(long nanos) {
        ring[(int) (count++ % ring.length)] = nanos;
    }

    public synchronized long count() {
        return count;
    }

    public synchronized void reset() {
        count = 0;
    }

    /** The q-quantile (0..1) in microseconds of the recorded latencies; 0 when none. */
    public synchronized double percentileMicros(double q) {
        int n = (int) Math.min(count, ring.length);
        if (n == 0) return 0;
        long[] v = Arrays.copyOf(ring, n);
        Arrays.sort(v);
        return v[Math.min(n - 1, (int) Math.floor(q * n))] / 1000.0;
    }
}
