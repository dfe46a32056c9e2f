package dev.kimimesh.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * C += A B for small float32 matrices held in arrays (the per-head products of the chunkwise KDA), with 4 x 2-vector
 * register tiles so that C stays in registers over the whole inner dimension. Each C element sums its k products in
 * order, as the plain loop would.
 */
final class Gemm {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    private Gemm() {}

    /** C[m x n] (row stride ldc) += A[m x k] (lda) times B[k x n] (ldb). */
    static void multiplyAdd(float[] a, int ao, int lda, float[] b, int bo, int ldb, float[] c, int co, int ldc,
                            int m, int n, int k) {
        int i = 0;
        for (; i + 4 <= m; i += 4) {
            int a0 = ao + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            int c0 = co + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
            int j = 0;
            for (; j + 2 * L <= n; j += 2 * L) {
                FloatVector x00 = FloatVector.fromArray(F, c, c0 + j), x01 = FloatVector.fromArray(F, c, c0 + j + L);
                FloatVector x10 = FloatVector.fromArray(F, c, c1 + j), x11 = FloatVector.fromArray(F, c, c1 + j + L);
                FloatVector x20 = FloatVector.fromArray(F, c, c2 + j), x21 = FloatVector.fromArray(F, c, c2 + j + L);
                FloatVector x30 = FloatVector.fromArray(F, c, c3 + j), x31 = FloatVector.fromArray(F, c, c3 + j + L);
                for (int p = 0; p < k; p++) {
                    int bp = bo + p * ldb + j;
                    FloatVector b0 = FloatVector.fromArray(F, b, bp), b1 = FloatVector.fromArray(F, b, bp + L);
                    FloatVector s = FloatVector.broadcast(F, a[a0 + p]);
                    x00 = b0.fma(s, x00);
                    x01 = b1.fma(s, x01);
                    s = FloatVector.broadcast(F, a[a1 + p]);
                    x10 = b0.fma(s, x10);
                    x11 = b1.fma(s, x11);
                    s = FloatVector.broadcast(F, a[a2 + p]);
                    x20 = b0.fma(s, x20);
                    x21 = b1.fma(s, x21);
                    s = FloatVector.broadcast(F, a[a3 + p]);
                    x30 = b0.fma(s, x30);
                    x31 = b1.fma(s, x31);
                }
                x00.intoArray(c, c0 + j);
                x01.intoArray(c, c0 + j + L);
                x10.intoArray(c, c1 + j);
                x11.intoArray(c, c1 + j + L);
                x20.intoArray(c, c2 + j);
                x21.intoArray(c, c2 + j + L);
                x30.intoArray(c, c3 + j);
                x31.intoArray(c, c3 + j + L);
            }
            for (; j < n; j++) {
                for (int r = 0; r < 4; r++) c[co + (i + r) * ldc + j] = dotColumn(a, ao + (i + r) * lda, b, bo + j, ldb, k, c[co + (i + r) * ldc + j]);
            }
        }
        for (; i < m; i++) {
            int ar = ao + i * lda, cr = co + i * ldc;
            int j = 0;
            for (; j + L <= n; j += L) {
                FloatVector x = FloatVector.fromArray(F, c, cr + j);
                for (int p = 0; p < k; p++) x = FloatVector.fromArray(F, b, bo + p * ldb + j).fma(FloatVector.broadcast(F, a[ar + p]), x);
                x.intoArray(c, cr + j);
            }
            for (; j < n; j++) c[cr + j] = dotColumn(a, ar, b, bo + j, ldb, k, c[cr + j]);
        }
    }

    private static float dotColumn(float[] a, int ar, float[] b, int bc, int ldb, int k, float acc) {
        for (int p = 0; p < k; p++) acc = Math.fma(a[ar + p], b[bc + p * ldb], acc);
        return acc;
    }
}
