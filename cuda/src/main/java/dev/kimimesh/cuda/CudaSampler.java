package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;

/**
 * Token sampling on the device ({@code sample.cu}): one block per logits row, the engine Sampler's function for the
 * host's uniform numbers; only 8 bytes a row (token, logprob) come back instead of the vocabulary-sized row.
 */
final class CudaSampler {
    /** Largest top-k sampled on the device (the candidates are sorted in shared memory); above it the host samples. */
    static final int MAX_TOP_K = 4096;
    /** The engine Sampler's SORT_LIMIT: nuclei with more candidates are drawn in vocabulary order (sample.cu too). */
    static final int SORT_LIMIT = 4096;

    /**
     * {@code -Dkimimesh.cuda.sampler}: {@code split} (default since its device check of 2026-12-06: the row's passes
     * spread over many blocks, sample_split.cuh: per-slice max, greedy index and top-k candidates for k <= 64, per-slice
     * logprob sums, then one block a row finishing) or {@code block} (sample_rows, one block a row); the same tokens
     * and logprobs each way.
     */
    static final boolean SPLIT = samplerMode(System.getProperty("kimimesh.cuda.sampler", "split")).equals("split");

    private static String samplerMode(String m) {
        if (m.equals("split") || m.equals("block")) return m;
        throw new IllegalArgumentException("kimimesh.cuda.sampler must be split or block, not " + m);
    }
    /** sample_split.cuh's SPLIT_CAND: top-k candidates a slice keeps. */
    private static final int SPLIT_CAND = 64;

    private CudaSampler() {}

    /** Slices a row is split into: about 1024 logits each (4 per thread of a 256-thread block), at most 128. */
    static int slices(int vocab) {
        return Math.max(1, Math.min(128, (vocab + 1023) / 1024));
    }

    static Optional<SampledTokens> sample(CudaBackend be, CudaTensor logits, RowSampling[] rows) {
        int n = rows.length, vocab = logits.cols();
        if (logits.rows() != n) throw new IllegalArgumentException("sample: " + n + " row parameters for " + logits);
        if (n == 0) return Optional.of(new SampledTokens(new int[0], new float[0]));
        if (vocab == 0) throw new IllegalArgumentException("sample: logits have no columns");
        long[] table = params(rows, vocab);
        if (table == null) return Optional.empty();
        CudaDevice dev = be.dev;
        dev.bind();
        DeviceBuffer params = dev.table(table);
        DeviceBuffer scratch = dev.scratch(4L * n * (vocab + SORT_LIMIT));
        DeviceBuffer out = dev.scratch(8L * n);
        DeviceBuffer partials = null;
        if (SPLIT) {
            // [n, nb] each: candidate keys (SPLIT_CAND a slice), logprob sums (double), maxima, first indices, NaN flags
            int nb = slices(vocab);
            long slots = (long) n * nb, cand = 0, lse = cand + 8L * slots * SPLIT_CAND, max = lse + 8L * slots, first = max + 4L * slots,
                    nan = first + 4L * slots;
            partials = dev.scratch(nan + 4L * slots);
            long at = partials.ptr;
            dev.sample.launch("sample_split_partial", nb, n, 1, 256, 0, dev.stream, logits.ptr(), vocab, params.ptr, nb, at + max,
                    at + first, at + nan, at + cand);
            dev.sample.launch("sample_split_lse", nb, n, 1, 256, 0, dev.stream, logits.ptr(), vocab, params.ptr, nb, at + max, at + nan,
                    at + lse);
            dev.sample.launch("sample_split_finish", n, 1, 1, 1024, 0, dev.stream, logits.ptr(), vocab, params.ptr, nb, at + max,
                    at + first, at + nan, at + cand, at + lse, scratch.ptr, out.ptr, out.ptr + 4L * n);
        } else {
            dev.sample.launch("sample_rows", n, 1, 1, 1024, 0, dev.stream, logits.ptr(), vocab, params.ptr, scratch.ptr, out.ptr,
                    out.ptr + 4L * n);
        }
        int[] tokens = new int[n];
        float[] logprobs = new float[n];
        if (dev.arena != null) {
            // a recorded step: the tokens come back to the recording's pinned block at each replay
            dev.arena.markSampling(params, n, vocab);
            Driver.copyDtoH(dev.arena.results(8L * n), out.ptr, 8L * n, dev.stream);
        } else synchronized (dev) {
            MemorySegment s = dev.downloadBuffer(8L * n);
            Driver.copyDtoH(s, out.ptr, 8L * n, dev.stream);
            dev.synchronize();
            MemorySegment.copy(s, ValueLayout.JAVA_INT, 0, tokens, 0, n);
            MemorySegment.copy(s, ValueLayout.JAVA_FLOAT, 4L * n, logprobs, 0, n);
        }
        dev.free(params);
        dev.free(scratch);
        if (partials != null) dev.free(partials);
        dev.free(out);
        return Optional.of(new SampledTokens(tokens, logprobs));
    }

    /**
     * The rows' parameters as sample.cu reads them, four 8-byte slots a row; null when a row's top-k is one the
     * device does not take (the host samples it).
     */
    static long[] params(RowSampling[] rows, int vocab) {
        int n = rows.length;
        for (RowSampling r : rows) {
            if (!r.greedy() && r.topK() > MAX_TOP_K && r.topK() < vocab) return null;
        }
        // struct RowParams { double uniform; double topP; float invT; int topK; int flags; int pad; }
        long[] table = new long[4 * n];
        for (int i = 0; i < n; i++) {
            RowSampling r = rows[i];
            table[4 * i] = Double.doubleToRawLongBits(r.uniform());
            table[4 * i + 1] = Double.doubleToRawLongBits(r.topP());
            table[4 * i + 2] = (Float.floatToRawIntBits(r.greedy() ? 1f : r.invTemperature()) & 0xFFFFFFFFL) | ((long) r.topK() << 32);
            table[4 * i + 3] = (r.greedy() ? 1 : 0) | (r.logprob() ? 2 : 0);
        }
        return table;
    }
}
