package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal multi-head latent attention (NoPE) over a latent cache. Two evaluations of the same function:
 * expanded (kv_b_proj applied to every cached latent: prefill) and absorbed (kv_b_proj folded into the query and the
 * output, attention as MQA over the latent: decode). Dot products, value sums and exps run on vectors.
 */
final class Mla {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

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

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= n; i += L) acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        float s = Lanes.sum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    static void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        FloatVector av = FloatVector.broadcast(F, a);
        int i = 0;
        for (; i + L <= n; i += L) FloatVector.fromArray(F, x, xo + i).fma(av, FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    /** p[0..n) = exp(p - max); returns their sum. */
    private static double softmaxNumerators(float[] p, int n, float max) {
        FloatVector m = FloatVector.broadcast(F, max), acc = FloatVector.zero(F);
        int j = 0;
        for (; j + L <= n; j += L) {
            FloatVector e = VecMath.exp(FloatVector.fromArray(F, p, j).sub(m));
            e.intoArray(p, j);
            acc = acc.add(e);
        }
        double sum = Lanes.sum(acc);
        for (; j < n; j++) sum += p[j] = (float) Math.exp(p[j] - max);
        return sum;
    }

    private static void expanded(CpuTensor q, CpuTensor latent, CpuTensor kRot, CpuWeight kvB, int heads, int nope,
                                 int rope, int vDim, float scale, int row0, int len, int pos, CpuTensor out) {
        int total = pos + len;
        int per = nope + vDim;
        CpuTensor kv = CpuTensor.of(total, heads * per);
        MatMul.matmul(latent.rowSlice(0, total), kvB, kv);
        int qw = nope + rope;
        float[] qa = q.data(), kva = kv.data(), ra = kRot.data(), oa = out.data();
        Parallel.range(heads * len, 4, (from, to) -> {
            float[] p = new float[total];
            for (int idx = from; idx < to; idx++) {
                int h = idx / len, t = idx % len;
                int qo = q.at(row0 + t, h * qw);
                int visible = pos + t + 1;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    float sc = (dot(qa, qo, kva, kv.at(j, h * per), nope) + dot(qa, qo + nope, ra, kRot.at(j, 0), rope)) * scale;
                    p[j] = sc;
                    max = Math.max(max, sc);
                }
                float inv = (float) (1.0 / softmaxNumerators(p, visible, max));
                int oo = out.at(row0 + t, h * vDim);
                java.util.Arrays.fill(oa, oo, oo + vDim, 0f);
                for (int j = 0; j < visible; j++) axpy(p[j] * inv, kva, kv.at(j, h * per + nope), oa, oo, vDim);
            }
        });
    }

    private static void absorbed(CpuTensor q, CpuTensor latent, CpuTensor kRot, CpuWeight kvB, int heads, int nope,
                                 int rope, int vDim, float scale, int row0, int len, int pos, CpuTensor out) {
        int r = latent.cols();
        int per = nope + vDim;
        int qw = nope + rope;
        float[] qa = q.data(), la = latent.data(), ra = kRot.data(), oa = out.data();
        boolean pairs = kvB.dtype() == DType.BF16 && r % (2 * L) == 0;
        Parallel.range(heads * len, 1, (from, to) -> {
            float[] qLat = new float[r], ctx = new float[r], wrow = new float[r], half = new float[r];
            float[] p = new float[pos + len];
            for (int idx = from; idx < to; idx++) {
                int h = idx / len, t = idx % len;
                int qo = q.at(row0 + t, h * qw);
                // q_lat = W_kb_h^T q_nope: the query moved into latent space
                java.util.Arrays.fill(qLat, 0f);
                if (pairs) {
                    for (int i = 0; i < nope; i++) axpyPairs(qa[qo + i], kvB, h * per + i, half, r);
                    interleave(half, qLat, r);
                    java.util.Arrays.fill(half, 0f);
                } else {
                    for (int i = 0; i < nope; i++) {
                        kvB.row(h * per + i, wrow, 0);
                        axpy(qa[qo + i], wrow, 0, qLat, 0, r);
                    }
                }
                int visible = pos + t + 1;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    float sc = (dot(qLat, 0, la, latent.at(j, 0), r) + dot(qa, qo + nope, ra, kRot.at(j, 0), rope)) * scale;
                    p[j] = sc;
                    max = Math.max(max, sc);
                }
                float inv = (float) (1.0 / softmaxNumerators(p, visible, max));
                java.util.Arrays.fill(ctx, 0f);
                for (int j = 0; j < visible; j++) axpy(p[j] * inv, la, latent.at(j, 0), ctx, 0, r);
                // o_h = W_vb_h ctx: the output moved back out of latent space
                int oo = out.at(row0 + t, h * vDim);
                if (pairs) {
                    split(ctx, wrow, r);
                    for (int c = 0; c < vDim; c++) oa[oo + c] = dotPairs(kvB, h * per + nope + c, wrow, r);
                } else {
                    for (int c = 0; c < vDim; c++) {
                        kvB.row(h * per + nope + c, wrow, 0);
                        oa[oo + c] = dot(wrow, 0, ctx, 0, r);
                    }
                }
            }
        });
    }

    /** y (even elements in the first half, odd in the second) += a * bf16 row of w; r a multiple of 2L. */
    private static void axpyPairs(float a, CpuWeight w, int row, float[] y, int r) {
        MemorySegment seg = w.data();
        long off = w.rowOffset(row);
        int half = r / 2;
        FloatVector av = FloatVector.broadcast(F, a);
        for (int i = 0; i < half; i += L) {
            IntVector v = IntVector.fromMemorySegment(I, seg, off + 4L * i, LE);
            v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(av, FloatVector.fromArray(F, y, i)).intoArray(y, i);
            v.and(0xffff0000).reinterpretAsFloats().fma(av, FloatVector.fromArray(F, y, half + i)).intoArray(y, half + i);
        }
    }

    /** bf16 row of w . x, with x split into even and odd halves; r a multiple of 2L. */
    private static float dotPairs(CpuWeight w, int row, float[] xs, int r) {
        MemorySegment seg = w.data();
        long off = w.rowOffset(row);
        int half = r / 2;
        FloatVector ae = FloatVector.zero(F), ao = ae;
        for (int i = 0; i < half; i += L) {
            IntVector v = IntVector.fromMemorySegment(I, seg, off + 4L * i, LE);
            ae = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xs, i), ae);
            ao = v.and(0xffff0000).reinterpretAsFloats().fma(FloatVector.fromArray(F, xs, half + i), ao);
        }
        return Lanes.sum(ae.add(ao));
    }

    private static void interleave(float[] split, float[] dst, int r) {
        int half = r / 2;
        for (int i = 0; i < half; i++) {
            dst[2 * i] = split[i];
            dst[2 * i + 1] = split[half + i];
        }
    }

    private static void split(float[] src, float[] dst, int r) {
        int half = r / 2;
        for (int i = 0; i < half; i++) {
            dst[i] = src[2 * i];
            dst[half + i] = src[2 * i + 1];
        }
    }
}
