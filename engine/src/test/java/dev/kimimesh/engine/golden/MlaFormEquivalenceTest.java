package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * MLA with kv_b_proj absorbed into the query and output (attention as MQA over the latent cache) equals MLA with
 * the cache expanded to per-head K and V: on a 65-token prefill, a 5-token continuation at position 65 and single
 * decode tokens.
 */
class MlaFormEquivalenceTest {
    private static final double LIMIT = 1e-5;

    private static float[] run(String form, int[] ids) {
        CpuBackend.mlaForm(form);
        try (Checkpoint ckpt = TinyFixture.checkpoint()) {
            KimiLinearModel m = KimiLinearModel.load(ckpt, new CpuBackend(), ModelOptions.defaults());
            SequenceState st = m.newState();
            float[] out = Forward.feed(m, st, ids);
            out = Forward.concat(out, Forward.feed(m, st, 11, 500, 1999, 3, 42));
            for (int tok : new int[] {1792, 17, 640}) out = Forward.concat(out, Forward.feed(m, st, tok));
            return out;
        } finally {
            CpuBackend.mlaForm("AUTO");
        }
    }

    @Test
    void absorbedEqualsExpanded() {
        int[] ids = TinyFixture.promptIds("prefill_T65");
        float[] expanded = run("EXPANDED", ids), absorbed = run("ABSORBED", ids);
        double err = TinyFixture.relErr(absorbed, expanded);
        System.out.printf("MLA absorbed vs expanded: logits %.2e%n", err);
        assertTrue(err <= LIMIT, "absorbed MLA differs from expanded by " + err);
        assertTrue(!Arrays.equals(absorbed, expanded), "the two forms must really be different computations");
    }
}
