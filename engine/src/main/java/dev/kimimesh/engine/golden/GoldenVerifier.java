package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Runs every case of a goldens directory (index.json + safetensors files, the format of the fixtures' goldens) on a
 * checkpoint and compares every golden tensor present: one-shot prefill with decode per prompt, split prefill
 * (then one token at a time), chunked prefill (then the rest in one call), and a padded batch run as one call of
 * several segments. Everything is derived from index.json, the golden files and config.json.
 */
public final class GoldenVerifier {
    private final Checkpoint checkpoint;
    private final Backend backend;
    private final VerifyOptions options;

    public GoldenVerifier(Checkpoint checkpoint, Backend backend, VerifyOptions options) {
        this.checkpoint = checkpoint;
        this.backend = backend;
        this.options = options;
    }

    public VerifyReport verify(Path goldenDir) {
        return verify(goldenDir, r -> {});
    }

    /** Verifies every (selected) case, handing each result to {@code onCase} as soon as it is known. */
    public VerifyReport verify(Path goldenDir, Consumer<CaseResult> onCase) {
        GoldenIndex index = GoldenIndex.load(goldenDir);
        RouterWeights router = options.router() != null ? options.router()
                : index.routerWeights() != null ? index.routerWeights() : RouterWeights.UNBIASED;
        LayerRecorder recorder = new LayerRecorder(backend);
        KimiLinearModel model = KimiLinearModel.load(checkpoint, backend, ModelOptions.defaults()
                .withRouterWeights(router).withKdaForm(options.kdaForm()).withObserver(recorder));
        ModelRun run = new ModelRun(model, recorder);

        List<CaseResult> results = new ArrayList<>();
        Consumer<CaseResult> done = r -> {
            results.add(r);
            onCase.accept(r);
        };
        for (GoldenIndex.Prompt p : index.prompts().values()) {
            runCase("prefill_" + p.name(), goldenDir, p.file(), p.tensors(), done, (g, t) -> prefill(run, g, p, t));
        }
        if (index.split() != null) {
            GoldenIndex.Split s = index.split();
            runCase("split_prefill", goldenDir, s.file(), s.tensors(), done,
                    (g, t) -> resumed(run, g, ids(g, index.prompt(s.prompt(), "split_prefill"), t), s.prefixLen(), "prefix.", false, t));
        }
        if (index.chunked() != null) {
            GoldenIndex.Chunked c = index.chunked();
            runCase("chunked_prefill", goldenDir, c.file(), c.tensors(), done,
                    (g, t) -> resumed(run, g, ids(g, index.prompt(c.prompt(), "chunked_prefill"), t), c.firstLen(), "first.", true, t));
        }
        if (index.batch() != null) {
            GoldenIndex.Batch b = index.batch();
            runCase("batch", goldenDir, b.file(), b.tensors(), done, (g, t) -> batch(run, g, b, t));
        }
        if (results.isEmpty()) {
            throw new GoldenException(goldenDir.resolve("index.json") + ": no cases to run"
                    + (options.cases() != null ? " (selected: " + options.cases() + ")" : ""));
        }
        return new VerifyReport(router, List.copyOf(results));
    }

    private interface CaseBody {
        void run(GoldenFile g, CaseTally t);
    }

    private void runCase(String name, Path dir, String file, List<String> listed, Consumer<CaseResult> done, CaseBody body) {
        if (options.cases() != null && !options.cases().contains(name)) return;
        CaseTally t = new CaseTally(name, options.tolerance());
        try (GoldenFile g = GoldenFile.open(dir, file, listed)) {
            for (String missing : g.listedButMissing()) t.fail("index.json lists tensor '" + missing + "' for " + file + ", which lacks it");
            body.run(g, t);
            List<String> unused = g.unused();
            if (!unused.isEmpty()) t.note("not compared (no check knows them): " + unused);
        } catch (RuntimeException e) {
            t.fail(e instanceof GoldenException ? e.getMessage() : e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        done.accept(t.result());
    }

    /** The prompt's tokens: the file's input_ids where present (checked against index.json), else index.json's. */
    private static int[] ids(GoldenFile g, GoldenIndex.Prompt p, CaseTally t) {
        int[] ids = g.has("input_ids") ? g.ints("input_ids") : p.inputIds();
        if (ids == null) throw new GoldenException(g.name() + ": no input_ids, and index.json gives none for prompt " + p.name());
        if (g.has("input_ids") && p.inputIds() != null && !Arrays.equals(ids, p.inputIds())) {
            t.fail(g.name() + ": input_ids differ from index.json prompts." + p.name() + ".input_ids");
        }
        if (ids.length == 0) throw new GoldenException(g.name() + ": the prompt is empty");
        return ids;
    }

    private void prefill(ModelRun run, GoldenFile g, GoldenIndex.Prompt p, CaseTally t) {
        int[] ids = ids(g, p, t);
        KimiLinearConfig c = run.model.config();
        SequenceState st = run.model.newState();
        Tensor x = null;
        try {
            x = run.model.embed(ids);
            float[] embedding = backend.download(x);
            run.recorder.start();
            run.model.forward(x, new int[] {ids.length}, new SequenceState[] {st});
            run.recorder.stop();
            float[] logits = run.logitsAll(x);
            ActivationCheck.compare(g, run, embedding, x, logits, t);
            StateCheck.compare(g, "", st, c, backend, t);
            GreedyDecode.run(g, run, st, ModelRun.row(logits, ids.length - 1, c.vocabSize()), p.decodeTokens(), t);
        } finally {
            run.recorder.stop();
            if (x != null) backend.release(x);
            st.release();
        }
    }

    /**
     * Prefills the first {@code first} tokens, compares the {@code prefix} state snapshot, then feeds the rest
     * in one call ({@code oneCall}) or one token at a time, then decodes.
     */
    private void resumed(ModelRun run, GoldenFile g, int[] ids, int first, String prefix, boolean oneCall, CaseTally t) {
        if (first <= 0 || first > ids.length) {
            throw new GoldenException("index.json: the first part (" + first + " tokens) must be within the prompt's " + ids.length);
        }
        KimiLinearConfig c = run.model.config();
        SequenceState st = run.model.newState();
        try {
            float[] last = lastRow(run, Arrays.copyOfRange(ids, 0, first), st);
            StateCheck.compare(g, prefix, st, c, backend, t);
            if (first < ids.length) {
                if (oneCall) {
                    last = lastRow(run, Arrays.copyOfRange(ids, first, ids.length), st);
                } else {
                    for (int i = first; i < ids.length; i++) last = run.step(ids[i], st);
                }
            }
            GreedyDecode.run(g, run, st, last, null, t);
        } finally {
            st.release();
        }
    }

    private float[] lastRow(ModelRun run, int[] ids, SequenceState st) {
        Tensor x = run.feed(ids, st);
        Tensor l = run.model.logits(x, new int[] {ids.length - 1});
        float[] row = backend.download(l);
        backend.release(l);
        backend.release(x);
        return row;
    }

    /**
     * The padded batch [B, n] with its attention mask: the real tokens of all rows run together as one call of B
     * segments (each with a fresh state); {@code logits.<b>} holds row b's real positions.
     */
    private void batch(ModelRun run, GoldenFile g, GoldenIndex.Batch spec, CaseTally t) {
        long[] shape = g.shape("input_ids");
        if (shape.length != 2) throw new GoldenException(g.name() + ": input_ids must be [batch, length], not " + Arrays.toString(shape));
        int rows = (int) shape[0], cols = (int) shape[1];
        int[] ids = g.ints("input_ids");
        int[] mask;
        if (g.has("attention_mask")) {
            g.requireShape("attention_mask", rows, cols);
            mask = g.ints("attention_mask");
        } else {
            mask = new int[ids.length];
            for (int i = 0; i < ids.length; i++) mask[i] = ids[i] == spec.padTokenId() ? 0 : 1;
        }
        int[] lengths = new int[rows];
        int[] flat = new int[ids.length];
        int total = 0;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                if (mask[r * cols + j] != 0) {
                    flat[total++] = ids[r * cols + j];
                    lengths[r]++;
                }
            }
            if (lengths[r] == 0) throw new GoldenException(g.name() + ": batch row " + r + " has no real tokens");
        }
        int vocab = run.model.config().vocabSize();
        SequenceState[] states = new SequenceState[rows];
        for (int r = 0; r < rows; r++) states[r] = run.model.newState();
        try {
            Tensor x = run.model.embed(Arrays.copyOf(flat, total));
            run.model.forward(x, lengths, states);
            float[] logits = run.logitsAll(x);
            backend.release(x);
            int start = 0;
            for (int r = 0; r < rows; r++) {
                String name = "logits." + r;
                int s0 = start;
                int len = lengths[r];
                ActivationCheck.guarded(t, () -> {
                    if (!g.has(name)) return;
                    g.requireShape(name, len, vocab);
                    t.relative("logits", name, Arrays.copyOfRange(logits, s0 * vocab, (s0 + len) * vocab), g.floats(name));
                });
                start += len;
            }
        } finally {
            for (SequenceState s : states) s.release();
        }
    }
}
