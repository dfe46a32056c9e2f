package dev.kimimesh.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import dev.kimimesh.engine.checkpoint.SafetensorsWriter;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.RouterWeights;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two rules of the original {@code KimiMoEGate} that the tiny fixture (top-4, one group) cannot show, checked against
 * numbers worked out by hand: renormalisation only when top-k > 1, and group-limited choice filling the dropped
 * groups with 0.0 rather than -inf.
 */
class OriginalRouterRulesTest {
    private static KimiLinearConfig config(int experts, int topK, int groups, int topkGroup) {
        return KimiLinearConfig.parse("""
                {"model_type": "kimi_linear", "hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 16,
                 "linear_attn_config": {"kda_layers": [1], "num_heads": 1, "head_dim": 8, "short_conv_kernel_size": 4},
                 "num_experts": %d, "num_experts_per_token": %d, "num_expert_group": %d, "topk_group": %d,
                 "moe_intermediate_size": 4, "num_shared_experts": 0, "routed_scaling_factor": 1.5,
                 "moe_renormalize": true, "intermediate_size": 8}
                """.formatted(experts, topK, groups, topkGroup));
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    @Test
    void topOneKeepsTheSigmoidScore() {
        RouterSpec spec = RouterSpec.of(config(4, 1, 1, 1), RouterWeights.UNBIASED);
        assertFalse(spec.renormalize());
        try (Backend b = Backends.create("cpu")) {
            Routing r = b.route(b.upload(new float[] {0.3f, -1.2f, 2.0f, 0.7f}, 1, 4), null, spec);
            assertEquals(2, r.expert(0, 0));
            assertEquals(1.5 * sigmoid(2.0), r.weight(0, 0), 1e-6); // not divided by itself
        }
    }

    @Test
    void topTwoStillRenormalises() {
        RouterSpec spec = RouterSpec.of(config(4, 2, 1, 1), RouterWeights.UNBIASED);
        assertTrue(spec.renormalize());
        try (Backend b = Backends.create("cpu")) {
            Routing r = b.route(b.upload(new float[] {0.3f, -1.2f, 2.0f, 0.7f}, 1, 4), null, spec);
            assertEquals(1.5, r.weight(0, 0) + r.weight(0, 1), 1e-6);
        }
    }

    /**
     * Groups {0,1} and {2,3}; biased scores 0.88+0 = 0.88 and 0.05-0.3 = -0.25 in group 0 (top-2 sum 0.63), 0.27+0.02 and
     * 0.27+0.02 in group 1 (0.58): group 0 is kept. The original masks group 1 to 0.0, which ranks above expert 1's
     * -0.25, so its top-2 is expert 0 and a group-1 expert (the lower id on the tie); with -inf it would be {0, 1}.
     * The weight of the group-1 expert is its own unmasked score.
     */
    @Test
    void droppedGroupsAreZeroNotMinusInfinity(@TempDir Path dir) {
        RouterSpec spec = RouterSpec.of(config(4, 2, 2, 1), RouterWeights.BIAS_CORRECTED);
        Path f = dir.resolve("bias.safetensors");
        float[] bias = {0f, -0.3f, 0.02f, 0.02f};
        try (SafetensorsWriter w = SafetensorsWriter.create(f, List.of(new SafetensorsWriter.Entry("bias", DType.F32, new long[] {4})),
                Map.of())) {
            w.write("bias", bias);
        }
        float[] logits = {2.0f, (float) Math.log(0.05 / 0.95), -1.0f, -1.0f};
        try (Backend b = Backends.create("cpu"); SafetensorsFile st = SafetensorsFile.open(f)) {
            Routing r = b.route(b.upload(logits, 1, 4), b.weight(st.tensor("bias")), spec);
            assertEquals(Set.of(0, 2), Set.of(r.expert(0, 0), r.expert(0, 1)));
            double w0 = sigmoid(2.0), w2 = sigmoid(-1.0) + 0.02;
            double got2 = r.expert(0, 0) == 2 ? r.weight(0, 0) : r.weight(0, 1);
            assertEquals(1.5 * w2 / (w0 + w2), got2, 1e-6);
        }
    }
}
