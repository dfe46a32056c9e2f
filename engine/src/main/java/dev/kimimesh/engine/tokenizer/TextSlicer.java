package dev.kimimesh.engine.tokenizer;

import java.util.function.IntBinaryOperator;

/**
 * The original's pre-splitting before tiktoken: slices of 400,000 code points, and inside each slice a cut
 * wherever a run of whitespace or of non-whitespace (Python {@code str.isspace}) would exceed 25,000 code points
 * (tiktoken issue 195 workaround). The cuts change ids at the cut, so they must be copied exactly.
 */
final class TextSlicer {
    static final int MAX_SLICE_CODE_POINTS = 400_000;
    static final int MAX_RUN_CODE_POINTS = 25_000;

    private TextSlicer() {}

    /** Calls {@code sink(fromChar, toChar)} for every piece of {@code text}, in order (at least once). */
    static void forEachPiece(String text, IntBinaryOperator sink) {
        int sliceStart = 0;
        int n = text.length();
        do {
            int sliceEnd = advanceCodePoints(text, sliceStart, MAX_SLICE_CODE_POINTS);
            splitRuns(text, sliceStart, sliceEnd, sink);
            sliceStart = sliceEnd;
        } while (sliceStart < n);
    }

    private static int advanceCodePoints(String s, int from, int count) {
        int n = s.length();
        if (n - from <= count) return n; // fewer chars than code points asked: the rest fits
        return s.offsetByCodePoints(from, Math.min(count, s.codePointCount(from, n)));
    }

    /** {@code _split_whitespaces_or_nonwhitespaces}: cut a run when it grows past 25,000 code points. */
    private static void splitRuns(String s, int from, int to, IntBinaryOperator sink) {
        int runLen = 0;
        boolean runIsSpace = from < to && isPythonSpace(s.codePointAt(from));
        int pieceStart = from;
        for (int i = from; i < to; ) {
            int cp = s.codePointAt(i);
            boolean space = isPythonSpace(cp);
            if (space != runIsSpace) {
                runLen = 1;
                runIsSpace = space;
            } else if (++runLen > MAX_RUN_CODE_POINTS) {
                sink.applyAsInt(pieceStart, i);
                pieceStart = i;
                runLen = 1;
            }
            i += Character.charCount(cp);
        }
        sink.applyAsInt(pieceStart, to);
    }

    /**
     * Python's {@code str.isspace}: bidirectional class WS, B or S, or category Zs. Differs from Unicode
     * White_Space (the regex's {@code \s}) in U+001C..U+001F.
     */
    static boolean isPythonSpace(int cp) {
        if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
        if (cp < 0x85) return false;
        return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }
}
