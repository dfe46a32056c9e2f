package dev.kimimesh.engine.cpu;

/** RMSNorm, gated RMSNorm and the element-wise activations, in float32. */
final class Norms {
    private Norms() {}

    static void rmsNorm(CpuTensor x, CpuWeight w, float eps, CpuTensor gate, CpuTensor out) {
        int g = w.rows() * w.cols();
        int cols = x.cols();
        if (cols % g != 0) throw new IllegalArgumentException("rmsNorm: " + cols + " columns are not groups of " + g);
        float[] wf = w.floats();
        float[] xa = x.data(), oa = out.data();
        float[] ga = gate == null ? null : gate.data();
        int groups = cols / g;
        Parallel.range(x.rows(), 16, (from, to) -> {
            float[] sg = ga == null ? null : new float[g];
            for (int r = from; r < to; r++) {
                for (int h = 0; h < groups; h++) {
                    int xo = x.at(r, h * g), oo = out.at(r, h * g);
                    double ss = 0;
                    for (int i = 0; i < g; i++) ss += (double) xa[xo + i] * xa[xo + i];
                    float inv = (float) (1.0 / Math.sqrt(ss / g + eps));
                    if (ga == null) {
                        for (int i = 0; i < g; i++) oa[oo + i] = wf[i] * (xa[xo + i] * inv);
                    } else {
                        int go = gate.at(r, h * g);
                        System.arraycopy(ga, go, sg, 0, g);
                        Activations.sigmoid(sg, 0, g);
                        for (int i = 0; i < g; i++) oa[oo + i] = wf[i] * (xa[xo + i] * inv) * sg[i];
                    }
                }
            }
        });
    }

    static float sigmoid(float z) {
        return (float) (1.0 / (1.0 + Math.exp(-z)));
    }

    static float silu(float z) {
        return z * sigmoid(z);
    }

    /** log(1 + e^z), equal to z above 20 as torch's softplus (threshold 20). */
    static float softplus(float z) {
        return z > 20f ? z : (float) Math.log1p(Math.exp(z));
    }
}
