package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out = x W^T} with W read in place (bf16, f16 or f32) and float32 accumulation.
 *
 * <p>bf16 rows are read as ints holding two values each: {@code bits << 16} is the even element as a float and
 * {@code bits & 0xffff0000} the odd one, so widening costs one shift or and per 16 values and no lane shuffles. x is
 * split once per call into its even and odd halves to match. Output rows go in groups of four and tokens in groups of
 * four (16 accumulators), so each weight vector loaded feeds four tokens and each x vector four rows; tokens are
 * taken in blocks small enough for x to stay in L2 while the rows stream by.
 */
final class MatMul {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> IH = IntVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** bf16 values per step of the packed-pair loop. */
    private static final int P = 2 * L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int ODD_MASK = 0xffff0000;
    /** Bytes of x (fp32) a token block may hold: about half a typical L2. */
    private static final int X_BLOCK_BYTES = 1 << 19;
    /** Least weight bytes worth a parallel task (a few microseconds of streaming). */
    private static final long TASK_BYTES = 1 << 16;

    private MatMul() {}

    static void matmul(CpuTensor x, CpuWeight w, CpuTensor out) {
        matmul(x, w, out, true);
    }

    /** The same product on the calling thread only (for callers that already run one task per core). */
    static void serial(CpuTensor x, CpuWeight w, CpuTensor out) {
        matmul(x, w, out, false);
    }

    private static void check(CpuTensor x, CpuWeight w, CpuTensor out) {
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (w.cols() != k) throw new IllegalArgumentException("matmul: x has " + k + " columns, " + w + " expects " + w.cols());
        if (out.rows() != t || out.cols() != n) {
            throw new IllegalArgumentException("matmul: out is " + out.rows() + "x" + out.cols() + ", expected " + t + "x" + n);
        }
    }

    /**
     * {@code out[i] = x W[i]^T} for projections of one input, as one parallel pass over the row groups of all the
     * weights laid end to end: one fork and one join instead of one per weight, x split once, and small weights
     * (f_a, b_proj, g_a) share the cores with large ones instead of being split into a few tiny tasks each. Every
     * row is computed by the same kernel as in {@link #matmul}, so the bits are the same.
     */
    static void matmuls(CpuTensor x, CpuWeight[] w, CpuTensor[] out) {
        if (w.length != out.length) throw new IllegalArgumentException("matmuls: " + w.length + " weights, " + out.length + " outputs");
        boolean bf16 = true;
        for (int i = 0; i < w.length; i++) {
            check(x, w[i], out[i]);
            bf16 &= w[i].dtype() == DType.BF16;
        }
        int t = x.rows(), k = x.cols();
        if (!bf16 || t == 0) {
            for (int i = 0; i < w.length; i++) matmul(x, w[i], out[i]);
            return;
        }
        float[] xs = split(x);
        int[] first = new int[w.length + 1]; // the first row group of each weight in the joint range
        for (int i = 0; i < w.length; i++) first[i + 1] = first[i] + (w[i].rows() + 3) / 4;
        long groupBytes = 4L * k * 2 * Math.max(1, t / 4);
        int grain = (int) Math.max(1, TASK_BYTES / Math.max(1, groupBytes));
        Parallel.range(first[w.length], grain, (g0, g1) -> {
            for (int i = 0; i < w.length; i++) {
                int a = Math.max(g0, first[i]), b = Math.min(g1, first[i + 1]);
                if (a < b) bf16Rows(xs, t, k, w[i], out[i], (a - first[i]) * 4, Math.min(w[i].rows(), (b - first[i]) * 4));
            }
        });
    }

    private static void matmul(CpuTensor x, CpuWeight w, CpuTensor out, boolean parallel) {
        check(x, w, out);
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (t == 0 || n == 0) return;
        if (w.dtype() != DType.BF16) {
            generic(x, w, out, parallel);
            return;
        }
        float[] xs = split(x);
        if (!parallel) {
            bf16Rows(xs, t, k, w, out, 0, n);
            return;
        }
        int groups = (n + 3) / 4;
        long groupBytes = 4L * k * 2 * Math.max(1, t / 4);
        int grain = (int) Math.max(1, TASK_BYTES / Math.max(1, groupBytes));
        Parallel.range(groups, grain, (g0, g1) -> bf16Rows(xs, t, k, w, out, g0 * 4, Math.min(n, g1 * 4)));
    }

    /** Rows of x with the even elements of the first {@code k - k % P} columns first, then the odd, then the tail. */
    private static float[] split(CpuTensor x) {
        int t = x.rows(), k = x.cols(), kp = k - k % P, half = kp / 2;
        float[] xa = x.data(), xs = new float[t * k];
        for (int r = 0; r < t; r++) {
            int src = x.at(r, 0), dst = r * k;
            for (int i = 0; i < half; i++) {
                xs[dst + i] = xa[src + 2 * i];
                xs[dst + half + i] = xa[src + 2 * i + 1];
            }
            System.arraycopy(xa, src + kp, xs, dst + kp, k - kp);
        }
        return xs;
    }

    private static void bf16Rows(float[] xs, int t, int k, CpuWeight w, CpuTensor out, int from, int to) {
        int block = Math.max(4, Math.min(64, X_BLOCK_BYTES / (4 * k)) & ~3);
        for (int t0 = 0; t0 < t; t0 += block) {
            int t1 = Math.min(t, t0 + block);
            int r = from;
            for (; r + 4 <= to; r += 4) {
                int tok = t0;
                for (; tok + 4 <= t1; tok += 4) dot4x4(xs, k, w, out, r, tok);
                for (; tok < t1; tok++) dot4x1(xs, k, w, out, r, tok);
            }
            for (; r < to; r++) {
                for (int tok = t0; tok < t1; tok++) out.data()[out.at(tok, r)] = dot1x1(xs, k, w, r, tok);
            }
        }
    }

    private static FloatVector even(IntVector v) {
        return v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odd(IntVector v) {
        return v.and(ODD_MASK).reinterpretAsFloats();
    }

    /** The columns past the packed loop, in plain floats (k % 32 of them; none for the real model). */
    private static float tail(float[] xs, int xo, int k, CpuWeight w, int r) {
        float s = 0;
        long base = (long) r * k;
        for (int i = k - k % P; i < k; i++) s += w.get(base + i) * xs[xo + i];
        return s;
    }

    static float dot1x1(float[] xs, int k, CpuWeight w, int r, int tok) {
        MemorySegment seg = w.data();
        long wo = w.rowOffset(r);
        int half = (k - k % P) / 2, xo = tok * k;
        FloatVector acc = FloatVector.zero(F);
        for (int i = 0; i < half; i += L) {
            IntVector v = IntVector.fromMemorySegment(I, seg, wo + 4L * i, LE);
            acc = even(v).fma(FloatVector.fromArray(F, xs, xo + i), acc);
            acc = odd(v).fma(FloatVector.fromArray(F, xs, xo + half + i), acc);
        }
        float s = Lanes.sum(acc);
        return k % P == 0 ? s : s + tail(xs, xo, k, w, r);
    }

    /**
     * Four rows, one token: the decode shape. Every kernel here accumulates a (row, token) pair the same way (one
     * accumulator, even product then odd product per step, the same lane sum), so a token's result does not depend
     * on which other tokens share its call.
     */
    private static void dot4x1(float[] xs, int k, CpuWeight w, CpuTensor out, int r, int tok) {
        MemorySegment seg = w.data();
        long w0 = w.rowOffset(r), rb = w.rowOffset(1), w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
        int half = (k - k % P) / 2, xo = tok * k;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < half; i += L) {
            FloatVector xe = FloatVector.fromArray(F, xs, xo + i), xd = FloatVector.fromArray(F, xs, xo + half + i);
            long o = 4L * i;
            IntVector v0 = IntVector.fromMemorySegment(I, seg, w0 + o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, seg, w1 + o, LE);
            IntVector v2 = IntVector.fromMemorySegment(I, seg, w2 + o, LE);
            IntVector v3 = IntVector.fromMemorySegment(I, seg, w3 + o, LE);
            a0 = even(v0).fma(xe, a0);
            a0 = odd(v0).fma(xd, a0);
            a1 = even(v1).fma(xe, a1);
            a1 = odd(v1).fma(xd, a1);
            a2 = even(v2).fma(xe, a2);
            a2 = odd(v2).fma(xd, a2);
            a3 = even(v3).fma(xe, a3);
            a3 = odd(v3).fma(xd, a3);
        }
        float[] o = out.data();
        int oo = out.at(tok, r);
        o[oo] = Lanes.sum(a0);
        o[oo + 1] = Lanes.sum(a1);
        o[oo + 2] = Lanes.sum(a2);
        o[oo + 3] = Lanes.sum(a3);
        if (k % P != 0) for (int rr = 0; rr < 4; rr++) o[oo + rr] += tail(xs, xo, k, w, r + rr);
    }

    /** Four rows by four tokens: the prefill tile, 16 accumulators. */
    private static void dot4x4(float[] xs, int k, CpuWeight w, CpuTensor out, int r, int tok) {
        MemorySegment seg = w.data();
        long w0 = w.rowOffset(r), rb = w.rowOffset(1), w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
        int half = (k - k % P) / 2, x0 = tok * k, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        for (int i = 0; i < half; i += L) {
            long o = 4L * i;
            IntVector v0 = IntVector.fromMemorySegment(I, seg, w0 + o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, seg, w1 + o, LE);
            IntVector v2 = IntVector.fromMemorySegment(I, seg, w2 + o, LE);
            IntVector v3 = IntVector.fromMemorySegment(I, seg, w3 + o, LE);
            FloatVector e0 = even(v0), e1 = even(v1), e2 = even(v2), e3 = even(v3);
            FloatVector x = FloatVector.fromArray(F, xs, x0 + i);
            a00 = e0.fma(x, a00);
            a10 = e1.fma(x, a10);
            a20 = e2.fma(x, a20);
            a30 = e3.fma(x, a30);
            x = FloatVector.fromArray(F, xs, x1 + i);
            a01 = e0.fma(x, a01);
            a11 = e1.fma(x, a11);
            a21 = e2.fma(x, a21);
            a31 = e3.fma(x, a31);
            x = FloatVector.fromArray(F, xs, x2 + i);
            a02 = e0.fma(x, a02);
            a12 = e1.fma(x, a12);
            a22 = e2.fma(x, a22);
            a32 = e3.fma(x, a32);
            x = FloatVector.fromArray(F, xs, x3 + i);
            a03 = e0.fma(x, a03);
            a13 = e1.fma(x, a13);
            a23 = e2.fma(x, a23);
            a33 = e3.fma(x, a33);
            e0 = odd(v0);
            e1 = odd(v1);
            e2 = odd(v2);
            e3 = odd(v3);
            x = FloatVector.fromArray(F, xs, x0 + half + i);
            a00 = e0.fma(x, a00);
            a10 = e1.fma(x, a10);
            a20 = e2.fma(x, a20);
            a30 = e3.fma(x, a30);
            x = FloatVector.fromArray(F, xs, x1 + half + i);
            a01 = e0.fma(x, a01);
            a11 = e1.fma(x, a11);
            a21 = e2.fma(x, a21);
            a31 = e3.fma(x, a31);
            x = FloatVector.fromArray(F, xs, x2 + half + i);
            a02 = e0.fma(x, a02);
            a12 = e1.fma(x, a12);
            a22 = e2.fma(x, a22);
            a32 = e3.fma(x, a32);
            x = FloatVector.fromArray(F, xs, x3 + half + i);
            a03 = e0.fma(x, a03);
            a13 = e1.fma(x, a13);
            a23 = e2.fma(x, a23);
            a33 = e3.fma(x, a33);
        }
        // no helper taking the 16 vectors: a call that is not inlined boxes its vector arguments (8x slower)
        float[] o = out.data();
        int n = out.cols();
        int oo = out.at(tok, r);
        o[oo] = Lanes.sum(a00);
        o[oo + 1] = Lanes.sum(a10);
        o[oo + 2] = Lanes.sum(a20);
        o[oo + 3] = Lanes.sum(a30);
        oo += n;
        o[oo] = Lanes.sum(a01);
        o[oo + 1] = Lanes.sum(a11);
        o[oo + 2] = Lanes.sum(a21);
        o[oo + 3] = Lanes.sum(a31);
        oo += n;
        o[oo] = Lanes.sum(a02);
        o[oo + 1] = Lanes.sum(a12);
        o[oo + 2] = Lanes.sum(a22);
        o[oo + 3] = Lanes.sum(a32);
        oo += n;
        o[oo] = Lanes.sum(a03);
        o[oo + 1] = Lanes.sum(a13);
        o[oo + 2] = Lanes.sum(a23);
        o[oo + 3] = Lanes.sum(a33);
        if (k % P != 0) {
            for (int j = 0; j < 4; j++) {
                for (int rr = 0; rr < 4; rr++) o[out.at(tok + j, r + rr)] += tail(xs, (tok + j) * k, k, w, r + rr);
            }
        }
    }

    /** f32 and f16 weights (not what the real checkpoint stores): one row and token at a time. */
    private static void generic(CpuTensor x, CpuWeight w, CpuTensor out, boolean parallel) {
        int t = x.rows(), k = x.cols(), n = w.rows();
        int grain = parallel ? (int) Math.max(1, TASK_BYTES / Math.max(1, (long) k * w.dtype().bytes() * t)) : n;
        Parallel.range(n, grain, (from, to) -> {
            for (int r = from; r < to; r++) {
                for (int tok = 0; tok < t; tok++) out.data()[out.at(tok, r)] = dot(x, tok, w, r);
            }
        });
    }

    /** One dot product of x row {@code tok} with weight row r, any weight dtype (f16 scalar). */
    static float dot(CpuTensor x, int tok, CpuWeight w, int r) {
        int k = x.cols();
        float[] xa = x.data();
        int xo = x.at(tok, 0);
        long wo = w.rowOffset(r);
        MemorySegment seg = w.data();
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        if (w.dtype() == DType.F32) {
            for (; i + L <= k; i += L) acc = FloatVector.fromMemorySegment(F, seg, wo + 4L * i, LE).fma(FloatVector.fromArray(F, xa, xo + i), acc);
        } else if (w.dtype() == DType.BF16) {
            for (; i + L <= k; i += L) {
                ShortVector s = ShortVector.fromMemorySegment(S, seg, wo + 2L * i, LE);
                FloatVector wv = ((IntVector) s.convertShape(VectorOperators.S2I, IH, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                acc = wv.fma(FloatVector.fromArray(F, xa, xo + i), acc);
            }
        }
        float s = Lanes.sum(acc);
        for (; i < k; i++) s += w.get((long) r * k + i) * xa[xo + i];
        return s;
    }
}
