package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A pipeline of two shards, layers [0, k) and [k, n) as separate model objects with their own per-sequence states,
 * computes what the whole model computes, at every cut point: a prefill, a continuation chunk and decode tokens.
 */
class LayerRangeTest {

    private static float[] run(KimiLinearModel[] chain, int[] ids) {
        SequenceState[] states = new SequenceState[chain.length];
        for (int i = 0; i < chain.length; i++) states[i] = chain[i].newState();
        float[] out = Forward.feed(chain, states, Arrays.copyOfRange(ids, 0, 40));
        out = Forward.concat(out, Forward.feed(chain, states, Arrays.copyOfRange(ids, 40, 48)));
        for (int i = 48; i < 51; i++) out = Forward.concat(out, Forward.feed(chain, states, ids[i]));
        for (SequenceState s : states) assertEquals(51, s.position());
        return out;
    }

    @Test
    void twoShardsEqualTheWholeModelAtEveryCut() {
        int[] ids = TinyFixture.promptIds("prefill_T200");
        try (Checkpoint ckpt = TinyFixture.checkpoint()) {
            CpuBackend b = new CpuBackend();
            KimiLinearConfig c = ckpt.config();
            int n = c.numHiddenLayers();
            float[] whole = run(new KimiLinearModel[] {KimiLinearModel.load(ckpt, b, ModelOptions.defaults())}, ids);
            for (int k = 1; k < n; k++) {
                KimiLinearModel head = KimiLinearModel.loadRange(ckpt, b, ModelOptions.defaults(), 0, k);
                KimiLinearModel tail = KimiLinearModel.loadRange(ckpt, b, ModelOptions.defaults(), k, n);
                assertTrue(head.hasEmbedding() && !head.hasHead() && !tail.hasEmbedding() && tail.hasHead());
                float[] split = run(new KimiLinearModel[] {head, tail}, ids);
                double err = TinyFixture.relErr(split, whole);
                assertTrue(err <= 1e-6, "cut at " + k + ": " + err);
                assertArrayEquals(whole, split, "cut at " + k + ": the same operations on the same rows must give the same bits");
            }
        }
    }

    @Test
    void aShardRefusesWhatItDoesNotHold() {
        try (Checkpoint ckpt = TinyFixture.checkpoint()) {
            CpuBackend b = new CpuBackend();
            int n = ckpt.config().numHiddenLayers();
            KimiLinearModel tail = KimiLinearModel.loadRange(ckpt, b, ModelOptions.defaults(), n / 2, n);
            assertThrows(IllegalStateException.class, () -> tail.embed(new int[] {1}));
            KimiLinearModel head = KimiLinearModel.loadRange(ckpt, b, ModelOptions.defaults(), 0, n / 2);
            SequenceState wrong = tail.newState();
            assertThrows(IllegalArgumentException.class,
                    () -> head.forward(head.embed(new int[] {1}), new int[] {1}, new SequenceState[] {wrong}));
            assertFalse(head.hasHead());
            assertThrows(IllegalArgumentException.class, () -> KimiLinearModel.loadRange(ckpt, b, ModelOptions.defaults(), 3, 3));
        }
    }
}
