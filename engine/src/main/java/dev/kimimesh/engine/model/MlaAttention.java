package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.state.MlaCache;

/**
 * Multi-head latent attention without rotary embedding (NoPE): the cache holds only the normalised latent and the
 * shared k_rot slice per position; kv_b_proj expands (or is absorbed into) the attention.
 */
final class MlaAttention {
    /** Both MLA norms use the class default eps in the original, not config.rms_norm_eps. */
    private static final float LATENT_EPS = KimiLinearConfig.KV_A_LAYERNORM_EPS;

    private final Backend b;
    private final int heads, nope, rope, vDim, rank;
    private final float scale;
    private final Weight qProj, qA, qANorm, qB, kvALatent, kvARope, kvANorm, kvB, oProj;

    MlaAttention(KimiLinearConfig c, Weights w) {
        this.b = w.backend();
        this.heads = c.numAttentionHeads();
        this.nope = c.qkNopeHeadDim();
        this.rope = c.qkRopeHeadDim();
        this.vDim = c.vHeadDim();
        this.rank = c.kvLoraRank();
        this.scale = (float) (1.0 / Math.sqrt(c.qkHeadDim()));
        if (c.qLoraRank() == 0) {
            qProj = w.get("q_proj.weight");
            qA = qANorm = qB = null;
        } else {
            qProj = null;
            qA = w.get("q_a_proj.weight");
            qANorm = w.get("q_a_layernorm.weight");
            qB = w.get("q_b_proj.weight");
        }
        Weight kvA = w.get("kv_a_proj_with_mqa.weight");
        kvALatent = kvA.rowSlice(0, rank);
        kvARope = rope > 0 ? kvA.rowSlice(rank, rope) : null;
        kvANorm = w.get("kv_a_layernorm.weight");
        kvB = w.get("kv_b_proj.weight");
        oProj = w.get("o_proj.weight");
    }

    void forward(Tensor x, Segments seg, MlaCache[] caches, Tensor out, Workspace ws) {
        int t = x.rows();
        Tensor q = ws.tensor(t, heads * (nope + rope));
        Tensor latent = ws.tensor(t, rank);
        Tensor kRot = ws.tensor(t, Math.max(1, rope));
        // the projections of x in one pass: the query (or its low-rank half), the latent and the shared k_rot
        Tensor low = qProj != null ? q : ws.tensor(t, qA.rows());
        Weight qFirst = qProj != null ? qProj : qA;
        if (kvARope != null) b.matmuls(x, new Weight[] {qFirst, kvALatent, kvARope}, new Tensor[] {low, latent, kRot});
        else b.matmuls(x, new Weight[] {qFirst, kvALatent}, new Tensor[] {low, latent});
        if (qProj == null) {
            b.rmsNorm(low, qANorm, LATENT_EPS, low);
            b.matmul(low, qB, q);
        }

        Tensor[] lat = new Tensor[caches.length], rot = new Tensor[caches.length];
        for (int i = 0; i < caches.length; i++) {
            MlaCache c = caches[i];
            if (c.length() != seg.position(i)) {
                throw new IllegalStateException("MLA cache holds " + c.length() + " positions, segment starts at " + seg.position(i));
            }
            c.ensureCapacity(c.length() + seg.length(i));
            lat[i] = c.latent();
            rot[i] = c.kRot();
        }
        // the normed latent and k_rot rows land at each sequence's position: one backend call for all segments
        b.appendLatentRows(latent, kvANorm, LATENT_EPS, rope > 0 ? kRot : null, lat, rot, seg);
        for (int i = 0; i < caches.length; i++) caches[i].appended(seg.length(i));
        Tensor attn = ws.tensor(t, heads * vDim);
        b.mlaAttention(q, lat, rot, kvB, heads, nope, rope, vDim, scale, seg, attn);
        b.matmul(attn, oProj, out);
    }
}
