package dev.kimimesh.engine.tokenizer;

import java.util.Arrays;

/**
 * Turns generated ids into text one id at a time without ever emitting half a character.
 *
 * <p>Works like Python's incremental UTF-8 decoder with {@code errors="replace"}: invalid bytes become U+FFFD at
 * once, only an incomplete but so far valid trailing sequence (at most 3 bytes) is held back, and {@link #flush()}
 * turns a dangling one into U+FFFD. The concatenation of all {@link #push} results and {@code flush()} equals
 * {@link KimiTokenizer#decode(int[])} of all ids. One instance per sequence; not thread-safe.
 */
public final class StreamingDetokenizer {
    private final KimiTokenizer tokenizer;
    private byte[] pending = new byte[64];
    private int pendingLen;
    private final StringBuilder sb = new StringBuilder();

    StreamingDetokenizer(KimiTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one id and returns the text it completes (often "" for the first bytes of a multi-byte character).
     *
     * @throws IllegalArgumentException for an id outside the vocabulary (the state is unchanged)
     */
    public String push(int id) {
        byte[] b = tokenizer.tokenBytesShared(id);
        if (pendingLen + b.length > pending.length) pending = Arrays.copyOf(pending, (pendingLen + b.length) * 2);
        System.arraycopy(b, 0, pending, pendingLen, b.length);
        pendingLen += b.length;
        return drain(false);
    }

    /** Ends the sequence: returns what was held back (U+FFFD for an incomplete character) and resets. */
    public String flush() {
        return drain(true);
    }

    /** Bytes received but not yet emitted (an incomplete character). */
    public int pendingBytes() {
        return pendingLen;
    }

    private String drain(boolean last) {
        sb.setLength(0);
        int used = Utf8.decodeInto(pending, 0, pendingLen, sb, last);
        System.arraycopy(pending, used, pending, 0, pendingLen - used);
        pendingLen -= used;
        return sb.toString();
    }
}
