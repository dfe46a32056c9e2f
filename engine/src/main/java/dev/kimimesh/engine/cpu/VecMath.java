package dev.kimimesh.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp and log1p on float vectors from adds, multiplies, fmas and bit operations only. The Vector API's own EXP is
 * a native library call once compiled but a Java loop over lanes before that, with other bits, so a result changed
 * with the JIT tier; these give the same bits in every tier (about 2 ulp from the exact value). Public for the
 * sampler, whose softmax weights a device sampler reproduces bit for bit (cuda/src/main/cuda/sample.cu copies exp
 * operation by operation).
 */
public final class VecMath {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer, in its low mantissa bits. */
    private static final float ROUND = 12582912f;
    private static final float LN2 = 0.693147180559945309f;

    private VecMath() {}

    /** e^x; 0 below -103, +inf above 88.7 (as Math.exp in float). */
    public static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(-104f).min(89f);
        FloatVector t = xc.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUND));
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        // e^r for |r| <= ln2/2: Taylor to degree 7 (remainder below 6e-9 relative)
        FloatVector p = r.fma(FloatVector.broadcast(F, 1f / 5040), FloatVector.broadcast(F, 1f / 720));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(F, 0.5f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        // times 2^n in two halves, so that n down to -150 and up to 128 neither overflows the exponent field early
        IntVector ni = t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND));
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1), n2 = ni.sub(n1);
        FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector e = p.mul(s1).mul(s2);
        e = e.blend(0f, x.lt(-103.5f));
        return e.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 88.72f));
    }

    /** log(1 + y) for y >= 0, accurate also for tiny y (the (u - 1) correction of Goldberg). */
    static FloatVector log1p(FloatVector y) {
        FloatVector u = y.add(1f);
        FloatVector um1 = u.sub(1f);
        FloatVector lu = logAtLeastOne(u);
        // log1p(y) = log(u) * y / (u - 1) where u != 1, else y
        FloatVector corrected = lu.mul(y.div(um1.blend(1f, um1.eq(0f))));
        return corrected.blend(y, um1.eq(0f));
    }

    /** log(u) for finite u >= 1. */
    private static FloatVector logAtLeastOne(FloatVector u) {
        IntVector bits = u.reinterpretAsInts();
        // u = m * 2^e with m in [sqrt(1/2), sqrt(2))
        IntVector e = bits.lanewise(VectorOperators.LSHR, 23).sub(127);
        FloatVector m = bits.and(0x007fffff).or(0x3f800000).reinterpretAsFloats();
        FloatVector ef = (FloatVector) e.convert(VectorOperators.I2F, 0);
        var big = m.compare(VectorOperators.GT, 1.41421356f);
        m = m.blend(m.mul(0.5f), big);
        ef = ef.blend(ef.add(1f), big);
        // log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: odd series to s^9 (remainder below 4e-10)
        FloatVector s = m.sub(1f).div(m.add(1f));
        FloatVector s2 = s.mul(s);
        FloatVector q = s2.fma(FloatVector.broadcast(F, 2f / 9), FloatVector.broadcast(F, 2f / 7));
        q = q.fma(s2, FloatVector.broadcast(F, 2f / 5));
        q = q.fma(s2, FloatVector.broadcast(F, 2f / 3));
        q = q.fma(s2, FloatVector.broadcast(F, 2f));
        FloatVector logm = q.mul(s);
        return ef.fma(FloatVector.broadcast(F, LN2), logm);
    }
}
