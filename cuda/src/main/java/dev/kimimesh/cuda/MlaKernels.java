package dev.kimimesh.cuda;

import dev.kimimesh.engine.checkpoint.DType;

import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * MLA on the device with cuBLAS fp32 products and a masked-softmax kernel. Single-token segments (decode) use the
 * absorbed form: kv_b_proj folded into the query (q_lat = W_kb^T q_nope) and the output (o = W_vb ctx), attention as
 * MQA over the latent cache. Longer segments expand the cache (k_nope | v = latent W_kvb^T) and attend per head,
 * in query tiles that bound the score buffer, the softmax reading each score row once ({@code mla_softmax_1r}). In the
 * bf16-compute mode ({@code kimimesh.cuda.gemm=bf16}) the prefill's attention runs on bf16 tensor cores: fused
 * (flash attention, no score matrix: on Hopper the wgmma kernels of mla_flash_sm90a.cu, elsewhere
 * {@code mla_flash_bf16_m2s1} in mla_flash.cuh) for the Kimi Linear head shape, else as two cuBLAS products around a
 * softmax.
 */
final class MlaKernels {
    /**
     * Floats per score tile ({@code -Dkimimesh.cuda.mlaScoreFloats}, default 2^28 = 1 GiB): a tile holds
     * budget / (heads x keys) queries, so larger budgets mean fewer, larger GEMMs and a little more work past the
     * causal diagonal inside each tile.
     */
    private static final long SCORE_BUDGET = Long.getLong("kimimesh.cuda.mlaScoreFloats", 1L << 28);

    /**
     * {@code -Dkimimesh.cuda.mlaPrefill}: {@code fast} (default: flash attention in the bf16 mode; one-read softmax and
     * one score GEMM over [k_nope | k_rot] in the exact mode), {@code unfused} (as fast without the flash kernel),
     * {@code loop} (the earlier paths: three-pass softmax, separate rope product, no flash kernel): the last two keep
     * the earlier paths measurable beside the new ones in one build.
     */
    private static final String PREFILL = prefillMode(System.getProperty("kimimesh.cuda.mlaPrefill", "fast"));
    private static final boolean FLASH = PREFILL.equals("fast"), ONE_READ = !PREFILL.equals("loop"), FUSED_ROPE = !PREFILL.equals("loop");

    /** The widest score row the one-read softmax holds (SOFTMAX_RPT x 1024 in mla.cu); longer rows use the loop. */
    static final int ONE_READ_MAX = 32 * 1024;

    private MlaKernels() {}

    private static String prefillMode(String m) {
        if (m.equals("fast") || m.equals("unfused") || m.equals("loop")) return m;
        throw new IllegalArgumentException("kimimesh.cuda.mlaPrefill must be fast, unfused or loop, not " + m);
    }

    /** The one-read softmax's block: the smallest multiple of 32 (at least 128) holding the row at 32 values a thread. */
    static int oneReadThreads(int width) {
        return Math.max(128, ((width + 31) / 32 + 31) / 32 * 32);
    }

    static void run(CudaBackend be, CudaTensor q, Tensor[] latents, Tensor[] kRots, CudaWeight kvB, int heads, int nope, int rope,
                    int vDim, float scale, Segments seg, CudaTensor out) {
        run(be, q, latents, kRots, kvB, heads, nope, rope, vDim, scale, seg, out, CudaBackend.gemmMode() == Gemm.Mode.BF16);
    }

    /** bf16Prefill: segments longer than one token take the bf16-compute path whatever the GEMM mode (kernel checks). */
    static void run(CudaBackend be, CudaTensor q, Tensor[] latents, Tensor[] kRots, CudaWeight kvB, int heads, int nope, int rope,
                    int vDim, float scale, Segments seg, CudaTensor out, boolean bf16Prefill) {
        CudaDevice dev = be.dev;
        int per = nope + vDim, qw = nope + rope;
        if (q.cols() != heads * qw) throw new IllegalArgumentException("mla: q " + q + " is not [T, " + heads * qw + "]");
        if (out.cols() != heads * vDim) throw new IllegalArgumentException("mla: out " + out + " is not [T, " + heads * vDim + "]");
        if (kvB.rows() != heads * per) throw new IllegalArgumentException("mla: " + kvB + " has not " + heads * per + " rows");
        long wkv = be.floats(kvB);
        int r = kvB.cols();
        boolean decode = seg.totalRows() == seg.count();
        if (decode && decodeKernel(r, rope, heads)) {
            splitDecode(be, dev, q, latents, kRots, kvB, wkv, r, heads, nope, rope, vDim, scale, seg, out);
            return;
        }
        // the cuBLAS products take the cache lengths as sizes: a replayed step would keep the recorded ones
        if (dev.arena != null) throw new IllegalStateException("mla: this decode step (R " + r + ", rope " + rope + ") has no recordable kernel");
        if (batchedDecode(seg)) {
            absorbedBatch(be, dev, q, latents, kRots, wkv, r, heads, nope, rope, vDim, scale, seg, out);
            return;
        }
        int[] starts = CudaBackend.starts(seg);
        for (int s = 0; s < seg.count(); s++) {
            CudaTensor lat = CudaTensor.cast(latents[s]), rot = CudaTensor.cast(kRots[s]);
            int len = seg.length(s), pos = seg.position(s), total = pos + len;
            if (lat.rows() < total || lat.cols() != r) throw new IllegalArgumentException("mla: latent cache " + lat + " for " + total + " positions");
            if (rope > 0 && (rot.rows() < total || rot.cols() != rope)) throw new IllegalArgumentException("mla: k_rot cache " + rot);
            CudaTensor qs = q.rowSlice(starts[s], len), os = out.rowSlice(starts[s], len);
            if (len == 1) absorbed(be, dev, qs, lat, rot, wkv, r, heads, nope, rope, vDim, scale, pos, os);
            else if (bf16Prefill) expandedBf16(be, dev, qs, lat, rot, wkv, kvB, r, heads, nope, rope, vDim, scale, len, pos, os);
            else expanded(be, dev, qs, lat, rot, wkv, r, heads, nope, rope, vDim, scale, len, pos, os);
        }
    }

    /**
     * {@code -Dkimimesh.cuda.mlaDecode}: {@code v3} (default, mla_decode_v3.cu: every head of a sequence in one block,
     * each cached row read once), {@code v2} (mla_decode_v2.cu, at most 8 heads a block), {@code v1} (mla_decode.cu)
     * or {@code cublas} (the earlier cuBLAS absorbed decode, not recordable); the others for comparison.
     */
    private static final String DECODE = decodeMode(System.getProperty("kimimesh.cuda.mlaDecode", "v3"));
    private static final boolean KERNEL = !DECODE.equals("cublas");

    private static String decodeMode(String m) {
        if (m.equals("v3") || m.equals("v2") || m.equals("v1") || m.equals("cublas")) return m;
        throw new IllegalArgumentException("kimimesh.cuda.mlaDecode must be v3, v2, v1 or cublas, not " + m);
    }

    /**
     * {@code -Dkimimesh.cuda.mlaDecode=v2}: mla_decode_v2.cu (8 warps a block, every load of a cached row issued before
     * its first product, the context over two thread halves, each range's weight computed once in the combine) in
     * place of mla_decode.cu; same grid, same partial layout. The default from its device check (2026-12-06:
     * kernel checks, goldens, graph vs eager; batch-1 step 0.978 -> 0.835 ms) until v3's.
     */
    static final boolean V2 = DECODE.equals("v2");

    /**
     * {@code -Dkimimesh.cuda.mlaDecode=v3}: mla_decode_v3.cu, up to 32 heads a block (all of Kimi Linear's), so a
     * cached row is read once per sequence instead of once per 8 heads; ranges of {@link #V3_TILE}-position tiles.
     * The default since its H100 check (2026-12-06, docs/gpu-logs/mla3-*.txt: kernel checks and goldens pass, graph
     * vs eager identical; decode at context 32k b1 / b8 / b64 0.904 / 4.474 / 17.146 -> 0.848 / 3.339 / 13.503 ms).
     */
    static final boolean V3 = DECODE.equals("v3");

    /** mla_decode_v3.cu's cached rows a tile, most heads a block and block size. */
    private static final int V3_TILE = 16, V3_HEADS = 32, V3_THREADS = 256;

    /** Positions per sub-chunk and per-block shared floats of the [128][32] second-half context in mla_decode_v2.cu. */
    private static final int V2_CONTEXT_HALF = 128 * 32, V2_MAX_SPLITS = 1024;

    /** Whether mla_decode.cu takes these widths: a thread's four context columns cover R; 16-byte rows; 48 KiB shared. */
    private static boolean decodeKernel(int r, int rope, int heads) {
        // v2 holds a cached row's k_rot part in two float4 per lane of eight: rope <= 64
        if (V3) return r % 4 == 0 && r <= 512 && rope % 4 == 0 && rope <= 64;
        return KERNEL && r % 4 == 0 && r <= 512 && rope % 4 == 0 && (!V2 || rope <= 64)
                && sharedBytes(group(heads), r, rope) <= 48 * 1024;
    }

    private static final int CHUNK = 128, MAX_GROUP = 8;

    /** Heads a block scores together: the largest of 8, 4, 2, 1 that divides the heads. */
    private static int group(int heads) {
        return heads % 8 == 0 ? 8 : heads % 4 == 0 ? 4 : heads % 2 == 0 ? 2 : 1;
    }

    /**
     * mla_decode_v3.cu's dynamic shared memory: q for 32 heads and two tiles of 16 rows at an odd float4 stride, the
     * k-quarters' partial scores [4][16][32], the probabilities [16][32] and three floats a head (155 KiB at R 512, rope 64).
     */
    static int v3SharedBytes(int r, int rope) {
        int ld4 = ((r + rope) / 4) | 1;
        return 16 * (V3_HEADS + 2 * V3_TILE) * ld4 + 4 * (4 * V3_TILE * V3_HEADS + V3_TILE * V3_HEADS + 3 * V3_HEADS);
    }

    private static int sharedBytes(int hg, int r, int rope) {
        // v2 adds the second thread half's context columns ([128 columns of float4][8 heads])
        return 4 * (hg * (r + rope) + CHUNK * MAX_GROUP + (V2 ? V2_CONTEXT_HALF : 0));
    }

    /**
     * Absorbed decode of single-token segments through mla_decode.cu: q_lat = W_kb^T q_nope for all sequences as one
     * batched product, then one split-K pass over every sequence's cache (scores, online softmax and context in one
     * kernel, a block per 128-position range and group of heads) and a combine, then o = W_vb ctx. The positions come
     * from device memory and the grid from the caches' capacity, so a recorded step stays right as the caches fill.
     */
    private static void splitDecode(CudaBackend be, CudaDevice dev, CudaTensor q, Tensor[] latents, Tensor[] kRots, CudaWeight kvB,
                                    long wkv, int r, int heads, int nope, int rope, int vDim, float scale, Segments seg, CudaTensor out) {
        int b = seg.count(), qw = nope + rope, cap = 0;
        long[] table = new long[2 * b];
        for (int s = 0; s < b; s++) {
            CudaTensor lat = CudaTensor.cast(latents[s]), rot = CudaTensor.cast(kRots[s]);
            int total = seg.position(s) + 1;
            if (lat.rows() < total || lat.cols() != r) throw new IllegalArgumentException("mla: latent cache " + lat + " for " + total + " positions");
            if (rot.rows() < total || rot.cols() != Math.max(1, rope)) throw new IllegalArgumentException("mla: k_rot cache " + rot);
            if (rope > 0 && rot.rows() != lat.rows()) throw new IllegalArgumentException("mla: k_rot cache " + rot + " and latent cache " + lat + " differ in rows");
            if ((lat.ptr() | rot.ptr()) % 16 != 0) throw new IllegalArgumentException("mla: caches must be 16-byte aligned");
            table[2 * s] = lat.ptr();
            table[2 * s + 1] = rot.ptr();
            cap = Math.max(cap, lat.rows());
        }
        if (V3) {
            splitDecodeV3(be, dev, q, kvB, wkv, r, heads, nope, rope, vDim, scale, b, cap, table, be.stepPositions(seg), out);
            return;
        }
        int hg = group(heads), groups = heads / hg, chunks = (cap + CHUNK - 1) / CHUNK;
        // enough blocks for every SM twice over at the capacity; a block walks perSplit chunks with an online softmax
        int want = Math.max(1, (2 * dev.multiprocessors + b * groups - 1) / (b * groups));
        int perSplit = (chunks + want - 1) / want;
        // v2's combine keeps one weight per range in a 1024-entry shared array
        if (V2) perSplit = Math.max(perSplit, (chunks + V2_MAX_SPLITS - 1) / V2_MAX_SPLITS);
        int splits = (chunks + perSplit - 1) / perSplit;
        DeviceBuffer tab = dev.longs(table);
        long pos = be.stepPositions(seg);
        CudaTensor qLat = be.uninitialised(b, heads * r), ctx = be.uninitialised(b, heads * r);
        DeviceBuffer acc = dev.scratch(4L * b * splits * heads * r), ml = dev.scratch(8L * b * splits * heads);
        qLat(dev, q, kvB, wkv, r, heads, nope, rope, vDim, b, qLat);
        KernelModule m = V2 ? dev.mlaDecodeV2 : dev.mlaDecode;
        String suffix = V2 ? "_v2" : "";
        m.launch("mla_decode_split" + suffix, splits, groups, b, V2 ? 256 : CHUNK, sharedBytes(hg, r, rope), dev.stream, qLat.ptr(),
                q.ptr(), tab.ptr, pos, acc.ptr, ml.ptr, heads, r, rope, qw, nope, hg, perSplit, scale);
        if (V2 && WIDE_COMBINE) {
            // a block per (head, sequence, 128 columns) instead of per (head, sequence): same sums, more loads in flight
            m.launch("mla_decode_combine_v2w", heads, b, (r + CHUNK - 1) / CHUNK, CHUNK, 0, dev.stream, acc.ptr, ml.ptr, pos, ctx.ptr(),
                    heads, r, perSplit, splits);
        } else {
            m.launch("mla_decode_combine" + suffix, heads, b, 1, CHUNK, 0, dev.stream, acc.ptr, ml.ptr, pos, ctx.ptr(), heads, r,
                    perSplit, splits);
        }
        output(dev, ctx, kvB, wkv, r, heads, nope, vDim, b, out);
        dev.free(tab);
        dev.free(acc);
        dev.free(ml);
        be.release(qLat);
        be.release(ctx);
    }

    /** Whether a one-sequence step runs both per-head products on the bf16 kv_b_proj (mla_absorb.cu), half the bytes of the fp32 copy. */
    private static boolean ownAbsorb(CudaWeight kvB, int b, int r, int nope) {
        return b == 1 && ABSORB_KERNELS && kvB.bf16() && r % 8 == 0 && nope <= 256 && kvB.ptr() % 16 == 0;
    }

    /** q_lat[b, h] [1, R] = q_nope[b, h] W_kb_h: per head a [B, nope] x [nope, R] product. */
    private static void qLat(CudaDevice dev, CudaTensor q, CudaWeight kvB, long wkv, int r, int heads, int nope, int rope, int vDim, int b,
                             CudaTensor qLat) {
        int per = nope + vDim, qw = nope + rope;
        if (ownAbsorb(kvB, b, r, nope)) {
            dev.mlaAbsorb.launch("mla_q_lat_b1", heads, (r + 127) / 128, 1, 256, 0, dev.stream, q.ptr(), kvB.ptr(), qLat.ptr(), r, nope,
                    qw, per);
        } else {
            dev.cublas.gemmRowMajorBatched(b, r, nope, q.ptr(), Cublas.R_32F, heads * qw, qw, wkv, Cublas.R_32F, r, (long) per * r, false,
                    qLat.ptr(), heads * r, r, heads, false);
        }
    }

    /** o[b, h] [1, vDim] = ctx[b, h] W_vb_h^T: per head a [B, R] x [R, vDim] product. */
    private static void output(CudaDevice dev, CudaTensor ctx, CudaWeight kvB, long wkv, int r, int heads, int nope, int vDim, int b,
                               CudaTensor out) {
        int per = nope + vDim;
        if (ownAbsorb(kvB, b, r, nope)) {
            dev.mlaAbsorb.launch("mla_out_b1", (vDim + 15) / 16, heads, 1, 256, 0, dev.stream, ctx.ptr(), kvB.ptr(), out.ptr(), r, nope, vDim,
                    per);
        } else {
            dev.cublas.gemmRowMajorBatched(b, vDim, r, ctx.ptr(), Cublas.R_32F, heads * r, r, wkv + 4L * nope * r, Cublas.R_32F, r,
                    (long) per * r, true, out.ptr(), heads * vDim, vDim, heads, false);
        }
    }

    /**
     * {@link #splitDecode} through mla_decode_v3.cu: a block per (range, group of up to 32 heads, sequence), one block
     * an SM (its shared memory). The ranges cut the capacity, which is between 1x and 2x the positions (the caches
     * double), so 2 x multiprocessors / (B x groups) ranges a sequence (rounded down: a second wave of full blocks costs
     * as much as the first) keep about one wave of blocks busy; each a whole number of 16-position tiles, at least two
     * (so the second tile's load overlaps the first's products).
     * As for v2, the grid comes from the caches' capacity and the positions from device memory (recordable).
     */
    private static void splitDecodeV3(CudaBackend be, CudaDevice dev, CudaTensor q, CudaWeight kvB, long wkv, int r, int heads, int nope,
                                      int rope, int vDim, float scale, int b, int cap, long[] table, long pos, CudaTensor out) {
        int qw = nope + rope;
        int groups = (heads + V3_HEADS - 1) / V3_HEADS, hg = (heads + groups - 1) / groups;
        int tiles = (cap + V3_TILE - 1) / V3_TILE;
        int want = Math.max(1, 2 * dev.multiprocessors / (b * groups));
        // the combine keeps one weight per range in a 1024-entry shared array
        int perSplit = Math.max(Math.max(2, (tiles + want - 1) / want), (tiles + V2_MAX_SPLITS - 1) / V2_MAX_SPLITS);
        int span = perSplit * V3_TILE, splits = (tiles + perSplit - 1) / perSplit;
        DeviceBuffer tab = dev.longs(table);
        CudaTensor qLat = be.uninitialised(b, heads * r), ctx = be.uninitialised(b, heads * r);
        DeviceBuffer acc = dev.scratch(4L * b * splits * heads * r), ml = dev.scratch(8L * b * splits * heads);
        qLat(dev, q, kvB, wkv, r, heads, nope, rope, vDim, b, qLat);
        int shared = v3SharedBytes(r, rope);
        // raised once to the widest shape's need (R 512, rope 64), so a smaller shape seen first does not cap a later one
        be.mlaShared(dev.mlaDecodeV3, "mla_decode_split_v3", v3SharedBytes(512, 64));
        dev.mlaDecodeV3.launch("mla_decode_split_v3", splits, groups, b, V3_THREADS, shared, dev.stream, qLat.ptr(), q.ptr(), tab.ptr, pos,
                acc.ptr, ml.ptr, heads, r, rope, qw, nope, hg, span, scale);
        dev.mlaDecodeV3.launch("mla_decode_combine_v3", heads, b, (r + CHUNK - 1) / CHUNK, CHUNK, 0, dev.stream, acc.ptr, ml.ptr, pos,
                ctx.ptr(), heads, r, span, splits);
        output(dev, ctx, kvB, wkv, r, heads, nope, vDim, b, out);
        dev.free(tab);
        dev.free(acc);
        dev.free(ml);
        be.release(qLat);
        be.release(ctx);
    }

    /** Whether the step is two or more single-token segments, for {@link #absorbedBatch}. */
    private static boolean batchedDecode(Segments seg) {
        if (seg.count() < 2 || BATCH_OFF) return false;
        for (int s = 0; s < seg.count(); s++) if (seg.length(s) != 1) return false;
        return true;
    }

    /**
     * {@code -Dkimimesh.cuda.mlaCombine}: {@code wide} (default since its H100 check of 2026-12-06) runs
     * mla_decode_combine_v2w (a block per head, sequence and 128 columns; the same sums in the same order) in place of
     * {@code v2}'s mla_decode_combine_v2, whose 32 blocks at batch 1 took 37.6 us on an H100 for about 2 MB of partials.
     */
    private static final boolean WIDE_COMBINE = combineMode(System.getProperty("kimimesh.cuda.mlaCombine", "wide"));

    private static boolean combineMode(String m) {
        if (m.equals("v2") || m.equals("wide")) return m.equals("wide");
        throw new IllegalArgumentException("kimimesh.cuda.mlaCombine must be v2 or wide, not " + m);
    }

    /**
     * {@code -Dkimimesh.cuda.mlaAbsorb=cublas}: a one-sequence decode step's q_lat and output products by cuBLAS on the
     * fp32 copy of kv_b_proj (the earlier path, for comparison); default {@code kernel}: mla_absorb.cu on the bf16 one.
     */
    private static final boolean ABSORB_KERNELS = absorbMode(System.getProperty("kimimesh.cuda.mlaAbsorb", "kernel"));

    private static boolean absorbMode(String m) {
        if (m.equals("kernel") || m.equals("cublas")) return m.equals("kernel");
        throw new IllegalArgumentException("kimimesh.cuda.mlaAbsorb must be kernel or cublas, not " + m);
    }

    /** {@code -Dkimimesh.cuda.mlaBatch=false}: the per-sequence absorbed decode, for comparison. */
    private static final boolean BATCH_OFF = !Boolean.parseBoolean(System.getProperty("kimimesh.cuda.mlaBatch", "true"));

    /**
     * Absorbed decode for B single-token sequences: q_lat and the output projection as one batched GEMM over the
     * heads with B rows each (W_kb and W_vb read once per step, not once per sequence) and one softmax launch over
     * every sequence's scores; the products with each sequence's own cache stay cuBLAS calls (3 per sequence instead
     * of 6 launches). A hand-written kernel for those products (8 heads per latent row read) lost to cuBLAS on the
     * device: docs/benchmarks-gpu.md.
     */
    private static void absorbedBatch(CudaBackend be, CudaDevice dev, CudaTensor q, Tensor[] latents, Tensor[] kRots, long wkv,
                                      int r, int heads, int nope, int rope, int vDim, float scale, Segments seg, CudaTensor out) {
        int b = seg.count(), per = nope + vDim, qw = nope + rope, maxTotal = 0;
        long[] table = new long[3 * b];
        CudaTensor[] lats = new CudaTensor[b], rots = new CudaTensor[b];
        for (int s = 0; s < b; s++) {
            CudaTensor lat = CudaTensor.cast(latents[s]), rot = CudaTensor.cast(kRots[s]);
            int total = seg.position(s) + 1;
            if (lat.rows() < total || lat.cols() != r) throw new IllegalArgumentException("mla: latent cache " + lat + " for " + total + " positions");
            if (rope > 0 && (rot.rows() < total || rot.cols() != rope)) throw new IllegalArgumentException("mla: k_rot cache " + rot);
            lats[s] = lat;
            rots[s] = rot;
            table[3 * s] = lat.ptr();
            table[3 * s + 1] = rope > 0 ? rot.ptr() : 0;
            table[3 * s + 2] = total;
            maxTotal = Math.max(maxTotal, total);
        }
        Cublas cb = dev.cublas;
        DeviceBuffer tab = dev.longs(table);
        CudaTensor qLat = be.uninitialised(b, heads * r), sc = be.uninitialised(b * heads, maxTotal), ctx = be.uninitialised(b, heads * r);
        // q_lat[b, h] [1, R] = q_nope[b, h] W_kb_h: per head a [B, nope] x [nope, R] product
        cb.gemmRowMajorBatched(b, r, nope, q.ptr(), Cublas.R_32F, heads * qw, qw, wkv, Cublas.R_32F, r, (long) per * r, false,
                qLat.ptr(), heads * r, r, heads, false);
        for (int s = 0; s < b; s++) {
            int total = (int) table[3 * s + 2];
            long scRows = sc.ptr() + 4L * s * heads * maxTotal;
            // scores [heads, total] = q_lat latent^T + q_rope k_rot^T (q_lat rows of sequence s: [heads, R])
            cb.gemmRowMajor(heads, total, r, qLat.ptr() + 4L * s * heads * r, Cublas.R_32F, r, lats[s].ptr(), Cublas.R_32F, r, true,
                    scRows, maxTotal, false);
            if (rope > 0) {
                cb.gemmRowMajor(heads, total, rope, q.ptr() + 4L * ((long) s * heads * qw + nope), Cublas.R_32F, qw, rots[s].ptr(),
                        Cublas.R_32F, rope, true, scRows, maxTotal, true);
            }
        }
        dev.mla.launch("mla_decode_softmax", heads, b, 1, 256, 0, dev.stream, sc.ptr(), tab.ptr, heads, maxTotal, scale);
        for (int s = 0; s < b; s++) {
            int total = (int) table[3 * s + 2];
            cb.gemmRowMajor(heads, r, total, sc.ptr() + 4L * s * heads * maxTotal, Cublas.R_32F, maxTotal, lats[s].ptr(), Cublas.R_32F,
                    r, false, ctx.ptr() + 4L * s * heads * r, r, false);
        }
        // o[b, h] [1, vDim] = ctx[b, h] W_vb_h^T: per head a [B, R] x [R, vDim] product
        cb.gemmRowMajorBatched(b, vDim, r, ctx.ptr(), Cublas.R_32F, heads * r, r, wkv + 4L * nope * r, Cublas.R_32F, r, (long) per * r,
                true, out.ptr(), heads * vDim, vDim, heads, false);
        dev.free(tab);
        be.release(qLat);
        be.release(sc);
        be.release(ctx);
    }

    private static void absorbed(CudaBackend be, CudaDevice dev, CudaTensor q, CudaTensor lat, CudaTensor rot, long wkv, int r,
                                 int heads, int nope, int rope, int vDim, float scale, int pos, CudaTensor out) {
        int per = nope + vDim, qw = nope + rope, total = pos + 1;
        Cublas cb = dev.cublas;
        CudaTensor qLat = be.uninitialised(heads, r), sc = be.uninitialised(heads, total), ctx = be.uninitialised(heads, r);
        // q_lat_h [1, R] = q_nope_h [1, nope] W_kb_h [nope, R]
        cb.gemmRowMajorBatched(1, r, nope, q.ptr(), Cublas.R_32F, qw, qw, wkv, Cublas.R_32F, r, (long) per * r, false,
                qLat.ptr(), r, r, heads, false);
        // scores [heads, total] = q_lat latent^T + q_rope k_rot^T
        cb.gemmRowMajor(heads, total, r, qLat.ptr(), Cublas.R_32F, r, lat.ptr(), Cublas.R_32F, r, true, sc.ptr(), total, false);
        if (rope > 0) {
            cb.gemmRowMajor(heads, total, rope, q.ptr() + 4L * nope, Cublas.R_32F, qw, rot.ptr(), Cublas.R_32F, rope, true,
                    sc.ptr(), total, true);
        }
        // one "query" row per head: T = heads rows of one head-group, all at the same position
        dev.mla.launch("mla_softmax", heads, 1, 1, 256, 0, dev.stream, sc.ptr(), heads, total, pos, 0, scale);
        cb.gemmRowMajor(heads, r, total, sc.ptr(), Cublas.R_32F, total, lat.ptr(), Cublas.R_32F, r, false, ctx.ptr(), r, false);
        // o_h [1, vDim] = ctx_h [1, R] W_vb_h^T
        cb.gemmRowMajorBatched(1, vDim, r, ctx.ptr(), Cublas.R_32F, r, r, wkv + 4L * nope * r, Cublas.R_32F, r, (long) per * r,
                true, out.ptr(), vDim, vDim, heads, false);
        be.release(qLat);
        be.release(sc);
        be.release(ctx);
    }

    private static void expanded(CudaBackend be, CudaDevice dev, CudaTensor q, CudaTensor lat, CudaTensor rot, long wkv, int r,
                                 int heads, int nope, int rope, int vDim, float scale, int len, int pos, CudaTensor out) {
        int per = nope + vDim, qw = nope + rope, total = pos + len;
        Cublas cb = dev.cublas;
        CudaTensor kv = be.uninitialised(total, heads * per);
        cb.gemmRowMajor(total, heads * per, r, lat.ptr(), Cublas.R_32F, r, wkv, Cublas.R_32F, r, true, kv.ptr(), heads * per, false);
        int tile = (int) Math.max(1, Math.min(len, SCORE_BUDGET / ((long) heads * total)));
        CudaTensor sc = be.uninitialised(heads * tile, total);
        // with a rope part, each head's keys [k_nope | k_rot] side by side: one score GEMM over qw (the rope product
        // would otherwise re-read and re-write every score, about a sixth of an exact 32k prefill's attention time)
        CudaTensor kcat = null;
        if (rope > 0 && FUSED_ROPE) {
            kcat = be.uninitialised(heads * total, qw);
            dev.mla.launch("mla_k_concat", total, heads, 1, 64, 0, dev.stream, kv.ptr(), rot.ptr(), kcat.ptr(), total, heads, nope, rope, per);
        }
        for (int t0 = 0; t0 < len; t0 += tile) {
            int tl = Math.min(tile, len - t0);
            // causal: the tile's last query sees keys [0, pos + t0 + tl), so later keys are neither scored nor summed
            // (about half the products and softmax traffic of a long prompt); the score rows are packed kEnd wide
            int kEnd = pos + t0 + tl;
            long qp = q.at(t0, 0);
            if (kcat != null) {
                // scores_h [tl, kEnd] = q_h [k_nope_h | k_rot]^T
                cb.gemmRowMajorBatched(tl, kEnd, qw, qp, Cublas.R_32F, heads * qw, qw, kcat.ptr(), Cublas.R_32F, qw, (long) total * qw,
                        true, sc.ptr(), kEnd, (long) tl * kEnd, heads, false);
            } else {
                // scores_h [tl, kEnd] = q_nope_h k_nope_h^T (+ q_rope_h k_rot^T)
                cb.gemmRowMajorBatched(tl, kEnd, nope, qp, Cublas.R_32F, heads * qw, qw, kv.ptr(), Cublas.R_32F, heads * per, per,
                        true, sc.ptr(), kEnd, (long) tl * kEnd, heads, false);
            }
            if (rope > 0 && kcat == null) {
                cb.gemmRowMajorBatched(tl, kEnd, rope, qp + 4L * nope, Cublas.R_32F, heads * qw, qw, rot.ptr(), Cublas.R_32F, rope,
                        0, true, sc.ptr(), kEnd, (long) tl * kEnd, heads, true);
            }
            if (ONE_READ && kEnd <= ONE_READ_MAX) {
                dev.mla.launch("mla_softmax_1r", tl, heads, 1, oneReadThreads(kEnd), 0, dev.stream, sc.ptr(), tl, kEnd, pos, t0, scale);
            } else {
                dev.mla.launch("mla_softmax", tl, heads, 1, 256, 0, dev.stream, sc.ptr(), tl, kEnd, pos, t0, scale);
            }
            // out_h [tl, vDim] = P_h [tl, kEnd] V_h [kEnd, vDim]
            cb.gemmRowMajorBatched(tl, vDim, kEnd, sc.ptr(), Cublas.R_32F, kEnd, (long) tl * kEnd, kv.ptr() + 4L * nope,
                    Cublas.R_32F, heads * per, per, false, out.at(t0, 0), heads * vDim, vDim, heads, false);
        }
        be.release(sc);
        be.release(kv);
        if (kcat != null) be.release(kcat);
    }

    /**
     * {@link #expanded} in the bf16-compute mode: q, the expanded keys / values and k_rot rounded to bf16 once, the
     * score and value products as bf16 tensor-core GEMMs with fp32 accumulation, the softmax in fp32 over fp32 scores
     * writing bf16 probabilities. Score rows are padded to a multiple of 8 elements (16-byte aligned bf16 rows).
     */
    /**
     * {@code -Dkimimesh.cuda.mlaExpand}: {@code bf16} (default since its H100 check of 2026-12-06: the bf16-mode MLA
     * checks and goldens give the same figures as fp32, and a 32k prefill is about 6 ms faster): the latent rounded to
     * bf16 like every other linear layer's input in that mode, one bf16 tensor-core GEMM against the bf16 kv_b_proj
     * writing bf16 keys / values directly; {@code fp32}: the earlier fp32 SIMT product, rounded to bf16 afterwards
     * (5.5 ms of a 32k prefill, docs/gpu-logs/profile-prefill-32k-bf16-batched.txt). Only the bf16-compute mode expands
     * this way; the exact mode is unchanged.
     */
    private static final boolean EXPAND_BF16 = switch (System.getProperty("kimimesh.cuda.mlaExpand", "bf16")) {
        case "fp32" -> false;
        case "bf16" -> true;
        default -> throw new IllegalArgumentException("kimimesh.cuda.mlaExpand must be fp32 or bf16, not " + System.getProperty("kimimesh.cuda.mlaExpand"));
    };

    private static void expandedBf16(CudaBackend be, CudaDevice dev, CudaTensor q, CudaTensor lat, CudaTensor rot, long wkv,
                                     CudaWeight kvB, int r, int heads, int nope, int rope, int vDim, float scale, int len, int pos,
                                     CudaTensor out) {
        int per = nope + vDim, qw = nope + rope, total = pos + len;
        Cublas cb = dev.cublas;
        long kvN = (long) total * heads * per, qN = (long) len * heads * qw, rotN = (long) total * rope;
        DeviceBuffer kvb = dev.scratch(2 * kvN), qb = dev.scratch(2 * qN), rotb = dev.scratch(Math.max(16, 2 * rotN));
        if (EXPAND_BF16 && kvB.dtype() == DType.BF16) {
            long latN = (long) total * r;
            DeviceBuffer latb = dev.scratch(2 * latN);
            dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(latN), 1, 1, 256, 0, dev.stream, lat.ptr(), latb.ptr, latN);
            cb.gemmRowMajorTo(total, heads * per, r, latb.ptr, Cublas.R_16BF, r, kvB.ptr(), Cublas.R_16BF, r, true, kvb.ptr,
                    Cublas.R_16BF, heads * per);
            dev.free(latb);
        } else {
            // the latent expansion as an fp32 product; its result is rounded once
            CudaTensor kv = be.uninitialised(total, heads * per);
            cb.gemmRowMajor(total, heads * per, r, lat.ptr(), Cublas.R_32F, r, wkv, Cublas.R_32F, r, true, kv.ptr(), heads * per, false);
            dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(kvN), 1, 1, 256, 0, dev.stream, kv.ptr(), kvb.ptr, kvN);
            be.release(kv);
        }
        dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(qN), 1, 1, 256, 0, dev.stream, q.ptr(), qb.ptr, qN);
        if (rope > 0) dev.elementwise.launch("f32_to_bf16", CudaDevice.blocks(rotN), 1, 1, 256, 0, dev.stream, rot.ptr(), rotb.ptr, rotN);
        if (FLASH && flashShape(nope, rope, vDim)) {
            flash(be, dev, qb.ptr, kvb.ptr, rotb.ptr, out, len, pos, heads, scale);
            for (DeviceBuffer b : new DeviceBuffer[] {kvb, qb, rotb}) dev.free(b);
            return;
        }
        int ldMax = (total + 7) & ~7;
        int tile = (int) Math.max(1, Math.min(len, SCORE_BUDGET / ((long) heads * ldMax)));
        DeviceBuffer sc = dev.scratch(4L * heads * tile * ldMax), pb = dev.scratch(2L * heads * tile * ldMax);
        for (int t0 = 0; t0 < len; t0 += tile) {
            int tl = Math.min(tile, len - t0);
            int kEnd = pos + t0 + tl, ld = (kEnd + 7) & ~7;
            long qp = qb.ptr + 2L * t0 * heads * qw;
            // scores_h [tl, kEnd] = q_nope_h k_nope_h^T + q_rope_h k_rot^T, bf16 operands, fp32 out
            cb.gemmRowMajorBatched(tl, kEnd, nope, qp, Cublas.R_16BF, heads * qw, qw, kvb.ptr, Cublas.R_16BF, heads * per, per,
                    true, sc.ptr, ld, (long) tl * ld, heads, false);
            if (rope > 0) {
                cb.gemmRowMajorBatched(tl, kEnd, rope, qp + 2L * nope, Cublas.R_16BF, heads * qw, qw, rotb.ptr, Cublas.R_16BF, rope,
                        0, true, sc.ptr, ld, (long) tl * ld, heads, true);
            }
            if (ONE_READ && kEnd <= ONE_READ_MAX) {
                dev.mla.launch("mla_softmax_bf16_1r", tl, heads, 1, oneReadThreads(kEnd), 0, dev.stream, sc.ptr, pb.ptr, tl, kEnd, ld, pos,
                        t0, scale);
            } else {
                dev.mla.launch("mla_softmax_bf16", tl, heads, 1, 256, 0, dev.stream, sc.ptr, pb.ptr, tl, kEnd, ld, pos, t0, scale);
            }
            // out_h [tl, vDim] = P_h [tl, kEnd] V_h [kEnd, vDim]
            cb.gemmRowMajorBatched(tl, vDim, kEnd, pb.ptr, Cublas.R_16BF, ld, (long) tl * ld, kvb.ptr + 2L * nope, Cublas.R_16BF,
                    heads * per, per, false, out.at(t0, 0), heads * vDim, vDim, heads, false);
        }
        for (DeviceBuffer b : new DeviceBuffer[] {sc, pb, kvb, qb, rotb}) dev.free(b);
    }

    /** Head dims the flash kernel is compiled for (mla_flash.cuh: Kimi Linear's 128 + 64 and 128). */
    static boolean flashShape(int nope, int rope, int vDim) {
        return nope == 128 && rope == 64 && vDim == 128;
    }

    /**
     * One compiled flash variant: its kernel, queries per block, dynamic shared memory, threads per block, whether it
     * lives in mla_flash_sm90a.cu (wgmma, Hopper only) rather than mla.cu, and whether it takes tensor maps (the TMA
     * producer) for q, kv and rot instead of their addresses, with boxes of `keys` rows of K / V.
     */
    record FlashKernel(String name, int rows, int shared, int threads, boolean hopper, boolean tma, int keys) {
        /** mla_flash.cuh: 4 warps of 16 x mr queries; Q [64 mr][200] and `stages` of K [bn][200] and V [bn][136] (bf16). */
        static FlashKernel of(String name, int mr, int stages, int bn) {
            return new FlashKernel(name, 64 * mr, 2 * (64 * mr * 200 + stages * bn * (200 + 136)), 128, false, false, bn);
        }

        /**
         * mla_flash_sm90a.cu: 64 x cwg queries, 128 (cwg + 1) threads (a producer and cwg consumer warpgroups); shared
         * memory as mla_wgmma::Layout: Q 3 x 64 cwg rows and `stages` of K 3 x bn rows and V 2 x bn rows of 128 bytes,
         * 2 x stages + 1 mbarriers, 1024 bytes to align the base.
         */
        static FlashKernel wgmma(String name, int stages, int bn, int cwg, boolean tma) {
            return new FlashKernel(name, 64 * cwg, 3 * 64 * cwg * 128 + stages * 5 * bn * 128 + 16 * stages + 8 + 1024, 128 * (cwg + 1), true,
                    tma, bn);
        }
    }

    /**
     * The kernels of mla_flash_sm90a.cu (flashVariant wgmma_NAME): [m192]n{BN}s{STAGES}[ov][pp][tma|tmaf]; tma: the
     * copy engine fetches Q, K and V (bulk tensor copies, tensor maps built here per launch); tmaf: also the softmax's
     * scale folded into the exponent's FMA.
     */
    static final java.util.Set<String> WGMMA_VARIANTS = java.util.Set.of("n128s2", "n128s2pp", "n64s3", "n64s3pp", "n64s4pp",
            "m192n64s3", "n64s4ov", "n64s4ovpp", "m192n64s3ov", "m192n64s3tma", "m192n64s3tmaf", "m192n64s3ovtmaf", "n64s4pptmaf",
            "n64s4ovtmaf", "n64s4ovpptmaf", "n128s2pptmaf");
    /** The variant {@code -Dkimimesh.cuda.flashVariant=wgmma} names. */
    private static final String WGMMA_DEFAULT = "n128s2pptmaf";
    private static final java.util.regex.Pattern WGMMA_NAME = java.util.regex.Pattern.compile("(m192)?n(64|128)s(\\d)(ov)?(pp)?(tmaf?)?");

    /**
     * {@code -Dkimimesh.cuda.flashVariant}: {@code wgmma} (default: {@code wgmma_}{@link #WGMMA_DEFAULT}, a wgmma kernel
     * of mla_flash_sm90a.cu with the copy-engine (TMA) producer, two consumers in ping-pong order on 128-key tiles and
     * the softmax scale folded into the exponent: 18.8 ms at 32k on an H100 against 22.0 ms for wgmma_m192n64s3tma, 33.1
     * ms for wgmma_m192n64s3 and 42.4 ms for m2s1, docs/benchmarks-gpu.md; on a GPU where that module does not load, m2s1
     * runs instead), {@code wgmma_NAME} with NAME one of
     * {@link #WGMMA_VARIANTS}: 128 (m192: 192) queries a block, BN keys a tile in STAGES stages, ov the intra-warpgroup
     * overlap of softmax and P V, pp the ping-pong order of the consumers, tma the copy-engine producer, tmaf also the
     * scale folded into the exponent (n128s2pptmaf and m192n64s3tmaf passed their GPU checks; the other tmaf kernels have
     * not yet been checked on a GPU since their fix: docs/gpu.md); or the mma.sync kernels of
     * mla_flash.cuh: {@code m2s1} (the default before; two query tiles a warp share each K / V fragment, one stage,
     * two blocks an SM), {@code m2s1k32} / {@code m2s2k32} (32 keys a tile, one or two stages).
     */
    private static final FlashKernel FLASH_KERNEL = flashKernel(System.getProperty("kimimesh.cuda.flashVariant", "wgmma"));
    private static final FlashKernel FLASH_FALLBACK = FlashKernel.of("mla_flash_bf16_m2s1", 2, 1, 64);

    static FlashKernel flashKernel(String v) {
        switch (v) {
            case "m2s1": return FlashKernel.of("mla_flash_bf16_m2s1", 2, 1, 64);
            case "m2s1k32": return FlashKernel.of("mla_flash_bf16_m2s1k32", 2, 1, 32);
            case "m2s2k32": return FlashKernel.of("mla_flash_bf16_m2s2k32", 2, 2, 32);
            default:
        }
        String w = v.equals("wgmma") ? WGMMA_DEFAULT : v.startsWith("wgmma_") ? v.substring(6) : "";
        java.util.regex.Matcher m = WGMMA_NAME.matcher(w);
        if (!WGMMA_VARIANTS.contains(w) || !m.matches()) {
            throw new IllegalArgumentException("kimimesh.cuda.flashVariant must be m2s1, m2s1k32, m2s2k32 or wgmma_ + one of "
                    + new java.util.TreeSet<>(WGMMA_VARIANTS) + ", not " + v);
        }
        return FlashKernel.wgmma("mla_flash_wgmma_" + w, Integer.parseInt(m.group(3)), Integer.parseInt(m.group(2)), m.group(1) != null ? 3 : 2,
                m.group(6) != null);
    }

    private static final float LOG2E = 1.4426950408889634f;

    /**
     * Fused causal attention over bf16 q [len, heads x 192], kv [total, heads x 256], k_rot [total, 64] into the fp32
     * out [len, heads x 128]: scores, online softmax (fp32) and P V (bf16 probabilities, fp32 accumulation) per block of
     * queries (128 for m2s1 and the default wgmma kernel, 192 for the m192 variants), never written to memory.
     */
    private static void flash(CudaBackend be, CudaDevice dev, long q, long kv, long rot, CudaTensor out, int len, int pos, int heads,
                              float scale) {
        if (out.ptr() % 16 != 0 || q % 16 != 0 || kv % 16 != 0 || rot % 16 != 0) {
            throw new IllegalArgumentException("mla flash: operands must be 16-byte aligned (out " + out + ")");
        }
        // a wgmma variant needs the sm_90a module: on other GPUs the mma.sync kernel of mla.cu takes its place
        FlashKernel f = FLASH_KERNEL.hopper() && dev.mlaFlashHopper == null ? FLASH_FALLBACK : FLASH_KERNEL;
        KernelModule m = f.hopper() ? dev.mlaFlashHopper : dev.mla;
        be.mlaShared(m, f.name(), f.shared());
        int blocks = (len + f.rows() - 1) / f.rows();
        if (!f.tma()) {
            m.launch(f.name(), blocks, heads, 1, f.threads(), f.shared(), dev.stream, q, kv, rot, out.ptr(), len, pos, heads, scale * LOG2E);
            return;
        }
        // the TMA producer's tensor maps (mla_flash_sm90a.cu, MLA_FLASH_WGMMA_TMA): boxes of 64 dims (128 bytes, one
        // swizzled row) by the block's queries (q) or a tile's keys (kv, rot); cuLaunchKernel copies them, so they live
        // for the launch only
        int total = pos + len, qk = 128 + 64, kvRow = 128 + 128;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment tq = a.allocate(Driver.TENSOR_MAP_BYTES, Driver.TENSOR_MAP_ALIGN),
                    tkv = a.allocate(Driver.TENSOR_MAP_BYTES, Driver.TENSOR_MAP_ALIGN),
                    trot = a.allocate(Driver.TENSOR_MAP_BYTES, Driver.TENSOR_MAP_ALIGN);
            Driver.tensorMap2dBf16Swizzle128(tq, q, len, (long) heads * qk, 2L * heads * qk, 64, f.rows());
            Driver.tensorMap2dBf16Swizzle128(tkv, kv, total, (long) heads * kvRow, 2L * heads * kvRow, 64, f.keys());
            Driver.tensorMap2dBf16Swizzle128(trot, rot, total, 64, 2L * 64, 64, f.keys());
            m.launch(f.name(), blocks, heads, 1, f.threads(), f.shared(), dev.stream, tq, tkv, trot, out.ptr(), len, pos, heads,
                    scale * LOG2E);
        }
    }
}
