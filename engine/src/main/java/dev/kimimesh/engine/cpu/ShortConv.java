package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Segments;

/** Causal depthwise convolution (kernel K) with a carried tail of K-1 pre-conv inputs, then SiLU. */
final class ShortConv {
    private ShortConv() {}

    static void convSilu(CpuTensor x, CpuWeight conv, Segments seg, CpuTensor[] tails, CpuTensor out) {
        int p = x.cols(), k = conv.cols();
        if (conv.rows() != p) throw new IllegalArgumentException("shortConv: " + conv + " does not match width " + p);
        float[] w = conv.floats();
        float[] xa = x.data(), oa = out.data();
        for (int s = 0; s < seg.count(); s++) {
            CpuTensor tail = tails[s];
            if (tail.rows() != k - 1 || tail.cols() != p) throw new IllegalArgumentException("shortConv: tail shape");
            int start = seg.start(s), len = seg.length(s);
            float[] ta = tail.data();
            Parallel.range(p, 256, (c0, c1) -> {
                for (int c = c0; c < c1; c++) {
                    for (int t = 0; t < len; t++) {
                        float acc = 0;
                        for (int j = 0; j < k; j++) {
                            int src = t - (k - 1) + j; // relative row of tap j
                            float v = src >= 0 ? xa[x.at(start + src, c)] : ta[tail.at(k - 1 + src, c)];
                            acc += w[c * k + j] * v;
                        }
                        oa[out.at(start + t, c)] = Norms.silu(acc);
                    }
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
}
