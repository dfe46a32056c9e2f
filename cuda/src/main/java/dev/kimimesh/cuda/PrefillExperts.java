package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.config.RouterWeights;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A prefill's routed experts with the routing grouped on the device (moe_prefill.cu), for the bf16-compute glue. The
 * host path downloads the T x k routing, groups it in Java and uploads row lists, pair weights and a scatter table per
 * glue group while the device waits (a 32k prefill: 262,144 pairs a layer). Here the device routes, counts each
 * expert's rows and places every pair (a stable counting sort: the host grouping's layout); the host reads back only
 * the E counts, which it needs for the GEMM shapes, then queues the same gather, GEMMs and SwiGLU as
 * {@link MoeKernels#groupBf16}, and a combine that reads each row's pairs from the routing itself. Same bits as the
 * host-routed bf16 glue (the kernel checks compare the two).
 */
final class PrefillExperts {
    private PrefillExperts() {}

    /**
     * {@code -Dkimimesh.cuda.moeRouting}: {@code device} (this class; the default since its H100 check of 2026-12-06:
     * the same bits as the host grouping, 32k prefill 0.168 -> 0.152 s) or {@code host} (the routing read back and
     * grouped on the host), for routed experts of more rows than the decode path's grouped kernels take, in the
     * bf16-compute mode with bf16 operands (other modes always group on the host).
     */
    static final boolean DEVICE_ROUTING = routingMode(System.getProperty("kimimesh.cuda.moeRouting", "device"));

    private static boolean routingMode(String m) {
        if (m.equals("host") || m.equals("device")) return m.equals("device");
        throw new IllegalArgumentException("kimimesh.cuda.moeRouting must be host or device, not " + m);
    }

    /** Rows a chunk of moe_pair_count / moe_pair_fill takes (MP_ROWS, one block of that many threads). */
    private static final int CHUNK = 128;

    /**
     * Routes by {@code logits} and adds the routed experts' weighted sums into {@code out}, with {@code glue} BF16 (one
     * GEMM per expert) or BATCHED (the padded buckets of {@link ExpertBuckets}). Returns false, having queued nothing,
     * when the shapes do not suit it (the caller then routes on the host).
     */
    static boolean run(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, CudaTensor x, ExpertWeights[] experts,
                       CudaTensor out, MoeKernels.Glue glue) {
        return run(be, logits, bias, spec, x, experts, out, glue, ONCE_ROWS, BF16_INTERMEDIATE);
    }

    /**
     * {@code -Dkimimesh.cuda.moeIntermediate}: {@code bf16} (the default since the lead's H100 check of 2026-12-06
     * night: the expert GEMMs write bf16 gate, up and down, half the bytes of the SwiGLU's and the combine's reads; two
     * more roundings, so not the host path's bits: a 32k prefill 0.103-0.104 s against 0.107-0.108, goldens of the
     * bf16 mode the same 14/26 with the passing cases' figures unchanged) or {@code fp32} (the host path's values).
     * This path serves the bf16-compute mode only.
     */
    static final boolean BF16_INTERMEDIATE = intermediate(System.getProperty("kimimesh.cuda.moeIntermediate", "bf16"));

    private static boolean intermediate(String m) {
        if (m.equals("fp32") || m.equals("bf16")) return m.equals("bf16");
        throw new IllegalArgumentException("kimimesh.cuda.moeIntermediate must be fp32 or bf16, not " + m);
    }

    /**
     * Layout rows up to which the expert outputs of all glue groups are kept and combined in one pass at the end (a
     * 32k prefill of the bench model: 262,144 rows, 2.4 GB); above, each group is combined after its GEMMs (one pass
     * over the output per group, as the host path's scatter). The same sums in the same order either way.
     */
    static final int ONCE_ROWS = 1 << 19;

    /**
     * {@link #run} with the one-pass combine up to {@code onceRows} layout rows (kernel checks pass 0 for the per-group
     * form) and the expert GEMMs writing bf16 when {@code bf16Mid}.
     */
    static boolean run(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, CudaTensor x, ExpertWeights[] experts,
                       CudaTensor out, MoeKernels.Glue glue, int onceRows, boolean bf16Mid) {
        if (out.rows() != logits.rows() || out.cols() != x.cols() || out.ptr() % 16 != 0) return false;
        Started s = start(be, logits, bias, spec, x, experts, glue, onceRows, bf16Mid, false);
        return s != null && finish(s, out);
    }

    /**
     * {@code -Dkimimesh.cuda.moeReadback}: {@code early} (the default since the lead's H100 call of 2026-12-06: the
     * bf16 mode's goldens the same 12 misses with the same figures as {@code sync}, and with prep v6 a 32k prefill
     * 0.101-0.103 s against 0.105 s; see below), {@code overlap} (the routing and the count
     * read-back are queued when the
     * layer starts its routed experts, before its shared expert's down projection, and the host waits on an event after
     * the counts' copy, not on the whole stream: the device runs the shared expert while the host waits and computes the
     * layout) or {@code sync} (the earlier order: the shared expert first, then the routing and a stream
     * synchronisation). The same kernels on the same values either way: the shared expert writes {@code out} before
     * the routed sums are added, as before.
     */
    static final String READBACK = readbackMode(System.getProperty("kimimesh.cuda.moeReadback", "early"));
    static final boolean OVERLAP = !READBACK.equals("sync");
    /**
     * {@code -Dkimimesh.cuda.moeReadback=early}: as {@code overlap}, and the MoE layer computes its router logits
     * alone before the shared expert ({@link CudaBackend#routeFirst}), so that the shared expert's gate, up, SwiGLU and
     * down (about 1 ms of a 32k prefill's layer) all run while the host waits for the counts, not only its down.
     */
    static final boolean EARLY = READBACK.equals("early");

    private static String readbackMode(String m) {
        if (m.equals("overlap") || m.equals("sync") || m.equals("early")) return m;
        throw new IllegalArgumentException("kimimesh.cuda.moeReadback must be sync, overlap or early, not " + m);
    }

    /** What {@link #start} queued (routing, counts, their copy to the host) and what {@link #finish} needs. */
    static final class Started {
        final CudaBackend be;
        final CudaTensor x;
        final ExpertWeights[] experts;
        final MoeKernels.Glue glue;
        final int onceRows, t, e, k, inter, chunks, shared;
        final boolean bf16Mid;
        final DeviceBuffer route, chunkBase, counts;
        final MoeKernels.ExpertTable table;
        /** Page-locked buffer the counts are copied into, and the event after the copy (null: wait on the stream). */
        final Readback.Slot slot;

        Started(CudaBackend be, CudaTensor x, ExpertWeights[] experts, MoeKernels.Glue glue, int onceRows, boolean bf16Mid, int t,
                int e, int k, int inter, int chunks, int shared, DeviceBuffer route, DeviceBuffer chunkBase, DeviceBuffer counts,
                MoeKernels.ExpertTable table, Readback.Slot slot) {
            this.be = be;
            this.x = x;
            this.experts = experts;
            this.glue = glue;
            this.onceRows = onceRows;
            this.bf16Mid = bf16Mid;
            this.t = t;
            this.e = e;
            this.k = k;
            this.inter = inter;
            this.chunks = chunks;
            this.shared = shared;
            this.route = route;
            this.chunkBase = chunkBase;
            this.counts = counts;
            this.table = table;
            this.slot = slot;
        }
    }

    /**
     * Page-locked count buffers with their events, one per routing in flight (a device has one in flight at a time in
     * a prefill; the list only grows if starts nest).
     */
    static final class Readback {
        record Slot(MemorySegment host, MemorySegment event) {}

        private final java.util.ArrayDeque<Slot> free = new java.util.ArrayDeque<>();

        synchronized Slot take() {
            Slot s = free.poll();
            return s != null ? s : new Slot(Driver.memAllocHost(4L * 1024), Driver.eventCreateForSync());
        }

        synchronized void give(Slot s) {
            free.push(s);
        }
    }

    /** {@link #start} with this process's settings and an event wait (the overlapped read-back). */
    static Started start(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, CudaTensor x, ExpertWeights[] experts,
                         MoeKernels.Glue glue) {
        return start(be, logits, bias, spec, x, experts, glue, ONCE_ROWS, BF16_INTERMEDIATE, true);
    }

    /**
     * Queues the routing, each expert's row count and the counts' copy to the host; null, having queued nothing, when
     * the shapes do not suit this path. {@code event}: the copy goes to a page-locked buffer of its own followed by an
     * event, so that other work can be queued before {@link #finish} waits on it; else finish synchronises the stream.
     */
    static Started start(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, CudaTensor x, ExpertWeights[] experts,
                         MoeKernels.Glue glue, int onceRows, boolean bf16Mid, boolean event) {
        int t = logits.rows(), e = logits.cols(), k = spec.topK(), h = x.cols();
        if (glue == MoeKernels.Glue.CONVERT || t == 0 || k > 64 || e > 1024 || e != experts.length) return null;
        if (x.rows() != t) return null;
        MoeKernels.ExpertTable table = be.expertTable(experts);
        if (table == null || table.hidden() != h || !MoeKernels.bf16Glue(x, experts, table.inter())) return null;
        CudaDevice dev = be.dev;
        long pairs = (long) t * k;
        int chunks = (t + CHUNK - 1) / CHUNK;
        DeviceBuffer route = dev.scratch(8L * pairs), chunkBase = dev.scratch(4L * chunks * e), counts = dev.scratch(4L * e);
        long de = route.ptr, dw = route.ptr + 4L * pairs;
        route(be, logits, bias, spec, de, dw, ROUTE_ROWS);
        int shared = 4 * e * (CHUNK / 32);
        dev.moePrefill.launch("moe_pair_count", chunks, 1, 1, CHUNK, shared, dev.stream, de, t, k, e, table.ptr(), chunkBase.ptr);
        dev.moePrefill.launch("moe_pair_scan", 1, 1, 1, Math.min(1024, (e + 31) / 32 * 32), 0, dev.stream, chunkBase.ptr, chunks, e,
                counts.ptr);
        Readback.Slot slot = null;
        if (event) {
            slot = dev.moeReadback().take();
            Driver.copyDtoH(slot.host(), counts.ptr, 4L * e, dev.stream);
            Driver.eventRecord(slot.event(), dev.stream);
        }
        return new Started(be, x, experts, glue, onceRows, bf16Mid, t, e, k, table.inter(), chunks, shared, route, chunkBase, counts,
                table, slot);
    }

    /**
     * Waits for the counts of {@link #start}, then queues the pair placement, the expert GEMMs and the combine into
     * {@code out}. False, having added nothing, when {@code out} does not suit this path (the caller then takes the host
     * routing).
     */
    static boolean finish(Started s, CudaTensor out) {
        CudaBackend be = s.be;
        CudaDevice dev = be.dev;
        CudaTensor x = s.x;
        int t = s.t, e = s.e, k = s.k, h = x.cols(), inter = s.inter, chunks = s.chunks, shared = s.shared;
        MoeKernels.Glue glue = s.glue;
        DeviceBuffer route = s.route, chunkBase = s.chunkBase;
        int[] count;
        if (s.slot != null) {
            Driver.eventSynchronize(s.slot.event());
            count = new int[e];
            MemorySegment.copy(s.slot.host(), ValueLayout.JAVA_INT, 0, count, 0, e);
            dev.moeReadback().give(s.slot);
        } else {
            count = downloadInts(dev, s.counts.ptr, e);
        }
        dev.free(s.counts);
        if (out.rows() != t || out.cols() != h || out.ptr() % 16 != 0) {
            dev.free(route);
            dev.free(chunkBase);
            return false;
        }
        long pairs = (long) t * k;
        long de = route.ptr, dw = route.ptr + 4L * pairs;
        MoeKernels.ExpertTable table = s.table;
        ExpertWeights[] experts = s.experts;
        boolean bf16Mid = s.bf16Mid;
        PrefillLayout lay = PrefillLayout.of(count, glue == MoeKernels.Glue.BATCHED);
        if (lay.groups().isEmpty()) {
            dev.free(route);
            dev.free(chunkBase);
            return true;
        }
        int[] offset = lay.offset(), base = lay.base();
        int rows = lay.rows();
        java.util.List<int[]> groups = lay.groups();
        ExpertBuckets[] buckets = lay.buckets();
        DeviceBuffer pairRow = dev.scratch(4L * rows), pairPos = dev.scratch(4L * pairs), dStart = dev.ints(lay.start());
        // padding rows of the batched layout gather row 0 (real data; their outputs are never read)
        if (glue == MoeKernels.Glue.BATCHED) Driver.memsetD32(pairRow.ptr, 0, rows, dev.stream);
        dev.moePrefill.launch("moe_pair_fill", chunks, 1, 1, CHUNK, shared, dev.stream, de, t, k, e, table.ptr(), chunkBase.ptr,
                dStart.ptr, pairRow.ptr, pairPos.ptr);
        boolean once = rows <= s.onceRows;
        int mid = bf16Mid ? Cublas.R_16BF : Cublas.R_32F, es = bf16Mid ? 2 : 4;
        DeviceBuffer downAll = once ? dev.scratch((long) es * rows * h) : null;
        for (int g = 0; g < groups.size(); g++) {
            int e0 = groups.get(g)[0], e1 = groups.get(g)[1];
            int nr = lay.groupRows(g);
            DeviceBuffer gate = dev.scratch((long) es * nr * inter), up = dev.scratch((long) es * nr * inter);
            DeviceBuffer down = once ? null : dev.scratch((long) es * nr * h);
            long downPtr = once ? downAll.ptr + (long) es * base[g] * h : down.ptr;
            MoeKernels.groupBf16(be, x, pairRow.ptr + 4L * base[g], nr, e0, e1, count, offset, offset[e0], experts, inter, gate.ptr,
                    up.ptr, downPtr, mid, buckets[g]);
            if (!once) {
                combine(dev, t, downPtr, bf16Mid, de, dw, pairPos, out, k, e0, e1, base[g]);
                dev.free(down);
            }
            dev.free(gate);
            dev.free(up);
        }
        if (once) {
            combine(dev, t, downAll.ptr, bf16Mid, de, dw, pairPos, out, k, 0, e, 0);
            dev.free(downAll);
        }
        for (DeviceBuffer b : new DeviceBuffer[] {route, chunkBase, pairRow, pairPos, dStart}) dev.free(b);
        return true;
    }

    /**
     * {@code -Dkimimesh.cuda.prefillRoute}: {@code rows} (default since branch glue4's H100 calls of 2026-12-06, where it
     * was bit-identical to moe_route in every kernel check and took 0.25 instead of 1.04 ms of a 32k prefill:
     * moe_route_rows*, a warp a row; the same experts and weights) or {@code block} (moe_route, a block of 256 threads
     * a row, the earlier kernel) for the routing of this path.
     */
    static final boolean ROUTE_ROWS = routeMode(System.getProperty("kimimesh.cuda.prefillRoute", "rows"));

    private static boolean routeMode(String m) {
        if (m.equals("block") || m.equals("rows")) return m.equals("rows");
        throw new IllegalArgumentException("kimimesh.cuda.prefillRoute must be block or rows, not " + m);
    }

    /**
     * Queues the routing of every row into experts / weights ([T, k] ints and floats): with {@code rows} by a warp a row
     * where the router allows it (sigmoid scores, no group limit, up to 1024 experts, top-k up to 32), else moe_route.
     */
    static void route(CudaBackend be, CudaTensor logits, Weight bias, RouterSpec spec, long experts, long weights, boolean rows) {
        int t = logits.rows(), e = logits.cols(), k = spec.topK();
        if (!rows || spec.softmax() || spec.numExpertGroup() > 1 || e > 1024 || k > 32 || k > e || e != spec.numExperts()) {
            be.routeOnDevice(logits, bias, spec, experts, weights);
            return;
        }
        CudaDevice dev = be.dev;
        dev.moePrefill.launch(e <= 256 ? "moe_route_rows8" : "moe_route_rows32", (t + 7) / 8, 1, 1, 256, 0, dev.stream, logits.ptr(),
                bias == null ? 0L : be.floats(CudaWeight.cast(bias)), t, e, k, spec.renormalize() ? 1 : 0,
                spec.weights() == RouterWeights.BIAS_CORRECTED ? 1 : 0, spec.routedScalingFactor(),
                experts, weights);
    }

    /** out[r] += the row's pairs of experts [e0, e1) in ascending expert order, their outputs at layout row - base in down. */
    private static void combine(CudaDevice dev, int t, long down, boolean bf16, long experts, long weights, DeviceBuffer pairPos,
                                CudaTensor out, int k, int e0, int e1, int base) {
        dev.moePrefill.launch(bf16 ? "moe_combine_pairs_bf16" : "moe_combine_pairs", t, 1, 1, 256, 0, dev.stream, down, experts, weights,
                pairPos.ptr, out.ptr(), k, out.cols(), e0, e1, base);
    }

    /** Reads {@code n} ints back (the stream's work so far completes first). */
    private static int[] downloadInts(CudaDevice dev, long ptr, int n) {
        int[] v = new int[n];
        synchronized (dev) {
            MemorySegment s = dev.downloadBuffer(4L * n);
            Driver.copyDtoH(s, ptr, 4L * n, dev.stream);
            dev.synchronize();
            MemorySegment.copy(s, ValueLayout.JAVA_INT, 0, v, 0, n);
        }
        return v;
    }
}
