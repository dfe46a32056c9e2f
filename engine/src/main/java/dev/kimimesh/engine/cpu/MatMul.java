package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out = x W^T} with W read in place (bf16, f16 or f32) and float32 accumulation. Work is split over output
 * rows; each weight row is loaded once per block of up to four tokens, since decode is bound by weight bytes.
 */
final class MatMul {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Lane rotations by L/2, L/4, ..., 1: the fixed reduction tree of {@link #sum}. */
    private static final VectorShuffle<Float>[] HALVES = halves();

    private MatMul() {}

    static void matmul(CpuTensor x, CpuWeight w, CpuTensor out) {
        int t = x.rows(), k = x.cols(), n = w.rows();
        if (w.cols() != k) throw new IllegalArgumentException("matmul: x has " + k + " columns, " + w + " expects " + w.cols());
        if (out.rows() != t || out.cols() != n) {
            throw new IllegalArgumentException("matmul: out is " + out.rows() + "x" + out.cols() + ", expected " + t + "x" + n);
        }
        long work = (long) t * n * k;
        int grain = (int) Math.max(1, Math.min(n, (1L << 16) / Math.max(1, (long) t * k / 64)));
        if (work < (1 << 15)) grain = n;
        Parallel.range(n, grain, (from, to) -> rows(x, w, out, from, to));
    }

    private static void rows(CpuTensor x, CpuWeight w, CpuTensor out, int from, int to) {
        int t = x.rows();
        for (int r = from; r < to; r++) {
            int tok = 0;
            for (; tok + 4 <= t; tok += 4) dot4(x, w, out, r, tok);
            for (; tok < t; tok++) out.data()[out.at(tok, r)] = dot1(x, tok, w, r);
        }
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] halves() {
        int steps = Integer.numberOfTrailingZeros(L);
        VectorShuffle<Float>[] out = new VectorShuffle[steps];
        for (int i = 0, h = L / 2; i < steps; i++, h /= 2) out[i] = VectorShuffle.iota(F, h, 1, true);
        return out;
    }

    /**
     * The sum of the lanes in a fixed tree order. {@code reduceLanes(ADD)} does not fix the order: its interpreted
     * fallback adds lane by lane and its compiled form as a tree, so the same input gave different bits on a cold
     * and a warm JVM. Lane-wise adds are exact IEEE operations either way, so this tree is reproducible.
     */
    static float sum(FloatVector v) {
        for (VectorShuffle<Float> s : HALVES) v = v.add(v.rearrange(s));
        return v.lane(0);
    }

    private static FloatVector load(CpuWeight w, long byteOff) {
        MemorySegment seg = w.data();
        if (w.dtype() == DType.BF16) {
            ShortVector s = ShortVector.fromMemorySegment(S, seg, byteOff, LE);
            return ((IntVector) s.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats();
        }
        // f16 weights take the scalar path in the callers
        return FloatVector.fromMemorySegment(F, seg, byteOff, LE);
    }

    static float dot1(CpuTensor x, int tok, CpuWeight w, int r) {
        int k = x.cols();
        float[] xa = x.data();
        int xo = x.at(tok, 0);
        long wo = w.rowOffset(r);
        int eb = w.dtype().bytes();
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        if (w.dtype() != DType.F16) {
            for (; i + L <= k; i += L) acc = load(w, wo + (long) i * eb).fma(FloatVector.fromArray(F, xa, xo + i), acc);
        }
        float s = sum(acc);
        for (; i < k; i++) s += w.get((long) r * k + i) * xa[xo + i];
        return s;
    }

    private static void dot4(CpuTensor x, CpuWeight w, CpuTensor out, int r, int tok) {
        int k = x.cols();
        float[] xa = x.data();
        int x0 = x.at(tok, 0), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        long wo = w.rowOffset(r);
        int eb = w.dtype().bytes();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        if (w.dtype() != DType.F16) {
            for (; i + L <= k; i += L) {
                FloatVector wv = load(w, wo + (long) i * eb);
                a0 = wv.fma(FloatVector.fromArray(F, xa, x0 + i), a0);
                a1 = wv.fma(FloatVector.fromArray(F, xa, x1 + i), a1);
                a2 = wv.fma(FloatVector.fromArray(F, xa, x2 + i), a2);
                a3 = wv.fma(FloatVector.fromArray(F, xa, x3 + i), a3);
            }
        }
        float s0 = sum(a0), s1 = sum(a1), s2 = sum(a2), s3 = sum(a3);
        long base = (long) r * k;
        for (; i < k; i++) {
            float wv = w.get(base + i);
            s0 += wv * xa[x0 + i];
            s1 += wv * xa[x1 + i];
            s2 += wv * xa[x2 + i];
            s3 += wv * xa[x3 + i];
        }
        float[] o = out.data();
        o[out.at(tok, r)] = s0;
        o[out.at(tok + 1, r)] = s1;
        o[out.at(tok + 2, r)] = s2;
        o[out.at(tok + 3, r)] = s3;
    }
}
