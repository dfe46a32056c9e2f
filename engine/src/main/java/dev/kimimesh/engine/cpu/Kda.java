package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;

/**
 * The Kimi Delta Attention recurrence on the CPU, in both forms: token by token (decode) and chunkwise (prefill,
 * chunk 64, the WY/UT form). Work is split over (segment, head) pairs.
 */
final class Kda {
    static final int CHUNK = 64;
    private static final float L2_EPS = 1e-6f;

    private Kda() {}

    static void run(CpuTensor q, CpuTensor k, CpuTensor v, CpuTensor g, CpuTensor beta, int heads, int d,
                    Segments seg, CpuTensor[] states, KdaForm form, CpuTensor out) {
        int pairs = seg.count() * heads;
        Parallel.range(pairs, 1, (from, to) -> {
            float[] qn = new float[CHUNK * d], kn = new float[CHUNK * d];
            for (int pIdx = from; pIdx < to; pIdx++) {
                int s = pIdx / heads, h = pIdx % heads;
                int start = seg.start(s), len = seg.length(s);
                CpuTensor st = states[s];
                boolean chunked = form == KdaForm.CHUNKED || (form == KdaForm.AUTO && len > 1);
                for (int c0 = 0; c0 < len; c0 += CHUNK) {
                    int c = Math.min(CHUNK, len - c0);
                    normalise(q, k, start + c0, c, h, d, qn, kn);
                    if (chunked) {
                        chunk(qn, kn, v, g, beta, start + c0, c, h, heads, d, st, out);
                    } else {
                        for (int t = 0; t < c; t++) step(qn, kn, v, g, beta, start + c0 + t, t, h, heads, d, st, out);
                    }
                }
            }
        });
    }

    /** qn = q / |q| * d^-1/2, kn = k / |k| for rows [row0, row0 + c) of head h (|x| with eps 1e-6 as fla). */
    private static void normalise(CpuTensor q, CpuTensor k, int row0, int c, int h, int d, float[] qn, float[] kn) {
        float scale = (float) (1.0 / Math.sqrt(d));
        for (int t = 0; t < c; t++) {
            int qo = q.at(row0 + t, h * d), ko = k.at(row0 + t, h * d);
            double qs = 0, ks = 0;
            for (int i = 0; i < d; i++) {
                qs += (double) q.data()[qo + i] * q.data()[qo + i];
                ks += (double) k.data()[ko + i] * k.data()[ko + i];
            }
            float qi = (float) (1.0 / Math.sqrt(qs + L2_EPS)) * scale, ki = (float) (1.0 / Math.sqrt(ks + L2_EPS));
            for (int i = 0; i < d; i++) {
                qn[t * d + i] = q.data()[qo + i] * qi;
                kn[t * d + i] = k.data()[ko + i] * ki;
            }
        }
    }

    /** One token of the recurrent form: S = Diag(a) S; S += b k (v - S^T k)^T; o = S^T q. */
    private static void step(float[] qn, float[] kn, CpuTensor v, CpuTensor g, CpuTensor beta, int row, int t, int h,
                             int heads, int d, CpuTensor st, CpuTensor out) {
        float[] s = st.data();
        int so = st.at(h * d, 0);
        int go = g.at(row, h * d), vo = v.at(row, h * d), oo = out.at(row, h * d);
        float b = beta.data()[beta.at(row, h)];
        float[] kv = new float[d];
        for (int i = 0; i < d; i++) {
            float a = (float) Math.exp(g.data()[go + i]);
            float ki = kn[t * d + i];
            int r = so + i * d;
            for (int j = 0; j < d; j++) {
                s[r + j] *= a;
                kv[j] += ki * s[r + j];
            }
        }
        for (int j = 0; j < d; j++) kv[j] = b * (v.data()[vo + j] - kv[j]);
        float[] o = new float[d];
        for (int i = 0; i < d; i++) {
            float ki = kn[t * d + i], qi = qn[t * d + i];
            int r = so + i * d;
            for (int j = 0; j < d; j++) {
                s[r + j] += ki * kv[j];
                o[j] += qi * s[r + j];
            }
        }
        System.arraycopy(o, 0, out.data(), oo, d);
    }

    /**
     * One chunk of c tokens in the WY/UT form. With G the in-chunk cumulative log decay,
     * u_t = b_t (v_t - S0^T (e^{G_t} k_t) - sum_{s<t} L[t,s] u_s), L[t,s] = sum_i k_t k_s e^{G_t - G_s};
     * o_t = S0^T (e^{G_t} q_t) + sum_{s<=t} M[t,s] u_s, M[t,s] = sum_i q_t k_s e^{G_t - G_s};
     * S' = Diag(e^{G_c}) S0 + sum_s (e^{G_c - G_s} k_s) u_s^T. Exponents are differences with s <= t, so never > 0.
     */
    private static void chunk(float[] qn, float[] kn, CpuTensor v, CpuTensor g, CpuTensor beta, int row0, int c,
                              int h, int heads, int d, CpuTensor st, CpuTensor out) {
        float[] s0 = st.data();
        int so = st.at(h * d, 0);
        float[] cg = new float[c * d];
        for (int t = 0; t < c; t++) {
            int go = g.at(row0 + t, h * d);
            for (int i = 0; i < d; i++) cg[t * d + i] = (t == 0 ? 0 : cg[(t - 1) * d + i]) + g.data()[go + i];
        }
        float[] lmat = new float[c * c], mmat = new float[c * c];
        for (int t = 0; t < c; t++) {
            for (int sIdx = 0; sIdx <= t; sIdx++) {
                double l = 0, m = 0;
                for (int i = 0; i < d; i++) {
                    double e = Math.exp(cg[t * d + i] - cg[sIdx * d + i]);
                    double ke = kn[sIdx * d + i] * e;
                    l += kn[t * d + i] * ke;
                    m += qn[t * d + i] * ke;
                }
                lmat[t * c + sIdx] = (float) l;
                mmat[t * c + sIdx] = (float) m;
            }
        }
        float[] u = new float[c * d];
        float[] tmp = new float[d];
        for (int t = 0; t < c; t++) {
            // tmp = S0^T (e^{G_t} k_t)
            java.util.Arrays.fill(tmp, 0f);
            for (int i = 0; i < d; i++) {
                float ke = kn[t * d + i] * (float) Math.exp(cg[t * d + i]);
                int r = so + i * d;
                for (int j = 0; j < d; j++) tmp[j] += ke * s0[r + j];
            }
            int vo = v.at(row0 + t, h * d);
            for (int j = 0; j < d; j++) tmp[j] = v.data()[vo + j] - tmp[j];
            for (int sIdx = 0; sIdx < t; sIdx++) {
                float l = lmat[t * c + sIdx];
                for (int j = 0; j < d; j++) tmp[j] -= l * u[sIdx * d + j];
            }
            float b = beta.data()[beta.at(row0 + t, h)];
            for (int j = 0; j < d; j++) u[t * d + j] = b * tmp[j];
        }
        for (int t = 0; t < c; t++) {
            java.util.Arrays.fill(tmp, 0f);
            for (int i = 0; i < d; i++) {
                float qe = qn[t * d + i] * (float) Math.exp(cg[t * d + i]);
                int r = so + i * d;
                for (int j = 0; j < d; j++) tmp[j] += qe * s0[r + j];
            }
            for (int sIdx = 0; sIdx <= t; sIdx++) {
                float m = mmat[t * c + sIdx];
                for (int j = 0; j < d; j++) tmp[j] += m * u[sIdx * d + j];
            }
            System.arraycopy(tmp, 0, out.data(), out.at(row0 + t, h * d), d);
        }
        int last = (c - 1) * d;
        for (int i = 0; i < d; i++) {
            float decay = (float) Math.exp(cg[last + i]);
            int r = so + i * d;
            for (int j = 0; j < d; j++) s0[r + j] *= decay;
            for (int sIdx = 0; sIdx < c; sIdx++) {
                float ke = kn[sIdx * d + i] * (float) Math.exp(cg[last + i] - cg[sIdx * d + i]);
                for (int j = 0; j < d; j++) s0[r + j] += ke * u[sIdx * d + j];
            }
        }
    }
}
