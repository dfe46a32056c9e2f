package dev.kimimesh.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Greedy generation of the five fixture prompts, run together as one batch, against the goldens' decode tokens. */
class GeneratorGoldenTest {
    static final List<String> PROMPTS = List.of("T1", "T7", "T64", "T65", "T200");
    static Checkpoint ckpt;
    static KimiLinearModel model;
    static List<int[]> prompts = new ArrayList<>();
    static List<int[]> expected = new ArrayList<>();

    static Path fixture() {
        return Path.of(System.getProperty("kimimesh.shared", "../../shared")).resolve("fixtures/tiny");
    }

    @BeforeAll
    static void load() throws Exception {
        ckpt = Checkpoint.open(fixture());
        model = KimiLinearModel.load(ckpt, new CpuBackend(), ModelOptions.defaults());
        JsonNode index = new ObjectMapper().readTree(fixture().resolve("goldens/index.json").toFile());
        prompts.clear(); // other test classes load through here too
        expected.clear();
        assertEquals("unbiased", index.get("router_weights").asText());
        for (String p : PROMPTS) {
            JsonNode e = index.get("prompts").get(p);
            prompts.add(ints(e.get("input_ids")));
            expected.add(ints(e.get("decode_tokens")));
        }
    }

    @AfterAll
    static void close() {
        ckpt.close();
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    private void assertGoldens(List<int[]> got) {
        for (int i = 0; i < PROMPTS.size(); i++) assertArrayEquals(expected.get(i), got.get(i), PROMPTS.get(i));
    }

    @Test
    void batchOfFiveMatchesGoldenDecodeTokens() {
        Generator g = new Generator(model);
        assertGoldens(g.generate(prompts, SamplingParams.greedy(16)));
        assertEquals(0, g.running());
    }

    @Test
    void chunkedPrefillMixedWithDecodeMatchesGoldens() {
        // 48 prompt tokens per step: T64, T65 and T200 are prefilled over several steps while T1 and T7 decode.
        Generator g = new Generator(model, Generator.Options.defaults().withMaxPrefillTokens(48));
        assertGoldens(g.generate(prompts, SamplingParams.greedy(16)));
        Generator.Stats s = g.stats();
        assertEquals(1 + 7 + 64 + 65 + 200, s.prefillTokens());
    }

    @Test
    void sequencesJoiningWhileOthersRunMatchGoldens() {
        Generator g = new Generator(model, Generator.Options.defaults().withMaxPrefillTokens(64));
        List<List<Integer>> got = new ArrayList<>();
        List<Sequence> seqs = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            List<Integer> out = new ArrayList<>();
            got.add(out);
            seqs.add(g.submit(prompts.get(i), SamplingParams.greedy(16), collect(out)));
            g.step(); // the next prompt joins after this one has started
            g.step();
        }
        g.runUntilIdle();
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertArrayEquals(expected.get(i), got.get(i).stream().mapToInt(Integer::intValue).toArray(), PROMPTS.get(i));
            assertEquals(FinishReason.LENGTH, seqs.get(i).finishReason());
        }
    }

    static TokenSink collect(List<Integer> out) {
        return new TokenSink() {
            @Override
            public void onToken(int id, float logprob) {
                out.add(id);
            }

            @Override
            public void onFinish(FinishReason r) {}
        };
    }
}
