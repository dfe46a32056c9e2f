package dev.kimimesh.engine.tokenizer;

import java.util.Arrays;

/**
 * tiktoken's byte-pair merge of one pre-tokenizer piece: start from single bytes and repeatedly join the adjacent
 * pair whose concatenation has the lowest rank, leftmost on ties, until no adjacent pair is a token.
 *
 * <p>Short pieces use tiktoken's own quadratic loop. Long pieces (a 25,000-character run of dashes is one piece)
 * use a heap ordered by (rank, start offset): it picks the same pair at every step, so the result is identical,
 * in O(n log n). Not thread-safe: one instance per encoding call.
 */
final class BytePairMerger {
    private static final int SMALL_PIECE = 128;
    private static final int MAX = Integer.MAX_VALUE;

    private final RankTable ranks;
    // scratch for the small path: part start offsets and the rank of the pair starting at each part
    private int[] starts = new int[SMALL_PIECE + 2];
    private int[] pairRanks = new int[SMALL_PIECE + 2];

    BytePairMerger(RankTable ranks) {
        this.ranks = ranks;
    }

    /** Appends the ids of {@code piece[0, len)} to {@code out}. */
    void encode(byte[] piece, int len, IntList out) {
        int whole = ranks.rank(piece, 0, len);
        if (whole != RankTable.NONE) {
            out.add(whole);
        } else if (len <= SMALL_PIECE) {
            encodeSmall(piece, len, out);
        } else {
            encodeLarge(piece, len, out);
        }
    }

    private int rankOr(byte[] piece, int from, int to) {
        int r = ranks.rank(piece, from, to);
        return r == RankTable.NONE ? MAX : r;
    }

    private void encodeSmall(byte[] piece, int len, IntList out) {
        int[] st = starts;
        int[] rk = pairRanks;
        int n = len + 1; // parts plus the end sentinel
        for (int i = 0; i < len; i++) {
            st[i] = i;
            rk[i] = i + 2 <= len ? rankOr(piece, i, i + 2) : MAX;
        }
        st[len] = len;
        rk[len] = MAX;
        while (true) {
            int best = -1;
            int bestRank = MAX;
            for (int i = 0; i < n - 1; i++) {
                if (rk[i] < bestRank) {
                    bestRank = rk[i];
                    best = i;
                }
            }
            if (best < 0) break;
            // remove part best+1; the pair ranks of best-1 and best now span one more part
            System.arraycopy(st, best + 2, st, best + 1, n - best - 2);
            System.arraycopy(rk, best + 2, rk, best + 1, n - best - 2);
            n--;
            if (best > 0) rk[best - 1] = best + 1 < n ? rankOr(piece, st[best - 1], st[best + 1]) : MAX;
            rk[best] = best + 2 < n ? rankOr(piece, st[best], st[best + 2]) : MAX;
        }
        for (int i = 0; i < n - 1; i++) {
            out.add(ranks.rank(piece, st[i], st[i + 1]));
        }
    }

    private void encodeLarge(byte[] piece, int len, IntList out) {
        // parts as a linked list over byte offsets; next[len] == len marks the end
        int[] next = new int[len + 1];
        int[] prev = new int[len + 1];
        int[] pairRank = new int[len + 1];
        for (int i = 0; i <= len; i++) {
            next[i] = Math.min(i + 1, len);
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(len);
        for (int i = 0; i + 2 <= len; i++) {
            pairRank[i] = rankOr(piece, i, i + 2);
            if (pairRank[i] != MAX) heap.push(key(pairRank[i], i));
        }
        pairRank[len - 1] = MAX;
        boolean[] removed = new boolean[len + 1];
        while (!heap.isEmpty()) {
            long k = heap.pop();
            int start = (int) k;
            int rank = (int) (k >>> 32);
            if (removed[start] || pairRank[start] != rank) continue; // stale entry
            int gone = next[start];
            removed[gone] = true;
            next[start] = next[gone];
            prev[next[gone]] = start;
            int p = prev[start];
            if (p >= 0) {
                pairRank[p] = spanRank(piece, len, p, next);
                if (pairRank[p] != MAX) heap.push(key(pairRank[p], p));
            }
            pairRank[start] = spanRank(piece, len, start, next);
            if (pairRank[start] != MAX) heap.push(key(pairRank[start], start));
        }
        for (int i = 0; i < len; i = next[i]) {
            out.add(ranks.rank(piece, i, next[i]));
        }
    }

    /** Rank of the part starting at {@code i} joined with the part after it. */
    private int spanRank(byte[] piece, int len, int i, int[] next) {
        int a = next[i];
        if (a >= len) return MAX;
        return rankOr(piece, i, next[a]);
    }

    private static long key(int rank, int start) {
        return ((long) rank << 32) | start;
    }

    /** Minimal binary min-heap of longs (no boxing). */
    private static final class LongHeap {
        private long[] a;
        private int n;

        LongHeap(int capacity) {
            a = new long[Math.max(16, capacity)];
        }

        boolean isEmpty() {
            return n == 0;
        }

        void push(long v) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            int i = n++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) break;
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--n];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && a[c + 1] < a[c]) c++;
                if (a[c] >= last) break;
                a[i] = a[c];
                i = c;
            }
            a[i] = last;
            return top;
        }
    }
}
