package dev.kimimesh.cuda.check;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.generate.DecodeGraphs;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Decode steps replayed from a recording (DecodeGraphs) against the same steps run eagerly, from two restored copies
 * of the same sequence states: every step's tokens and logprobs must be identical (the same kernels on the same
 * inputs), the states afterwards too, and all steps after the first two must be replays.
 */
final class GraphCheck {
    private GraphCheck() {}

    static void run(KimiLinearModel model, byte[] snapshot, int batch, int steps, Compare cmp) {
        Backend be = model.backend();
        SequenceState[] eager = new SequenceState[batch], replayed = new SequenceState[batch];
        for (int i = 0; i < batch; i++) {
            eager[i] = SequenceState.deserialize(be, model.config(), snapshot);
            replayed[i] = SequenceState.deserialize(be, model.config(), snapshot);
        }
        SplittableRandom r = new SplittableRandom(11);
        int vocab = model.config().vocabSize();
        int[] idsA = new int[batch];
        for (int i = 0; i < batch; i++) idsA[i] = r.nextInt(vocab);
        int[] idsB = idsA.clone();
        String what = "decode graph vs eager, batch " + batch + ", " + steps + " steps";
        try (DecodeGraphs graphs = new DecodeGraphs(model, true)) {
            for (int step = 0; step < steps; step++) {
                RowSampling[] rows = new RowSampling[batch];
                for (int i = 0; i < batch; i++) {
                    // even rows greedy, odd rows T 0.8 / top-k 50 / top-p 0.9, all with logprobs
                    rows[i] = i % 2 == 0 ? new RowSampling(true, 1f, 0, 1.0, 0.0, true)
                            : new RowSampling(false, 1 / 0.8f, 50, 0.9, r.nextDouble(), true);
                }
                SampledTokens a = eagerStep(model, idsA, eager, rows);
                Optional<SampledTokens> g = graphs.step(idsB, replayed, rows);
                SampledTokens b = g.isPresent() ? g.get() : eagerStep(model, idsB, replayed, rows);
                if (!Arrays.equals(a.tokens(), b.tokens()) || !Arrays.equals(a.logprobs(), b.logprobs())) {
                    cmp.fail(what, "step " + step + ": tokens " + Arrays.toString(head(a.tokens())) + " vs " + Arrays.toString(head(b.tokens())));
                    return;
                }
                for (int i = 0; i < batch; i++) {
                    if (eager[i].position() != replayed[i].position()) {
                        cmp.fail(what, "step " + step + ": positions " + eager[i].position() + " vs " + replayed[i].position());
                        return;
                    }
                }
                idsA = a.tokens().clone();
                idsB = b.tokens().clone();
            }
            if (graphs.replays() < steps - 1) {
                cmp.fail(what, "only " + graphs.replays() + " of " + steps + " steps were replayed");
                return;
            }
            // the states the two paths leave behind, through the host (KDA states, conv tails, MLA caches)
            byte[] sa = eager[0].serialize(be), sb = replayed[0].serialize(be);
            if (!Arrays.equals(sa, sb)) {
                cmp.fail(what, "sequence 0's state differs after the steps");
                return;
            }
            cmp.pass(what, "tokens, logprobs and states identical; " + graphs.replays() + " replays of " + graphs.captures() + " recording(s)");
        } finally {
            for (SequenceState s : eager) s.release();
            for (SequenceState s : replayed) s.release();
        }
    }

    static SampledTokens eagerStep(KimiLinearModel model, int[] ids, SequenceState[] states, RowSampling[] rows) {
        Backend be = model.backend();
        int[] ones = new int[states.length], sampleRows = new int[states.length];
        for (int i = 0; i < states.length; i++) {
            ones[i] = 1;
            sampleRows[i] = i;
        }
        Tensor x = model.embed(ids);
        model.forward(x, ones, states);
        Tensor lg = model.logits(x, sampleRows);
        SampledTokens t = be.sample(lg, rows).orElseThrow();
        be.release(x);
        be.release(lg);
        return t;
    }

    private static int[] head(int[] a) {
        return Arrays.copyOf(a, Math.min(8, a.length));
    }
}
