package dev.kimimesh.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise activations over float arrays on vectors ({@link VecMath}'s exp: the same bits in every JIT tier). The last
 * partial vector runs masked, never as a scalar loop, so an element gets the same bits wherever it sits in a batch.
 */
final class Activations {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    private Activations() {}

    private static FloatVector sigmoid(FloatVector z) {
        FloatVector one = FloatVector.broadcast(F, 1f);
        return one.div(one.add(VecMath.exp(z.neg())));
    }

    /** out[i] = silu(gate[i]) * up[i] for n elements; out may be gate. */
    static void swiglu(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i += L) {
            VectorMask<Float> m = F.indexInRange(i, n);
            FloatVector g = FloatVector.fromArray(F, gate, go + i, m);
            g.mul(sigmoid(g)).mul(FloatVector.fromArray(F, up, uo + i, m)).intoArray(out, oo + i, m);
        }
    }

    /** x[o..o+n) = silu(x) in place. */
    static void silu(float[] x, int o, int n) {
        for (int i = 0; i < n; i += L) {
            VectorMask<Float> m = F.indexInRange(i, n);
            FloatVector z = FloatVector.fromArray(F, x, o + i, m);
            z.mul(sigmoid(z)).intoArray(x, o + i, m);
        }
    }

    /** x[o..o+n) = sigmoid(x) in place. */
    static void sigmoid(float[] x, int o, int n) {
        for (int i = 0; i < n; i += L) {
            VectorMask<Float> m = F.indexInRange(i, n);
            sigmoid(FloatVector.fromArray(F, x, o + i, m)).intoArray(x, o + i, m);
        }
    }

    /**
     * g[go..go+n) = -a * softplus(f[fo..fo+n) + bias[bo..bo+n)), softplus(z) = log(1 + e^z), or z above 20 as
     * torch's threshold.
     */
    static void kdaDecay(float[] f, int fo, float[] bias, int bo, float a, float[] g, int go, int n) {
        FloatVector na = FloatVector.broadcast(F, -a);
        for (int i = 0; i < n; i += L) {
            VectorMask<Float> m = F.indexInRange(i, n);
            FloatVector z = FloatVector.fromArray(F, f, fo + i, m).add(FloatVector.fromArray(F, bias, bo + i, m));
            FloatVector sp = VecMath.log1p(VecMath.exp(z));
            sp.blend(z, z.compare(VectorOperators.GT, 20f)).mul(na).intoArray(g, go + i, m);
        }
    }
}
