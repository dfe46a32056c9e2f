package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.config.RouterWeights;

/** The MoE router (choice by biased scores, weights by the spec's convention) and the routed expert FFNs. */
final class Moe {
    private Moe() {}

    static Routing route(CpuTensor logits, CpuWeight bias, RouterSpec spec) {
        int t = logits.rows(), e = logits.cols(), k = spec.topK();
        if (e != spec.numExperts()) throw new IllegalArgumentException("router logits have " + e + " experts, spec " + spec.numExperts());
        float[] b = bias == null ? new float[e] : bias.floats();
        int[] experts = new int[t * k];
        float[] weights = new float[t * k];
        float[] scores = new float[e], choice = new float[e], pick = new float[e];
        for (int r = 0; r < t; r++) {
            int lo = logits.at(r, 0);
            if (spec.softmax()) {
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < e; i++) max = Math.max(max, logits.data()[lo + i]);
                double sum = 0;
                for (int i = 0; i < e; i++) sum += scores[i] = (float) Math.exp(logits.data()[lo + i] - max);
                for (int i = 0; i < e; i++) scores[i] = (float) (scores[i] / sum);
            } else {
                for (int i = 0; i < e; i++) scores[i] = Norms.sigmoid(logits.data()[lo + i]);
            }
            for (int i = 0; i < e; i++) choice[i] = scores[i] + b[i];
            System.arraycopy(choice, 0, pick, 0, e);
            if (spec.numExpertGroup() > 1) maskGroups(pick, spec.numExpertGroup(), spec.topkGroup());
            // top-k by descending choice score; the lower index wins a tie (as torch.topk on CPU/GPU in practice)
            boolean[] taken = new boolean[e];
            double wsum = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int i = 0; i < e; i++) {
                    if (!taken[i] && (best < 0 || pick[i] > pick[best])) best = i;
                }
                taken[best] = true;
                experts[r * k + j] = best;
                float w = spec.weights() == RouterWeights.UNBIASED ? scores[best] : choice[best];
                weights[r * k + j] = w;
                wsum += w;
            }
            for (int j = 0; j < k; j++) {
                float w = weights[r * k + j];
                if (spec.renormalize()) w = (float) (w / (wsum + 1e-20));
                weights[r * k + j] = w * spec.routedScalingFactor();
            }
        }
        return new Routing(t, k, experts, weights);
    }

    /**
     * DeepSeek-V3 group-limited choice: keep the topk_group groups with the largest sum of their top-2 scores. The
     * other groups' experts get 0.0, as in the original {@code masked_fill(~score_mask, 0.0)} (not -inf): a kept
     * expert whose biased score is negative then ranks below them. The weights still come from the unmasked scores.
     */
    private static void maskGroups(float[] choice, int groups, int keep) {
        int per = choice.length / groups;
        float[] groupScore = new float[groups];
        for (int gIdx = 0; gIdx < groups; gIdx++) {
            float a = Float.NEGATIVE_INFINITY, b = Float.NEGATIVE_INFINITY;
            for (int i = gIdx * per; i < (gIdx + 1) * per; i++) {
                if (choice[i] > a) {
                    b = a;
                    a = choice[i];
                } else if (choice[i] > b) {
                    b = choice[i];
                }
            }
            groupScore[gIdx] = per > 1 ? a + b : a;
        }
        boolean[] kept = new boolean[groups];
        for (int j = 0; j < keep; j++) {
            int best = -1;
            for (int gIdx = 0; gIdx < groups; gIdx++) {
                if (!kept[gIdx] && (best < 0 || groupScore[gIdx] > groupScore[best])) best = gIdx;
            }
            kept[best] = true;
        }
        for (int gIdx = 0; gIdx < groups; gIdx++) {
            if (!kept[gIdx]) for (int i = gIdx * per; i < (gIdx + 1) * per; i++) choice[i] = 0f;
        }
    }

    /**
     * out[r] += sum_j weight(r, j) * expert_j(x[r]). Each routed expert is one task (gate, up, SwiGLU, down for all its
     * rows, streamed by one core), so a decode step's eight small experts run side by side instead of as 24 separately
     * forked matmuls; the results are then added in expert order, the same order whatever the thread count.
     */
    static void experts(CpuTensor x, Routing routing, ExpertWeights[] experts, CpuTensor out) {
        int h = x.cols();
        int[] count = new int[experts.length];
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < routing.topK(); j++) {
                int e = routing.expert(r, j);
                if (e >= 0 && e < experts.length && experts[e] != null) count[e]++;
            }
        }
        int active = 0;
        for (int c : count) if (c > 0) active++;
        int[] ids = new int[active];
        int[][] rows = new int[active][], slots = new int[active][];
        for (int e = 0, a = 0; e < experts.length; e++) {
            if (count[e] == 0) continue;
            ids[a] = e;
            rows[a] = new int[count[e]];
            slots[a] = new int[count[e]];
            count[e] = a++; // from here on: e's index among the active experts
        }
        int[] fill = new int[active];
        for (int r = 0; r < routing.rows(); r++) {
            for (int j = 0; j < routing.topK(); j++) {
                int e = routing.expert(r, j);
                if (e < 0 || e >= experts.length || experts[e] == null) continue;
                int a = count[e];
                rows[a][fill[a]] = r;
                slots[a][fill[a]++] = j;
            }
        }
        CpuTensor[] down = new CpuTensor[active];
        Parallel.range(active, 1, (from, to) -> {
            for (int a = from; a < to; a++) {
                ExpertWeights w = experts[ids[a]];
                int n = rows[a].length;
                CpuTensor xe = CpuTensor.of(n, h);
                for (int i = 0; i < n; i++) System.arraycopy(x.data(), x.at(rows[a][i], 0), xe.data(), i * h, h);
                int inter = w.gate().rows();
                CpuTensor gate = CpuTensor.of(n, inter), up = CpuTensor.of(n, inter);
                MatMul.serial(xe, CpuWeight.cast(w.gate()), gate);
                MatMul.serial(xe, CpuWeight.cast(w.up()), up);
                Activations.swiglu(gate.data(), 0, up.data(), 0, gate.data(), 0, n * inter);
                down[a] = CpuTensor.of(n, h);
                MatMul.serial(gate, CpuWeight.cast(w.down()), down[a]);
            }
        });
        for (int a = 0; a < active; a++) {
            float[] d = down[a].data();
            for (int i = 0; i < rows[a].length; i++) {
                float wt = routing.weight(rows[a][i], slots[a][i]);
                int oo = out.at(rows[a][i], 0);
                for (int c = 0; c < h; c++) out.data()[oo + c] += wt * d[i * h + c];
            }
        }
    }
}
