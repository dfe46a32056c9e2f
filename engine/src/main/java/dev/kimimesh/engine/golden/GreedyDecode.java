package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.state.SequenceState;

/**
 * The decode part of a case: {@code decode.logits} row 0 is the last prefill row, row s the logits after feeding
 * tokens 0..s-1 one at a time; {@code decode.tokens} is the argmax of each row, and ours must equal it. The golden
 * token is fed at every step (after a mismatch that keeps the remaining logits comparable; before it, it is ours).
 */
final class GreedyDecode {
    private GreedyDecode() {}

    static void run(GoldenFile g, ModelRun run, SequenceState state, float[] lastRow, int[] indexTokens, CaseTally t) {
        int vocab = run.model.config().vocabSize();
        float[] goldenLogits = null;
        int[] goldenTokens = null;
        int steps;
        try {
            if (g.has("decode.logits")) {
                long[] s = g.shape("decode.logits");
                if (s.length != 2 || s[1] != vocab) g.requireShape("decode.logits", s.length == 2 ? s[0] : 0, vocab);
                goldenLogits = g.floats("decode.logits");
            }
            if (g.has("decode.tokens")) goldenTokens = g.ints("decode.tokens");
            else if (indexTokens != null) goldenTokens = indexTokens;
        } catch (GoldenException e) {
            t.fail(e.getMessage());
            return;
        }
        steps = goldenLogits != null ? goldenLogits.length / vocab : goldenTokens != null ? goldenTokens.length : 0;
        if (goldenLogits != null && goldenTokens != null && goldenTokens.length != steps) {
            t.fail("decode.tokens has " + goldenTokens.length + " steps, decode.logits " + steps);
            return;
        }
        if (steps == 0) return;
        float[] ours = new float[steps * vocab];
        int[] ourTokens = new int[steps];
        float[] row = lastRow;
        for (int s = 0; s < steps; s++) {
            if (s > 0) row = run.step(goldenTokens != null ? goldenTokens[s - 1] : ourTokens[s - 1], state);
            System.arraycopy(row, 0, ours, s * vocab, vocab);
            ourTokens[s] = ModelRun.argmax(row);
        }
        if (goldenLogits != null) t.relative("decode.logits", "decode.logits", ours, goldenLogits);
        if (goldenTokens != null) t.tokens("decode.tokens", goldenTokens, ourTokens);
    }
}
