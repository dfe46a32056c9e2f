package dev.kimimesh.engine.tokenizer;

import java.util.Arrays;

/**
 * The BPE ranks of {@code tiktoken.model}: byte sequence to rank and back.
 *
 * <p>An open-addressing table over one shared byte array, so that the merge loop can look up any slice of a piece
 * without allocating a key (the merge does that O(n log n) times per piece).
 */
final class RankTable {
    static final int NONE = -1;

    private final byte[][] bytesByRank;
    private final int[] slots; // rank + 1, 0 = empty
    private final int mask;

    /** @param bytesByRank token bytes indexed by rank; every entry non-null and distinct (the loader checks) */
    RankTable(byte[][] bytesByRank) {
        this.bytesByRank = bytesByRank;
        int capacity = Integer.highestOneBit(Math.max(4, bytesByRank.length * 3)) << 1;
        this.slots = new int[capacity];
        this.mask = capacity - 1;
        for (int rank = 0; rank < bytesByRank.length; rank++) {
            byte[] b = bytesByRank[rank];
            int i = hash(b, 0, b.length) & mask;
            while (slots[i] != 0) {
                if (Arrays.equals(bytesByRank[slots[i] - 1], b)) {
                    throw new IllegalArgumentException("duplicate token bytes at ranks " + (slots[i] - 1) + " and " + rank);
                }
                i = (i + 1) & mask;
            }
            slots[i] = rank + 1;
        }
    }

    int size() {
        return bytesByRank.length;
    }

    byte[] bytes(int rank) {
        return bytesByRank[rank];
    }

    /** Rank of {@code buf[from, to)}, or {@link #NONE}. */
    int rank(byte[] buf, int from, int to) {
        int i = hash(buf, from, to) & mask;
        int len = to - from;
        while (true) {
            int s = slots[i];
            if (s == 0) return NONE;
            byte[] b = bytesByRank[s - 1];
            if (b.length == len && Arrays.equals(b, 0, len, buf, from, to)) return s - 1;
            i = (i + 1) & mask;
        }
    }

    private static int hash(byte[] b, int from, int to) {
        int h = 0x811c9dc5;
        for (int i = from; i < to; i++) {
            h = (h ^ (b[i] & 0xff)) * 0x01000193;
        }
        return h ^ (h >>> 15);
    }
}
