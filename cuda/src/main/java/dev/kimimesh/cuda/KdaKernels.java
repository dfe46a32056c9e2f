package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Drives the KDA kernels: single tokens (or every token for RECURRENT) through the recurrent kernel and longer
 * segments through the chunkwise pair (state-free per-chunk prep for all chunks at once, then the state-carrying scan
 * per segment). Both take q and k raw and L2-normalise them on the fly.
 * Which chunk kernels run: {@code -Dkimimesh.cuda.kdaPrep=v6} (default since the lead's H100 call of 2026-12-06;
 * {@code kda_chunk_prep_v6}: v5's bits, every fp32 operation in v5's order, with its shared-memory bank conflicts
 * removed by other lane-to-data maps: 3.39 against 3.71 ms at 32k), {@code v5} ({@code kda_chunk_prep_v5}), {@code v4}
 * ({@code kda_chunk_prep}), {@code tc} ({@code kda_chunk_prep_tc}: v5 with its two triangular products on TF32 tensor
 * cores, bf16-compute mode only, opt-in: it passed its H100 check of 2026-12-06 but took 7.3 ms at 32k against v5's 3.6 ms)
 * or {@code tc2} ({@code kda_chunk_prep_tc2}: the same products with equal work per warp and no run-time test around an
 * MMA, bf16-compute mode only) or {@code tc3} ({@code kda_chunk_prep_tc3}: tc2 with 3xTF32 products, about fp32's
 * accuracy, bf16-compute mode only); {@code -Dkimimesh.cuda.kdaScan=v6} (default since its H100 check of 2026-12-06;
 * {@code kda_chunk_scan_v6}, v4's arithmetic with the next chunk's Kd fetched a chunk ahead), {@code v4}
 * ({@code kda_chunk_scan}) or {@code v5} ({@code kda_chunk_scan_v5}). All read and write the same workspace.
 * {@code -Dkimimesh.cuda.kdaChunk=tc} puts the scan's products on tensor cores ({@code kda_chunk_scan_tc}: TF32
 * operands, fp32 sums and state; about 3e-4 relative error, so it is for the bf16-compute mode only, where it is the
 * default); {@code fp32} (the default of the exact modes) keeps the IEEE fp32 scan that {@code kdaScan} names.
 */
final class KdaKernels {
    static final int CHUNK = 64;
    private static final String PREP = prepKernel(System.getProperty("kimimesh.cuda.kdaPrep", defaultPrep(
            Gemm.mode(System.getProperty("kimimesh.cuda.gemm", "split")))));
    private static final String SCAN = scanKernel(System.getProperty("kimimesh.cuda.kdaScan", "v6"));
    static final String SCAN_TC = "kda_chunk_scan_tc";
    /** Whether the chunk prep takes TF32 products ({@code kimimesh.cuda.kdaPrep=tc}, {@code tc2} or {@code tc3}). */
    static final boolean PREP_TENSOR_CORES = prepTensorCores(PREP);
    /** Whether prefill chunks take the tensor-core scan ({@code kimimesh.cuda.kdaChunk}). */
    static final boolean TENSOR_CORES = tensorCores(System.getProperty("kimimesh.cuda.kdaChunk", defaultChunkPath(
            Gemm.mode(System.getProperty("kimimesh.cuda.gemm", "split")))));

    /** tc in the bf16-compute mode (since its H100 check of 2026-12-06), fp32 in the exact modes. */
    static String defaultChunkPath(Gemm.Mode gemm) {
        return gemm == Gemm.Mode.BF16 ? "tc" : "fp32";
    }

    static boolean tensorCores(String path) {
        return switch (path) {
            case "tc" -> true;
            case "fp32" -> false;
            default -> throw new IllegalArgumentException("kimimesh.cuda.kdaChunk must be tc or fp32, not " + path);
        };
    }

    /**
     * The prep of a gemm mode when {@code kimimesh.cuda.kdaPrep} is not set: v6 in every mode (v5's bits without its
     * shared-memory bank conflicts: the whole workspace equal to v5's word for word on every harness case, the exact
     * goldens 26/26 and the bf16 mode's the same figures, 3.39 against 3.71 ms at 32k on an H100, 2026-12-06).
     */
    static String defaultPrep(Gemm.Mode gemm) {
        return "v6";
    }

    /** Whether a prep kernel rounds operands to TF32 (so that only the bf16-compute mode's tolerance holds). */
    static boolean prepTensorCores(String kernel) {
        return kernel.equals("kda_chunk_prep_tc") || kernel.equals("kda_chunk_prep_tc2") || kernel.equals("kda_chunk_prep_tc3");
    }

    static String prepKernel(String version) {
        return switch (version) {
            case "v5" -> "kda_chunk_prep_v5";
            // v5's bits under a conflict-free lane map for the norms and the products (exact in every mode)
            case "v6" -> "kda_chunk_prep_v6";
            case "v4" -> "kda_chunk_prep";
            // v5 with its two triangular products on TF32 tensor cores: for the bf16-compute mode, opt-in (checked on
            // an H100 on 2026-12-06 and twice as slow as v5 there)
            case "tc" -> "kda_chunk_prep_tc";
            // the same products laid out for the tensor cores (kda_tc.cuh, kda_prep_products_tc2): bf16-compute mode
            case "tc2" -> "kda_chunk_prep_tc2";
            // tc2 with 3xTF32 products (about fp32's accuracy): bf16-compute mode
            case "tc3" -> "kda_chunk_prep_tc3";
            default -> throw new IllegalArgumentException("kimimesh.cuda.kdaPrep must be v5, v6, v4, tc, tc2 or tc3, not " + version);
        };
    }

    static String scanKernel(String version) {
        return switch (version) {
            case "v4" -> "kda_chunk_scan";
            case "v5" -> "kda_chunk_scan_v5";
            case "v6" -> "kda_chunk_scan_v6";
            default -> throw new IllegalArgumentException("kimimesh.cuda.kdaScan must be v4, v5 or v6, not " + version);
        };
    }

    /** Shared bytes of a chunk scan kernel at head dim d, as laid out in kda.cu. */
    static int scanShared(String kernel, int d) {
        // W, Qp, Kd [CH][d+4] | u0, o0, U [CH][32] | S [d][32] | decay [d]
        int floats = 3 * CHUNK * (d + 4) + 3 * CHUNK * 32 + d * 32 + d;
        return 4 * switch (kernel) {
            case "kda_chunk_scan_v5" -> floats + 4 * 2 * CHUNK * 32; // + partial sums [4][2][CH][32]
            case "kda_chunk_scan_v6" -> floats + CHUNK * (d + 4) + d; // + the other chunk parity's Kd | decay
            case SCAN_TC -> (d + CHUNK) * 34; // S [d][34] | U [CH][34] only: the A operands go to registers
            default -> floats;
        };
    }

    private KdaKernels() {}

    static void run(CudaBackend be, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor g, CudaTensor beta, int heads, int d,
                    Segments seg, Tensor[] states, KdaForm form, CudaTensor out) {
        run(be, q, k, v, g, beta, heads, d, seg, states, form, out, TENSOR_CORES);
    }

    /** {@link #run} with the chunk scan chosen by the caller: tensorCores selects kda_chunk_scan_tc. */
    static void run(CudaBackend be, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor g, CudaTensor beta, int heads, int d,
                    Segments seg, Tensor[] states, KdaForm form, CudaTensor out, boolean tensorCores) {
        run(be, q, k, v, g, beta, heads, d, seg, states, form, out, tensorCores, PREP);
    }

    /** {@link #run} with the chunk scan and the prep kernel (a {@link #prepKernel} name) chosen by the caller. */
    static void run(CudaBackend be, CudaTensor q, CudaTensor k, CudaTensor v, CudaTensor g, CudaTensor beta, int heads, int d,
                    Segments seg, Tensor[] states, KdaForm form, CudaTensor out, boolean tensorCores, String prep) {
        CudaDevice dev = be.dev;
        String scan = tensorCores ? SCAN_TC : SCAN;
        int t = q.rows(), width = heads * d;
        if (d > 128 || d % 32 != 0) throw new IllegalArgumentException("kda: head dim " + d + " must be a multiple of 32 up to 128");
        for (CudaTensor x : new CudaTensor[] {q, k, v, g, out}) {
            if (x.rows() != t || x.cols() != width) throw new IllegalArgumentException("kda: " + x + " is not " + t + "x" + width);
        }
        if (beta.rows() != t || beta.cols() != heads) throw new IllegalArgumentException("kda: beta " + beta + " is not " + t + "x" + heads);
        if (states.length != seg.count()) throw new IllegalArgumentException("kda: " + states.length + " states for " + seg.count() + " segments");
        if (seg.totalRows() != t) throw new IllegalArgumentException("kda: segments cover " + seg.totalRows() + " rows of " + t);
        if (t == 0) return;
        long[] statePtr = new long[states.length];
        for (int i = 0; i < states.length; i++) {
            CudaTensor s = CudaTensor.cast(states[i]);
            if (s.rows() != width || s.cols() != d) throw new IllegalArgumentException("kda: state " + i + " is " + s);
            statePtr[i] = s.ptr();
        }
        int[] starts = CudaBackend.starts(seg);
        List<Integer> rec = new ArrayList<>(), chunked = new ArrayList<>();
        for (int i = 0; i < seg.count(); i++) {
            boolean c = form == KdaForm.CHUNKED || (form == KdaForm.AUTO && seg.length(i) > 1);
            (c ? chunked : rec).add(i);
        }
        float scale = (float) (1.0 / Math.sqrt(d));
        // q and k go in raw: the recurrent kernel and the chunk prep each take the L2 norms themselves (the same sums),
        // so no pass writes and re-reads normalised copies
        if (!rec.isEmpty()) {
            long[] sp = new long[rec.size()];
            int[] st = new int[rec.size()], ln = new int[rec.size()];
            for (int j = 0; j < sp.length; j++) {
                int i = rec.get(j);
                sp[j] = statePtr[i];
                st[j] = starts[i];
                ln[j] = seg.length(i);
            }
            DeviceBuffer tab = dev.table(sp, st, ln);
            long stp = tab.ptr + 8L * sp.length, lnp = stp + 4L * st.length;
            dev.kda.launch("kda_recurrent", heads, sp.length, d / 32, 256, 0, dev.stream, q.ptr(), k.ptr(), v.ptr(), g.ptr(),
                    beta.ptr(), tab.ptr, stp, lnp, out.ptr(), heads, d, 1, scale);
            dev.free(tab);
        }
        if (!chunked.isEmpty()) {
            // the chunk kernels read and write rows with 16-byte copies (cp.async): every row start must be 16-byte aligned
            for (CudaTensor x : new CudaTensor[] {q, k, v, g, out}) {
                if (x.ptr() % 16 != 0) throw new IllegalArgumentException("kda: " + x + " is not 16-byte aligned");
            }
            int segs = chunked.size(), chunks = 0;
            for (int i : chunked) chunks += (seg.length(i) + CHUNK - 1) / CHUNK;
            long[] sp = new long[segs];
            int[] first = new int[segs], count = new int[segs], rows = new int[chunks], lens = new int[chunks];
            for (int j = 0, at = 0; j < segs; j++) {
                int i = chunked.get(j);
                if (statePtr[i] % 16 != 0) throw new IllegalArgumentException("kda: state " + i + " is not 16-byte aligned");
                sp[j] = statePtr[i];
                first[j] = at;
                for (int c0 = 0; c0 < seg.length(i); c0 += CHUNK, at++) {
                    rows[at] = starts[i] + c0;
                    lens[at] = Math.min(CHUNK, seg.length(i) - c0);
                }
                count[j] = at - first[j];
            }
            // one upload of the five tables: states | first chunk | chunk count (per segment) | row | length (per chunk)
            DeviceBuffer tab = dev.table(sp, first, count, rows, lens);
            long dFirst = tab.ptr + 8L * segs, dCount = dFirst + 4L * segs, dRow = dCount + 4L * segs, dLen = dRow + 4L * chunks;
            // per chunk and head, as laid out in kda.cu: u0 | W | Qp | Kd | o0 [CH][d] | M [CH][CH] | decay [d]
            long wsz = 5L * CHUNK * d + (long) CHUNK * CHUNK + d;
            DeviceBuffer ws = dev.scratch(4L * wsz * chunks * heads);
            // shared floats of the prep, as laid out in kda.cu: G, K, Q [CH][d] | L [CH][CH]
            int shared = (3 * CHUNK * d + CHUNK * CHUNK) * 4;
            be.kdaShared(prep, shared);
            int scanShared = scanShared(scan, d);
            be.kdaShared(scan, scanShared);
            dev.kda.launch(prep, chunks, heads, 1, 256, shared, dev.stream, q.ptr(), k.ptr(), v.ptr(), g.ptr(),
                    beta.ptr(), dRow, dLen, ws.ptr, heads, d, scale);
            dev.kda.launch(scan, heads, segs, d / 32, 256, scanShared, dev.stream, ws.ptr, tab.ptr, dFirst, dCount,
                    dRow, dLen, out.ptr(), heads, d);
            dev.free(tab);
            dev.free(ws);
        }
    }
}
