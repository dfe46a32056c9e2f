package dev.kimimesh.cuda.check;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;

/**
 * The floating-point work a prefill of T tokens cannot avoid, for the benchmark's FLOP floor: the products with the
 * active weights (2 FLOPs a weight a token), MLA's causal attention and the KDA chunk algorithm's matrix products.
 * The weights alone understate a long prompt's work: at 32k tokens MLA's score and value products are about 40% of it,
 * and no kernel can skip them. Counts are the usual ones (a multiply-add is 2 FLOPs) and causal: only the pairs
 * (i, j <= i) that the model reads, never the masked half.
 */
final class PrefillFlops {
    private PrefillFlops() {}

    /** KDA's chunk length (the chunk-parallel form's tile, as fla's chunk_kda and this backend's kernels use). */
    static final int KDA_CHUNK = 64;

    /** 2 x active parameters x tokens (attention and FFN projections, shared + top-k routed experts; lm_head excluded). */
    static double weights(KimiLinearConfig c, long tokens) {
        return 2.0 * GpuBench.activeParams(c) * tokens;
    }

    /**
     * MLA prefill attention of one layer: for each of the T(T+1)/2 causal pairs and each head, q.k over the
     * nope + rope width and p.v over the value width, 2 FLOPs a multiply-add.
     */
    static double mlaAttention(KimiLinearConfig c, long tokens) {
        double pairs = tokens * (tokens + 1) / 2.0;
        return 2.0 * pairs * c.numAttentionHeads() * (c.qkNopeHeadDim() + c.qkRopeHeadDim() + c.vHeadDim());
    }

    /**
     * The KDA chunk algorithm for one layer of {@code heads} heads of key width dk and value width dv: per chunk of c
     * tokens and head, the lower-triangular products inside the chunk (q.k scores, the k.k matrix of the WY form, its
     * products with the keys and values, the scores with the new values) and the three products with the carried
     * state (keys and queries against S, the state update k^T v). The triangular inverse (about c^3/3) is left out.
     */
    static double kdaChunk(long tokens, int heads, int dk, int dv) {
        double f = 0;
        for (long s = 0; s < tokens; s += KDA_CHUNK) {
            double c = Math.min(KDA_CHUNK, tokens - s), tri = c * (c + 1) / 2;
            f += 2.0 * tri * (dk + dk + dk + dv + dv) + 2.0 * 3 * c * dk * dv;
        }
        return f * heads;
    }

    /** Everything above over the model's layers. */
    static double model(KimiLinearConfig c, long tokens) {
        return weights(c, tokens) + attention(c, tokens);
    }

    /** MLA attention and KDA chunk products over the model's layers. */
    static double attention(KimiLinearConfig c, long tokens) {
        double f = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            f += c.layerKind(l) == LayerKind.KDA ? kdaChunk(tokens, c.kdaNumHeads(), c.kdaHeadDim(), c.kdaHeadDim())
                    : mlaAttention(c, tokens);
        }
        return f;
    }
}
