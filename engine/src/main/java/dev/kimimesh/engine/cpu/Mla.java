package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Segments;

/**
 * Causal multi-head latent attention (NoPE) over a latent cache. Two evaluations of the same function:
 * expanded (kv_b_proj applied to every cached latent: prefill) and absorbed (kv_b_proj folded into the query and the
 * output, attention as MQA over the latent: decode).
 */
final class Mla {
    private Mla() {}

    /** Which evaluation to use; AUTO absorbs for single-token segments. */
    enum Form { AUTO, EXPANDED, ABSORBED }

    static volatile Form form = Form.AUTO;

    static void attention(CpuTensor q, CpuTensor[] latents, CpuTensor[] kRots, CpuWeight kvB, int heads, int nope,
                          int rope, int vDim, float scale, Segments seg, CpuTensor out) {
        for (int s = 0; s < seg.count(); s++) {
            int len = seg.length(s);
            boolean absorbed = form == Form.ABSORBED || (form == Form.AUTO && len == 1);
            if (absorbed) {
                absorbed(q, latents[s], kRots[s], kvB, heads, nope, rope, vDim, scale, seg.start(s), len, seg.position(s), out);
            } else {
                expanded(q, latents[s], kRots[s], kvB, heads, nope, rope, vDim, scale, seg.start(s), len, seg.position(s), out);
            }
        }
    }

    private static void expanded(CpuTensor q, CpuTensor latent, CpuTensor kRot, CpuWeight kvB, int heads, int nope,
                                 int rope, int vDim, float scale, int row0, int len, int pos, CpuTensor out) {
        int total = pos + len;
        int per = nope + vDim;
        CpuTensor kv = CpuTensor.of(total, heads * per);
        MatMul.matmul(latent.rowSlice(0, total), kvB, kv);
        int qw = nope + rope;
        Parallel.range(heads * len, 4, (from, to) -> {
            float[] p = new float[total];
            for (int idx = from; idx < to; idx++) {
                int h = idx / len, t = idx % len;
                int qo = q.at(row0 + t, h * qw);
                int visible = pos + t + 1;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    int ko = kv.at(j, h * per);
                    int ro = kRot.at(j, 0);
                    float sc = 0;
                    for (int i = 0; i < nope; i++) sc += q.data()[qo + i] * kv.data()[ko + i];
                    for (int i = 0; i < rope; i++) sc += q.data()[qo + nope + i] * kRot.data()[ro + i];
                    sc *= scale;
                    p[j] = sc;
                    max = Math.max(max, sc);
                }
                double sum = 0;
                for (int j = 0; j < visible; j++) {
                    p[j] = (float) Math.exp(p[j] - max);
                    sum += p[j];
                }
                int oo = out.at(row0 + t, h * vDim);
                for (int c = 0; c < vDim; c++) out.data()[oo + c] = 0;
                for (int j = 0; j < visible; j++) {
                    float w = (float) (p[j] / sum);
                    int vo = kv.at(j, h * per + nope);
                    for (int c = 0; c < vDim; c++) out.data()[oo + c] += w * kv.data()[vo + c];
                }
            }
        });
    }

    private static void absorbed(CpuTensor q, CpuTensor latent, CpuTensor kRot, CpuWeight kvB, int heads, int nope,
                                 int rope, int vDim, float scale, int row0, int len, int pos, CpuTensor out) {
        int r = latent.cols();
        int per = nope + vDim;
        int qw = nope + rope;
        Parallel.range(heads * len, 1, (from, to) -> {
            float[] qLat = new float[r], ctx = new float[r], wrow = new float[r];
            float[] p = new float[pos + len];
            for (int idx = from; idx < to; idx++) {
                int h = idx / len, t = idx % len;
                int qo = q.at(row0 + t, h * qw);
                // q_lat = W_kb_h^T q_nope: the query moved into latent space
                java.util.Arrays.fill(qLat, 0f);
                for (int i = 0; i < nope; i++) {
                    kvB.row(h * per + i, wrow, 0);
                    float qi = q.data()[qo + i];
                    for (int c = 0; c < r; c++) qLat[c] += qi * wrow[c];
                }
                int visible = pos + t + 1;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    int lo = latent.at(j, 0), ro = kRot.at(j, 0);
                    float sc = 0;
                    for (int c = 0; c < r; c++) sc += qLat[c] * latent.data()[lo + c];
                    for (int i = 0; i < rope; i++) sc += q.data()[qo + nope + i] * kRot.data()[ro + i];
                    sc *= scale;
                    p[j] = sc;
                    max = Math.max(max, sc);
                }
                double sum = 0;
                for (int j = 0; j < visible; j++) {
                    p[j] = (float) Math.exp(p[j] - max);
                    sum += p[j];
                }
                java.util.Arrays.fill(ctx, 0f);
                for (int j = 0; j < visible; j++) {
                    float w = (float) (p[j] / sum);
                    int lo = latent.at(j, 0);
                    for (int c = 0; c < r; c++) ctx[c] += w * latent.data()[lo + c];
                }
                // o_h = W_vb_h ctx: the output moved back out of latent space
                int oo = out.at(row0 + t, h * vDim);
                for (int c = 0; c < vDim; c++) {
                    kvB.row(h * per + nope + c, wrow, 0);
                    float acc = 0;
                    for (int i = 0; i < r; i++) acc += wrow[i] * ctx[i];
                    out.data()[oo + c] = acc;
                }
            }
        });
    }
}
