package dev.kimimesh.cuda.check;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The prefill FLOP floor's counts against plain enumerations of the multiply-adds they stand for. */
class PrefillFlopsTest {
    private static final KimiLinearConfig BENCH =
            KimiLinearConfig.load(Path.of(System.getProperty("kimimesh.shared", "../../shared"), "reference", "bench-48b-shape-4layers.config.json"));

    @Test
    void mlaCountsEveryCausalPairOnce() {
        int tokens = 37, width = BENCH.qkNopeHeadDim() + BENCH.qkRopeHeadDim() + BENCH.vHeadDim();
        double madds = 0;
        for (int i = 0; i < tokens; i++) {
            for (int j = 0; j <= i; j++) madds += (double) BENCH.numAttentionHeads() * width;
        }
        assertEquals(2 * madds, PrefillFlops.mlaAttention(BENCH, tokens), 0);
        // the bench's 32k prompt: 32 heads x (128 + 64 + 128) over 536,887,296 pairs
        assertEquals(2.0 * 536_887_296L * 32 * 320, PrefillFlops.mlaAttention(BENCH, 32_768), 0);
    }

    @Test
    void kdaCountsTheChunkProductsWithAShortLastChunk() {
        int heads = 3, dk = 5, dv = 7;
        long tokens = 2 * PrefillFlops.KDA_CHUNK + 9;
        double madds = 0;
        for (long s = 0; s < tokens; s += PrefillFlops.KDA_CHUNK) {
            long end = Math.min(tokens, s + PrefillFlops.KDA_CHUNK);
            for (long i = s; i < end; i++) {
                for (long j = s; j <= i; j++) madds += 3 * dk + 2 * dv; // q.k, k.k, A.k, A.v, scores.v_new
                madds += 3L * dk * dv; // w.S, q.S, the state update's column of k^T v_new
            }
        }
        assertEquals(2 * madds * heads, PrefillFlops.kdaChunk(tokens, heads, dk, dv), 0);
    }

    @Test
    void modelIsWeightsPlusEveryLayersAttention() {
        long tokens = 4096;
        double attention = 0;
        for (int l = 0; l < BENCH.numHiddenLayers(); l++) {
            attention += BENCH.layerKind(l) == LayerKind.KDA
                    ? PrefillFlops.kdaChunk(tokens, BENCH.kdaNumHeads(), BENCH.kdaHeadDim(), BENCH.kdaHeadDim())
                    : PrefillFlops.mlaAttention(BENCH, tokens);
        }
        assertEquals(2.0 * GpuBench.activeParams(BENCH) * tokens + attention, PrefillFlops.model(BENCH, tokens), 1e-3);
    }
}
