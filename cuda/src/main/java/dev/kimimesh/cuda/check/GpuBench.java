package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.Ceilings;
import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/** Benchmarks (not tests): ceilings, the KDA kernels alone, and the model's decode and prefill on random weights. */
final class GpuBench {
    private final CudaBackend be;
    private double copyGBs, bf16Tflops, fp32Tflops;

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
        double bytes = 6.0 * t * w * 4; // q k v g read, out written, plus the norm pass (lower bound)
        System.out.printf("kda chunked: %d heads x %d, %d tokens: %.2f ms (fla chunk_kda reference 5.9 ms; memory floor %.2f ms)%n",
                heads, d, t, Ceilings.median(ms), bytes / (copyGBs * 1e9) * 1e3);
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
            be.kda(q1, k1, v1, g1, b1, heads, d, s1, states, KdaForm.AUTO, o1);
            float[] m1 = new float[50];
            for (int i = 0; i < m1.length; i++) m1[i] = be.time(() -> be.kda(q1, k1, v1, g1, b1, heads, d, s1, states, KdaForm.AUTO, o1));
            double stateBytes = 2.0 * batch * w * d * 4;
            System.out.printf("kda decode step: batch %d, %d heads x %d: %.1f us (fla fused_recurrent_kda reference 101 us at batch 1; state read+write floor %.1f us)%n",
                    batch, heads, d, Ceilings.median(m1) * 1e3, stateBytes / (copyGBs * 1e9) * 1e6);
        }
    }

    /** Decode ms/step at several batch sizes and prefill tokens/s on a random-weight checkpoint of the config. */
    void model(Path config, Path dir, int prefillTokens, int[] batches, int context) throws Exception {
        long t0 = System.nanoTime();
        RandomCheckpoint.write(config, dir);
        System.out.printf("random checkpoint written in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        Checkpoint ckpt = Checkpoint.open(dir);
        KimiLinearConfig c = ckpt.config();
        t0 = System.nanoTime();
        KimiLinearModel model = KimiLinearModel.load(ckpt, be, ModelOptions.defaults());
        be.synchronize();
        System.out.printf("model loaded onto the GPU in %.1f s (%s)%n", (System.nanoTime() - t0) / 1e9, c.describe());
        SplittableRandom r = new SplittableRandom(5);
        // prefill
        int[] prompt = new int[prefillTokens];
        for (int i = 0; i < prompt.length; i++) prompt[i] = r.nextInt(c.vocabSize());
        for (int rep = 0; rep < 2; rep++) {
            SequenceState st = model.newState();
            be.synchronize();
            long p0 = System.nanoTime();
            Tensor x = model.embed(prompt);
            model.forward(x, new int[] {prompt.length}, new SequenceState[] {st});
            Tensor lg = model.logits(x, new int[] {prompt.length - 1});
            be.download(lg);
            double s = (System.nanoTime() - p0) / 1e9;
            be.release(x);
            be.release(lg);
            st.release();
            double flops = 2.0 * activeParams(c) * prefillTokens;
            System.out.printf("prefill %d tokens%s: %.3f s = %.0f tokens/s (%.1f TFLOP/s on active weights; floor at the fp32 GEMM peak %.3f s, at the bf16 peak %.3f s)%n",
                    prefillTokens, rep == 0 ? " (cold)" : "", s, prefillTokens / s, flops / s / 1e12, flops / (fp32Tflops * 1e12),
                    flops / (bf16Tflops * 1e12));
        }
        for (int batch : batches) {
            int ctx = batch == 1 ? context : Math.min(context, 256);
            SequenceState[] states = new SequenceState[batch];
            int[] ones = new int[batch];
            for (int i = 0; i < batch; i++) {
                states[i] = model.newState();
                ones[i] = 1;
                int[] p = new int[ctx];
                for (int j = 0; j < ctx; j++) p[j] = r.nextInt(c.vocabSize());
                Tensor x = model.embed(p);
                model.forward(x, new int[] {ctx}, new SequenceState[] {states[i]});
                be.release(x);
            }
            int[] rows = new int[batch];
            for (int i = 0; i < batch; i++) rows[i] = i;
            int[] tokens = new int[batch];
            float[] ms = new float[12];
            for (int step = 0; step < ms.length + 3; step++) {
                for (int i = 0; i < batch; i++) tokens[i] = r.nextInt(c.vocabSize());
                be.synchronize();
                long s0 = System.nanoTime();
                Tensor x = model.embed(tokens);
                model.forward(x, ones, states);
                Tensor lg = model.logits(x, rows);
                be.download(lg);
                float el = (System.nanoTime() - s0) / 1e6f;
                if (step >= 3) ms[step - 3] = el;
                be.release(x);
                be.release(lg);
            }
            double floorMs = decodeBytes(c, batch, ctx + 8) / (copyGBs * 1e9) * 1e3;
            System.out.printf("decode batch %d at context %d: %.2f ms/step (median of %d), %.0f tokens/s; floor %.3f ms (weights + states at the copy bandwidth), ratio %.1fx%n",
                    batch, ctx, Ceilings.median(ms), ms.length, batch / (Ceilings.median(ms) / 1e3), floorMs, Ceilings.median(ms) / floorMs);
            for (SequenceState s : states) s.release();
        }
        System.out.println(be.poolStats());
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
