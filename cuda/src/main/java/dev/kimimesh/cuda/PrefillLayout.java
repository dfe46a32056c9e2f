package dev.kimimesh.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Where a layer's routed pairs go in the device-grouped prefill ({@link PrefillExperts}), computed on the host from the
 * E per-expert counts the device reads back: the glue groups of the host path (consecutive experts, at most
 * {@link MoeKernels#GLUE_PAIRS} pairs each, so the buffers stay bounded), each expert's first row in the layout, and
 * each group's first row. Packed: the experts' rows one after another (the host grouping's layout). Batched: each
 * group laid out in padded buckets ({@link ExpertBuckets}), the groups one after another.
 *
 * @param offset  first pair of each expert in expert order, E + 1 entries (the packed layout)
 * @param groups  each glue group's experts [e0, e1), only groups with pairs
 * @param start   first layout row of each expert (its pairs follow in row order)
 * @param base    first layout row of each group
 * @param buckets each group's padded buckets (batched), or nulls (packed)
 * @param rows    layout rows in all (pairs, plus padding when batched)
 */
record PrefillLayout(int[] offset, List<int[]> groups, int[] start, int[] base, ExpertBuckets[] buckets, int rows) {

    static PrefillLayout of(int[] count, boolean batched) {
        int e = count.length;
        int[] offset = new int[e + 1];
        for (int i = 0; i < e; i++) {
            if (count[i] < 0) throw new IllegalArgumentException("expert " + i + " has " + count[i] + " rows");
            offset[i + 1] = offset[i] + count[i];
        }
        List<int[]> groups = new ArrayList<>();
        for (int e0 = 0; e0 < e; ) {
            int e1 = e0;
            long np = 0;
            while (e1 < e && (e1 == e0 || np + count[e1] <= MoeKernels.GLUE_PAIRS)) np += count[e1++];
            if (offset[e1] > offset[e0]) groups.add(new int[] {e0, e1});
            e0 = e1;
        }
        int[] start = new int[e];
        ExpertBuckets[] buckets = new ExpertBuckets[groups.size()];
        int[] base = new int[groups.size()];
        int rows = 0;
        for (int g = 0; g < groups.size(); g++) {
            int e0 = groups.get(g)[0], e1 = groups.get(g)[1];
            if (batched) {
                ExpertBuckets bk = ExpertBuckets.of(count, offset, e0, e1);
                buckets[g] = bk;
                base[g] = rows;
                for (int ex = e0; ex < e1; ex++) start[ex] = rows + bk.start()[ex - e0];
                rows += bk.rows();
            } else {
                base[g] = offset[e0];
                for (int ex = e0; ex < e1; ex++) start[ex] = offset[ex];
                rows = offset[e1];
            }
        }
        return new PrefillLayout(offset, groups, start, base, buckets, rows);
    }

    /** Layout rows of group g. */
    int groupRows(int g) {
        int[] eg = groups.get(g);
        return buckets[g] != null ? buckets[g].rows() : offset[eg[1]] - offset[eg[0]];
    }
}
