package dev.kimimesh.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The sum of a vector's lanes in a fixed tree order (lane i plus lane i + L/2, then + L/4, ...).
 * {@code reduceLanes(ADD)} does not fix the order: its interpreted fallback adds lane by lane and its compiled form
 * as a tree, so the same input gave different bits on a cold and a warm JVM. Lane-wise adds are exact IEEE
 * operations either way, so this tree is reproducible. The rotations are constants, so it compiles to four
 * permute-and-add pairs.
 */
final class Lanes {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final VectorShuffle<Float> R8 = VectorShuffle.iota(F, 8 % L, 1, true);
    private static final VectorShuffle<Float> R4 = VectorShuffle.iota(F, 4 % L, 1, true);
    private static final VectorShuffle<Float> R2 = VectorShuffle.iota(F, 2 % L, 1, true);
    private static final VectorShuffle<Float> R1 = VectorShuffle.iota(F, 1 % L, 1, true);

    private Lanes() {}

    static float sum(FloatVector v) {
        if (L > 16) throw new IllegalStateException("vectors of " + L + " floats");
        if (L == 16) v = v.add(v.rearrange(R8));
        if (L >= 8) v = v.add(v.rearrange(R4));
        if (L >= 4) v = v.add(v.rearrange(R2));
        if (L >= 2) v = v.add(v.rearrange(R1));
        return v.lane(0);
    }
}
