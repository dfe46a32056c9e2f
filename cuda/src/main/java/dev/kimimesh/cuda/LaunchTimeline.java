package dev.kimimesh.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A GPU-side timeline of the work one piece of host code queues (GpuBench {@code --timeline}): the machines have no
 * Nsight Systems, and Nsight Compute's kernel list says how long kernels run, not where the GPU waited for the host.
 * While on, every operation queued on the device's stream (a kernel launch, a cuBLAS call, a copy or memset) is
 * bracketed by two CUDA events, and the host's clock is read at both; host waits (stream synchronisation, cuMemAlloc)
 * are timed on the host. The event after op i and the event before op i + 1 sit next to each other on the stream,
 * so the GPU time between them is time the GPU had nothing queued: it waited for the host. Off (the default) each hook
 * is one static field read.
 *
 * <p>The two events add about 2 x 2 us of host time and a microsecond or so of GPU time per op: the timed run is a
 * little slower than an unobserved one.
 */
public final class LaunchTimeline {
    /** The timeline being recorded, or null (off). One thread records: the hooks are called on the queueing thread. */
    private static LaunchTimeline on;

    private final MemorySegment stream;
    private final List<MemorySegment> events = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    private final List<long[]> host = new ArrayList<>(); // {before, after} nanoTime per op
    private final List<Object[]> waits = new ArrayList<>(); // {what, start ns, end ns, ops queued before it}
    private MemorySegment origin;
    private long hostOrigin, hostEnd;
    private int used;

    private LaunchTimeline(MemorySegment stream, int capacity) {
        this.stream = stream;
        for (int i = 0; i < capacity; i++) events.add(Driver.eventCreate());
    }

    /** Before queueing op {@code what} on the stream. */
    static void before(String what) {
        LaunchTimeline t = on;
        if (t != null) t.mark(what);
    }

    /** After queueing the op named by the last {@link #before}. */
    static void after() {
        LaunchTimeline t = on;
        if (t != null) t.markAfter();
    }

    /** The host starts waiting ({@code what}: a synchronisation, a cuMemAlloc); returns the start time, or 0 when off. */
    static long waitStart() {
        return on == null ? 0 : System.nanoTime();
    }

    /** The wait begun at {@code start} (from {@link #waitStart}) ended. */
    static void waitEnd(String what, long start) {
        LaunchTimeline t = on;
        if (t != null && start != 0) t.waits.add(new Object[] {what, start, System.nanoTime(), t.names.size()});
    }

    private MemorySegment event() {
        if (used == events.size()) events.add(Driver.eventCreate());
        return events.get(used++);
    }

    private void mark(String what) {
        names.add(what);
        long b = System.nanoTime();
        Driver.eventRecord(event(), stream);
        host.add(new long[] {b, 0});
    }

    private void markAfter() {
        Driver.eventRecord(event(), stream);
        host.get(host.size() - 1)[1] = System.nanoTime();
    }

    /**
     * Runs {@code work} (queued on {@code dev}'s stream by this thread) with the timeline on, waits for the device and
     * returns the report. The stream is synchronised first, so the GPU starts idle.
     */
    static String record(CudaDevice dev, Runnable work) {
        if (on != null) throw new IllegalStateException("a timeline is already being recorded");
        dev.synchronize();
        LaunchTimeline t = new LaunchTimeline(dev.stream, 4096);
        t.origin = Driver.eventCreate();
        Driver.eventRecord(t.origin, dev.stream);
        t.hostOrigin = System.nanoTime();
        on = t;
        try {
            work.run();
        } finally {
            on = null;
        }
        t.hostEnd = System.nanoTime();
        dev.synchronize();
        try {
            return t.report();
        } finally {
            for (MemorySegment e : t.events) Driver.eventDestroy(e);
            Driver.eventDestroy(t.origin);
        }
    }

    /** The phase of a prefill an op belongs to, from its name. */
    static String phase(String op) {
        if (op.startsWith("rms_norm") || op.startsWith("add_rms_norm") || op.startsWith("kda_output_norm")) return "norms";
        if (op.startsWith("short_conv")) return "short conv";
        if (op.startsWith("kda_")) return "KDA";
        if (op.startsWith("mla_")) return "MLA";
        if (op.startsWith("moe_route") || op.startsWith("moe_pair_count") || op.startsWith("moe_pair_scan")) return "MoE routing";
        if (op.startsWith("DtoH")) return "read-back";
        if (op.startsWith("moe_pair_fill") || op.startsWith("memset") || op.startsWith("HtoD")) return "uploads, MoE layout";
        if (op.startsWith("gemm batched") || op.startsWith("gather_rows") || op.startsWith("moe_gather") || op.startsWith("moe_swiglu")) {
            return "expert GEMMs + glue";
        }
        if (op.startsWith("moe_combine") || op.startsWith("scatter_add")) return "MoE combine";
        if (op.startsWith("gemm")) return "linear GEMMs";
        return "other glue";
    }

    private String report() {
        int n = names.size();
        double[] gs = new double[n], ge = new double[n], hb = new double[n], ha = new double[n];
        for (int i = 0; i < n; i++) {
            gs[i] = Driver.elapsedMs(origin, events.get(2 * i));
            ge[i] = Driver.elapsedMs(origin, events.get(2 * i + 1));
            hb[i] = (host.get(i)[0] - hostOrigin) / 1e6;
            ha[i] = (host.get(i)[1] - hostOrigin) / 1e6;
        }
        List<Wait> w = new ArrayList<>();
        for (Object[] x : waits) w.add(new Wait((String) x[0], ((long) x[1] - hostOrigin) / 1e6, ((long) x[2] - hostOrigin) / 1e6, (int) x[3]));
        return report(names, gs, ge, hb, ha, w, (hostEnd - hostOrigin) / 1e6);
    }

    /** A host wait of {@code what} from {@code start} to {@code end} ms, after {@code before} ops had been queued. */
    record Wait(String what, double start, double end, int before) {}

    /**
     * The report of ops {@code names} whose before / after events the GPU reached at {@code gs} / {@code ge} ms and whose
     * host calls began / returned at {@code hb} / {@code ha} ms (one origin: the GPU was idle at 0), with the host's
     * waits; {@code wall}: host ms from the origin to the end of the work.
     */
    static String report(List<String> names, double[] gs, double[] ge, double[] hb, double[] ha, List<Wait> waits, double wall) {
        int n = names.size();
        // host waits by the op they preceded
        double[] waitBefore = new double[n + 1];
        String[] waitWhat = new String[n + 1];
        double waitSum = 0;
        Map<String, double[]> waitKinds = new LinkedHashMap<>();
        for (Wait w : waits) {
            double ms = w.end() - w.start();
            int at = w.before();
            waitBefore[at] += ms;
            waitWhat[at] = waitWhat[at] == null ? w.what() : waitWhat[at] + "+" + w.what();
            waitSum += ms;
            double[] k = waitKinds.computeIfAbsent(w.what(), x -> new double[2]);
            k[0]++;
            k[1] += ms;
        }
        StringBuilder s = new StringBuilder();
        double busy = 0, idle = 0;
        Map<String, double[]> byPhase = new LinkedHashMap<>(); // ops, GPU ms, idle before ms, host ms
        double[] gap = new double[n];
        for (int i = 0; i < n; i++) {
            gap[i] = Math.max(0, gs[i] - (i == 0 ? 0 : ge[i - 1]));
            busy += ge[i] - gs[i];
            idle += gap[i];
            double hostMs = ha[i] - (i == 0 ? 0 : ha[i - 1]) - waitBefore[i];
            double[] p = byPhase.computeIfAbsent(phase(names.get(i)), x -> new double[4]);
            p[0]++;
            p[1] += ge[i] - gs[i];
            p[2] += gap[i];
            p[3] += hostMs;
        }
        double gpuEnd = n == 0 ? 0 : ge[n - 1], bigIdle = 0;
        int big = 0;
        for (double g : gap) {
            if (g >= 0.005) {
                big++;
                bigIdle += g;
            }
        }
        s.append(String.format(Locale.ROOT,
                "timeline: %d ops queued; host: %.3f ms from the first op to the last return, of which %.3f ms waiting (%s)%n", n, wall,
                waitSum, kinds(waitKinds)));
        s.append(String.format(Locale.ROOT,
                "timeline: GPU: last op done at %.3f ms; busy %.3f ms (op intervals, events included), idle %.3f ms (nothing queued: waiting for the host), %.3f ms of it in %d gaps of 5 us or more%n",
                gpuEnd, busy, idle, bigIdle, big));
        s.append(String.format(Locale.ROOT, "timeline: %-22s %5s %10s %12s %10s%n", "phase", "ops", "GPU ms", "idle before", "host ms"));
        for (Map.Entry<String, double[]> e : byPhase.entrySet()) {
            double[] p = e.getValue();
            s.append(String.format(Locale.ROOT, "timeline: %-22s %5d %10.3f %12.3f %10.3f%n", e.getKey(), (int) p[0], p[1], p[2], p[3]));
        }
        // where the GPU waited: the largest gaps, with what the host did in between
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Double.compare(gap[b], gap[a]));
        s.append("timeline: largest GPU idle gaps (the op the GPU waited for; host time since the previous op was queued)\n");
        for (int j = 0; j < Math.min(16, n); j++) {
            int i = order[j];
            if (gap[i] < 0.005) break;
            double hostMs = hb[i] - (i == 0 ? 0 : ha[i - 1]);
            s.append(String.format(Locale.ROOT, "timeline:   %8.3f ms idle before op %d %s at GPU %.3f ms (after %s); host %.3f ms between%s%n",
                    gap[i], i, names.get(i), gs[i], i == 0 ? "the start" : names.get(i - 1), hostMs,
                    waitWhat[i] == null ? "" : String.format(Locale.ROOT, ", of which %.3f ms in %s", waitBefore[i], waitWhat[i])));
        }
        // the host's lead: how far ahead of the GPU the host queued, at each host wait and at the end
        s.append("timeline: GPU idle between host waits (segments end where the host waited on the device)\n");
        int from = 0;
        double idleSeg = 0, busySeg = 0;
        for (int i = 0; i <= n; i++) {
            boolean end = i == n || waitWhat[i] != null;
            if (end && i > from) {
                s.append(String.format(Locale.ROOT, "timeline:   ops %d..%d (%s .. %s): GPU %.3f..%.3f ms, busy %.3f, idle %.3f ms%s%n", from, i - 1,
                        names.get(from), names.get(i - 1), gs[from], ge[i - 1], busySeg, idleSeg,
                        waitWhat[i] != null ? String.format(Locale.ROOT, "; then the host waited %.3f ms (%s)", waitBefore[i], waitWhat[i]) : ""));
                from = i;
                idleSeg = busySeg = 0;
            }
            if (i < n) {
                idleSeg += gap[i];
                busySeg += ge[i] - gs[i];
            }
        }
        return s.toString();
    }

    private static String kinds(Map<String, double[]> k) {
        if (k.isEmpty()) return "none";
        StringBuilder s = new StringBuilder();
        for (Map.Entry<String, double[]> e : k.entrySet()) {
            if (!s.isEmpty()) s.append(", ");
            s.append(String.format(Locale.ROOT, "%d %s %.3f ms", (int) e.getValue()[0], e.getKey(), e.getValue()[1]));
        }
        return s.toString();
    }
}
