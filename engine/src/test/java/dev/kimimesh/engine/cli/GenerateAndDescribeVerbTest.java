package dev.kimimesh.engine.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The generate and describe verbs, run in-process on the fixtures. */
class GenerateAndDescribeVerbTest {
    static final Path SHARED = Path.of(System.getProperty("kimimesh.shared", "../../shared"));
    static final Path TINY = SHARED.resolve("fixtures/tiny");

    final ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();

    String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    GenerateVerb generate() {
        return new GenerateVerb(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Test
    void generatePrintsTheGoldenGreedyTokensAndStats() throws Exception {
        // T7 prompt and its golden decode tokens (goldens/index.json)
        int rc = generate().run(List.of(TINY.toString(), "--prompt-ids", "1195,533,1415,301,233,12,1224", "--max-tokens", "16",
                "--backend", "cpu", "--prefill-chunk", "3"));
        assertEquals(0, rc);
        assertEquals("667,1912,696,452,218,1918,161,1495,2013,1239,807,1198,29,1664,1389,2011", out().trim());
        String stats = err.toString(StandardCharsets.UTF_8);
        assertTrue(stats.contains("prefill") && stats.contains("decode") && stats.contains("tok/s"), stats);
    }

    @Test
    void generateSaysClearlyWhenThereIsNoCheckpoint(@TempDir Path empty) throws Exception {
        UsageException e = assertThrows(UsageException.class, () -> generate().run(List.of("--prompt-ids", "1,2")));
        assertTrue(e.getMessage().contains("model-dir"), e.getMessage());
        e = assertThrows(UsageException.class, () -> generate().run(List.of(empty.toString(), "--prompt-ids", "1")));
        assertTrue(e.getMessage().contains("no config.json"), e.getMessage());
        Files.copy(TINY.resolve("config.json"), empty.resolve("config.json"));
        e = assertThrows(UsageException.class, () -> generate().run(List.of(empty.toString(), "--prompt-ids", "1")));
        assertTrue(e.getMessage().contains("no checkpoint"), e.getMessage());
        e = assertThrows(UsageException.class, () -> generate().run(List.of(empty.resolve("nope").toString(), "--prompt-ids", "1")));
        assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
    }

    @Test
    void generateRejectsBadArguments() {
        String dir = TINY.toString();
        assertMessage("--prompt-ids", List.of(dir));
        assertMessage("'x'", List.of(dir, "--prompt-ids", "1,x"));
        assertMessage("outside the vocabulary", List.of(dir, "--prompt-ids", "1,2048"));
        assertMessage("temperature", List.of(dir, "--prompt-ids", "1", "--temperature", "-1"));
        assertMessage("top_p", List.of(dir, "--prompt-ids", "1", "--top-p", "1.5"));
        assertMessage("max_tokens", List.of(dir, "--prompt-ids", "1", "--max-tokens", "0"));
        assertMessage("router_weights", List.of(dir, "--prompt-ids", "1", "--router", "magic"));
    }

    void assertMessage(String part, List<String> args) {
        UsageException e = assertThrows(UsageException.class, () -> generate().run(args));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void describeTheReal48bConfig() throws Exception {
        Path config = SHARED.resolve("reference/kimi-linear-48b-a3b-instruct.config.json");
        assertEquals(0, new DescribeVerb(new PrintStream(out, true, StandardCharsets.UTF_8)).run(List.of(config.toString())));
        String text = out();
        assertTrue(text.contains("27 layers"), text);
        assertTrue(text.contains("KKKMKKKMKKKMKKKMKKKMKKKMKKM"), text);
        // 49.12B total and 3.11B active: computed by hand from the config in ParameterCountTest
        assertTrue(text.contains("49.12B total"), text);
        assertTrue(text.contains("active per token: 3.11B"), text);
    }

    @Test
    void describeAModelDirectory() throws Exception {
        assertEquals(0, new DescribeVerb(new PrintStream(out, true, StandardCharsets.UTF_8)).run(List.of(TINY.toString())));
        assertTrue(out().contains("2 safetensors file(s)"), out());
    }

    @Test
    void verbsAreRegistered() {
        assertTrue(Main.verbs().containsKey("generate"));
        assertTrue(Main.verbs().containsKey("describe"));
    }
}
