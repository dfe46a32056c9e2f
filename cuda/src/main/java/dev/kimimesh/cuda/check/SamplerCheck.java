package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.Ceilings;
import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.generate.Sampler;
import dev.kimimesh.engine.generate.SamplingParams;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * The device sampler against the engine's CPU Sampler on fresh random logits: for each (temperature, top-k, top-p)
 * and vocabulary size, many rows of different shapes (narrow and flat softmax, ties, masked -inf ids), the same
 * uniform number on both sides; tokens must be identical and logprobs equal to 1e-6.
 */
final class SamplerCheck {
    private final CudaBackend gpu;
    private final SplittableRandom r;
    private final Compare cmp;

    SamplerCheck(CudaBackend gpu, long seed, Compare cmp) {
        this.gpu = gpu;
        this.r = new SplittableRandom(seed);
        this.cmp = cmp;
    }

    void run() {
        double[][] configs = { // temperature, top-k, top-p
            {0, 0, 1}, {1, 0, 1}, {0.7, 0, 0.9}, {1, 0, 0.95}, {1.3, 0, 0.5}, {0.8, 50, 1}, {1, 40, 0.9},
            {1, 4096, 0.95}, {2, 1, 1}, {1, 1000, 0.3}, {1.5, 0, 0.99},
        };
        for (int vocab : new int[] {163840, 50001}) {
            for (double[] c : configs) check(vocab, c[0], (int) c[1], c[2], 48);
        }
        // the split sampler's edges (kimimesh.cuda.sampler=split): k at and just above its 64 candidates a slice, a short
        // last slice (5130 = 6 slices of 855), one slice (300); the default sampler takes them as any other row
        check(5130, 1, 64, 0.9, 16);
        check(5130, 1, 65, 1, 8);
        check(300, 0.8, 50, 1, 8);
        check(5130, 0, 0, 1, 8);
        errors(4099);
        errors(163840);
        timing(163840, 1);
        timing(163840, 64);
    }

    /** A row of logits; the kind varies the shape of the distribution. */
    private float[] row(int vocab, int kind) {
        float[] x = new float[vocab];
        double sigma = switch (kind % 5) { case 0 -> 0.5; case 1 -> 2; case 2 -> 6; case 3 -> 2; default -> 3; };
        for (int i = 0; i < vocab; i++) {
            double g = gaussian() * sigma;
            x[i] = switch (kind % 5) {
                case 3 -> (float) (Math.round(g * 2) / 2.0);                         // many exact ties
                case 4 -> r.nextInt(3) == 0 ? Float.NEGATIVE_INFINITY : (float) g;  // masked ids
                default -> (float) g;
            };
        }
        return x;
    }

    private double gaussian() {
        double u = r.nextDouble(1e-12, 1), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    private void check(int vocab, double temperature, int topK, double topP, int rows) {
        SamplingParams p = new SamplingParams(temperature, topK, topP, 0, 1, null, false, true);
        float[] all = new float[rows * vocab];
        RowSampling[] rs = new RowSampling[rows];
        int[] want = new int[rows];
        float[] wantLp = new float[rows];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(row(vocab, i), 0, all, i * vocab, vocab);
            Sampler s = new Sampler(p.withSeed(r.nextLong()));
            double u = s.nextUniform();
            want[i] = s.sample(all, i * vocab, vocab, u);
            wantLp[i] = s.lastLogprob();
            rs[i] = s.rowSampling(u);
        }
        Tensor t = gpu.upload(all, rows, vocab);
        Optional<SampledTokens> got = gpu.sample(t, rs);
        gpu.release(t);
        String what = String.format("sample T=%s k=%d p=%s V=%d x%d", temperature, topK, topP, vocab, rows);
        if (got.isEmpty()) {
            cmp.fail(what, "the device declined");
            return;
        }
        int mismatches = 0;
        double maxLp = 0;
        for (int i = 0; i < rows; i++) {
            if (got.get().tokens()[i] != want[i]) {
                mismatches++;
                System.out.printf("  row %d: device %d, host %d%n", i, got.get().tokens()[i], want[i]);
            }
            maxLp = Math.max(maxLp, Math.abs(got.get().logprobs()[i] - wantLp[i]) / Math.max(1, Math.abs(wantLp[i])));
        }
        if (mismatches == 0 && maxLp <= 1e-6) cmp.pass(what, String.format("tokens identical, logprob max rel diff %.1e", maxLp));
        else cmp.fail(what, mismatches + " tokens differ, logprob max rel diff " + maxLp);
    }

    /** Rows the host sampler rejects get the matching error code. */
    private void errors(int vocab) {
        float[] all = new float[3 * vocab];
        all[5] = Float.NaN;
        java.util.Arrays.fill(all, vocab, 2 * vocab, Float.NEGATIVE_INFINITY);
        all[2 * vocab + 7] = Float.POSITIVE_INFINITY;
        RowSampling[] rs = new RowSampling[3];
        for (int i = 0; i < 3; i++) rs[i] = new RowSampling(false, 1f, 0, 1, 0.5, true);
        Tensor t = gpu.upload(all, 3, vocab);
        int[] got = gpu.sample(t, rs).orElseThrow().tokens();
        gpu.release(t);
        boolean ok = got[0] == SampledTokens.NAN_LOGITS && got[1] == SampledTokens.ALL_NEGATIVE_INFINITY
                && got[2] == SampledTokens.POSITIVE_INFINITY;
        if (ok) cmp.pass("sample error codes (NaN, all -inf, +inf)", "");
        else cmp.fail("sample error codes (NaN, all -inf, +inf)", java.util.Arrays.toString(got));
    }

    /** Device sampling vs logits download + host sampling, one call of {@code rows} rows (not a check: printed). */
    private void timing(int vocab, int rows) {
        float[] all = new float[rows * vocab];
        for (int i = 0; i < rows; i++) System.arraycopy(row(vocab, 1), 0, all, i * vocab, vocab);
        Tensor t = gpu.upload(all, rows, vocab);
        SamplingParams[] ps = {SamplingParams.greedy(1), new SamplingParams(0.8, 50, 0.9, 1, 1, null, false, false),
                new SamplingParams(1, 0, 0.95, 1, 1, null, false, false)};
        for (SamplingParams p : ps) {
            Sampler s = new Sampler(p);
            RowSampling[] rs = new RowSampling[rows];
            for (int i = 0; i < rows; i++) rs[i] = s.rowSampling(s.nextUniform());
            float[] dev = new float[15], host = new float[15];
            for (int rep = 0; rep < dev.length; rep++) {
                gpu.synchronize();
                long t0 = System.nanoTime();
                gpu.sample(t, rs);
                dev[rep] = (System.nanoTime() - t0) / 1e3f;
                t0 = System.nanoTime();
                float[] l = gpu.download(t);
                for (int i = 0; i < rows; i++) s.sample(l, i * vocab, vocab, rs[i].uniform());
                host[rep] = (System.nanoTime() - t0) / 1e3f;
            }
            System.out.printf("sampling %d rows x %d (T=%s k=%d p=%s): device %.0f us, download + host %.0f us (medians of 15; not checks)%n",
                    rows, vocab, p.temperature(), p.topK(), p.topP(), Ceilings.median(dev), Ceilings.median(host));
        }
        gpu.release(t);
    }
}
