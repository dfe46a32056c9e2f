package dev.kimimesh.cuda;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The experts of one MoE glue group laid out for batched GEMMs ({@code -Dkimimesh.cuda.expertGemm=batched}, the default): experts
 * whose row counts are close share a bucket, and every expert of a bucket gets the bucket's largest count of rows, so
 * that one pointer-array batched GEMM (same m, n, k for every problem) serves the whole bucket. A 32k prefill of the
 * bench model has about 1,000 rows an expert: one GEMM each fills only 64 of the H100's 132 SMs with 128 x 128 tiles.
 * The padding rows repeat the expert's first row (real data, so no NaN reaches a GEMM) and their outputs are never
 * read. Experts stay in index order in the layout, so the scatter adds each row's contributions in the same order.
 *
 * @param rows    rows of the padded layout
 * @param start   first padded row of each expert of the group (index ex - e0)
 * @param pos     padded row of each pair of the group (index: pair - first pair of the group)
 * @param buckets each bucket's experts (absolute indices); its row count is {@code padded(ex)} of any of them
 * @param padded  padded row count of each expert of the group (index ex - e0), 0 for experts without rows
 */
record ExpertBuckets(int rows, int[] start, int[] pos, List<int[]> buckets, int[] padded) {
    /** Largest share of padding rows a bucket accepts: an expert joins while its count is at least 7/8 of the bucket's first. */
    static final int SLACK_EIGHTHS = 1;

    /** The layout of experts [e0, e1) with {@code count[ex]} rows each, their pairs from {@code offset[ex]} on. */
    static ExpertBuckets of(int[] count, int[] offset, int e0, int e1) {
        int g = e1 - e0;
        Integer[] byCount = new Integer[g];
        int live = 0;
        for (int ex = e0; ex < e1; ex++) if (count[ex] > 0) byCount[live++] = ex;
        Integer[] sorted = Arrays.copyOf(byCount, live);
        // most rows first; equal counts in index order (a fixed layout for a fixed routing)
        Arrays.sort(sorted, (a, b) -> count[a] != count[b] ? Integer.compare(count[b], count[a]) : Integer.compare(a, b));
        int[] padded = new int[g];
        List<int[]> buckets = new ArrayList<>();
        for (int i = 0; i < live; ) {
            int m = count[sorted[i]], j = i;
            while (j < live && 8L * count[sorted[j]] >= (8L - SLACK_EIGHTHS) * m) padded[sorted[j++] - e0] = m;
            int[] b = new int[j - i];
            for (int q = i; q < j; q++) b[q - i] = sorted[q];
            Arrays.sort(b);
            buckets.add(b);
            i = j;
        }
        int[] start = new int[g];
        int rows = 0;
        for (int ex = e0; ex < e1; ex++) {
            start[ex - e0] = rows;
            rows += padded[ex - e0];
        }
        int p0 = offset[e0];
        int[] pos = new int[offset[e1] - p0];
        for (int ex = e0; ex < e1; ex++) {
            for (int j = 0; j < count[ex]; j++) pos[offset[ex] - p0 + j] = start[ex - e0] + j;
        }
        return new ExpertBuckets(rows, start, pos, buckets, padded);
    }

    /** The token row of each padded row: the pair's row, or the expert's first row for a padding row. */
    int[] gatherRows(int[] pairRows, int[] count, int[] offset, int e0, int e1) {
        int[] out = new int[rows];
        for (int ex = e0; ex < e1; ex++) {
            int s = start[ex - e0];
            for (int j = 0; j < padded[ex - e0]; j++) out[s + j] = pairRows[offset[ex] + (j < count[ex] ? j : 0)];
        }
        return out;
    }
}
