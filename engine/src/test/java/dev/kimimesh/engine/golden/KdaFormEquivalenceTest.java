package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import org.junit.jupiter.api.Test;

/**
 * The chunkwise KDA form (WY/UT transform, chunks of 64 with the state carried across them) and the token-by-token
 * recurrence are two independent evaluations of one function: over the 200-token prompt (four chunks, the last
 * partial) they must agree on every logit and every layer state.
 */
class KdaFormEquivalenceTest {
    private static final double LIMIT = 1e-5;

    @Test
    void chunkedPrefillEqualsRecurrentOnT200() {
        int[] ids = TinyFixture.promptIds("prefill_T200");
        try (Checkpoint ckpt = TinyFixture.checkpoint()) {
            CpuBackend b = new CpuBackend();
            KimiLinearConfig c = ckpt.config();
            KimiLinearModel chunked = KimiLinearModel.load(ckpt, b, ModelOptions.defaults().withKdaForm(KdaForm.CHUNKED));
            KimiLinearModel recurrent = KimiLinearModel.load(ckpt, b, ModelOptions.defaults().withKdaForm(KdaForm.RECURRENT));
            SequenceState sc = chunked.newState(), sr = recurrent.newState();
            float[] lc = Forward.feed(chunked, sc, ids), lr = Forward.feed(recurrent, sr, ids);
            double logits = TinyFixture.relErr(lc, lr);
            System.out.printf("KDA chunked vs recurrent, T200: logits %.2e%n", logits);
            assertTrue(logits <= LIMIT, "logits differ by " + logits);
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                LayerKind kind = c.layerKind(l);
                double s = TinyFixture.relErr(Forward.layerState(sc, l, kind, b), Forward.layerState(sr, l, kind, b));
                System.out.printf("  layer %d (%s) state %.2e%n", l, kind, s);
                assertTrue(s <= LIMIT, "layer " + l + " state differs by " + s);
            }
            // one more token through each form on top of the other's kind of state history
            double next = TinyFixture.relErr(Forward.feed(chunked, sc, 7, 8, 9), Forward.feed(recurrent, sr, 7, 8, 9));
            assertTrue(next <= LIMIT, "continuation differs by " + next);
        }
    }
}
