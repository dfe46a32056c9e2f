package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.Ceilings;
import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.generate.DecodeGraphs;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.generate.Sampler;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/** Benchmarks (not tests): ceilings, the KDA kernels alone, and the model's decode and prefill on random weights. */
final class GpuBench {
    private final CudaBackend be;
    private double copyGBs, bf16Tflops, fp32Tflops;

    /**
     * Decode steps run before the timed ones, per batch size. A server decodes for hours, so the figures are those of
     * JIT-compiled host code: a step queues about a hundred launches through a dozen engine methods, and C2 compiles
     * them only after thousands of calls (10 warm-up steps left the host path in the interpreter and C1).
     */
    int decodeWarmup = 300;
    /** Where the decode graph check (GraphCheck) reports, once per context and batch; null: not run. */
    Compare cmp;
    /** Decode steps GraphCheck compares. */
    int graphCheckSteps = 8;
    /**
     * {@code --timeline}: after the timed prefills of each length, one more under {@link CudaBackend#timeline} (events
     * around every op): per phase GPU / idle / host ms and where the GPU waited for the host.
     */
    boolean prefillTimeline;
    /**
     * {@code --prefill-warmup N}: untimed prefills of each length before the timed ones (default 0: the cold run, then
     * the two timed ones), so that the host code that queues a prefill is JIT-compiled as in a long-running server.
     */
    int prefillWarmup;

    GpuBench(CudaBackend be) {
        this.be = be;
    }

    void ceilings() {
        copyGBs = Ceilings.copyGBs(be, 1L << 30);
        bf16Tflops = Ceilings.gemmTflops(be, 8192, true);
        fp32Tflops = Ceilings.gemmTflops(be, 8192, false);
        System.out.printf("ceiling: device copy %.0f GB/s (read+write); cuBLAS 8192^3 GEMM bf16 %.0f TFLOP/s, fp32 (no TF32) %.1f TFLOP/s%n",
                copyGBs, bf16Tflops, fp32Tflops);
    }

    private Tensor random(int rows, int cols, SplittableRandom r, double lo, double hi) {
        float[] f = new float[rows * cols];
        for (int i = 0; i < f.length; i++) f[i] = (float) r.nextDouble(lo, hi);
        return be.upload(f, rows, cols);
    }

    private static int moeLayers(KimiLinearConfig c) {
        int n = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) if (c.isMoeLayer(l)) n++;
        return n;
    }

    /** The KDA chunk kernels on one sequence of T tokens, and the recurrent step at batch 1 and 64. */
    void kda(int heads, int d, int t) {
        SplittableRandom r = new SplittableRandom(3);
        int w = heads * d;
        Tensor q = random(t, w, r, -1, 1), k = random(t, w, r, -1, 1), v = random(t, w, r, -1, 1);
        Tensor g = random(t, w, r, -0.2, -0.001), beta = random(t, heads, r, 0.05, 0.95), out = be.allocate(t, w);
        Tensor[] st = {be.allocate(w, d)};
        Segments seg = Segments.single(t, 0);
        be.kda(q, k, v, g, beta, heads, d, seg, st, KdaForm.CHUNKED, out);
        float[] ms = new float[5];
        for (int i = 0; i < ms.length; i++) ms[i] = be.time(() -> be.kda(q, k, v, g, beta, heads, d, seg, st, KdaForm.CHUNKED, out));
        double bytes = 5.0 * t * w * 4; // q k v g read once, out written once (the norms are taken in the prep)
        double chunkFlops = PrefillFlops.kdaChunk(t, heads, d, d);
        System.out.printf("kda chunked: %d heads x %d, %d tokens: %.2f ms (fla chunk_kda reference 5.9 ms; memory floor %.2f ms; chunk products %.0f GFLOP, floor %.2f ms at the bf16 peak)%n",
                heads, d, t, Ceilings.median(ms), bytes / (copyGBs * 1e9) * 1e3, chunkFlops / 1e9, chunkFlops / (bf16Tflops * 1e12) * 1e3);
        // both chunk scans whatever kimimesh.cuda.kdaChunk says, interleaved, so that they are timed in one run
        float[][] both = new float[2][5];
        for (int i = 0; i < 5; i++) {
            for (int p = 0; p < 2; p++) {
                boolean tc = p == 1;
                both[p][i] = be.time(() -> be.kda(q, k, v, g, beta, heads, d, seg, st, KdaForm.CHUNKED, out, tc));
            }
        }
        System.out.printf("kda chunked, fp32 scan: %.2f ms; tensor-core scan (kdaChunk=tc): %.2f ms%n", Ceilings.median(both[0]),
                Ceilings.median(both[1]));
        // the preps with the tensor-core scan, interleaved: v5 (fp32), v6 (v5's bits, conflict-free lane maps), and the
        // bf16-compute mode's tc2 (TF32 products), tc3 (3xTF32 products)
        String[] preps = {"v5", "v6", "tc2", "tc3"};
        float[][] byPrep = new float[preps.length][5];
        for (int i = 0; i < 5; i++) {
            for (int p = 0; p < preps.length; p++) {
                String prep = preps[p];
                byPrep[p][i] = be.time(() -> be.kda(q, k, v, g, beta, heads, d, seg, st, KdaForm.CHUNKED, out, true, prep));
            }
        }
        System.out.printf("kda chunked, tensor-core scan, prep v5: %.2f ms; prep v6 (kdaPrep=v6): %.2f ms; prep tc2 (kdaPrep=tc2): %.2f ms; prep tc3 (kdaPrep=tc3): %.2f ms%n",
                Ceilings.median(byPrep[0]), Ceilings.median(byPrep[1]), Ceilings.median(byPrep[2]), Ceilings.median(byPrep[3]));
        for (Tensor x : new Tensor[] {q, k, v, g, beta, out}) be.release(x);
        for (int batch : new int[] {1, 64}) {
            Tensor q1 = random(batch, w, r, -1, 1), k1 = random(batch, w, r, -1, 1), v1 = random(batch, w, r, -1, 1);
            Tensor g1 = random(batch, w, r, -0.2, -0.001), b1 = random(batch, heads, r, 0.05, 0.95), o1 = be.allocate(batch, w);
            Tensor[] states = new Tensor[batch];
            int[] lens = new int[batch], pos = new int[batch];
            for (int i = 0; i < batch; i++) {
                states[i] = be.allocate(w, d);
                lens[i] = 1;
                pos[i] = 100;
            }
            Segments s1 = new Segments(lens, pos);
            for (int i = 0; i < 2000; i++) be.kda(q1, k1, v1, g1, b1, heads, d, s1, states, KdaForm.AUTO, o1); // JIT warm-up
            be.synchronize();
            float[] m1 = new float[7];
            int reps = 200; // steps queued back to back: the GPU time per step once the host keeps ahead
            for (int i = 0; i < m1.length; i++) {
                m1[i] = be.time(() -> {
                    for (int j = 0; j < reps; j++) be.kda(q1, k1, v1, g1, b1, heads, d, s1, states, KdaForm.AUTO, o1);
                }) / reps;
            }
            double stateBytes = 2.0 * batch * w * d * 4;
            System.out.printf("kda decode step: batch %d, %d heads x %d: %.1f us per step, 200 steps queued back to back (fla fused_recurrent_kda reference 101 us at batch 1; state read+write floor %.1f us)%n",
                    batch, heads, d, Ceilings.median(m1) * 1e3, stateBytes / (copyGBs * 1e9) * 1e6);
        }
    }

    /**
     * Prefill tokens/s for each prompt length, then decode ms/step for each context and batch on a random-weight
     * checkpoint of the config. Each context is prefilled once; the batch's sequences are copies of that state
     * (serialize/deserialize), so the step reads batch x context cache rows as a real batch would. {@code expertSets} > 0:
     * the routed experts of layers that many apart share device memory ({@link CudaBackend#shareRoutedExperts}), for a
     * model whose experts do not fit the card.
     */
    void model(Path config, Path dir, int[] prefills, int[] batches, int[] contexts, boolean expertsOnDevice, int expertSets)
            throws Exception {
        long t0 = System.nanoTime();
        if (!java.nio.file.Files.exists(dir.resolve("model.safetensors"))) {
            RandomCheckpoint.write(config, dir, expertsOnDevice);
            System.out.printf("random checkpoint written in %.1f s%s%n", (System.nanoTime() - t0) / 1e9,
                    expertsOnDevice ? " (routed experts left as holes, filled on the device)" : "");
        }
        Checkpoint ckpt = Checkpoint.open(dir);
        KimiLinearConfig c = ckpt.config();
        t0 = System.nanoTime();
        be.shareRoutedExperts(expertSets);
        KimiLinearModel model = KimiLinearModel.load(ckpt, be, ModelOptions.defaults());
        be.shareRoutedExperts(0);
        be.synchronize();
        System.out.printf("model loaded onto the GPU in %.1f s (%s)%n", (System.nanoTime() - t0) / 1e9, c.describe());
        if (expertSets > 0) {
            System.out.printf("routed experts: layers %d apart share device memory (--expert-sets %d), so %d of the %d MoE layers' expert sets are on the card; every layer still reads its experts from device memory%n",
                    expertSets, expertSets, Math.min(expertSets, moeLayers(c)), moeLayers(c));
        }
        if (java.nio.file.Files.exists(dir.resolve(RandomCheckpoint.EXPERTS_ON_DEVICE))) {
            long bytes = be.randomizeWeights(RandomCheckpoint::routedExpert, 5);
            be.synchronize();
            System.out.printf("routed experts filled with random bf16 on the device: %.1f GB%n", bytes / 1e9);
        }
        SplittableRandom r = new SplittableRandom(5);
        for (int prefillTokens : prefills) {
            int[] prompt = new int[prefillTokens];
            for (int i = 0; i < prompt.length; i++) prompt[i] = r.nextInt(c.vocabSize());
            // a cold run (first use of each kernel and buffer size), then two warm ones: the spread of the warm pair
            // says how far one figure can be trusted
            for (int w = 0; w < prefillWarmup; w++) prefillOnce(model, prompt);
            if (prefillWarmup > 0) System.out.printf("prefill %d tokens: %d untimed warm-up prefills%n", prefillTokens, prefillWarmup);
            // the products with the weights, and the work the prompt needs beyond them: MLA's causal attention and KDA's
            // chunk products
            double flops = PrefillFlops.weights(c, prefillTokens), attn = PrefillFlops.attention(c, prefillTokens), all = flops + attn;
            for (int rep = 0; rep < 3; rep++) {
                double s = prefillOnce(model, prompt);
                System.out.printf("prefill %d tokens%s: %.3f s = %.0f tokens/s (%.1f TFLOP/s on active weights; floor at the fp32 GEMM peak %.3f s, at the bf16 peak %.3f s)%n",
                        prefillTokens, rep == 0 ? " (cold)" : "", s, prefillTokens / s, flops / s / 1e12, flops / (fp32Tflops * 1e12),
                        flops / (bf16Tflops * 1e12));
                System.out.printf("prefill %d tokens%s, model FLOPs %.2f T (weights %.2f T + attention and KDA chunks %.2f T): %.1f TFLOP/s = %.1f%% of the bf16 peak (floor %.3f s; weights alone %.1f%%)%n",
                        prefillTokens, rep == 0 ? " (cold)" : "", all / 1e12, flops / 1e12, attn / 1e12, all / s / 1e12,
                        100 * all / s / (bf16Tflops * 1e12), all / (bf16Tflops * 1e12), 100 * flops / s / (bf16Tflops * 1e12));
            }
            if (prefillTimeline) {
                double wall = prefillOnce(model, prompt, true);
                System.out.printf("prefill %d tokens under the timeline (above): %.3f s (events around every op: a little slower)%n",
                        prefillTokens, wall);
            }
        }
        for (int ctx : contexts) {
            if (batches.length == 0) break;
            SequenceState seed = model.newState();
            int[] p = new int[ctx];
            for (int j = 0; j < ctx; j++) p[j] = r.nextInt(c.vocabSize());
            Tensor px = model.embed(p);
            model.forward(px, new int[] {ctx}, new SequenceState[] {seed});
            be.release(px);
            byte[] snapshot = seed.serialize(be);
            seed.release();
            for (int batch : batches) {
                SequenceState[] states = new SequenceState[batch];
                int[] ones = new int[batch];
                for (int i = 0; i < batch; i++) {
                    states[i] = SequenceState.deserialize(be, c, snapshot);
                    ones[i] = 1;
                }
                int[] rows = new int[batch];
                for (int i = 0; i < batch; i++) rows[i] = i;
                int[] tokens = new int[batch];
                int warm = decodeWarmup;
                // a typical request's sampling (T 0.8, top-k 50, top-p 0.9) per row: on the device (ids come back)
                // and, for comparison, logits download + the host sampler with the same uniform numbers
                Sampler sampler = new Sampler(new SamplingParams(0.8, 50, 0.9, 7, 1, null, false, false));
                if (cmp != null) GraphCheck.run(model, snapshot, batch, graphCheckSteps, cmp);
                float[] ms = new float[12], msHost = new float[12], msGraph = new float[12];
                DecodeGraphs graphs = new DecodeGraphs(model, true);
                // eager (device sampling), then the same steps replayed from a recording (the production path), then
                // eager with logits download + host sampling; each after its own warm-up on the same states
                for (int mode = 0; mode < 3; mode++) {
                    boolean onDevice = mode < 2, graphed = mode == 1;
                    float[] times = mode == 0 ? ms : mode == 1 ? msGraph : msHost;
                    int w = mode < 2 ? warm : 10;
                    for (int step = 0; step < times.length + w; step++) {
                        for (int i = 0; i < batch; i++) tokens[i] = r.nextInt(c.vocabSize());
                        be.synchronize();
                        long s0 = System.nanoTime();
                        if (graphed) {
                            RowSampling[] rs = new RowSampling[batch];
                            for (int i = 0; i < batch; i++) rs[i] = sampler.rowSampling(sampler.nextUniform());
                            if (graphs.step(tokens, states, rs).isEmpty()) GraphCheck.eagerStep(model, tokens, states, rs);
                            float el = (System.nanoTime() - s0) / 1e6f;
                            if (step >= w) times[step - w] = el;
                            continue;
                        }
                        Tensor x = model.embed(tokens);
                        model.forward(x, ones, states);
                        Tensor lg = model.logits(x, rows);
                        RowSampling[] rs = new RowSampling[batch];
                        for (int i = 0; i < batch; i++) rs[i] = sampler.rowSampling(sampler.nextUniform());
                        if (onDevice) {
                            be.sample(lg, rs).orElseThrow();
                        } else {
                            float[] l = be.download(lg);
                            for (int i = 0; i < batch; i++) sampler.sample(l, i * c.vocabSize(), c.vocabSize(), rs[i].uniform());
                        }
                        float el = (System.nanoTime() - s0) / 1e6f;
                        if (step >= w) times[step - w] = el;
                        be.release(x);
                        be.release(lg);
                    }
                }
                // host issue time (queueing a step, no waiting) and the device time of the same step replayed as a graph
                float[] issue = new float[9];
                for (int i = 0; i < issue.length; i++) {
                    Tensor x = model.embed(tokens);
                    be.synchronize();
                    long s0 = System.nanoTime();
                    model.forward(x, ones, states);
                    Tensor lg = model.logits(x, rows);
                    issue[i] = (System.nanoTime() - s0) / 1e6f;
                    be.synchronize();
                    be.release(x);
                    be.release(lg);
                }
                String replay;
                try {
                    Tensor x = model.embed(tokens);
                    Tensor[] lg = new Tensor[1];
                    CudaBackend.CapturedWork graph = be.capture(() -> {
                        model.forward(x, ones, states);
                        lg[0] = model.logits(x, rows);
                    });
                    float[] gm = new float[9];
                    graph.replay();
                    for (int i = 0; i < gm.length; i++) gm[i] = be.time(graph::replay);
                    graph.close();
                    be.release(x);
                    be.release(lg[0]);
                    replay = String.format("%.3f ms", Ceilings.median(gm));
                } catch (RuntimeException e) {
                    replay = "not capturable (" + e.getMessage() + ")";
                }
                System.out.printf("  decode batch %d at context %d: host issue %.3f ms/step; device time of the step replayed as a CUDA graph %s%n",
                        batch, ctx, Ceilings.median(issue), replay);
                double floorMs = decodeBytes(c, batch, ctx + ms.length + warm + 20) / (copyGBs * 1e9) * 1e3;
                System.out.printf("decode batch %d at context %d: %.2f ms/step with device sampling (median of %d after %d warm-up steps), %.0f tokens/s; floor %.3f ms (weights + states at the copy bandwidth), ratio %.1fx; with logits download + host sampling %.2f ms/step%n",
                        batch, ctx, Ceilings.median(ms), ms.length, warm, batch / (Ceilings.median(ms) / 1e3), floorMs, Ceilings.median(ms) / floorMs,
                        Ceilings.median(msHost));
                System.out.printf("decode batch %d at context %d, CUDA graph (production path): %.3f ms/step (median of %d after %d warm-up steps; %d replays of %d recordings), %.0f tokens/s; floor %.3f ms, ratio %.2fx; eager %.3f ms/step%n",
                        batch, ctx, Ceilings.median(msGraph), msGraph.length, warm, graphs.replays(), graphs.captures(),
                        batch / (Ceilings.median(msGraph) / 1e3), floorMs, Ceilings.median(msGraph) / floorMs, Ceilings.median(ms));
                graphs.close();
                for (SequenceState s : states) s.release();
            }
        }
        System.out.println(be.poolStats());
    }

    /**
     * One prefill of {@code prompt} into a new state (embed, forward, the last row's logits downloaded); returns its host
     * wall time in seconds, from the first call to the logits on the host.
     */
    private double prefillOnce(KimiLinearModel model, int[] prompt) {
        return prefillOnce(model, prompt, false);
    }

    /** {@link #prefillOnce}, with the prefill itself (not the state's allocation) under the timeline when {@code timeline}. */
    private double prefillOnce(KimiLinearModel model, int[] prompt, boolean timeline) {
        SequenceState st = model.newState();
        be.synchronize();
        Tensor[] x = new Tensor[1], lg = new Tensor[1];
        long[] p0 = new long[2];
        Runnable work = () -> {
            p0[0] = System.nanoTime();
            x[0] = model.embed(prompt);
            model.forward(x[0], new int[] {prompt.length}, new SequenceState[] {st});
            lg[0] = model.logits(x[0], new int[] {prompt.length - 1});
            be.download(lg[0]);
            p0[1] = System.nanoTime();
        };
        if (timeline) System.out.print(be.timeline(work));
        else work.run();
        be.release(x[0]);
        be.release(lg[0]);
        st.release();
        return (p0[1] - p0[0]) / 1e9;
    }

    /**
     * One decode step at {@code batch} x {@code ctx} inside a profiler range (run under {@code ncu --profile-from-start
     * off}): the kernels of exactly one step, after warm-up steps.
     */
    /**
     * One prefill of {@code tokens} prompt tokens inside a profiler range (run under {@code ncu --profile-from-start
     * off}), after an unprofiled one (JIT, pool, cuBLAS heuristics): where a long prefill's device time goes.
     */
    void profilePrefill(Path config, Path dir, int tokens) throws Exception {
        if (!java.nio.file.Files.exists(dir.resolve("model.safetensors"))) RandomCheckpoint.write(config, dir);
        Checkpoint ckpt = Checkpoint.open(dir);
        KimiLinearConfig c = ckpt.config();
        KimiLinearModel model = KimiLinearModel.load(ckpt, be, ModelOptions.defaults());
        SplittableRandom r = new SplittableRandom(5);
        int[] prompt = new int[tokens];
        for (int i = 0; i < tokens; i++) prompt[i] = r.nextInt(c.vocabSize());
        for (int rep = 0; rep < 2; rep++) {
            Runnable work = () -> {
                SequenceState st = model.newState();
                Tensor x = model.embed(prompt);
                model.forward(x, new int[] {tokens}, new SequenceState[] {st});
                Tensor lg = model.logits(x, new int[] {tokens - 1});
                be.download(lg);
                be.release(x);
                be.release(lg);
                st.release();
            };
            if (rep == 1) be.profiled(work);
            else work.run();
        }
        System.out.printf("profiled one prefill of %d tokens%n", tokens);
    }

    void profileStep(Path config, Path dir, int ctx, int batch) throws Exception {
        if (!java.nio.file.Files.exists(dir.resolve("model.safetensors"))) RandomCheckpoint.write(config, dir);
        Checkpoint ckpt = Checkpoint.open(dir);
        KimiLinearConfig c = ckpt.config();
        KimiLinearModel model = KimiLinearModel.load(ckpt, be, ModelOptions.defaults());
        SplittableRandom r = new SplittableRandom(7);
        SequenceState seed = model.newState();
        int[] p = new int[ctx];
        for (int j = 0; j < ctx; j++) p[j] = r.nextInt(c.vocabSize());
        Tensor px = model.embed(p);
        model.forward(px, new int[] {ctx}, new SequenceState[] {seed});
        be.release(px);
        byte[] snapshot = seed.serialize(be);
        seed.release();
        SequenceState[] states = new SequenceState[batch];
        int[] ones = new int[batch], rows = new int[batch], tokens = new int[batch];
        for (int i = 0; i < batch; i++) {
            states[i] = SequenceState.deserialize(be, c, snapshot);
            ones[i] = 1;
            rows[i] = i;
        }
        for (int step = 0; step < 6; step++) {
            for (int i = 0; i < batch; i++) tokens[i] = r.nextInt(c.vocabSize());
            Runnable work = () -> {
                Tensor x = model.embed(tokens);
                model.forward(x, ones, states);
                Tensor lg = model.logits(x, rows);
                be.download(lg);
                be.release(x);
                be.release(lg);
            };
            if (step == 5) be.profiled(work);
            else work.run();
        }
        System.out.printf("profiled one decode step: batch %d at context %d%n", batch, ctx);
    }

    /** Parameters one token multiplies with (attention, dense MLP, shared + k routed experts; lm_head excluded). */
    static double activeParams(KimiLinearConfig c) {
        double h = c.hiddenSize(), p = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) p += attentionParams(c, l) + ffnParams(c, l, 1);
        return p;
    }

    static double attentionParams(KimiLinearConfig c, int l) {
        double h = c.hiddenSize();
        if (c.layerKind(l) == LayerKind.KDA) {
            double pw = c.kdaProjectionSize(), d = c.kdaHeadDim();
            return 3 * pw * h + 2 * (d * h + pw * d) + c.kdaNumHeads() * h + h * pw;
        }
        double heads = c.numAttentionHeads(), qw = c.qkNopeHeadDim() + c.qkRopeHeadDim();
        return heads * qw * h + (c.kvLoraRank() + c.qkRopeHeadDim()) * h + heads * (c.qkNopeHeadDim() + c.vHeadDim()) * c.kvLoraRank()
                + h * heads * c.vHeadDim();
    }

    /** FFN parameters read for a batch: the dense MLP, or router + shared + the expected number of distinct experts. */
    static double ffnParams(KimiLinearConfig c, int l, int batch) {
        double h = c.hiddenSize();
        if (!c.isMoeLayer(l)) return 3 * h * c.intermediateSize();
        double e = c.numExperts(), k = c.numExpertsPerToken();
        double distinct = e * (1 - Math.pow(1 - k / e, batch));
        return e * h + (c.numSharedExperts() + distinct) * 3 * h * c.moeIntermediateSize();
    }

    /** Bytes a decode step must move: bf16 weights touched, lm_head, KDA states read + written, MLA caches read. */
    static double decodeBytes(KimiLinearConfig c, int batch, int ctx) {
        double w = 0, state = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            w += attentionParams(c, l) + ffnParams(c, l, batch);
            if (c.layerKind(l) == LayerKind.KDA) state += 2.0 * c.kdaNumHeads() * c.kdaHeadDim() * c.kdaHeadDim() * 4 * batch;
            else state += (double) ctx * (c.kvLoraRank() + c.qkRopeHeadDim()) * 4 * batch;
        }
        w += (double) c.vocabSize() * c.hiddenSize();
        return 2 * w + state;
    }
}
