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
}
