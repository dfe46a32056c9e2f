package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The device-grouped prefill's layout (host arithmetic only: runs without a GPU). */
class PrefillLayoutTest {
    private static final int G = MoeKernels.GLUE_PAIRS;

    @Test
    void glueGroupsAreTheHostPathsGreedyCuts() {
        int[] count = {10, 0, G - 10, 1, 0, G + 5, 3, 0};
        PrefillLayout p = PrefillLayout.of(count, false);
        // [0, 3) fills a group exactly; [3, 5) cannot take the oversized expert 5, which forms its own; expert 7 has no rows
        int[][] want = {{0, 3}, {3, 5}, {5, 6}, {6, 8}};
        assertEquals(want.length, p.groups().size());
        for (int g = 0; g < want.length; g++) assertArrayEquals(want[g], p.groups().get(g), "group " + g);
        assertEquals(2 * G + 9, p.rows());
    }

    @Test
    void packedLayoutIsTheHostGrouping() {
        Random rnd = new Random(3);
        for (int trial = 0; trial < 40; trial++) {
            int[] count = randomCounts(rnd);
            PrefillLayout p = PrefillLayout.of(count, false);
            int pairs = p.offset()[count.length];
            assertEquals(pairs, p.rows());
            for (int ex = 0; ex < count.length; ex++) if (count[ex] > 0) assertEquals(p.offset()[ex], p.start()[ex], "expert " + ex);
            for (int g = 0; g < p.groups().size(); g++) {
                int e0 = p.groups().get(g)[0], e1 = p.groups().get(g)[1];
                assertEquals(p.offset()[e0], p.base()[g]);
                assertEquals(p.offset()[e1] - p.offset()[e0], p.groupRows(g));
            }
            checkGroups(count, p);
        }
    }

    @Test
    void batchedLayoutPutsEachGroupsBucketsOneAfterAnother() {
        Random rnd = new Random(5);
        for (int trial = 0; trial < 40; trial++) {
            int[] count = randomCounts(rnd);
            PrefillLayout p = PrefillLayout.of(count, true);
            int at = 0;
            for (int g = 0; g < p.groups().size(); g++) {
                int e0 = p.groups().get(g)[0], e1 = p.groups().get(g)[1];
                ExpertBuckets bk = p.buckets()[g];
                assertEquals(at, p.base()[g], "group " + g);
                assertEquals(bk.rows(), p.groupRows(g));
                int last = -1;
                for (int ex = e0; ex < e1; ex++) {
                    if (count[ex] == 0) continue;
                    assertEquals(at + bk.start()[ex - e0], p.start()[ex]);
                    // an expert's padded rows lie inside its group, after the previous expert's
                    assertTrue(p.start()[ex] > last && p.start()[ex] + bk.padded()[ex - e0] <= at + bk.rows(), "expert " + ex);
                    last = p.start()[ex];
                }
                at += bk.rows();
            }
            assertEquals(at, p.rows());
            assertTrue(p.rows() >= p.offset()[count.length]);
            checkGroups(count, p);
        }
    }

    @Test
    void noPairsNoGroups() {
        PrefillLayout p = PrefillLayout.of(new int[5], true);
        assertTrue(p.groups().isEmpty());
        assertEquals(0, p.rows());
        assertThrows(IllegalArgumentException.class, () -> PrefillLayout.of(new int[] {1, -1}, false));
    }

    /** Groups in expert order, every expert with rows in one, within GLUE_PAIRS unless alone, and cut greedily. */
    private static void checkGroups(int[] count, PrefillLayout p) {
        int prev = 0;
        boolean[] covered = new boolean[count.length];
        for (int[] g : p.groups()) {
            assertTrue(g[0] >= prev && g[1] > g[0]);
            long sum = 0;
            for (int ex = g[0]; ex < g[1]; ex++) {
                sum += count[ex];
                covered[ex] = true;
            }
            assertTrue(sum > 0 && (sum <= G || g[1] == g[0] + 1), "group " + g[0] + ".." + g[1] + ": " + sum + " pairs");
            if (g[1] < count.length && count[g[1]] > 0) assertTrue(sum + count[g[1]] > G, "group " + g[0] + " could take " + g[1]);
            prev = g[1];
        }
        for (int ex = 0; ex < count.length; ex++) if (count[ex] > 0) assertTrue(covered[ex], "expert " + ex + " in no group");
    }

    private static int[] randomCounts(Random rnd) {
        int e = 1 + rnd.nextInt(300);
        int[] count = new int[e];
        int big = rnd.nextBoolean() ? 2000 : 40_000; // a 32k prefill has about 1,000 rows an expert; larger ones force cuts
        for (int i = 0; i < e; i++) count[i] = rnd.nextInt(5) == 0 ? 0 : rnd.nextInt(big);
        return count;
    }
}
