package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The engine against small fixtures of other shapes of the Kimi Linear family (src/test/resources/family, written by
 * tools/reference/check_family.py --fixtures from the independent float64 reference): KDA width != hidden with more
 * KDA than MLA heads and an f32 checkpoint; q-LoRA with tied embeddings from an f16 checkpoint; grouped top-1 routing
 * over three shards; a grouped softmax router whose biased scores go negative. Every goldens directory, every case.
 */
class FamilyFixturesTest {
    private static final int EXPECTED_FIXTURES = 4;

    static Path root() throws URISyntaxException {
        return Path.of(FamilyFixturesTest.class.getResource("/family").toURI());
    }

    @TestFactory
    Stream<DynamicTest> everyFamilyFixturePasses() throws IOException, URISyntaxException {
        List<Path> fixtures;
        try (Stream<Path> s = Files.list(root())) {
            fixtures = s.filter(Files::isDirectory).sorted().toList();
        }
        assertEquals(EXPECTED_FIXTURES, fixtures.size(), "family fixtures found: " + fixtures);
        List<DynamicTest> tests = new ArrayList<>();
        for (Path f : fixtures) {
            try (Stream<Path> s = Files.list(f)) {
                for (Path g : s.filter(p -> p.getFileName().toString().startsWith("goldens")).sorted().toList()) {
                    tests.add(DynamicTest.dynamicTest(f.getFileName() + "/" + g.getFileName(), () -> verify(f.resolve("model"), g)));
                }
            }
        }
        return tests.stream();
    }

    private static void verify(Path model, Path goldens) {
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            VerifyReport r = new GoldenVerifier(ckpt, new CpuBackend(), VerifyOptions.defaults()).verify(goldens);
            String failed = r.cases().stream().filter(c -> !c.passed()).map(CaseResult::line).collect(Collectors.joining("\n"));
            assertTrue(failed.isEmpty(), "failed cases:\n" + failed);
            GoldenIndex idx = GoldenIndex.load(goldens);
            assertEquals(idx.prompts().size() + 3, r.cases().size(), "one case per prompt, split, chunked, batch");
            assertTrue(r.passed() && r.tokensMatch(), r.summaryLine());
            assertTrue(r.maxRelErr() <= 1e-4, r.summaryLine());
            assertTrue(r.maxRelErr() > 0, "zero error means nothing was compared");
            for (CaseResult c : r.cases()) assertTrue(c.notes().isEmpty(), c.name() + " left tensors uncompared: " + c.notes());
            System.out.println(model.getParent().getFileName() + "/" + goldens.getFileName() + ": " + r.summaryLine());
        }
    }
}
