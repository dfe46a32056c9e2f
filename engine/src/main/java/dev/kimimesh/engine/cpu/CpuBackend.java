package dev.kimimesh.engine.cpu;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.util.Arrays;

/**
 * The embedded default backend: float32 activations on the Java heap, weights read in place from the memory-mapped
 * checkpoint, Vector API kernels spread over all cores.
 */
public final class CpuBackend implements Backend {

    @Override
    public String name() {
        return "cpu (" + Parallel.THREADS + " threads, " + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors)";
    }

    @Override
    public Tensor allocate(int rows, int cols) {
        return CpuTensor.of(rows, cols);
    }

    @Override
    public Tensor upload(float[] data, int rows, int cols) {
        if (data.length != rows * cols) throw new IllegalArgumentException("upload: " + data.length + " values for " + rows + "x" + cols);
        return new CpuTensor(data.clone(), 0, rows, cols);
    }

    @Override
    public float[] download(Tensor t) {
        CpuTensor c = CpuTensor.cast(t);
        return Arrays.copyOfRange(c.data(), c.offset(), c.offset() + c.rows() * c.cols());
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuTensor s = CpuTensor.cast(src), d = CpuTensor.cast(dst);
        if (s.rows() != d.rows() || s.cols() != d.cols()) throw new IllegalArgumentException("copy: shapes differ");
        System.arraycopy(s.data(), s.offset(), d.data(), d.offset(), s.rows() * s.cols());
    }

    @Override
    public void zero(Tensor t) {
        CpuTensor c = CpuTensor.cast(t);
        Arrays.fill(c.data(), c.offset(), c.offset() + c.rows() * c.cols(), 0f);
    }

    @Override
    public Weight weight(TensorInfo t) {
        return CpuWeight.of(t);
    }

    @Override
    public void embed(Weight table, int[] ids, Tensor out) {
        CpuWeight w = CpuWeight.cast(table);
        CpuTensor o = CpuTensor.cast(out);
        for (int r = 0; r < ids.length; r++) {
            if (ids[r] < 0 || ids[r] >= w.rows()) {
                throw new IllegalArgumentException("token id " + ids[r] + " is outside the embedding table (0.." + (w.rows() - 1) + ")");
            }
            w.row(ids[r], o.data(), o.at(r, 0));
        }
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor out) {
        MatMul.matmul(CpuTensor.cast(x), CpuWeight.cast(w), CpuTensor.cast(out));
    }

    @Override
    public void matmuls(Tensor x, Weight[] w, Tensor[] out) {
        CpuWeight[] cw = new CpuWeight[w.length];
        CpuTensor[] co = new CpuTensor[out.length];
        for (int i = 0; i < w.length; i++) cw[i] = CpuWeight.cast(w[i]);
        for (int i = 0; i < out.length; i++) co[i] = CpuTensor.cast(out[i]);
        MatMul.matmuls(CpuTensor.cast(x), cw, co);
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        Norms.rmsNorm(CpuTensor.cast(x), CpuWeight.cast(w), eps, null, CpuTensor.cast(out));
    }

    @Override
    public void gatedRmsNorm(Tensor x, Weight w, float eps, Tensor gate, Tensor out) {
        Norms.rmsNorm(CpuTensor.cast(x), CpuWeight.cast(w), eps, CpuTensor.cast(gate), CpuTensor.cast(out));
    }

    @Override
    public void add(Tensor acc, Tensor x) {
        CpuTensor a = CpuTensor.cast(acc), b = CpuTensor.cast(x);
        int n = a.rows() * a.cols();
        for (int i = 0; i < n; i++) a.data()[a.offset() + i] += b.data()[b.offset() + i];
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = CpuTensor.cast(gate), u = CpuTensor.cast(up), o = CpuTensor.cast(out);
        Activations.swiglu(g.data(), g.offset(), u.data(), u.offset(), o.data(), o.offset(), g.rows() * g.cols());
    }

    @Override
    public void sigmoid(Tensor x, Tensor out) {
        CpuTensor a = CpuTensor.cast(x), o = CpuTensor.cast(out);
        int n = a.rows() * a.cols();
        if (o.data() != a.data() || o.offset() != a.offset()) System.arraycopy(a.data(), a.offset(), o.data(), o.offset(), n);
        Activations.sigmoid(o.data(), o.offset(), n);
    }

    @Override
    public void gatherRows(Tensor x, int[] rows, Tensor out) {
        CpuTensor a = CpuTensor.cast(x), o = CpuTensor.cast(out);
        for (int i = 0; i < rows.length; i++) System.arraycopy(a.data(), a.at(rows[i], 0), o.data(), o.at(i, 0), a.cols());
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int row) {
        copy(src, dst.rowSlice(row, src.rows()));
    }

    @Override
    public void shortConvSilu(Tensor x, Weight conv, Segments seg, Tensor[] tails, Tensor out) {
        CpuTensor[] t = new CpuTensor[tails.length];
        for (int i = 0; i < t.length; i++) t[i] = CpuTensor.cast(tails[i]);
        ShortConv.convSilu(CpuTensor.cast(x), CpuWeight.cast(conv), seg, t, CpuTensor.cast(out));
    }

    @Override
    public void kdaGate(Tensor f, Weight aLog, Weight dtBias, int headDim, Tensor g) {
        CpuTensor fi = CpuTensor.cast(f), go = CpuTensor.cast(g);
        float[] a = CpuWeight.cast(aLog).floats(), dt = CpuWeight.cast(dtBias).floats();
        int cols = fi.cols();
        Parallel.range(fi.rows(), Math.max(1, 8192 / Math.max(1, cols)), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                for (int h = 0; h * headDim < cols; h++) {
                    Activations.kdaDecay(fi.data(), fi.at(r, h * headDim), dt, h * headDim, (float) Math.exp(a[h]),
                            go.data(), go.at(r, h * headDim), Math.min(headDim, cols - h * headDim));
                }
            }
        });
    }

    @Override
    public void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
                    Tensor[] states, KdaForm form, Tensor out) {
        CpuTensor[] s = new CpuTensor[states.length];
        for (int i = 0; i < s.length; i++) s[i] = CpuTensor.cast(states[i]);
        Kda.run(CpuTensor.cast(q), CpuTensor.cast(k), CpuTensor.cast(v), CpuTensor.cast(g), CpuTensor.cast(beta),
                heads, headDim, seg, s, form, CpuTensor.cast(out));
    }

    @Override
    public void mlaAttention(Tensor q, Tensor[] latents, Tensor[] kRots, Weight kvB, int heads, int nope, int rope,
                             int vDim, float scale, Segments seg, Tensor out) {
        CpuTensor[] l = new CpuTensor[latents.length], r = new CpuTensor[kRots.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = CpuTensor.cast(latents[i]);
            r[i] = CpuTensor.cast(kRots[i]);
        }
        Mla.attention(CpuTensor.cast(q), l, r, CpuWeight.cast(kvB), heads, nope, rope, vDim, scale, seg, CpuTensor.cast(out));
    }

    @Override
    public Routing route(Tensor logits, Weight bias, RouterSpec spec) {
        return Moe.route(CpuTensor.cast(logits), bias == null ? null : CpuWeight.cast(bias), spec);
    }

    @Override
    public void moeExperts(Tensor x, Routing routing, ExpertWeights[] experts, Tensor out) {
        Moe.experts(CpuTensor.cast(x), routing, experts, CpuTensor.cast(out));
    }

    /** Selects the MLA evaluation for tests that compare the absorbed and expanded paths. */
    public static void mlaForm(String form) {
        Mla.form = Mla.Form.valueOf(form);
    }
}
