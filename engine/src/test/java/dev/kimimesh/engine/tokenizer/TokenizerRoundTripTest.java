package dev.kimimesh.engine.tokenizer;

import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.tokenizer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Property tests with fixed seeds: round trips over random Unicode, and streaming over random id sequences. */
class TokenizerRoundTripTest {
    private static final String[] LITERALS = {
        "<|im_end|>", "<|im_user|>", "[BOS]", "[EOS]", "[PAD]", "<|reserved_token_6100|>", "<|reserved_token_6257|>",
        "<|tool_call_begin|>", "<|im_", "|>", "<|", "[EO", "<|media_start|>"
    };
    private static final int[] SPACES = {' ', ' ', ' ', '\n', '\r', '\t', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2003, 0x2028,
        0x2029, 0x202F, 0x3000, 0x1C, 0x1F, 0x200B, 0xFEFF};

    private static String randomText(Random rnd) {
        StringBuilder sb = new StringBuilder();
        int parts = 1 + rnd.nextInt(40);
        for (int p = 0; p < parts; p++) {
            int kind = rnd.nextInt(14);
            int n = 1 + rnd.nextInt(kind == 13 ? 60 : 8);
            for (int i = 0; i < n; i++) {
                switch (kind) {
                    case 0 -> sb.append((char) ('a' + rnd.nextInt(26)));
                    case 1 -> sb.append((char) ('A' + rnd.nextInt(26)));
                    case 2 -> sb.append((char) ('0' + rnd.nextInt(10)));
                    case 3 -> sb.append("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".charAt(rnd.nextInt(32)));
                    case 4 -> sb.appendCodePoint(SPACES[rnd.nextInt(SPACES.length)]);
                    case 5 -> sb.appendCodePoint(0x4E00 + rnd.nextInt(0x5200)); // CJK
                    case 6 -> sb.appendCodePoint(0x20000 + rnd.nextInt(0xA6E0)); // CJK ext B: surrogate pairs
                    case 7 -> sb.appendCodePoint(0x1F300 + rnd.nextInt(0x300)); // emoji
                    case 8 -> sb.append(rnd.nextBoolean() ? "\u200D" : "\uFE0F");
                    case 9 -> sb.appendCodePoint(0x0300 + rnd.nextInt(0x70)); // combining marks
                    case 10 -> sb.appendCodePoint(new int[] {0x0400, 0x0600, 0x0900, 0x0E00, 0xAC00, 0x3040}[rnd.nextInt(6)]
                            + rnd.nextInt(0x60));
                    case 11 -> sb.append(LITERALS[rnd.nextInt(LITERALS.length)]);
                    case 12 -> sb.append("'s'T're'VE'm'll'd\u017F".charAt(rnd.nextInt(18)));
                    default -> sb.appendCodePoint(rnd.nextBoolean() ? ' ' : '-'); // long runs
                }
            }
        }
        return sb.toString();
    }

    @Test
    void decodeOfEncodeIsTheTextForRandomUnicode() {
        KimiTokenizer t = tokenizer();
        Random rnd = new Random(20251122L);
        for (int k = 0; k < 3000; k++) {
            String s = randomText(rnd);
            int[] plain = t.encode(s, false);
            assertEquals(s, t.decode(plain), () -> "allowSpecial=false: " + escape(s));
            for (int id : plain) assertFalse(t.isSpecial(id), () -> "special id from plain text: " + escape(s));
            assertEquals(s, t.decode(t.encode(s, true)), () -> "allowSpecial=true: " + escape(s));
            assertEquals(s, streamAll(t, plain), () -> "stream: " + escape(s));
        }
    }

    @Test
    void loneSurrogatesEncodeAsReplacementCharacter() {
        KimiTokenizer t = tokenizer();
        assertEquals(java.util.Arrays.toString(t.encode("a\uFFFDb")), java.util.Arrays.toString(t.encode("a\uD800b")));
        assertEquals("a\uFFFDb", t.decode(t.encode("a\uDC00b")));
    }

    @Test
    void streamingEqualsDecodeForRandomIdSequences() {
        KimiTokenizer t = tokenizer();
        Random rnd = new Random(7L);
        for (int k = 0; k < 3000; k++) {
            int[] ids = new int[1 + rnd.nextInt(30)];
            for (int i = 0; i < ids.length; i++) {
                // mostly single bytes and short tokens, so that characters split and bytes are invalid often
                ids[i] = rnd.nextInt(10) == 0 ? t.numBaseTokens() + rnd.nextInt(258) : rnd.nextInt(rnd.nextBoolean() ? 256 : t.numBaseTokens());
            }
            String streamed = streamAll(t, ids);
            assertEquals(t.decode(ids), streamed, () -> java.util.Arrays.toString(ids));
        }
    }

    private static String streamAll(KimiTokenizer t, int[] ids) {
        StreamingDetokenizer d = t.newStreamingDetokenizer();
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            String s = d.push(id);
            assertFalse(TokenizerGoldensTest.hasLoneSurrogate(s), "broken character emitted");
            assertTrue(d.pendingBytes() <= 3, "holds back at most an incomplete character");
            sb.append(s);
        }
        return sb.append(d.flush()).toString();
    }

    private static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(cp -> sb.append(cp < 0x7F && cp >= 0x20 ? Character.toString(cp) : String.format("\\u{%x}", cp)));
        return sb.toString();
    }
}
