package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A continuous-batching micro-batch (a decode token of one sequence, a prefill chunk continuing another at its own
 * position, and a fresh prompt, in one call) computes for each sequence what that sequence alone computes.
 */
class MixedBatchTest {

    @Test
    void segmentsAtDifferentPositionsEqualSeparateRuns() {
        int[] ids = TinyFixture.promptIds("prefill_T200");
        int[] a = Arrays.copyOfRange(ids, 0, 40), b = Arrays.copyOfRange(ids, 40, 110), c = Arrays.copyOfRange(ids, 110, 200);
        try (Checkpoint ckpt = TinyFixture.checkpoint()) {
            CpuBackend be = new CpuBackend();
            KimiLinearModel m = KimiLinearModel.load(ckpt, be, ModelOptions.defaults());
            // alone: A = a then one token, B = b then the next 30 tokens of c as a chunk, C = c (65 tokens) fresh
            SequenceState sa = m.newState(), sb = m.newState(), sc = m.newState();
            Forward.feed(m, sa, a);
            Forward.feed(m, sb, b);
            float[] aloneA = Forward.feed(m, sa, 7);
            float[] aloneB = Forward.feed(m, sb, Arrays.copyOf(c, 30));
            float[] aloneC = Forward.feed(m, sc, Arrays.copyOfRange(c, 0, 65));

            // together: the same three continuations as one call of three segments
            SequenceState ta = m.newState(), tb = m.newState(), tc = m.newState();
            Forward.feed(m, ta, a);
            Forward.feed(m, tb, b);
            int[] flat = new int[1 + 30 + 65];
            flat[0] = 7;
            System.arraycopy(c, 0, flat, 1, 30);
            System.arraycopy(c, 0, flat, 31, 65);
            Tensor x = m.embed(flat);
            m.forward(x, new int[] {1, 30, 65}, new SequenceState[] {ta, tb, tc});
            float[] together = be.download(m.logits(x, ModelRun.allRows(flat.length)));
            int v = m.config().vocabSize();
            assertArrayEquals(aloneA, Arrays.copyOfRange(together, 0, v), "decode segment");
            assertArrayEquals(aloneB, Arrays.copyOfRange(together, v, 31 * v), "continued chunk at position 70");
            assertArrayEquals(aloneC, Arrays.copyOfRange(together, 31 * v, 96 * v), "fresh prompt");
            assertArrayEquals(sa.serialize(be), ta.serialize(be), "state A");
            assertArrayEquals(sb.serialize(be), tb.serialize(be), "state B");
            assertArrayEquals(sc.serialize(be), tc.serialize(be), "state C");
        }
    }
}
