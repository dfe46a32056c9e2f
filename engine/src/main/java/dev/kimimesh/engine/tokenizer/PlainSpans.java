package dev.kimimesh.engine.tokenizer;

import java.util.Arrays;

/**
 * Char ranges of a rendered chat prompt that came from message content: special-token literals inside them are
 * encoded as plain text, so that only the template's own markers become control ids.
 */
final class PlainSpans {
    static final PlainSpans NONE = new PlainSpans(new int[0], new int[0]);

    private final int[] starts; // sorted, non-overlapping
    private final int[] ends;

    PlainSpans(int[] starts, int[] ends) {
        this.starts = starts;
        this.ends = ends;
    }

    boolean isEmpty() {
        return starts.length == 0;
    }

    /** True when [from, to) shares at least one char with a span. */
    boolean overlaps(int from, int to) {
        if (starts.length == 0) return false;
        int i = Arrays.binarySearch(starts, to);
        int candidate = i >= 0 ? i - 1 : -i - 2; // last span starting before `to`
        return candidate >= 0 && ends[candidate] > from;
    }
}
