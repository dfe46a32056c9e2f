package dev.kimimesh.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * The decode GEMVs of {@code decode_fused.cu}, which take the element-wise op after them into their own launch: a
 * batch-1 decode step is a chain of dependent launches, each small kernel costing its launch and round trip more
 * than its work. Each path returns false when the shapes or the tiling do not fit (the caller then runs the unfused
 * ops); where it runs, every output is bit-identical to the unfused launches (same tiling, same arithmetic).
 */
final class DecodeFusions {
    private DecodeFusions() {}

    /** {@code -Dkimimesh.cuda.fusedGlu=false}: gate/up GEMVs, then swiglu_f32, and the router's own GEMV, for comparison. */
    static final boolean GLU = !"false".equals(System.getProperty("kimimesh.cuda.fusedGlu", "true"));
    /** {@code -Dkimimesh.cuda.fusedKdaGates=false}: the f_b GEMV, kda_gate and sigmoid_f32 as three launches, for comparison. */
    static final boolean KDA_GATES = !"false".equals(System.getProperty("kimimesh.cuda.fusedKdaGates", "true"));
    /** {@code -Dkimimesh.cuda.fusedDownCombine=false}: at one row, moe_down then moe_combine (two launches), for comparison. */
    static final boolean DOWN_COMBINE = !"false".equals(System.getProperty("kimimesh.cuda.fusedDownCombine", "true"));
    /**
     * {@code -Dkimimesh.cuda.downCombineColumns}: {@code 4} (default since its H100 check of 2026-12-06: bit-identical to
     * moe_down + moe_combine) runs moe_down_combine_t1_r4, 4 output columns a block on moe_down's grid; {@code 8}: the
     * earlier moe_down_combine_t1, whose 288 blocks make a second wave.
     */
    static final int DOWN_COMBINE_COLUMNS = downCombineColumns(System.getProperty("kimimesh.cuda.downCombineColumns", "4"));

    private static int downCombineColumns(String v) {
        if (v.equals("8") || v.equals("4")) return Integer.parseInt(v);
        throw new IllegalArgumentException("kimimesh.cuda.downCombineColumns must be 8 or 4, not " + v);
    }

    /** The down + combine kernel for one row and its grid over H output columns. */
    static String downCombineKernel() {
        return DOWN_COMBINE_COLUMNS == 8 ? "moe_down_combine_t1" : "moe_down_combine_t1_r4";
    }

    static int downCombineBlocks(int h) {
        return (h + DOWN_COMBINE_COLUMNS - 1) / DOWN_COMBINE_COLUMNS;
    }
    /** {@code -Dkimimesh.cuda.fusedLatentAppend=false}: MLA's latent rms_norm_v4 and two mla_append_rows launches, for comparison. */
    static final boolean LATENT_APPEND = !"false".equals(System.getProperty("kimimesh.cuda.fusedLatentAppend", "true"));
    /** {@code -Dkimimesh.cuda.fusedOutputNorm=false}: the g_b GEMV, then the gated rms_norm_v4, for comparison. */
    static final boolean OUTPUT_NORM = !"false".equals(System.getProperty("kimimesh.cuda.fusedOutputNorm", "true"));

    /**
     * act = silu(x gate^T) * (x up^T) by one gemv_glu launch that also computes the first other projection with the
     * same tiling (the MoE router); the remaining ones go through {@link CudaBackend#matmuls}.
     */
    static boolean swigluProjection(CudaBackend be, CudaTensor x, CudaWeight gate, CudaWeight up, CudaTensor act, CudaWeight[] also,
                                    CudaTensor[] alsoOut) {
        int t = x.rows(), k = x.cols(), n = gate.rows();
        if (!GLU || t < 1 || t > CudaBackend.GEMV_MAX_ROWS || n < 1 || !Gemm.tiled(x, gate) || !Gemm.tiled(x, up)) return false;
        GemvTiles g = GemvTiles.pick(t, n, k);
        boolean compiled = g.rows() == 2 && (g.loads() == 2 && (g.split() == 8 || g.split() == 4) || g.loads() == 4 && g.split() == 1);
        if (!compiled) return false;
        int with = -1;
        for (int i = 0; i < also.length && with < 0; i++) {
            if (also[i].rows() > 0 && Gemm.tiled(x, also[i]) && GemvTiles.pick(t, also[i].rows(), k).equals(g)) with = i;
        }
        List<CudaWeight> restW = new ArrayList<>();
        List<CudaTensor> restO = new ArrayList<>();
        for (int i = 0; i < also.length; i++) {
            if (i == with) continue;
            restW.add(also[i]);
            restO.add(alsoOut[i]);
        }
        if (!restW.isEmpty()) be.matmuls(x, restW.toArray(new CudaWeight[0]), restO.toArray(new CudaTensor[0]));
        int n2 = with < 0 ? 0 : also[with].rows();
        int outputsPerBlock = 8 / g.split();
        int blocks = (n2 + 2 * outputsPerBlock - 1) / (2 * outputsPerBlock) + (n + outputsPerBlock - 1) / outputsPerBlock;
        String kernel = "gemv_glu_r2u" + g.loads() + "t" + g.tokens() + "s" + g.split();
        CudaDevice dev = be.dev;
        dev.decodeFused.launch(kernel, blocks, 1, 1, 256, 0, dev.stream, x.ptr(), t, k, gate.ptr(), up.ptr(), act.ptr(), n,
                with < 0 ? 0L : also[with].ptr(), with < 0 ? 0L : alsoOut[with].ptr(), n2);
        return true;
    }

    /** g = kda_gate(fLow fB^T) and beta = sigmoid(beta) by one gemv_kda_gate launch (whole-row warps: K below 1024). */
    static boolean kdaGates(CudaBackend be, CudaTensor fLow, CudaWeight fB, long aLog, long dtBias, int headDim, CudaTensor g,
                            CudaTensor beta) {
        int t = fLow.rows(), k = fLow.cols(), n = fB.rows();
        if (!KDA_GATES || t < 1 || t > CudaBackend.GEMV_MAX_ROWS || n < 1 || !Gemm.tiled(fLow, fB)) return false;
        GemvTiles tile = GemvTiles.pick(t, n, k);
        boolean compiled = tile.split() == 1 && tile.loads() == 4
                && (tile.rows() == 2 && tile.tokens() == 1 || tile.rows() == 4);
        if (!compiled) return false;
        CudaDevice dev = be.dev;
        dev.decodeFused.launch("gemv_kda_gate_r" + tile.rows() + "u4t" + tile.tokens() + "s1", tile.blocks(n) + 1, 1, 1, 256, 0,
                dev.stream, fLow.ptr(), fB.ptr(), g.ptr(), aLog, dtBias, headDim, t, n, k, beta.ptr(), (int) beta.size());
        return true;
    }

    /** out = gated rms_norm_v4(o) with gate = gLow gB^T, per head of d <= 128 columns, by one kda_output_norm launch (batch-1 decode). */
    static boolean kdaOutputNorm(CudaBackend be, CudaTensor o, long w, int d, float eps, CudaTensor gLow, CudaWeight gB, CudaTensor out) {
        int t = o.rows(), width = o.cols(), k = gLow.cols();
        // one token only: with every fusion on up to 16 tokens, batch 8's step was 28 us slower on an H100 (2026-12-06),
        // most likely here (a block per head for all 8 tokens: 32 blocks, 64 accumulators a warp); not re-timed alone
        if (!OUTPUT_NORM || t != 1 || d < 4 || d > 128 || d % 4 != 0 || width % d != 0
                || !Gemm.tiled(gLow, gB) || (o.ptr() | out.ptr() | w) % 16 != 0) {
            return false;
        }
        CudaDevice dev = be.dev;
        dev.decodeFused.launch("kda_output_norm_t1", width / d, 1, 1, 512, 0, dev.stream, o.ptr(), gLow.ptr(), gB.ptr(), w, out.ptr(), t,
                width, d, k, eps);
        return true;
    }
}
