package dev.kimimesh.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kimimesh.engine.config.KimiLinearConfig;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Parameter counts of the real 48B config against the formula worked out by hand from its dimensions. */
class ParameterCountTest {
    @Test
    void real48bCounts() {
        KimiLinearConfig c = KimiLinearConfig.load(Path.of(System.getProperty("kimimesh.shared", "../../shared"))
                .resolve("reference/kimi-linear-48b-a3b-instruct.config.json"));
        long h = 2304, v = 163840, p = 32 * 128, d = 128, heads = 32;
        long kda = 3 * p * h + 3 * p * 4 + heads + d * h + p * d + p + heads * h + d * h + p * d + d + h * p;
        long mla = 32 * (128 + 64) * h + (512 + 64) * h + 512 + 32L * (128 + 128) * 512 + h * 32 * 128;
        long expert = 3 * 1024 * h;
        long moe = 256 * h + 256 + 256 * expert + expert; // router, bias, experts, one shared expert
        long dense = 3 * 9216 * h;
        long norms = 27 * 2 * h + h;
        long total = 2 * v * h + 20 * kda + 7 * mla + dense + 26 * moe + norms;
        long active = total - 26 * 256 * expert + 26 * 8 * expert - v * h + h;
        ParameterCount n = ParameterCount.of(c);
        assertEquals(total, n.total());
        assertEquals(active, n.active());
        assertEquals(26 * 256 * expert, n.experts());
        assertEquals(v * h, n.embedding());
        // bf16 everywhere but A_log (32 values) and dt_bias (4096 values) per KDA layer, which are f32
        assertEquals(2 * total + 20 * 2 * (heads + p), n.totalBytes());
    }
}
