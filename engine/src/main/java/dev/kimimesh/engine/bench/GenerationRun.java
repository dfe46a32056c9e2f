package dev.kimimesh.engine.bench;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * One timed generation of a batch: prefill of {@code batch} random prompts as one micro-batch, then greedy decode
 * steps of one token per sequence, recording which experts each decode step touched.
 */
public final class GenerationRun implements ModelOptions.Observer {
    /** Timings and the mean number of distinct experts per layer per decode step. */
    public record Result(int batch, int prompt, int steps, double prefillSeconds, double decodeSeconds,
                         double prefillCpuSeconds, double decodeCpuSeconds, double[] expertsTouched) {
        public double prefillTokensPerSecond() {
            return batch * (double) prompt / prefillSeconds;
        }

        public double decodeTokensPerSecond() {
            return batch * (double) steps / decodeSeconds;
        }
    }

    private final BitSet[] touched;
    private final double[] touchedSum;
    private boolean recording;
    private Runnable afterPrefill = () -> {};

    /** Called between the timed prefill and the timed decode (for per-phase profiles). */
    public GenerationRun afterPrefill(Runnable r) {
        this.afterPrefill = r;
        return this;
    }

    public GenerationRun(int layers) {
        touched = new BitSet[layers];
        touchedSum = new double[layers];
        for (int l = 0; l < layers; l++) touched[l] = new BitSet();
    }

    @Override
    public void routed(int layer, Routing routing) {
        if (!recording) return;
        for (int r = 0; r < routing.rows(); r++) for (int j = 0; j < routing.topK(); j++) touched[layer].set(routing.expert(r, j));
    }

    /** Runs prefill then {@code steps} decode steps; the model must have been loaded with this object as its observer. */
    public Result run(KimiLinearModel m, int batch, int prompt, int steps, long seed) {
        Backend be = m.backend();
        int vocab = m.config().vocabSize();
        SplittableRandom rnd = new SplittableRandom(seed);
        SequenceState[] states = new SequenceState[batch];
        int[] lengths = new int[batch], last = new int[batch];
        int[] ids = new int[batch * prompt];
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(vocab);
        for (int s = 0; s < batch; s++) {
            states[s] = m.newState();
            lengths[s] = prompt;
            last[s] = (s + 1) * prompt - 1;
        }
        long c0 = cpu(), t0 = System.nanoTime();
        Tensor x = m.embed(ids);
        m.forward(x, lengths, states);
        int[] next = argmax(be, m.logits(x, last), vocab);
        be.release(x);
        double prefill = (System.nanoTime() - t0) / 1e9, prefillCpu = (cpu() - c0) / 1e9;
        afterPrefill.run();

        int[] ones = new int[batch], rows = new int[batch];
        for (int s = 0; s < batch; s++) {
            ones[s] = 1;
            rows[s] = s;
        }
        java.util.Arrays.fill(touchedSum, 0);
        long c1 = cpu(), t1 = System.nanoTime();
        for (int step = 0; step < steps; step++) {
            for (BitSet b : touched) b.clear();
            recording = true;
            Tensor h = m.embed(next);
            m.forward(h, ones, states);
            next = argmax(be, m.logits(h, rows), vocab);
            be.release(h);
            recording = false;
            for (int l = 0; l < touched.length; l++) touchedSum[l] += touched[l].cardinality();
        }
        double decode = (System.nanoTime() - t1) / 1e9, decodeCpu = (cpu() - c1) / 1e9;
        double[] mean = new double[touched.length];
        for (int l = 0; l < mean.length; l++) mean[l] = steps == 0 ? 0 : touchedSum[l] / steps;
        for (SequenceState s : states) s.release();
        return new Result(batch, prompt, steps, prefill, decode, prefillCpu, decodeCpu, mean);
    }

    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    /** CPU time of the whole process: on a shared machine, what the run cost whatever the neighbours did. */
    private static long cpu() {
        return OS.getProcessCpuTime();
    }

    private static int[] argmax(Backend be, Tensor logits, int vocab) {
        float[] l = be.download(logits);
        be.release(logits);
        int rows = l.length / vocab;
        int[] out = new int[rows];
        for (int r = 0; r < rows; r++) {
            int best = 0;
            for (int i = 1; i < vocab; i++) if (l[r * vocab + i] > l[r * vocab + best]) best = i;
            out[r] = best;
        }
        return out;
    }
}
