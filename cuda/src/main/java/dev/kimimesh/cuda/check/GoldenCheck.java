package dev.kimimesh.cuda.check;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.Generator;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.TokenSink;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The tiny fixture's goldens on a backend: prefill logits of every prompt, the 16 greedy decode steps (tokens and
 * logits), the split and chunked prefill scenarios and the two-sequence batch. Tolerance: 1e-4 of max|golden|, or
 * 1e-2 in the bf16-compute mode ({@code -Dkimimesh.cuda.gemm=bf16}), where a greedy token may differ only at a step
 * whose golden top-2 margin is within that error budget. Then the generator with sampling on the device against the
 * same run sampling on the host.
 */
final class GoldenCheck {
    static final boolean BF16 = "bf16".equalsIgnoreCase(System.getProperty("kimimesh.cuda.gemm", "split"));
    static final double TOL = BF16 ? 1e-2 : 1e-4;
    private final Compare cmp;
    private final KimiLinearModel model;
    private final Backend b;
    private final Path goldens;

    GoldenCheck(Backend b, Path fixture, Compare cmp) {
        this.b = b;
        this.cmp = cmp;
        this.goldens = fixture.resolve("goldens");
        this.model = KimiLinearModel.load(Checkpoint.open(fixture), b, ModelOptions.defaults());
        System.out.println("goldens of " + fixture.getFileName() + " on " + b.name());
    }

    void run() throws Exception {
        for (int n : new int[] {1, 7, 64, 65, 200}) prompt(n);
        split("split_prefill", 40, true);
        split("chunked_prefill", 100, false);
        batch();
        generatorSampling();
    }

    /**
     * The engine's generator on this backend, the five prompts as one continuous batch with different sampling
     * parameters and seeds: sampling on the device (the default) gives the tokens and logprobs of the host sampler
     * ({@code kimimesh.sampler.host=true}) over the same logits.
     */
    private void generatorSampling() throws Exception {
        SamplingParams[] params = {
            SamplingParams.greedy(12).withLogprobs(true),
            SamplingParams.sampled(0.8, 11, 12).withIgnoreEos(true),
            SamplingParams.sampled(1.0, 12, 12).withTopK(20).withLogprobs(true).withIgnoreEos(true),
            SamplingParams.sampled(0.7, 13, 12).withTopP(0.9).withIgnoreEos(true),
            SamplingParams.sampled(1.5, 14, 12).withTopK(50).withTopP(0.8).withIgnoreEos(true),
        };
        List<List<String>> device = generate(params, false), host = generate(params, true);
        for (int i = 0; i < params.length; i++) {
            String what = "generator, device sampling = host, " + params[i].temperature() + "/" + params[i].topK() + "/" + params[i].topP();
            if (device.get(i).equals(host.get(i)) && !device.get(i).isEmpty()) cmp.pass(what, device.get(i).size() + " tokens identical");
            else cmp.fail(what, "device " + device.get(i) + " host " + host.get(i));
        }
    }

    /** Each sequence's streamed "token:logprob" items. */
    private List<List<String>> generate(SamplingParams[] params, boolean hostSampling) throws Exception {
        int[][] prompts = new int[params.length][];
        int[] lens = {1, 7, 64, 65, 200};
        for (int i = 0; i < params.length; i++) {
            try (SafetensorsFile f = SafetensorsFile.open(goldens.resolve("prefill_T" + lens[i] + ".safetensors"))) {
                prompts[i] = ids(f);
            }
        }
        if (hostSampling) System.setProperty(Generator.HOST_SAMPLING_PROPERTY, "true");
        List<List<String>> out = new ArrayList<>();
        try (Generator g = new Generator(model)) {
            for (int i = 0; i < params.length; i++) {
                List<String> items = new ArrayList<>();
                out.add(items);
                g.submit(prompts[i], params[i], new TokenSink() {
                    public void onToken(int id, float logprob) {
                        items.add(id + ":" + logprob);
                    }

                    public void onFinish(FinishReason reason) {}
                });
            }
            g.runUntilIdle();
        } finally {
            System.clearProperty(Generator.HOST_SAMPLING_PROPERTY);
        }
        return out;
    }

    private static int[] ids(SafetensorsFile f) {
        return f.tensor("input_ids").toIntArray();
    }

    /** max|a - g| / max|g|, printed with PASS/FAIL against TOL. */
    private void close(String what, float[] a, float[] g) {
        double md = 0, mg = 0;
        boolean nan = false;
        for (int i = 0; i < a.length; i++) {
            if (Float.isNaN(a[i])) nan = true;
            md = Math.max(md, Math.abs(a[i] - g[i]));
            mg = Math.max(mg, Math.abs(g[i]));
        }
        double rel = md / mg;
        boolean ok = !nan && a.length == g.length && rel <= TOL;
        if (ok) cmp.pass(what, String.format("max|diff|/max|golden| %.2e", rel));
        else cmp.fail(what, String.format("max|diff|/max|golden| %.2e%s", rel, nan ? " NaN" : ""));
    }

    private float[] forwardLogits(SequenceState st, int[] ids, boolean allRows) {
        Tensor x = model.embed(ids);
        model.forward(x, new int[] {ids.length}, new SequenceState[] {st});
        int[] rows = allRows ? java.util.stream.IntStream.range(0, ids.length).toArray() : new int[] {ids.length - 1};
        Tensor logits = model.logits(x, rows);
        float[] out = b.download(logits);
        b.release(logits);
        b.release(x);
        return out;
    }

    /** Greedy decode from the last prefill logits, compared step by step (row 0 = the prefill's last row). */
    private void decode(String what, SequenceState st, float[] lastRow, SafetensorsFile f) {
        int vocab = model.config().vocabSize();
        int[] tokens = f.tensor("decode.tokens").toIntArray();
        float[] golden = f.tensor("decode.logits").toFloatArray();
        float[] all = new float[golden.length];
        int[] ours = new int[tokens.length];
        float[] row = lastRow;
        for (int s = 0; s < tokens.length; s++) {
            System.arraycopy(row, 0, all, s * vocab, vocab);
            ours[s] = argmax(row);
            if (s + 1 < tokens.length) row = forwardLogits(st, new int[] {tokens[s]}, false); // teacher-forced on the golden token
        }
        int same = 0, nearTies = 0;
        for (int s = 0; s < tokens.length; s++) {
            if (ours[s] == tokens[s]) same++;
            else if (BF16 && nearTie(golden, s * vocab, vocab)) nearTies++;
        }
        String counts = same + "/" + tokens.length + " identical";
        if (same == tokens.length) cmp.pass(what + " decode tokens", counts);
        else if (same + nearTies == tokens.length) cmp.pass(what + " decode tokens", counts + ", the other " + nearTies + " at golden top-2 margins within the bf16 error budget");
        else cmp.fail(what + " decode tokens", "ours " + Arrays.toString(ours) + " golden " + Arrays.toString(tokens));
        close(what + " decode logits", all, golden);
    }

    /** Whether the golden row's top-2 margin is at most twice the tolerance (of its max|logit|): a flip is allowed. */
    private static boolean nearTie(float[] golden, int at, int vocab) {
        float a = Float.NEGATIVE_INFINITY, b = Float.NEGATIVE_INFINITY, mx = 0;
        for (int i = at; i < at + vocab; i++) {
            float v = golden[i];
            mx = Math.max(mx, Math.abs(v));
            if (v > a) {
                b = a;
                a = v;
            } else if (v > b) {
                b = v;
            }
        }
        return a - b <= 2 * TOL * mx;
    }

    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    private void prompt(int n) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(goldens.resolve("prefill_T" + n + ".safetensors"))) {
            int[] ids = ids(f);
            SequenceState st = model.newState();
            float[] logits = forwardLogits(st, ids, true);
            close("prefill T" + n + " logits", logits, f.tensor("logits").toFloatArray());
            int vocab = model.config().vocabSize();
            float[] last = Arrays.copyOfRange(logits, (n - 1) * vocab, n * vocab);
            // the state survives a serialise/restore round trip through the host
            SequenceState restored = SequenceState.deserialize(b, model.config(), st.serialize(b));
            st.release();
            decode("T" + n, restored, last, f);
            restored.release();
        }
    }

    private void split(String file, int first, boolean oneByOne) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(goldens.resolve(file + ".safetensors"))) {
            int[] ids = ids(f);
            SequenceState st = model.newState();
            float[] last = forwardLogits(st, Arrays.copyOfRange(ids, 0, first), false);
            if (oneByOne) {
                for (int i = first; i < ids.length; i++) last = forwardLogits(st, new int[] {ids[i]}, false);
            } else {
                last = forwardLogits(st, Arrays.copyOfRange(ids, first, ids.length), false);
            }
            decode(file, st, last, f);
            st.release();
        }
    }

    private void batch() throws Exception {
        Path p7 = goldens.resolve("prefill_T7.safetensors"), p65 = goldens.resolve("prefill_T65.safetensors");
        if (!Files.exists(p7) || !Files.exists(p65)) return;
        try (SafetensorsFile a = SafetensorsFile.open(p7); SafetensorsFile c = SafetensorsFile.open(p65);
             SafetensorsFile bf = SafetensorsFile.open(goldens.resolve("batch.safetensors"))) {
            int[] ia = ids(a), ic = ids(c);
            int[] all = new int[ia.length + ic.length];
            System.arraycopy(ia, 0, all, 0, ia.length);
            System.arraycopy(ic, 0, all, ia.length, ic.length);
            SequenceState sa = model.newState(), sc = model.newState();
            Tensor x = model.embed(all);
            model.forward(x, new int[] {ia.length, ic.length}, new SequenceState[] {sa, sc});
            Tensor logits = model.logits(x, java.util.stream.IntStream.range(0, all.length).toArray());
            float[] l = b.download(logits);
            int vocab = model.config().vocabSize();
            close("batch [7, 65] sequence 0", Arrays.copyOfRange(l, 0, ia.length * vocab), bf.tensor("logits.0").toFloatArray());
            close("batch [7, 65] sequence 1", Arrays.copyOfRange(l, ia.length * vocab, all.length * vocab), bf.tensor("logits.1").toFloatArray());
            b.release(logits);
            b.release(x);
            sa.release();
            sc.release();
        }
    }
}
