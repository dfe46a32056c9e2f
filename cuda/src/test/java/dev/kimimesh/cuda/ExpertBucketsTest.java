package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The padded layout of the batched expert GEMMs (host arithmetic only: runs without a GPU). */
class ExpertBucketsTest {

    @Test
    void everyPairKeepsItsRowAndExpertsStayInIndexOrder() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 50; trial++) {
            int e = 1 + rnd.nextInt(40), e0 = rnd.nextInt(e), e1 = e0 + 1 + rnd.nextInt(e - e0);
            int[] count = new int[e];
            for (int i = 0; i < e; i++) count[i] = rnd.nextInt(4) == 0 ? 0 : 1 + rnd.nextInt(rnd.nextBoolean() ? 5 : 1200);
            int[] offset = new int[e + 1];
            for (int i = 0; i < e; i++) offset[i + 1] = offset[i] + count[i];
            int[] pairRows = new int[offset[e]];
            for (int i = 0; i < pairRows.length; i++) pairRows[i] = rnd.nextInt(100_000);
            ExpertBuckets bk = ExpertBuckets.of(count, offset, e0, e1);
            int[] gather = bk.gatherRows(pairRows, count, offset, e0, e1);
            int p0 = offset[e0], lastStart = -1, inBuckets = 0;
            for (int ex = e0; ex < e1; ex++) {
                int pad = bk.padded()[ex - e0];
                assertTrue(pad >= count[ex] && (count[ex] > 0 || pad == 0), "expert " + ex + ": " + pad + " rows for " + count[ex]);
                // at most 1/8 padding: the bucket's first expert had at most 8/7 of this one's rows
                assertTrue(8L * count[ex] >= 7L * pad, "expert " + ex + ": " + pad + " rows for " + count[ex]);
                if (count[ex] > 0) {
                    assertTrue(bk.start()[ex - e0] > lastStart, "layout not in expert order at " + ex);
                    lastStart = bk.start()[ex - e0];
                }
                for (int j = 0; j < count[ex]; j++) {
                    int at = bk.pos()[offset[ex] - p0 + j];
                    assertEquals(bk.start()[ex - e0] + j, at);
                    assertEquals(pairRows[offset[ex] + j], gather[at], "pair " + j + " of expert " + ex);
                }
                for (int j = count[ex]; j < pad; j++) assertEquals(pairRows[offset[ex]], gather[bk.start()[ex - e0] + j], "padding row");
            }
            int total = 0;
            for (int[] b : bk.buckets()) {
                int m = bk.padded()[b[0] - e0];
                for (int ex : b) {
                    assertEquals(m, bk.padded()[ex - e0], "one row count per bucket");
                    assertTrue(count[ex] > 0);
                }
                inBuckets += b.length;
            }
            for (int ex = e0; ex < e1; ex++) total += bk.padded()[ex - e0];
            assertEquals(total, bk.rows());
            int live = 0;
            for (int ex = e0; ex < e1; ex++) if (count[ex] > 0) live++;
            assertEquals(live, inBuckets, "every expert with rows in exactly one bucket");
        }
    }

    @Test
    void closeCountsShareOneBucket() {
        int[] count = {1000, 0, 950, 1024, 990};
        int[] offset = {0, 1000, 1000, 1950, 2974, 3964};
        ExpertBuckets bk = ExpertBuckets.of(count, offset, 0, 5);
        assertEquals(1, bk.buckets().size());
        assertEquals(4 * 1024, bk.rows());
    }
}
