package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Segments;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal depthwise convolution (kernel K) with a carried tail of K-1 pre-conv inputs, then SiLU. Rows are walked in
 * order and channels run on vectors, so every input row is read contiguously.
 */
final class ShortConv {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Least multiply-adds worth a parallel task. */
    private static final int TASK_WORK = 1 << 15;

    private ShortConv() {}

    static void convSilu(CpuTensor x, CpuWeight conv, Segments seg, CpuTensor[] tails, CpuTensor out) {
        int p = x.cols(), k = conv.cols();
        if (conv.rows() != p) throw new IllegalArgumentException("shortConv: " + conv + " does not match width " + p);
        float[] w = conv.floats();
        // taps as rows: wt[j * p + c] = w[c * k + j], so that a tap is a contiguous vector over channels
        float[] wt = new float[k * p];
        for (int c = 0; c < p; c++) for (int j = 0; j < k; j++) wt[j * p + c] = w[c * k + j];
        float[] xa = x.data(), oa = out.data();
        for (int s = 0; s < seg.count(); s++) {
            CpuTensor tail = tails[s];
            if (tail.rows() != k - 1 || tail.cols() != p) throw new IllegalArgumentException("shortConv: tail shape");
            int start = seg.start(s), len = seg.length(s);
            float[] ta = tail.data();
            int grain = Math.max(L, TASK_WORK / Math.max(1, len * k)) / L * L;
            Parallel.range(p, grain, (c0, c1) -> {
                float[] acc = new float[c1 - c0];
                for (int t = 0; t < len; t++) {
                    java.util.Arrays.fill(acc, 0f);
                    for (int j = 0; j < k; j++) {
                        int src = t - (k - 1) + j; // relative row of tap j
                        float[] in = src >= 0 ? xa : ta;
                        int io = src >= 0 ? x.at(start + src, c0) : tail.at(k - 1 + src, c0);
                        tap(wt, j * p + c0, in, io, acc, c1 - c0);
                    }
                    int oo = out.at(start + t, c0);
                    for (int c = 0; c < c1 - c0; c++) oa[oo + c] = acc[c];
                    Activations.silu(oa, oo, c1 - c0);
                }
            });
            // new tail: the last K-1 inputs of (old tail ++ segment)
            float[] buf = new float[(k - 1) * p];
            for (int r = 0; r < k - 1; r++) {
                int src = len - (k - 1) + r;
                if (src >= 0) System.arraycopy(xa, x.at(start + src, 0), buf, r * p, p);
                else System.arraycopy(ta, tail.at(k - 1 + src, 0), buf, r * p, p);
            }
            System.arraycopy(buf, 0, ta, tail.offset(), buf.length);
        }
    }

    /** acc[0..n) += w[wo..wo+n) * in[io..io+n); the tail masked, so a channel's bits do not depend on the split. */
    private static void tap(float[] w, int wo, float[] in, int io, float[] acc, int n) {
        for (int c = 0; c < n; c += L) {
            var m = F.indexInRange(c, n);
            FloatVector.fromArray(F, w, wo + c, m).fma(FloatVector.fromArray(F, in, io + c, m), FloatVector.fromArray(F, acc, c, m))
                    .intoArray(acc, c, m);
        }
    }
}
