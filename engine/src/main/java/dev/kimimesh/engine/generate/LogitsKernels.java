package dev.kimimesh.engine.generate;

import dev.kimimesh.engine.cpu.VecMath;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API passes over one row of logits (vocabulary-sized, so each pass is the sampler's whole cost): max,
 * first argmax, softmax weights and their sum, and threshold scans that leave scalar code only on the rare hits.
 * Weights come from {@link VecMath#exp} (the same bits in every JIT tier and on the device sampler) and every sum of
 * weights accumulates in double, so a sum in another order (the device's) differs by ~1e-16 relative and the token
 * drawn for a given uniform number is the same.
 */
final class LogitsKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private LogitsKernels() {}

    /** The largest value; NaN if any value is NaN. */
    static float max(float[] x, int off, int n) {
        int bound = S.loopBound(n), i = 0;
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (; i < bound; i += L) m = m.max(FloatVector.fromArray(S, x, off + i));
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) r = Math.max(r, x[off + i]);
        return r;
    }

    /** The first index whose value equals {@code max} (the lowest index among ties), or -1. */
    static int firstIndexOf(float[] x, int off, int n, float max) {
        int bound = S.loopBound(n), i = 0;
        for (; i < bound; i += L) {
            VectorMask<Float> hit = FloatVector.fromArray(S, x, off + i).compare(VectorOperators.EQ, max);
            if (hit.anyTrue()) return i + hit.firstTrue();
        }
        for (; i < n; i++) if (x[off + i] == max) return i;
        return -1;
    }

    /** {@code sum exp((x - shift) * scale)}; the terms are written to {@code out[0, n)} when out is not null. */
    static double sumExp(float[] x, int off, int n, float shift, float scale, float[] out) {
        DoubleVector acc = DoubleVector.zero(D);
        for (int i = 0; i < n; i += L) {
            // the tail through a masked vector too: every weight from the same exp
            VectorMask<Float> in = S.indexInRange(i, n);
            FloatVector e = VecMath.exp(FloatVector.fromArray(S, x, off + i, in).sub(shift).mul(scale)).blend(0f, in.not());
            if (out != null) e.intoArray(out, i, in);
            acc = acc.add(widen(e, 0)).add(widen(e, 1));
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Half {@code part} (0 or 1) of a float vector's lanes as doubles. */
    private static DoubleVector widen(FloatVector v, int part) {
        return (DoubleVector) v.convertShape(VectorOperators.F2D, D, part);
    }

    /** The first index at which the running sum of w[0, n) exceeds u; the last positive one if rounding runs out. */
    static int cumulativeSearch(float[] w, int n, double u) {
        int bound = S.loopBound(n), i = 0;
        double cum = 0;
        for (; i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, w, i);
            double block = widen(v, 0).add(widen(v, 1)).reduceLanes(VectorOperators.ADD);
            if (cum + block > u) break;
            cum += block;
        }
        int last = -1;
        for (; i < n; i++) {
            if (w[i] > 0) last = i;
            cum += w[i];
            if (u < cum) return i;
        }
        if (last >= 0) return last;
        for (int j = n - 1; j >= 0; j--) if (w[j] > 0) return j;
        return n - 1;
    }

    /** Writes key(w[i], i) for each index i (ascending) with w[i] >= threshold into keys; returns how many. */
    static int collectAtLeast(float[] w, int n, float threshold, long[] keys, KeyFn key) {
        int bound = S.loopBound(n), i = 0, m = 0;
        for (; i < bound; i += L) {
            VectorMask<Float> hit = FloatVector.fromArray(S, w, i).compare(VectorOperators.GE, threshold);
            if (hit.anyTrue()) {
                for (int j = 0; j < L; j++) if (w[i + j] >= threshold) keys[m++] = key.of(w[i + j], i + j);
            }
        }
        for (; i < n; i++) if (w[i] >= threshold) keys[m++] = key.of(w[i], i);
        return m;
    }

    /** Packs a value and its index into one sortable long. */
    interface KeyFn {
        long of(float value, int index);
    }

    /** The first index in [from, n) whose value exceeds {@code threshold}, or n. */
    static int nextAbove(float[] x, int off, int from, int n, float threshold) {
        int i = from;
        int bound = from + S.loopBound(n - from);
        for (; i < bound; i += L) {
            VectorMask<Float> hit = FloatVector.fromArray(S, x, off + i).compare(VectorOperators.GT, threshold);
            if (hit.anyTrue()) return i + hit.firstTrue();
        }
        for (; i < n; i++) if (x[off + i] > threshold) return i;
        return n;
    }

    /** Sum of the values >= t (strict: > t) of w[0, n), in double. */
    static double massAtLeast(float[] w, int n, float t, boolean strict) {
        int bound = S.loopBound(n), i = 0;
        DoubleVector acc = DoubleVector.zero(D);
        FloatVector zero = FloatVector.zero(S);
        // two loops so that each comparison operator is a constant (a variable one is not intrinsified)
        if (strict) {
            for (; i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, w, i);
                FloatVector kept = zero.blend(v, v.compare(VectorOperators.GT, t));
                acc = acc.add(widen(kept, 0)).add(widen(kept, 1));
            }
        } else {
            for (; i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, w, i);
                FloatVector kept = zero.blend(v, v.compare(VectorOperators.GE, t));
                acc = acc.add(widen(kept, 0)).add(widen(kept, 1));
            }
        }
        double sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) if (strict ? w[i] > t : w[i] >= t) sum += w[i];
        return sum;
    }

    /** How many of w[0, n) are at least t. */
    static int countAtLeast(float[] w, int n, float t) {
        int bound = S.loopBound(n), i = 0, c = 0;
        for (; i < bound; i += L) c += FloatVector.fromArray(S, w, i).compare(VectorOperators.GE, t).trueCount();
        for (; i < n; i++) if (w[i] >= t) c++;
        return c;
    }

    /** How many of w[0, n) equal t. */
    static int count(float[] w, int n, float t) {
        int bound = S.loopBound(n), i = 0, c = 0;
        for (; i < bound; i += L) c += FloatVector.fromArray(S, w, i).compare(VectorOperators.EQ, t).trueCount();
        for (; i < n; i++) if (w[i] == t) c++;
        return c;
    }
}
