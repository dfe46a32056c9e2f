package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Kimi Delta Attention recurrence on the CPU, in both forms: token by token (decode) and chunkwise (prefill,
 * chunk 64, the WY/UT form). Work is split over (segment, head) pairs; the loops over a head's channels run on
 * vectors, exponentials included ({@link VecMath}'s exp: the same bits in every JIT tier).
 */
final class Kda {
    static final int CHUNK = 64;
    private static final float L2_EPS = 1e-6f;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    private Kda() {}

    /** Per-thread buffers of one (segment, head) pair, sized for head dim d. */
    private static final class Scratch {
        final float[] qn, kn, cg, ecg, lmat, mmat, u, tmp, kv, ke, qe, ks, os, ket;

        Scratch(int d) {
            qn = new float[CHUNK * d];
            kn = new float[CHUNK * d];
            cg = new float[CHUNK * d];
            ecg = new float[CHUNK * d];
            lmat = new float[CHUNK * CHUNK];
            mmat = new float[CHUNK * CHUNK];
            u = new float[CHUNK * d];
            tmp = new float[d];
            kv = new float[d];
            ke = new float[CHUNK * d];
            qe = new float[CHUNK * d];
            ks = new float[CHUNK * d];
            os = new float[CHUNK * d];
            ket = new float[d * CHUNK];
        }
    }

    static void run(CpuTensor q, CpuTensor k, CpuTensor v, CpuTensor g, CpuTensor beta, int heads, int d,
                    Segments seg, CpuTensor[] states, KdaForm form, CpuTensor out) {
        int pairs = seg.count() * heads;
        Parallel.range(pairs, 1, (from, to) -> {
            Scratch sc = new Scratch(d);
            for (int pIdx = from; pIdx < to; pIdx++) {
                int s = pIdx / heads, h = pIdx % heads;
                int start = seg.start(s), len = seg.length(s);
                CpuTensor st = states[s];
                boolean chunked = form == KdaForm.CHUNKED || (form == KdaForm.AUTO && len > 1);
                for (int c0 = 0; c0 < len; c0 += CHUNK) {
                    int c = Math.min(CHUNK, len - c0);
                    normalise(q, k, start + c0, c, h, d, sc.qn, sc.kn);
                    if (chunked) {
                        chunk(sc, v, g, beta, start + c0, c, h, d, st, out);
                    } else {
                        for (int t = 0; t < c; t++) step(sc, v, g, beta, start + c0 + t, t, h, d, st, out);
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

    /**
     * Decay factors below this are taken as 0. Strongly decaying channels would otherwise fill the products with
     * subnormal floats, which the CPU handles in microcode at a hundred times the cost; a factor this small changes
     * no result by more than 1e-20 of itself.
     */
    static final float TINY = 1e-20f;

    /** e^x, or 0 where that is below {@link #TINY}. */
    static FloatVector decay(FloatVector x) {
        FloatVector e = VecMath.exp(x);
        return e.blend(0f, e.lt(TINY));
    }

    static float decay(float x) {
        float e = (float) Math.exp(x);
        return e < TINY ? 0f : e;
    }

    /** State entries below this are taken as 0 when decayed, for the same reason as {@link #TINY}. */
    static final float TINY_STATE = 1e-30f;

    /** s[r..r+n) *= a, flushing what falls below {@link #TINY_STATE} to 0. */
    private static void scaleRow(float[] s, int r, float a, int n) {
        FloatVector av = FloatVector.broadcast(F, a);
        int j = 0;
        for (; j + L <= n; j += L) {
            FloatVector v = FloatVector.fromArray(F, s, r + j).mul(av);
            v.blend(0f, v.abs().lt(TINY_STATE)).intoArray(s, r + j);
        }
        for (; j < n; j++) {
            float v = s[r + j] * a;
            s[r + j] = Math.abs(v) < TINY_STATE ? 0f : v;
        }
    }

    /** dst[0..n) = decay(src[0..n)). */
    private static void exp(float[] src, int so, float[] dst, int dO, int n) {
        int i = 0;
        for (; i + L <= n; i += L) decay(FloatVector.fromArray(F, src, so + i)).intoArray(dst, dO + i);
        for (; i < n; i++) dst[dO + i] = decay(src[so + i]);
    }

    /** y[yo..yo+n) += a * x[xo..xo+n). */
    private static void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector av = FloatVector.broadcast(F, a);
        for (; i + L <= n; i += L) {
            FloatVector.fromArray(F, x, xo + i).fma(av, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    /** One token of the recurrent form: S = Diag(a) S; S += b k (v - S^T k)^T; o = S^T q. */
    private static void step(Scratch sc, CpuTensor v, CpuTensor g, CpuTensor beta, int row, int t, int h, int d,
                             CpuTensor st, CpuTensor out) {
        float[] s = st.data(), qn = sc.qn, kn = sc.kn, kv = sc.kv, o = sc.tmp, a = sc.ecg;
        int so = st.at(h * d, 0);
        int go = g.at(row, h * d), vo = v.at(row, h * d), oo = out.at(row, h * d);
        float b = beta.data()[beta.at(row, h)];
        exp(g.data(), go, a, 0, d);
        java.util.Arrays.fill(kv, 0, d, 0f);
        for (int i = 0; i < d; i++) {
            float ai = a[i], ki = kn[t * d + i];
            int r = so + i * d, j = 0;
            FloatVector av = FloatVector.broadcast(F, ai), kvv = FloatVector.broadcast(F, ki);
            for (; j + L <= d; j += L) {
                FloatVector sv = FloatVector.fromArray(F, s, r + j).mul(av);
                sv = sv.blend(0f, sv.abs().lt(TINY_STATE));
                sv.intoArray(s, r + j);
                sv.fma(kvv, FloatVector.fromArray(F, kv, j)).intoArray(kv, j);
            }
            for (; j < d; j++) {
                s[r + j] *= ai;
                if (Math.abs(s[r + j]) < TINY_STATE) s[r + j] = 0f;
                kv[j] += ki * s[r + j];
            }
        }
        for (int j = 0; j < d; j++) kv[j] = b * (v.data()[vo + j] - kv[j]);
        java.util.Arrays.fill(o, 0, d, 0f);
        for (int i = 0; i < d; i++) {
            float ki = kn[t * d + i], qi = qn[t * d + i];
            int r = so + i * d, j = 0;
            FloatVector kvv = FloatVector.broadcast(F, ki), qv = FloatVector.broadcast(F, qi);
            for (; j + L <= d; j += L) {
                FloatVector sv = FloatVector.fromArray(F, kv, j).fma(kvv, FloatVector.fromArray(F, s, r + j));
                sv.intoArray(s, r + j);
                sv.fma(qv, FloatVector.fromArray(F, o, j)).intoArray(o, j);
            }
            for (; j < d; j++) {
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
     * S' = Diag(e^{G_c}) S0 + sum_s (e^{G_c - G_s} k_s) u_s^T. Exponents are differences with s <= t, so never > 0
     * (factoring e^{G_t} e^{-G_s} instead would overflow on strongly decaying channels).
     */
    private static void chunk(Scratch sc, CpuTensor v, CpuTensor g, CpuTensor beta, int row0, int c, int h, int d,
                              CpuTensor st, CpuTensor out) {
        float[] s0 = st.data(), qn = sc.qn, kn = sc.kn, cg = sc.cg, ecg = sc.ecg, lmat = sc.lmat, mmat = sc.mmat;
        float[] u = sc.u, tmp = sc.tmp;
        int so = st.at(h * d, 0);
        float[] ga = g.data();
        for (int t = 0; t < c; t++) {
            int go = g.at(row0 + t, h * d);
            for (int i = 0; i < d; i++) cg[t * d + i] = (t == 0 ? 0 : cg[(t - 1) * d + i]) + ga[go + i];
        }
        exp(cg, 0, ecg, 0, c * d);
        for (int t = 0; t < c; t++) {
            int to = t * d;
            for (int sIdx = 0; sIdx <= t; sIdx++) {
                int sOff = sIdx * d, i = 0;
                FloatVector l = FloatVector.zero(F), m = l;
                for (; i + L <= d; i += L) {
                    FloatVector e = decay(FloatVector.fromArray(F, cg, to + i).sub(FloatVector.fromArray(F, cg, sOff + i)));
                    FloatVector ke = FloatVector.fromArray(F, kn, sOff + i).mul(e);
                    l = FloatVector.fromArray(F, kn, to + i).fma(ke, l);
                    m = FloatVector.fromArray(F, qn, to + i).fma(ke, m);
                }
                float ls = Lanes.sum(l), ms = Lanes.sum(m);
                for (; i < d; i++) {
                    float ke = kn[sOff + i] * decay(cg[to + i] - cg[sOff + i]);
                    ls += kn[to + i] * ke;
                    ms += qn[to + i] * ke;
                }
                lmat[t * c + sIdx] = ls;
                mmat[t * c + sIdx] = ms;
            }
        }
        // rows of e^{G_t} k_t and e^{G_t} q_t, then their products with S0 as two small matrix products
        float[] ke = sc.ke, qe = sc.qe, ks = sc.ks, os = sc.os, ket = sc.ket;
        for (int i = 0; i < c * d; i++) {
            ke[i] = kn[i] * ecg[i];
            qe[i] = qn[i] * ecg[i];
        }
        java.util.Arrays.fill(ks, 0, c * d, 0f);
        java.util.Arrays.fill(os, 0, c * d, 0f);
        Gemm.multiplyAdd(ke, 0, d, s0, so, d, ks, 0, d, c, d, d);
        Gemm.multiplyAdd(qe, 0, d, s0, so, d, os, 0, d, c, d, d);
        // u_t = b_t (v_t - S0^T (e^{G_t} k_t) - sum_{s<t} L[t,s] u_s): sequential in t
        for (int t = 0; t < c; t++) {
            int vo = v.at(row0 + t, h * d);
            for (int j = 0; j < d; j++) tmp[j] = v.data()[vo + j] - ks[t * d + j];
            for (int sIdx = 0; sIdx < t; sIdx++) axpy(-lmat[t * c + sIdx], u, sIdx * d, tmp, 0, d);
            float b = beta.data()[beta.at(row0 + t, h)];
            for (int j = 0; j < d; j++) u[t * d + j] = b * tmp[j];
        }
        // o = S0^T (e^{G_t} q_t) + sum_{s<=t} M[t,s] u_s, M zero above the diagonal
        for (int t = 0; t < c; t++) java.util.Arrays.fill(mmat, t * c + t + 1, (t + 1) * c, 0f);
        Gemm.multiplyAdd(mmat, 0, c, u, 0, d, os, 0, d, c, d, c);
        for (int t = 0; t < c; t++) System.arraycopy(os, t * d, out.data(), out.at(row0 + t, h * d), d);
        // S' = Diag(e^{G_c}) S0 + KE^T U with KE[s][i] = k_s[i] e^{G_c[i] - G_s[i]}
        int last = (c - 1) * d;
        System.arraycopy(cg, last, tmp, 0, d);
        for (int sIdx = 0; sIdx < c; sIdx++) {
            for (int i = 0; i < d; i++) cg[sIdx * d + i] = tmp[i] - cg[sIdx * d + i];
        }
        exp(cg, 0, cg, 0, c * d);
        for (int sIdx = 0; sIdx < c; sIdx++) {
            for (int i = 0; i < d; i++) ket[i * c + sIdx] = cg[sIdx * d + i] * kn[sIdx * d + i];
        }
        for (int i = 0; i < d; i++) scaleRow(s0, so + i * d, ecg[last + i], d);
        Gemm.multiplyAdd(ket, 0, c, u, 0, d, s0, so, d, d, d, c);
    }
}
