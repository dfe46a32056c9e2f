package dev.kimimesh.engine.tokenizer;

import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.goldens;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.ints;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.tokenizer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Every record of goldens.json (sections encode, encode_big, decode, stream) against the Java tokenizer. */
class TokenizerGoldensTest {

    @Test
    void vocabularyNumbersMatchTheOriginal() {
        KimiTokenizer t = tokenizer();
        JsonNode meta = goldens().get("meta");
        assertEquals(meta.get("num_base_tokens").asInt(), t.numBaseTokens());
        assertEquals(meta.get("n_vocab_tiktoken").asInt(), t.vocabSize());
        assertEquals(258, t.specialNames().size());
        assertEquals(meta.get("special_range").get(0).asInt(), t.numBaseTokens());
        assertEquals(meta.get("special_range").get(1).asInt(), t.vocabSize() - 1);
        meta.get("special_tokens").fields().forEachRemaining(e ->
                assertEquals(Integer.parseInt(e.getKey()), t.specialId(e.getValue().asText()), e.getValue().asText()));
        assertEquals("<|reserved_token_6005|>", t.specialName(6005));
        assertEquals("<|reserved_token_6257|>", t.specialName(6257));
        assertArrayEquals(ints(meta.get("all_special_ids_hf")), t.hfSpecialIds());
        assertEquals(meta.get("bos").get(1).asInt(), t.bosId());
        assertEquals(meta.get("eos").get(1).asInt(), t.eosId());
        assertEquals(meta.get("pad").get(1).asInt(), t.padId());
        assertEquals(meta.get("unk").get(1).asInt(), t.unkId());
        assertEquals(meta.get("pat_str").asText(), PreTokenizer.KIMI_PAT_STR);
    }

    @TestFactory
    Stream<DynamicTest> encodeSection() {
        KimiTokenizer t = tokenizer();
        return records("encode").map(r -> DynamicTest.dynamicTest(r.get("name").asText(), () -> {
            String text = r.get("text").asText();
            String name = r.get("name").asText();
            int[] ids = ints(r.get("ids"));
            assertArrayEquals(ids, t.encode(text), name + ": ids");
            assertArrayEquals(ids, t.encode(text, true), name + ": ids (explicit)");
            assertArrayEquals(ints(r.get("ids_no_special")), t.encode(text, false), name + ": ids_no_special");
            assertArrayEquals(ints(r.get("ids_hf_path")), t.encode(text), name + ": ids_hf_path");
            List<String> hex = new ArrayList<>();
            for (int id : ids) hex.add(HexFormat.of().formatHex(t.tokenBytes(id)));
            assertEquals(strings(r.get("token_bytes_hex")), hex, name + ": token bytes");
            assertEquals(r.get("decoded").asText(), t.decode(ids), name + ": decoded");
            assertEquals(r.get("roundtrip_ok").asBoolean(), text.equals(t.decode(ids)), name + ": roundtrip");
            assertEquals(r.get("decoded_hf_keep_special").asText(), t.decode(ids, false), name + ": hf keep");
            assertEquals(r.get("decoded_hf_skip_special").asText(), t.decode(ids, true), name + ": hf skip");
            for (int i = 0; i < ids.length; i++) {
                assertEquals(r.get("decode_each").get(i).asText(), t.decode(new int[] {ids[i]}), name + ": decode_each " + i);
            }
            assertStream(t, name, ids, r.get("stream_emit"), r.get("stream_tail").asText(), r.get("decoded").asText());
        }));
    }

    @TestFactory
    Stream<DynamicTest> encodeBigSection() {
        KimiTokenizer t = tokenizer();
        return records("encode_big").map(r -> DynamicTest.dynamicTest(r.get("name").asText(), () -> {
            JsonNode spec = r.get("spec");
            String text = spec.get("prefix").asText() + spec.get("unit").asText().repeat(spec.get("count").asInt())
                    + spec.get("suffix").asText();
            assertEquals(r.get("text_len").asInt(), text.codePointCount(0, text.length()));
            int[] ids = t.encode(text);
            JsonNode want = r.get("ids");
            assertEquals(want.get("len").asInt(), ids.length, "len");
            assertArrayEquals(ints(want.get("head")), java.util.Arrays.copyOfRange(ids, 0, want.get("head").size()), "head");
            assertArrayEquals(ints(want.get("tail")),
                    java.util.Arrays.copyOfRange(ids, ids.length - want.get("tail").size(), ids.length), "tail");
            assertEquals(want.get("sha256").asText(), sha256(ids), "sha256");
            assertEquals(r.get("decoded_equals_text").asBoolean(), t.decode(ids).equals(text));
        }));
    }

    @TestFactory
    Stream<DynamicTest> decodeSection() {
        KimiTokenizer t = tokenizer();
        return records("decode").map(r -> DynamicTest.dynamicTest(r.get("name").asText(), () -> {
            int[] ids = ints(r.get("ids"));
            if (r.has("decoded_error")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.decode(ids));
                assertTrue(e.getMessage().contains("token id " + ids[0]), e.getMessage());
                assertThrows(IllegalArgumentException.class, () -> t.decode(ids, true));
                assertThrows(IllegalArgumentException.class, () -> t.decode(ids, false));
                assertThrows(IllegalArgumentException.class, () -> t.newStreamingDetokenizer().push(ids[0]));
                return;
            }
            assertEquals(r.get("decoded").asText(), t.decode(ids));
            assertEquals(r.get("decoded_hf_keep_special").asText(), t.decode(ids, false));
            assertEquals(r.get("decoded_hf_skip_special").asText(), t.decode(ids, true));
            for (int i = 0; i < ids.length; i++) {
                assertEquals(r.get("decode_each").get(i).asText(), t.decode(new int[] {ids[i]}));
            }
        }));
    }

    @TestFactory
    Stream<DynamicTest> streamSection() {
        KimiTokenizer t = tokenizer();
        return records("stream").map(r -> DynamicTest.dynamicTest(r.get("name").asText(), () -> {
            int[] ids = ints(r.get("ids"));
            assertArrayEquals(ids, t.encode(r.get("text").asText()));
            for (int i = 0; i < ids.length; i++) {
                byte[] b = t.tokenBytes(ids[i]);
                assertEquals(r.get("token_bytes_hex").get(i).asText(), HexFormat.of().formatHex(b));
                assertEquals(r.get("token_is_valid_utf8").get(i).asBoolean(), isValidUtf8(b));
                assertEquals(r.get("decode_each").get(i).asText(), t.decode(new int[] {ids[i]}));
                assertEquals(r.get("decode_prefix").get(i).asText(), t.decode(java.util.Arrays.copyOf(ids, i + 1)));
            }
            assertStream(t, r.get("name").asText(), ids, r.get("stream_emit"), r.get("stream_tail").asText(),
                    r.get("text").asText());
        }));
    }

    /** Step by step equal to stream_emit, never a broken character, and the whole equals the full decode. */
    private static void assertStream(KimiTokenizer t, String name, int[] ids, JsonNode emit, String tail, String full) {
        StreamingDetokenizer d = t.newStreamingDetokenizer();
        StringBuilder all = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            String s = d.push(ids[i]);
            assertEquals(emit.get(i).asText(), s, name + ": stream_emit " + i);
            assertFalse(hasLoneSurrogate(s), name + ": broken character at step " + i);
            all.append(s);
        }
        String rest = d.flush();
        assertEquals(tail, rest, name + ": stream_tail");
        all.append(rest);
        assertEquals(full, all.toString(), name + ": stream concatenation");
        assertEquals(t.decode(ids), all.toString(), name + ": stream vs decode");
    }

    static boolean hasLoneSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) return true;
                i++;
            } else if (Character.isLowSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isValidUtf8(byte[] b) {
        try {
            StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(b));
            return true;
        } catch (java.nio.charset.CharacterCodingException e) {
            return false;
        }
    }

    static String sha256(int[] ids) throws Exception {
        String joined = IntStream.of(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(joined.getBytes(StandardCharsets.UTF_8)));
    }

    private static Stream<JsonNode> records(String section) {
        List<JsonNode> out = new ArrayList<>();
        goldens().get(section).forEach(out::add);
        assertFalse(out.isEmpty(), section);
        return out.stream();
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
