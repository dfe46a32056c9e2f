package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;

/** The model under test as the cases drive it: prefill calls, all-row logits, single-token steps, greedy choice. */
final class ModelRun {
    final KimiLinearModel model;
    final Backend backend;
    final LayerRecorder recorder;

    ModelRun(KimiLinearModel model, LayerRecorder recorder) {
        this.model = model;
        this.backend = model.backend();
        this.recorder = recorder;
    }

    /** Embeds and runs one call of {@code ids} on {@code state}; returns the final hidden states [n, hidden]. */
    Tensor feed(int[] ids, SequenceState state) {
        Tensor x = model.embed(ids);
        model.forward(x, new int[] {ids.length}, new SequenceState[] {state});
        return x;
    }

    /** Logits [rows, vocab] of every row of {@code hidden}, row-major. */
    float[] logitsAll(Tensor hidden) {
        Tensor l = model.logits(hidden, allRows(hidden.rows()));
        float[] out = backend.download(l);
        backend.release(l);
        return out;
    }

    /** Feeds one token and returns its logits row. */
    float[] step(int token, SequenceState state) {
        Tensor x = feed(new int[] {token}, state);
        float[] row = logitsAll(x);
        backend.release(x);
        return row;
    }

    static int[] allRows(int n) {
        int[] rows = new int[n];
        for (int i = 0; i < n; i++) rows[i] = i;
        return rows;
    }

    /** Row {@code r} of a row-major [rows, cols] array. */
    static float[] row(float[] a, int r, int cols) {
        return java.util.Arrays.copyOfRange(a, r * cols, (r + 1) * cols);
    }

    /** The greedy choice: index of the largest value (the first on ties, as torch.argmax). */
    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
        return best;
    }
}
