package dev.kimimesh.engine.tokenizer;

/**
 * UTF-8 decoding with Python's {@code errors="replace"} rule: one U+FFFD per maximal ill-formed subsequence
 * (Unicode's "maximal subpart" practice, Table 3-7 of the standard), so {@code f0 9f} alone is one U+FFFD and
 * {@code ed a0 80} (an encoded surrogate) is three.
 */
final class Utf8 {
    static final char REPLACEMENT = '\uFFFD';

    private Utf8() {}

    /** Decodes {@code b[0, len)} completely; a dangling incomplete character becomes one U+FFFD. */
    static String decode(byte[] b, int len) {
        StringBuilder sb = new StringBuilder(len);
        int consumed = decodeInto(b, 0, len, sb, true);
        assert consumed == len;
        return sb.toString();
    }

    /**
     * Decodes {@code b[from, to)} into {@code sb}. When {@code last} is false an incomplete but so far valid
     * sequence at the end is left undecoded (Python's incremental decoder holds it back).
     *
     * @return the offset up to which bytes were consumed
     */
    static int decodeInto(byte[] b, int from, int to, StringBuilder sb, boolean last) {
        int i = from;
        while (i < to) {
            int b0 = b[i] & 0xff;
            if (b0 < 0x80) {
                sb.append((char) b0);
                i++;
                continue;
            }
            int need;
            int lo = 0x80, hi = 0xBF; // allowed range of the second byte
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                need = 1;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                need = 2;
                if (b0 == 0xE0) lo = 0xA0;
                else if (b0 == 0xED) hi = 0x9F;
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                need = 3;
                if (b0 == 0xF0) lo = 0x90;
                else if (b0 == 0xF4) hi = 0x8F;
            } else {
                sb.append(REPLACEMENT); // 80..C1, F5..FF never start a character
                i++;
                continue;
            }
            int cp = b0 & (0x3F >> need);
            int j = i + 1;
            int got = 0;
            while (got < need && j < to) {
                int bj = b[j] & 0xff;
                int min = got == 0 ? lo : 0x80;
                int max = got == 0 ? hi : 0xBF;
                if (bj < min || bj > max) break;
                cp = (cp << 6) | (bj & 0x3F);
                j++;
                got++;
            }
            if (got == need) {
                sb.appendCodePoint(cp);
                i = j;
            } else if (j == to && !last) {
                return i; // incomplete at the end: wait for more bytes
            } else {
                sb.append(REPLACEMENT); // the maximal subpart b[i, j) is one error
                i = j;
            }
        }
        return i;
    }
}
