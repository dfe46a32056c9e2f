package dev.kimimesh.engine.generate;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API passes over one row of logits (vocabulary-sized, so each pass is the sampler's whole cost): max,
 * first argmax, softmax weights and their sum, and threshold scans that leave scalar code only on the rare hits.
 */
final class LogitsKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
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
        int bound = S.loopBound(n), i = 0;
        FloatVector acc = FloatVector.zero(S);
        for (; i < bound; i += L) {
            FloatVector e = FloatVector.fromArray(S, x, off + i).sub(shift).mul(scale).lanewise(VectorOperators.EXP);
            if (out != null) e.intoArray(out, i);
            acc = acc.add(e);
        }
        double sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float e = (float) Math.exp((x[off + i] - shift) * scale);
            if (out != null) out[i] = e;
            sum += e;
        }
        return sum;
    }

    /** The first index at which the running sum of w[0, n) exceeds u; the last positive one if rounding runs out. */
    static int cumulativeSearch(float[] w, int n, double u) {
        int bound = S.loopBound(n), i = 0;
        double cum = 0;
        for (; i < bound; i += L) {
            float block = FloatVector.fromArray(S, w, i).reduceLanes(VectorOperators.ADD);
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

    /** Sum of the values >= t (strict: > t) of w[0, n). */
    static double massAtLeast(float[] w, int n, float t, boolean strict) {
        int bound = S.loopBound(n), i = 0;
        FloatVector acc = FloatVector.zero(S), zero = FloatVector.zero(S);
        // two loops so that each comparison operator is a constant (a variable one is not intrinsified)
        if (strict) {
            for (; i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, w, i);
                acc = acc.add(zero.blend(v, v.compare(VectorOperators.GT, t)));
            }
        } else {
            for (; i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, w, i);
                acc = acc.add(zero.blend(v, v.compare(VectorOperators.GE, t)));
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
