package dev.kimimesh.engine.tokenizer;

import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.modelDir;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.tokenizer;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Clear errors: missing or malformed files, ids outside the vocabularies, templates that fail. */
class TokenizerErrorsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private void copyFixture(String... names) throws IOException {
        for (String n : names) Files.copy(modelDir().resolve(n), dir.resolve(n));
    }

    private void writeModelWithLine(int lineNo, String replacement) throws IOException {
        List<String> lines = new ArrayList<>(Files.readAllLines(modelDir().resolve("tiktoken.model"), StandardCharsets.UTF_8));
        lines.set(lineNo - 1, replacement);
        Files.write(dir.resolve("tiktoken.model"), lines, StandardCharsets.UTF_8);
    }

    private TokenizerException loadFails() {
        return assertThrows(TokenizerException.class, () -> KimiTokenizer.load(dir));
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "'" + e.getMessage() + "' lacks '" + p + "'");
    }

    @Test
    void missingFilesAreNamed() throws IOException {
        assertMentions(loadFails(), "tiktoken.model", "missing");
        copyFixture("tiktoken.model");
        assertMentions(loadFails(), "tokenizer_config.json", "missing");
        assertMentions(assertThrows(TokenizerException.class, () -> KimiTokenizer.load(dir.resolve("nope"))), "not a directory");
    }

    @Test
    void malformedTiktokenModelNamesFileAndLine() throws IOException {
        copyFixture("tokenizer_config.json");
        writeModelWithLine(3, "Iw==");
        assertMentions(loadFails(), "tiktoken.model line 3", "expected");
        writeModelWithLine(4, "!!!! 3");
        assertMentions(loadFails(), "tiktoken.model line 4", "base64");
        writeModelWithLine(5, "JA== five");
        assertMentions(loadFails(), "tiktoken.model line 5", "rank");
        writeModelWithLine(6, "JA== 2");
        assertMentions(loadFails(), "tiktoken.model line 6", "rank 2 appears twice");
        writeModelWithLine(7, "JA== 99999");
        assertMentions(loadFails(), "tiktoken.model line 7", "out of range");
    }

    @Test
    void malformedConfigNamesFileAndLine() throws IOException {
        copyFixture("tiktoken.model");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\n  \"bos_token\": \"[BOS]\",\n  oops\n}");
        assertMentions(loadFails(), "tokenizer_config.json line 3", "malformed JSON");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"[NOT_A_TOKEN]\"}");
        assertMentions(loadFails(), "tokenizer_config.json", "[NOT_A_TOKEN]");
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"added_tokens_decoder\": {\"6000\": {\"content\": \"<|x|>\"}, \"6001\": {\"content\": \"<|x|>\"}}}");
        assertMentions(loadFails(), "tokenizer_config.json", "<|x|>", "6000", "6001");
    }

    @Test
    void minimalConfigLoadsWithReservedNames() throws IOException {
        copyFixture("tiktoken.model");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        KimiTokenizer t = KimiTokenizer.load(dir);
        assertEquals(6258, t.vocabSize());
        assertEquals(-1, t.bosId());
        assertEquals("<|reserved_token_6000|>", t.specialName(6000));
        assertMentions(assertThrows(TokenizerException.class, t::chatTemplate), "no chat template");
    }

    @Test
    void idsOutsideTheVocabulary() {
        KimiTokenizer t = tokenizer();
        assertMentions(assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {1, 6258})), "6258", "0..6257");
        assertMentions(assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {-1})), "-1");
        assertMentions(assertThrows(IllegalArgumentException.class, () -> t.checkIds(new int[] {7000})), "7000");
        assertMentions(assertThrows(IllegalArgumentException.class, () -> t.specialId("<|nope|>")), "<|nope|>");
    }

    @Test
    void idsTheModelCannotEmbedAreRejected() {
        KimiTokenizer t = tokenizer();
        int modelVocab = t.vocabSize() - 2; // as Kimi: 163,842 tokenizer ids, 163,840 embedding rows
        int[] ids = t.encode("hi <|reserved_token_6256|>");
        assertDoesNotThrow(() -> t.checkIds(ids));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.checkIdsForModel(ids, modelVocab));
        assertMentions(e, "6256", "<|reserved_token_6256|>", "0..6255");
        assertDoesNotThrow(() -> t.checkIdsForModel(t.encode("hi <|reserved_token_6255|> [PAD]"), modelVocab));
        assertDoesNotThrow(() -> t.checkIdsForModel(t.encode("hi <|reserved_token_6256|>", false), modelVocab));
    }

    @Test
    void templateFailuresAreClear() throws Exception {
        copyFixture("tiktoken.model", "tokenizer_config.json");
        JsonNode messages = JSON.readTree("[{\"role\":\"user\",\"content\":\"hi\"}]");
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message is required') }}{% endif %}");
        ChatTemplate t = KimiTokenizer.load(dir).chatTemplate();
        assertMentions(assertThrows(TokenizerException.class, () -> t.render(messages, null, true)),
                "chat_template.jinja", "a system message is required");

        Files.writeString(dir.resolve("chat_template.jinja"), "{% for m in messages %}{{ m.content }}");
        ChatTemplate broken = KimiTokenizer.load(dir).chatTemplate();
        assertMentions(assertThrows(TokenizerException.class, () -> broken.render(messages, null, true)),
                "chat_template.jinja", "failed to render");

        assertThrows(IllegalArgumentException.class, () -> t.render(JSON.readTree("{}"), null, true));
    }

    @Test
    void inlineTemplateOfTheConfigIsUsedWithoutTheJinjaFile() throws Exception {
        copyFixture("tiktoken.model");
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(modelDir().resolve("tokenizer_config.json").toFile());
        config.put("chat_template", "{% for m in messages %}<|im_user|>{{ m.content }}{% endfor %}");
        Files.writeString(dir.resolve("tokenizer_config.json"), config.toString());
        KimiTokenizer t = KimiTokenizer.load(dir);
        assertEquals("<|im_user|>hi", t.chatTemplate().render(JSON.readTree("[{\"role\":\"user\",\"content\":\"hi\"}]"), null, true));
    }

    @Test
    void toJsonIsPythonJsonDumps() throws Exception {
        copyFixture("tiktoken.model", "tokenizer_config.json");
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ tools | tojson(separators=(',', ':')) }}");
        ChatTemplate t = KimiTokenizer.load(dir).chatTemplate();
        JsonNode messages = JSON.readTree("[{\"b\":1.0,\"a\":[1e20,1e-5,0.1,-3,12345678901234567890],\"c\":\"é\\n\\u0001\\\"\",\"d\":null,\"e\":true,\"f\":{}}]");
        JsonNode tools = JSON.readTree("[{\"z\":{\"y\":1,\"x\":[{\"b\":2,\"a\":1}]},\"a\":\"北京\"}]");
        String out = t.render(messages, tools, true);
        assertEquals("{\"b\": 1.0, \"a\": [1e+20, 1e-05, 0.1, -3, 12345678901234567890], \"c\": \"é\\n\\u0001\\\"\", \"d\": null, \"e\": true, \"f\": {}}"
                + "|{\n  \"b\": 1.0,\n  \"a\": [\n    1e+20,\n    1e-05,\n    0.1,\n    -3,\n    12345678901234567890\n  ],\n  \"c\": \"é\\n\\u0001\\\"\",\n  \"d\": null,\n  \"e\": true,\n  \"f\": {}\n}"
                + "|[{\"a\":\"北京\",\"z\":{\"x\":[{\"a\":1,\"b\":2}],\"y\":1}}]", out);
    }
}
