package dev.kimimesh.engine.backend;

import java.util.Arrays;

/**
 * How the rows of a flattened micro-batch [T, hidden] split into sequences: segment i covers rows
 * [start(i), start(i) + length(i)) and continues its sequence at position {@code position(i)} (tokens already in the
 * sequence's state). Decode tokens are segments of length 1; prefill chunks are longer.
 */
public record Segments(int[] lengths, int[] positions) {
    public Segments {
        if (lengths.length != positions.length) throw new IllegalArgumentException("lengths and positions differ in size");
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] <= 0) throw new IllegalArgumentException("segment " + i + " is empty");
            if (positions[i] < 0) throw new IllegalArgumentException("segment " + i + " has a negative position");
        }
    }

    public static Segments single(int length, int position) {
        return new Segments(new int[] {length}, new int[] {position});
    }

    public int count() {
        return lengths.length;
    }

    public int length(int i) {
        return lengths[i];
    }

    public int position(int i) {
        return positions[i];
    }

    public int start(int i) {
        int s = 0;
        for (int j = 0; j < i; j++) s += lengths[j];
        return s;
    }

    /** Total rows of the micro-batch. */
    public int totalRows() {
        int s = 0;
        for (int l : lengths) s += l;
        return s;
    }

    /** Row of the last token of each segment (where its next-token logits come from). */
    public int[] lastRows() {
        int[] out = new int[lengths.length];
        int s = 0;
        for (int i = 0; i < lengths.length; i++) {
            s += lengths[i];
            out[i] = s - 1;
        }
        return out;
    }

    @Override
    public String toString() {
        return "Segments" + Arrays.toString(lengths) + "@" + Arrays.toString(positions);
    }
}
