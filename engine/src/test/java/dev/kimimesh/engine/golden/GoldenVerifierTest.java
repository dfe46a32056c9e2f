package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine against both goldens directories of the tiny fixture, every case, and the verifier's own failures. */
class GoldenVerifierTest {
    static Checkpoint ckpt;
    static CpuBackend backend;
    static VerifyReport primary, remoteCode;

    @BeforeAll
    static void verifyBoth() {
        ckpt = TinyFixture.checkpoint();
        backend = new CpuBackend();
        GoldenVerifier v = new GoldenVerifier(ckpt, backend, VerifyOptions.defaults());
        primary = v.verify(TinyFixture.goldens(), r -> System.out.println("goldens: " + r.line()));
        remoteCode = v.verify(TinyFixture.remoteCodeGoldens(), r -> System.out.println("goldens-remote-code: " + r.line()));
        System.out.println("goldens: " + primary.summaryLine());
        System.out.println("goldens-remote-code: " + remoteCode.summaryLine());
    }

    @AfterAll
    static void close() {
        ckpt.close();
    }

    /** Every case index.json defines: one per prompt, plus split, chunked and batch. */
    private static int expectedCases(Path dir) {
        GoldenIndex idx = GoldenIndex.load(dir);
        return idx.prompts().size() + (idx.split() != null ? 1 : 0) + (idx.chunked() != null ? 1 : 0) + (idx.batch() != null ? 1 : 0);
    }

    private static void assertAllPass(VerifyReport r, Path dir) {
        String failed = r.cases().stream().filter(c -> !c.passed()).map(CaseResult::line).collect(Collectors.joining("\n"));
        assertTrue(failed.isEmpty(), "failed cases:\n" + failed);
        assertTrue(r.passed());
        assertEquals(expectedCases(dir), r.cases().size());
        assertTrue(r.tokensMatch());
        assertTrue(r.maxRelErr() <= 1e-4, r.summaryLine());
        assertTrue(r.maxRelErr() > 0, "a float32 engine is not bit-identical to the GPU goldens; zero means nothing was compared");
        for (CaseResult c : r.cases()) assertTrue(c.notes().isEmpty(), c.name() + " left tensors uncompared: " + c.notes());
    }

    @Test
    void primaryGoldensPassEveryCase() {
        assertAllPass(primary, TinyFixture.goldens());
        assertEquals(RouterWeights.UNBIASED, primary.router());
        CaseResult t7 = primary.get("prefill_T7");
        assertTrue(t7.relErrors().keySet().containsAll(Set.of("logits", "final_norm", "hidden_states", "mid_states",
                "kda.recurrent_state", "kda.conv_state", "mla.latent", "mla.k_rot", "decode.logits")), t7.line());
        assertEquals(7 * 7, t7.routerRows(), "7 MoE layers x 7 tokens");
        assertEquals(16, t7.tokensCompared());
        assertTrue(primary.get("split_prefill").relErrors().keySet().containsAll(Set.of("prefix.kda.recurrent_state",
                "prefix.kda.conv_state", "prefix.mla.latent", "prefix.mla.k_rot", "decode.logits")));
        assertTrue(primary.get("chunked_prefill").relErrors().keySet().containsAll(Set.of("first.kda.recurrent_state",
                "first.kda.conv_state", "decode.logits")));
        assertTrue(primary.get("batch").relErrors().containsKey("logits"));
    }

    @Test
    void remoteCodeGoldensPassEveryCase() {
        assertAllPass(remoteCode, TinyFixture.remoteCodeGoldens());
        assertEquals(RouterWeights.BIAS_CORRECTED, remoteCode.router());
        CaseResult t200 = remoteCode.get("prefill_T200");
        assertEquals(Set.of("logits", "decode.logits"), t200.relErrors().keySet(), "slim: only what is present is compared");
        assertTrue(t200.routerRows() > 0 && !Double.isNaN(t200.routerWeightErr()));
    }

    @Test
    void theOtherRouterConventionFails() {
        VerifyReport r = new GoldenVerifier(ckpt, backend, VerifyOptions.defaults().withRouter(RouterWeights.BIAS_CORRECTED)
                .withCases(Set.of("prefill_T7"))).verify(TinyFixture.goldens());
        CaseResult c = r.get("prefill_T7");
        assertFalse(r.passed());
        assertTrue(c.relErrors().get("logits") > 0.05, c.line());
        assertTrue(c.failures().stream().anyMatch(f -> f.startsWith("moe.1.topk_weight")), c.line());
        assertTrue(r.summaryLine().matches("verify: max_rel_err=\\S+ tokens_match=(true|false) cases=1"), r.summaryLine());
    }

    @Test
    void missingFilesAndTensorsAreNamed(@TempDir Path dir) throws IOException {
        Files.copy(TinyFixture.goldens().resolve("prefill_T7.safetensors"), dir.resolve("prefill_T7.safetensors"));
        Files.writeString(dir.resolve("index.json"), """
                {"router_weights": "unbiased", "decode_steps": 16,
                 "prompts": {"T7": {"file": "prefill_T7.safetensors", "tensors": ["input_ids", "logits", "no_such_tensor"]},
                             "T9": {"file": "prefill_T9.safetensors"}}}
                """);
        VerifyReport r = new GoldenVerifier(ckpt, backend, VerifyOptions.defaults()).verify(dir);
        assertEquals(List.of("prefill_T7", "prefill_T9"), r.cases().stream().map(CaseResult::name).toList());
        CaseResult t7 = r.get("prefill_T7");
        assertEquals(Set.of("logits"), t7.relErrors().keySet(), "only the tensors index.json lists are compared");
        assertTrue(t7.failures().stream().anyMatch(f -> f.contains("no_such_tensor")), t7.line());
        assertTrue(r.get("prefill_T9").failures().stream().anyMatch(f -> f.contains("prefill_T9.safetensors")));
        assertFalse(r.passed());
    }

    @Test
    void badIndexIsAClearError(@TempDir Path dir) throws IOException {
        GoldenException e = assertThrows(GoldenException.class, () -> GoldenIndex.load(dir));
        assertTrue(e.getMessage().contains("index.json"), e.getMessage());
        Files.writeString(dir.resolve("index.json"), "{\"router_weights\": \"sideways\"}");
        e = assertThrows(GoldenException.class, () -> GoldenIndex.load(dir));
        assertTrue(e.getMessage().contains("router_weights"), e.getMessage());
        Files.writeString(dir.resolve("index.json"), "{\"split_prefill\": {\"prompt\": \"T1\", \"prefix_len\": \"forty\", \"file\": \"x\"}}");
        e = assertThrows(GoldenException.class, () -> GoldenIndex.load(dir));
        assertTrue(e.getMessage().contains("split_prefill.prefix_len"), e.getMessage());
    }
}
