package dev.kimimesh.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Element-wise activations over float arrays on vectors (the Vector API's exp, within an ulp of Math.exp). */
final class Activations {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    private Activations() {}

    /** out[i] = silu(gate[i]) * up[i] for n elements; out may be gate. */
    static void swiglu(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n) {
        int i = 0;
        FloatVector one = FloatVector.broadcast(F, 1f);
        for (; i + L <= n; i += L) {
            FloatVector g = FloatVector.fromArray(F, gate, go + i);
            FloatVector sig = one.div(one.add(g.neg().lanewise(VectorOperators.EXP)));
            g.mul(sig).mul(FloatVector.fromArray(F, up, uo + i)).intoArray(out, oo + i);
        }
        for (; i < n; i++) out[oo + i] = Norms.silu(gate[go + i]) * up[uo + i];
    }

    /** x[o..o+n) = silu(x) in place. */
    static void silu(float[] x, int o, int n) {
        int i = 0;
        FloatVector one = FloatVector.broadcast(F, 1f);
        for (; i + L <= n; i += L) {
            FloatVector z = FloatVector.fromArray(F, x, o + i);
            z.mul(one.div(one.add(z.neg().lanewise(VectorOperators.EXP)))).intoArray(x, o + i);
        }
        for (; i < n; i++) x[o + i] = Norms.silu(x[o + i]);
    }

    /** x[o..o+n) = sigmoid(x) in place. */
    static void sigmoid(float[] x, int o, int n) {
        int i = 0;
        FloatVector one = FloatVector.broadcast(F, 1f);
        for (; i + L <= n; i += L) {
            FloatVector z = FloatVector.fromArray(F, x, o + i);
            one.div(one.add(z.neg().lanewise(VectorOperators.EXP))).intoArray(x, o + i);
        }
        for (; i < n; i++) x[o + i] = Norms.sigmoid(x[o + i]);
    }

    /**
     * g[go..go+n) = -a * softplus(f[fo..fo+n) + bias[bo..bo+n)), softplus(z) = log(1 + e^z), or z above 20 as
     * torch's threshold.
     */
    static void kdaDecay(float[] f, int fo, float[] bias, int bo, float a, float[] g, int go, int n) {
        int i = 0;
        FloatVector na = FloatVector.broadcast(F, -a);
        for (; i + L <= n; i += L) {
            FloatVector z = FloatVector.fromArray(F, f, fo + i).add(FloatVector.fromArray(F, bias, bo + i));
            FloatVector sp = z.lanewise(VectorOperators.EXP).lanewise(VectorOperators.LOG1P);
            sp.blend(z, z.compare(VectorOperators.GT, 20f)).mul(na).intoArray(g, go + i);
        }
        for (; i < n; i++) g[go + i] = -a * Norms.softplus(f[fo + i] + bias[bo + i]);
    }
}
