package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.state.KdaState;

/**
 * Kimi Delta Attention: q, k, v projections through a causal short convolution and SiLU, a per-channel decay gate,
 * a per-head beta, the delta-rule recurrence, a sigmoid-gated RMSNorm per head, and o_proj.
 */
final class KdaAttention {
    private final Backend b;
    private final int heads, headDim, width;
    private final float eps;
    private final Weight qProj, kProj, vProj, qConv, kConv, vConv, aLog, fA, fB, dtBias, bProj, gA, gB, oNorm, oProj;

    KdaAttention(KimiLinearConfig c, Weights w) {
        this.b = w.backend();
        this.heads = c.kdaNumHeads();
        this.headDim = c.kdaHeadDim();
        this.width = c.kdaProjectionSize();
        this.eps = c.rmsNormEps();
        qProj = w.get("q_proj.weight");
        kProj = w.get("k_proj.weight");
        vProj = w.get("v_proj.weight");
        qConv = w.get("q_conv1d.weight");
        kConv = w.get("k_conv1d.weight");
        vConv = w.get("v_conv1d.weight");
        aLog = w.get("A_log");
        fA = w.get("f_a_proj.weight");
        fB = w.get("f_b_proj.weight");
        dtBias = w.get("dt_bias");
        bProj = w.get("b_proj.weight");
        gA = w.get("g_a_proj.weight");
        gB = w.get("g_b_proj.weight");
        oNorm = w.get("o_norm.weight");
        oProj = w.get("o_proj.weight");
    }

    /** out [T, hidden] = KDA(x) for the normed input x [T, hidden]; states advance past the segments. */
    void forward(Tensor x, Segments seg, KdaState[] states, KdaForm form, Tensor out, Workspace ws) {
        int t = x.rows();
        // every projection of x in one pass (q, k, v, the low-rank halves of the decay (f_a) and output gate (g_a),
        // beta), then q, k and v through their short convolutions and SiLU
        Tensor fLow = ws.tensor(t, fA.rows()), gLow = ws.tensor(t, gA.rows()), beta = ws.tensor(t, heads);
        Tensor q = ws.tensor(t, width), k = ws.tensor(t, width), v = ws.tensor(t, width);
        Tensor[][] tails = new Tensor[3][states.length];
        for (int i = 0; i < states.length; i++) for (int j = 0; j < 3; j++) tails[j][i] = states[i].convTails()[j];
        b.kdaProjections(x, new Weight[] {qProj, kProj, vProj}, new Weight[] {qConv, kConv, vConv}, seg, tails, new Tensor[] {q, k, v},
                new Weight[] {fA, gA, bProj}, new Tensor[] {fLow, gLow, beta});

        Tensor g = ws.tensor(t, width);
        b.kdaGates(fLow, fB, aLog, dtBias, headDim, g, beta);

        Tensor[] s = new Tensor[states.length];
        for (int i = 0; i < s.length; i++) s[i] = states[i].recurrent();
        Tensor o = ws.tensor(t, width);
        b.kda(q, k, v, g, beta, heads, headDim, seg, s, form, o);

        b.kdaOutputNorm(o, oNorm, eps, gLow, gB, o);
        b.matmul(o, oProj, out);
    }
}
