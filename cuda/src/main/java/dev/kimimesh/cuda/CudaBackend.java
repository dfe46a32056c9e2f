package dev.kimimesh.cuda;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.DecodeGraph;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Routing;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import dev.kimimesh.engine.config.RouterWeights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The CUDA backend: fp32 activations in device memory, weights uploaded once in their checkpoint dtype (bf16), all
 * work queued on one stream. Products accumulate in fp32: a bf16-weight GEMV kernel for few rows (decode), and for
 * many rows a bf16 tensor-core GEMM of the activations split into three exact bf16 terms (fp32-level accuracy);
 * {@code -Dkimimesh.cuda.gemm=fp32} widens the weight for an IEEE fp32 SIMT GEMM instead, {@code =bf16} rounds the
 * activations to bf16 once (the "bf16 compute" mode, about 1e-3 relative error). {@link #route} copies the routing
 * to the host (a synchronisation, since the mesh dispatches by it); {@link #routeAndRunExperts}, used when the experts
 * are local, keeps it on the device and runs all routed experts of a layer in a few grouped launches.
 */
public final class CudaBackend implements Backend {
    /** Rows up to which matmul uses the GEMV kernel (weights read once) rather than a GEMM. */
    static final int GEMV_MAX_ROWS = Integer.getInteger("kimimesh.cuda.gemvRows", 16);
    private static final Gemm.Mode GEMM = Gemm.mode(System.getProperty("kimimesh.cuda.gemm", "split"));
    private static final int CHUNK = 64;

    /** How bf16 weights multiply many rows ({@code kimimesh.cuda.gemm}); BF16 also puts MLA prefill on bf16 GEMMs. */
    static Gemm.Mode gemmMode() {
        return GEMM;
    }

    /** Whether this process runs the bf16-compute mode ({@code -Dkimimesh.cuda.gemm=bf16}: about 1e-3 relative). */
    public boolean bf16Compute() {
        return GEMM == Gemm.Mode.BF16;
    }

    final CudaDevice dev;
    private final List<Long> weightMemory = new ArrayList<>();
    private final List<CudaWeight> weights = new ArrayList<>();
    /** {@link #shareRoutedExperts}: how many layers' routed experts get memory of their own; 0: every layer's do. */
    private int expertSets;
    /** The first upload of each routed-expert tensor of a set (key: its name with the layer index taken mod the sets). */
    private final java.util.Map<String, CudaWeight> expertSetOwners = new java.util.HashMap<>();

    public CudaBackend() {
        this(Integer.getInteger("kimimesh.cuda.device", 0));
    }

    public CudaBackend(int ordinal) {
        this.dev = new CudaDevice(ordinal);
    }

    @Override
    public String name() {
        return "cuda (" + dev.name + ", " + dev.multiprocessors + " SMs" + (GEMM == Gemm.Mode.SPLIT ? "" : ", " + GEMM.name().toLowerCase(java.util.Locale.ROOT) + " GEMM") + ")";
    }

    public String poolStats() {
        return dev.pool.stats();
    }

    // ---- memory ----

    @Override
    public CudaTensor allocate(int rows, int cols) {
        CudaTensor t = uninitialised(rows, cols);
        if (t.size() > 0) Driver.memsetD32(t.ptr(), 0, t.size(), dev.stream);
        return t;
    }

    /** {@code -Dkimimesh.cuda.zeroScratch=true}: zero-fill scratch tensors as {@link #allocate} does (for comparison). */
    private static final boolean ZERO_SCRATCH = Boolean.getBoolean("kimimesh.cuda.zeroScratch");

    /** No memset: the pool's block as it is (each one a graph node and a launch's worth of time in a decode step). */
    @Override
    public CudaTensor scratch(int rows, int cols) {
        return ZERO_SCRATCH ? allocate(rows, cols) : uninitialised(rows, cols);
    }

    /** A tensor whose contents are whatever the pool held (for outputs a kernel overwrites entirely). */
    CudaTensor uninitialised(int rows, int cols) {
        dev.bind();
        if (rows < 0 || cols < 0) throw new IllegalArgumentException("allocate: negative shape " + rows + "x" + cols);
        long bytes = Math.max(4, 4L * rows * cols);
        return new CudaTensor(new DeviceBuffer(dev.alloc(bytes), bytes), 0, rows, cols, false);
    }

    @Override
    public Tensor upload(float[] data, int rows, int cols) {
        if (data.length != (long) rows * cols) throw new IllegalArgumentException("upload: " + data.length + " values for " + rows + "x" + cols);
        CudaTensor t = uninitialised(rows, cols);
        if (CudaDevice.small(4L * data.length)) {
            MemorySegment s = dev.stage(4L * data.length);
            MemorySegment.copy(data, 0, s, ValueLayout.JAVA_FLOAT, 0, data.length);
            Driver.copyHtoD(t.ptr(), s, 4L * data.length, dev.stream);
            return t;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(Math.max(4, 4L * data.length), 16);
            MemorySegment.copy(data, 0, s, ValueLayout.JAVA_FLOAT, 0, data.length);
            Driver.copyHtoD(t.ptr(), s, 4L * data.length, dev.stream);
        }
        return t;
    }

    @Override
    public float[] download(Tensor t) {
        dev.bind();
        CudaTensor c = CudaTensor.cast(t);
        float[] out = new float[Math.toIntExact(c.size())];
        synchronized (dev) {
            // a kept page-locked buffer: a pageable target would be zero-filled per call and copied through the
            // driver's staging (tens of ms for a batch's logits)
            MemorySegment s = dev.downloadBuffer(Math.max(4, c.bytes()));
            Driver.copyDtoH(s, c.ptr(), c.bytes(), dev.stream);
            dev.synchronize();
            MemorySegment.copy(s, ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
        }
        return out;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        dev.bind();
        CudaTensor s = CudaTensor.cast(src), d = written(dst);
        if (s.rows() != d.rows() || s.cols() != d.cols()) throw new IllegalArgumentException("copy: " + s + " into " + d);
        if (s.size() > 0) Driver.copyDtoD(d.ptr(), s.ptr(), s.bytes(), dev.stream);
    }

    @Override
    public void zero(Tensor t) {
        dev.bind();
        CudaTensor c = written(t);
        if (c.size() > 0) Driver.memsetD32(c.ptr(), 0, c.size(), dev.stream);
    }

    /** Set by the kernel checks ({@link #bf16Activations}): null leaves bf16 linear outputs to the mode and the flag. */
    Boolean forceBf16Activations;

    /**
     * For the kernel checks: {@code TRUE} writes the projections of {@link Bf16Activations} (KDA's q / k / v, f_b, g_b; the
     * SwiGLUs' gate / up) in bf16 at prefill rows in any mode, as {@code -Dkimimesh.cuda.activations=bf16} does in the
     * bf16-compute mode;
     * {@code FALSE} never; null leaves it to the mode and the flag again.
     */
    public void bf16Activations(Boolean on) {
        forceBf16Activations = on;
    }

    /** Set by the kernel checks ({@link #bf16Copies}): null leaves bf16 copies to the mode and the flag. */
    Boolean forceBf16Copies;

    /**
     * For the kernel checks: {@code TRUE} makes the producers of bf16 GEMM operands (RMSNorm, add + RMSNorm, SwiGLU) write
     * their bf16 copies ({@link Bf16Copies}) in any mode, as {@code -Dkimimesh.cuda.fusedOperands=true} does in the
     * bf16-compute mode; {@code FALSE} makes none; null leaves it to the mode and the flag again.
     */
    public void bf16Copies(Boolean on) {
        forceBf16Copies = on;
    }

    /** For the kernel checks: the bf16 copy that t's producer wrote, widened to fp32, or null when it has none. */
    public float[] downloadBf16Copy(Tensor t) {
        dev.bind();
        CudaTensor c = CudaTensor.cast(t);
        long at = Bf16Copies.of(c);
        if (at == 0) return null;
        CudaTensor wide = uninitialised(c.rows(), c.cols());
        dev.elementwise.launch("bf16_to_f32", CudaDevice.blocks(c.size()), 1, 1, 256, 0, dev.stream, at, wide.ptr(), c.size());
        float[] out = download(wide);
        release(wide);
        return out;
    }

    /**
     * An output tensor, cast: the bf16 copy its block may hold ({@link Bf16Copies}) is dropped first, since the caller
     * is about to overwrite the fp32 values it was made from.
     */
    private CudaTensor written(Tensor t) {
        CudaTensor c = CudaTensor.cast(t);
        if (c.buffer().bf16 != null) Bf16Copies.drop(dev, c);
        return c;
    }

    @Override
    public void release(Tensor t) {
        if (t instanceof CudaTensor c && !c.view()) dev.free(c.buffer());
    }

    @Override
    public Weight weight(TensorInfo t) {
        dev.bind();
        String set = expertSets > 0 ? expertSetKey(t.name(), expertSets) : null;
        CudaWeight owner = set == null ? null : expertSetOwners.get(set);
        if (owner != null) {
            if (!java.util.Arrays.equals(owner.host.shape(), t.shape()) || owner.host.dtype() != t.dtype()) {
                throw new IllegalArgumentException(t.where() + ": not the shape of " + owner.name() + ", whose memory it would share");
            }
            return new CudaWeight(t.name(), owner.dtype(), owner.ptr(), owner.rows(), owner.cols(), 0, t);
        }
        CudaWeight w = upload(t);
        if (set != null) expertSetOwners.put(set, w);
        return w;
    }

    /**
     * For benchmarks of a model larger than the card ({@code GpuCheck bench --expert-sets N}): from now on, the routed
     * experts of layer L are given the device memory of those of layer L mod {@code sets} where that was uploaded
     * already, so the 27-layer model (94 GB of routed experts) fits an 80 GB card. Every layer still reads its experts
     * from device memory at its turn: layers that share are {@code sets} layers apart, and the other layers read far more
     * than the L2 cache holds in between (8 experts of one layer are 113 MB at the real widths, the L2 50 MB), so a
     * decode step moves the bytes the real model's would. The values are shared, so the model is not the checkpoint's.
     */
    public void shareRoutedExperts(int sets) {
        if (sets < 0) throw new IllegalArgumentException("expert sets must be >= 0, got " + sets);
        expertSets = sets;
    }

    /** The key of a routed-expert tensor's set (its name, the layer index mod {@code sets}); null for other tensors. */
    static String expertSetKey(String name, int sets) {
        java.util.regex.Matcher m = EXPERT_NAME.matcher(name);
        return m.matches() ? m.group(1) + Integer.parseInt(m.group(2)) % sets + m.group(3) : null;
    }

    private static final java.util.regex.Pattern EXPERT_NAME = java.util.regex.Pattern.compile("(.*\\.layers\\.)(\\d+)(\\..*\\.experts\\..*)");

    private CudaWeight upload(TensorInfo t) {
        long[] s = t.shape();
        long rows = s.length == 0 ? 1 : s[0];
        long cols = rows == 0 ? 0 : t.numel() / rows;
        if (s.length == 4 || (s.length == 3 && s[1] == 1 && s[0] != 1)) {
            // A_log [1,1,heads,1] is a vector of heads; conv1d [P,1,K] is [P, K] (as the CPU backend reads them)
            rows = s.length == 4 ? t.numel() : s[0];
            cols = t.numel() / rows;
        }
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) throw new IllegalArgumentException(t.where() + " is too large");
        DType dt = t.dtype();
        if (dt != DType.BF16 && dt != DType.F16 && dt != DType.F32) {
            throw new IllegalArgumentException(t.where() + ": dtype " + dt + " is not a weight dtype");
        }
        long n = t.numel();
        DType stored = dt == DType.F16 ? DType.F32 : dt;
        long bytes = Math.max(4, n * stored.bytes());
        long ptr = Driver.memAlloc(bytes);
        weightMemory.add(ptr);
        if (dt == DType.F16) {
            float[] f = t.toFloatArray();
            try (Arena a = Arena.ofConfined()) {
                MemorySegment seg = a.allocate(bytes, 16);
                MemorySegment.copy(f, 0, seg, ValueLayout.JAVA_FLOAT, 0, f.length);
                Driver.copyHtoD(ptr, seg, 4L * n, dev.stream);
            }
        } else if (n > 0) {
            Driver.copyHtoD(ptr, t.data(), n * dt.bytes(), dev.stream);
        }
        CudaWeight w = new CudaWeight(t.name(), stored, ptr, (int) rows, (int) cols, stored == DType.F32 ? ptr : 0, t);
        weights.add(w);
        if (stored == DType.BF16 && n <= (1 << 16)) floats(w); // vectors: widen now, they are read by every kernel
        return w;
    }

    /**
     * For benchmarks: overwrites every uploaded bf16 weight whose name {@code names} accepts, and that has no fp32 copy,
     * with random values made on the device (the bench checkpoint's distribution), so that a model too large for the
     * disk can come from a checkpoint whose big tensors are holes. Returns the bytes written.
     */
    public long randomizeWeights(java.util.function.Predicate<String> names, long seed) {
        dev.bind();
        long bytes = 0;
        for (CudaWeight w : weights) {
            if (!w.bf16() || w.floats != 0 || !names.test(w.name())) continue;
            long n = (long) w.rows() * w.cols();
            dev.elementwise.launch("fill_random_bf16", CudaDevice.blocks(n), 1, 1, 256, 0, dev.stream, w.ptr(), n,
                    seed ^ w.name().hashCode() * 0x9E3779B97F4A7C15L);
            bytes += 2 * n;
        }
        return bytes;
    }

    /** The weight as fp32 on the device, made once and kept (norm weights, biases, conv taps, kv_b_proj). */
    long floats(CudaWeight w) {
        if (w.floats != 0) return w.floats;
        long n = (long) w.rows() * w.cols();
        long ptr = Driver.memAlloc(Math.max(4, 4 * n));
        weightMemory.add(ptr);
        dev.elementwise.launch("bf16_to_f32", CudaDevice.blocks(n), 1, 1, 256, 0, dev.stream, w.ptr(), ptr, n);
        w.floats = ptr;
        return ptr;
    }

    @Override
    public void synchronize() {
        dev.bind();
        dev.synchronize();
    }

    // ---- dense math ----

    @Override
    public void embed(Weight table, int[] ids, Tensor out) {
        dev.bind();
        CudaWeight w = CudaWeight.cast(table);
        CudaTensor o = written(out);
        if (o.rows() != ids.length || o.cols() != w.cols()) throw new IllegalArgumentException("embed: out " + o + " for " + ids.length + " ids of " + w);
        for (int id : ids) {
            if (id < 0 || id >= w.rows()) throw new IllegalArgumentException("token id " + id + " is outside the embedding table (0.." + (w.rows() - 1) + ")");
        }
        if (ids.length == 0) return;
        DeviceBuffer d = dev.ints(ids);
        if (dev.arena != null) dev.arena.markIds(d, ids.length); // each replay writes its ids there
        dev.elementwise.launch("embed_rows", ids.length, 1, 1, 256, 0, dev.stream, w.ptr(), w.bf16() ? 1 : 0, d.ptr, o.ptr(),
                ids.length, w.cols());
        dev.free(d);
    }

    @Override
    public void matmul(Tensor x, Weight w, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        CudaWeight b = CudaWeight.cast(w);
        int t = a.rows(), k = a.cols(), n = b.rows();
        if (b.cols() != k) throw new IllegalArgumentException("matmul: x has " + k + " columns, " + b + " expects " + b.cols());
        if (o.rows() != t || o.cols() != n) throw new IllegalArgumentException("matmul: out is " + o + ", expected " + t + "x" + n);
        if (t == 0 || n == 0) return;
        if (k == 0) {
            zero(o);
            return;
        }
        Gemm.linear(this, a, b, o, GEMM);
    }

    @Override
    public void matmuls(Tensor x, Weight[] w, Tensor[] out) {
        if (w.length != out.length) throw new IllegalArgumentException("matmuls: " + w.length + " weights, " + out.length + " outputs");
        dev.bind();
        CudaTensor a = CudaTensor.cast(x);
        CudaWeight[] ws = new CudaWeight[w.length];
        CudaTensor[] os = new CudaTensor[w.length];
        boolean together = a.rows() > 0;
        for (int i = 0; i < w.length; i++) {
            ws[i] = CudaWeight.cast(w[i]);
            os[i] = written(out[i]);
            if (ws[i].cols() != a.cols()) throw new IllegalArgumentException("matmuls: x has " + a.cols() + " columns, " + ws[i] + " expects " + ws[i].cols());
            if (os[i].rows() != a.rows() || os[i].cols() != ws[i].rows()) {
                throw new IllegalArgumentException("matmuls: out " + i + " is " + os[i] + ", expected " + a.rows() + "x" + ws[i].rows());
            }
            together &= ws[i].rows() > 0 && Gemm.tiled(a, ws[i]);
        }
        // a decode step's projections of one input: one launch per tiling instead of one per matrix
        if (together) Gemm.linearMany(this, a, ws, os);
        else if (GEMM == Gemm.Mode.BF16 && Gemm.BF16_OPERANDS && Gemm.manyBf16(a, ws)) Gemm.linearManyBf16(this, a, ws, os);
        else for (int i = 0; i < w.length; i++) matmul(x, w[i], out[i]);
    }

    /**
     * {@link #matmuls} of the bf16-compute mode with x converted once (Gemm.linearManyBf16) whatever
     * {@code kimimesh.cuda.gemm} says, so that the kernel checks reach it in the default mode. x needs more than
     * {@link #GEMV_MAX_ROWS} rows and every weight must be bf16.
     */
    public void matmulsBf16(Tensor x, Weight[] w, Tensor[] out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x);
        CudaWeight[] ws = new CudaWeight[w.length];
        CudaTensor[] os = new CudaTensor[w.length];
        if (w.length != out.length) throw new IllegalArgumentException("matmulsBf16: " + w.length + " weights, " + out.length + " outputs");
        for (int i = 0; i < w.length; i++) {
            ws[i] = CudaWeight.cast(w[i]);
            os[i] = written(out[i]);
            if (os[i].rows() != a.rows() || os[i].cols() != ws[i].rows()) {
                throw new IllegalArgumentException("matmulsBf16: out " + i + " is " + os[i] + ", expected " + a.rows() + "x" + ws[i].rows());
            }
        }
        if (!Gemm.manyBf16(a, ws)) throw new IllegalArgumentException("matmulsBf16: needs more than " + GEMV_MAX_ROWS + " rows and bf16 weights, got " + a);
        Gemm.linearManyBf16(this, a, ws, os);
    }

    @Override
    public void rmsNorm(Tensor x, Weight w, float eps, Tensor out) {
        norm(x, w, eps, null, out);
    }

    @Override
    public void gatedRmsNorm(Tensor x, Weight w, float eps, Tensor gate, Tensor out) {
        norm(x, w, eps, CudaTensor.cast(gate), out);
    }

    private void norm(Tensor x, Weight w, float eps, CudaTensor gate, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        CudaWeight nw = CudaWeight.cast(w);
        int group = nw.rows() * nw.cols();
        if (group == 0 || a.cols() % group != 0) throw new IllegalArgumentException("rmsNorm: " + a.cols() + " columns are not groups of " + group);
        if (o.rows() != a.rows() || o.cols() != a.cols()) throw new IllegalArgumentException("rmsNorm: out " + o + " for " + a);
        if (gate != null && (gate.rows() != a.rows() || gate.cols() != a.cols())) throw new IllegalArgumentException("gatedRmsNorm: gate " + gate);
        if (a.rows() == 0) return;
        long wp = floats(nw), gp = gate == null ? 0L : gate.ptr();
        if (group % 4 == 0 && group <= 16384 && a.cols() % 4 == 0 && (a.ptr() | o.ptr() | wp | gp) % 16 == 0) {
            // each thread keeps up to four float4 chunks of its group in registers (rms_norm_v4)
            int block = Math.min(1024, Math.max(32, (group / 4 + 31) / 32 * 32));
            if (Bf16Copies.wanted(this, o)) {
                // the bf16 GEMM operand written in the same pass (Bf16Copies)
                long ob = Bf16Copies.attach(dev, o);
                dev.norms.launch("rms_norm_v4_bf16", a.rows(), a.cols() / group, 1, block, 0, dev.stream, a.ptr(), wp, gp, o.ptr(), ob,
                        a.cols(), group, eps);
                return;
            }
            dev.norms.launch("rms_norm_v4", a.rows(), a.cols() / group, 1, block, 0, dev.stream, a.ptr(), wp, gp, o.ptr(), a.cols(),
                    group, eps);
        } else {
            int block = Math.min(256, Math.max(32, (group + 31) / 32 * 32));
            dev.norms.launch("rms_norm", a.rows(), a.cols() / group, 1, block, 0, dev.stream, a.ptr(), wp, gp, o.ptr(), a.cols(), group,
                    eps);
        }
    }

    /** At few rows, one kda_output_norm launch (decode_fused.cu): each head's gate rows and its gated norm in one block. */
    @Override
    public void kdaOutputNorm(Tensor o, Weight w, float eps, Tensor gLow, Weight gB, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(o), gl = CudaTensor.cast(gLow), r = written(out);
        CudaWeight nw = CudaWeight.cast(w), gw = CudaWeight.cast(gB);
        if (gw.cols() != gl.cols() || gw.rows() != a.cols() || gl.rows() != a.rows() || r.rows() != a.rows() || r.cols() != a.cols()) {
            throw new IllegalArgumentException("kdaOutputNorm: o " + a + ", gate low " + gl + ", g_b " + gw + ", out " + r);
        }
        if (DecodeFusions.kdaOutputNorm(this, a, floats(nw), nw.rows() * nw.cols(), eps, gl, gw, r)) return;
        if (!Bf16Activations.kdaOutputNorm(this, a, nw, eps, gl, gw, r)) Backend.super.kdaOutputNorm(o, w, eps, gLow, gB, out);
    }

    @Override
    public void add(Tensor acc, Tensor x) {
        dev.bind();
        CudaTensor a = written(acc), b = CudaTensor.cast(x);
        if (a.size() != b.size()) throw new IllegalArgumentException("add: " + a + " and " + b);
        dev.elementwise.launch("add_f32", CudaDevice.blocks(a.size()), 1, 1, 256, 0, dev.stream, a.ptr(), b.ptr(), a.size());
    }

    /** One launch (add_rms_norm_v4) where rms_norm_v4 would take the row; else add then norm. */
    @Override
    public void addRmsNorm(Tensor acc, Tensor x, Weight w, float eps, Tensor out) {
        dev.bind();
        CudaTensor a = written(acc), b = CudaTensor.cast(x), o = written(out);
        CudaWeight nw = CudaWeight.cast(w);
        int cols = a.cols();
        boolean fused = FUSED_ADD_NORM && a.rows() > 0 && nw.rows() * nw.cols() == cols && cols % 4 == 0 && cols <= 16384
                && b.rows() == a.rows() && b.cols() == cols && o.rows() == a.rows() && o.cols() == cols && o.ptr() != a.ptr();
        long wp = fused ? floats(nw) : 0;
        if (!fused || (a.ptr() | b.ptr() | o.ptr() | wp) % 16 != 0) {
            Backend.super.addRmsNorm(acc, x, w, eps, out);
            return;
        }
        int group = cols, block = Math.min(1024, Math.max(32, (group / 4 + 31) / 32 * 32));
        if (Bf16Copies.wanted(this, o)) {
            long ob = Bf16Copies.attach(dev, o);
            dev.norms.launch("add_rms_norm_v4_bf16", a.rows(), 1, 1, block, 0, dev.stream, a.ptr(), b.ptr(), wp, o.ptr(), ob, cols, eps);
            return;
        }
        dev.norms.launch("add_rms_norm_v4", a.rows(), 1, 1, block, 0, dev.stream, a.ptr(), b.ptr(), wp, o.ptr(), cols, eps);
    }

    /** {@code -Dkimimesh.cuda.fusedAddNorm=false}: add then RMSNorm as two launches, for comparison. */
    private static final boolean FUSED_ADD_NORM = !"false".equals(System.getProperty("kimimesh.cuda.fusedAddNorm", "true"));

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        dev.bind();
        CudaTensor g = CudaTensor.cast(gate), u = CudaTensor.cast(up), o = written(out);
        if (g.size() != u.size() || g.size() != o.size()) throw new IllegalArgumentException("swiglu: " + g + ", " + u + ", " + o);
        if (Bf16Copies.wanted(this, o) && (g.ptr() | u.ptr()) % 16 == 0) {
            // the down projection's bf16 operand written in the same pass (Bf16Copies)
            long ob = Bf16Copies.attach(dev, o);
            dev.elementwise.launch("swiglu_f32_bf16", CudaDevice.blocks(g.size() / 4), 1, 1, 256, 0, dev.stream, g.ptr(), u.ptr(), o.ptr(),
                    ob, g.size());
            return;
        }
        dev.elementwise.launch("swiglu_f32", CudaDevice.blocks(g.size()), 1, 1, 256, 0, dev.stream, g.ptr(), u.ptr(), o.ptr(), g.size());
    }

    @Override
    public void sigmoid(Tensor x, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        if (a.size() != o.size()) throw new IllegalArgumentException("sigmoid: " + a + " into " + o);
        dev.elementwise.launch("sigmoid_f32", CudaDevice.blocks(a.size()), 1, 1, 256, 0, dev.stream, a.ptr(), o.ptr(), a.size());
    }

    /** At few rows, one gemv_glu launch (decode_fused.cu) for the pair, the SwiGLU and a router of the same tiling. */
    @Override
    public void swigluProjection(Tensor x, Weight gate, Weight up, Tensor act, Weight[] also, Tensor[] alsoOut) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(act);
        CudaWeight g = CudaWeight.cast(gate), u = CudaWeight.cast(up);
        if (also.length != alsoOut.length) throw new IllegalArgumentException("swigluProjection: " + also.length + " weights, " + alsoOut.length + " outputs");
        if (g.cols() != a.cols() || u.cols() != a.cols() || u.rows() != g.rows() || o.rows() != a.rows() || o.cols() != g.rows()) {
            throw new IllegalArgumentException("swigluProjection: x " + a + ", gate " + g + ", up " + u + ", act " + o);
        }
        CudaWeight[] ws = new CudaWeight[also.length];
        CudaTensor[] os = new CudaTensor[also.length];
        for (int i = 0; i < also.length; i++) {
            ws[i] = CudaWeight.cast(also[i]);
            os[i] = written(alsoOut[i]);
            if (ws[i].cols() != a.cols() || os[i].rows() != a.rows() || os[i].cols() != ws[i].rows()) {
                throw new IllegalArgumentException("swigluProjection: out " + i + " is " + os[i] + " for " + ws[i] + " and x " + a);
            }
        }
        if (DecodeFusions.swigluProjection(this, a, g, u, o, ws, os)) return;
        if (!Bf16Activations.swigluProjection(this, a, g, u, o, ws, os)) Backend.super.swigluProjection(x, gate, up, act, also, alsoOut);
    }

    /** In the bf16-compute mode's prefill with {@code -Dkimimesh.cuda.activations=bf16}: the activation only in bf16 ({@link Bf16Activations}). */
    @Override
    public void swigluMlp(Tensor x, ExpertWeights w, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        CudaWeight g = CudaWeight.cast(w.gate()), u = CudaWeight.cast(w.up()), d = CudaWeight.cast(w.down());
        if (g.cols() != a.cols() || u.cols() != a.cols() || u.rows() != g.rows() || d.cols() != g.rows() || o.rows() != a.rows() || o.cols() != d.rows()) {
            throw new IllegalArgumentException("swigluMlp: x " + a + ", gate " + g + ", up " + u + ", down " + d + ", out " + o);
        }
        if (!Bf16Activations.swigluMlp(this, a, g, u, d, o)) Backend.super.swigluMlp(x, w, out);
    }

    @Override
    public void gatherRows(Tensor x, int[] rows, Tensor out) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        if (o.rows() != rows.length || o.cols() != a.cols()) throw new IllegalArgumentException("gatherRows: out " + o);
        for (int r : rows) if (r < 0 || r >= a.rows()) throw new IndexOutOfBoundsException("gatherRows: row " + r + " of " + a.rows());
        if (rows.length == 0) return;
        DeviceBuffer d = dev.ints(rows);
        dev.elementwise.launch("gather_rows", rows.length, 1, 1, 256, 0, dev.stream, a.ptr(), d.ptr, o.ptr(), a.cols());
        dev.free(d);
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int row) {
        // the row is a launch argument: a replay would write every step's row to the recorded one
        if (dev.arena != null) throw new IllegalStateException("copyRows at a position cannot be recorded");
        copy(src, dst.rowSlice(row, src.rows()));
    }

    /** Single-token segments (decode): one launch that reads each sequence's position from device memory. */
    @Override
    public void appendRows(Tensor rows, Tensor[] caches, Segments seg) {
        dev.bind();
        CudaTensor r = CudaTensor.cast(rows);
        boolean single = seg.totalRows() == seg.count() && r.rows() == seg.count() && caches.length == seg.count();
        if (!single) {
            Backend.super.appendRows(rows, caches, seg);
            return;
        }
        long[] ptr = new long[caches.length];
        for (int i = 0; i < caches.length; i++) {
            CudaTensor c = written(caches[i]);
            if (c.cols() != r.cols() || c.rows() <= seg.position(i)) throw new IllegalArgumentException("appendRows: cache " + i + " is " + c + " for position " + seg.position(i));
            ptr[i] = c.ptr();
        }
        DeviceBuffer tab = dev.longs(ptr);
        dev.mlaDecode.launch("mla_append_rows", (r.cols() + 255) / 256, seg.count(), 1, 256, 0, dev.stream, r.ptr(), tab.ptr,
                stepPositions(seg), r.cols());
        dev.free(tab);
    }

    /** Single-token segments (decode): kv_a_layernorm and both appends in one mla_norm_append launch (decode_fused.cu). */
    @Override
    public void appendLatentRows(Tensor latent, Weight norm, float eps, Tensor kRot, Tensor[] latents, Tensor[] kRots, Segments seg) {
        dev.bind();
        CudaTensor l = CudaTensor.cast(latent), kr = kRot == null ? null : CudaTensor.cast(kRot);
        CudaWeight nw = CudaWeight.cast(norm);
        int n = seg.count(), r = l.cols(), rope = kr == null ? 0 : kr.cols();
        boolean fused = DecodeFusions.LATENT_APPEND && n > 0 && seg.totalRows() == n && l.rows() == n && latents.length == n
                && (kr == null || kr.rows() == n && kRots.length == n) && nw.rows() * nw.cols() == r && r % 4 == 0 && r <= 16384
                && l.ptr() % 16 == 0;
        long[] lp = new long[n], rp = new long[n];
        for (int i = 0; fused && i < n; i++) {
            CudaTensor c = written(latents[i]);
            if (c.cols() != r || c.rows() <= seg.position(i)) throw new IllegalArgumentException("appendLatentRows: cache " + i + " is " + c + " for position " + seg.position(i));
            fused = c.ptr() % 16 == 0;
            lp[i] = c.ptr();
            if (kr != null) {
                CudaTensor k = written(kRots[i]);
                if (k.cols() != rope || k.rows() <= seg.position(i)) throw new IllegalArgumentException("appendLatentRows: k_rot cache " + i + " is " + k);
                rp[i] = k.ptr();
            }
        }
        long wp = fused ? floats(nw) : 0;
        if (!fused || wp % 16 != 0) {
            Backend.super.appendLatentRows(latent, norm, eps, kRot, latents, kRots, seg);
            return;
        }
        DeviceBuffer lt = dev.longs(lp), rt = kr == null ? null : dev.longs(rp);
        int block = Math.min(1024, Math.max(32, (r / 4 + 31) / 32 * 32));
        dev.decodeFused.launch("mla_norm_append", n, 1, 1, block, 0, dev.stream, l.ptr(), wp, eps, r, kr == null ? 0L : kr.ptr(), rope,
                lt.ptr, rt == null ? 0L : rt.ptr, stepPositions(seg));
        dev.free(lt);
        if (rt != null) dev.free(rt);
    }

    private Segments positionsOf;
    private DeviceBuffer positions;

    /**
     * The device copy of a step's positions (int per segment), uploaded once per {@link Segments} (a forward pass
     * hands the same one to every layer); while a step is recorded, the region slot each replay rewrites.
     */
    long stepPositions(Segments seg) {
        if (seg != positionsOf) {
            if (positions != null) dev.free(positions);
            positions = dev.ints(seg.positions());
            positionsOf = seg;
            if (dev.arena != null) dev.arena.markPositions(positions, seg.count());
        }
        return positions.ptr;
    }

    private void forgetPositions() {
        if (positions != null && !positions.region) dev.free(positions);
        positions = null;
        positionsOf = null;
    }

    // ---- Kimi Delta Attention ----

    @Override
    public void shortConvSilu(Tensor x, Weight conv, Segments seg, Tensor[] tails, Tensor out) {
        shortConvSilu(x, conv, seg, tails, out, CONV4_PREFILL);
    }

    /**
     * {@code -Dkimimesh.cuda.convPrefill}: {@code v2} (short_conv4_silu for segments over 64 rows with kernel size 4: a
     * register window over 4 channels a thread, the same bits; the default since its H100 check of 2026-12-06: 6.5 ->
     * 3.4 ms of a 32k prefill) or {@code v1} (short_conv_silu for every length).
     */
    private static final boolean CONV4_PREFILL = convPrefill(System.getProperty("kimimesh.cuda.convPrefill", "v2"));

    private static boolean convPrefill(String v) {
        if (v.equals("v1") || v.equals("v2")) return v.equals("v2");
        throw new IllegalArgumentException("kimimesh.cuda.convPrefill must be v1 or v2, not " + v);
    }

    /** {@link #shortConvSilu} with the prefill kernel chosen here (kernel checks compare the two): {@code v2} short_conv4_silu where it applies. */
    public void shortConvSilu(Tensor x, Weight conv, Segments seg, Tensor[] tails, Tensor out, boolean v2) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x), o = written(out);
        CudaWeight w = CudaWeight.cast(conv);
        int p = a.cols(), k = w.cols();
        if (w.rows() != p) throw new IllegalArgumentException("shortConv: " + w + " does not match width " + p);
        if (k < 1 || k > 8) throw new IllegalArgumentException("shortConv: kernel size " + k + " is not in 1..8");
        if (tails.length != seg.count()) throw new IllegalArgumentException("shortConv: " + tails.length + " tails for " + seg.count() + " segments");
        long[] tp = new long[tails.length];
        int maxLen = 0;
        for (int i = 0; i < tails.length; i++) {
            CudaTensor tl = CudaTensor.cast(tails[i]);
            if (tl.rows() != Math.max(1, k - 1) || tl.cols() != p) throw new IllegalArgumentException("shortConv: tail " + i + " is " + tl);
            tp[i] = tl.ptr();
            maxLen = Math.max(maxLen, seg.length(i));
        }
        int[] st = starts(seg), ln = seg.lengths();
        DeviceBuffer tab = dev.table(tp, st, ln);
        long ds = tab.ptr + 8L * tp.length, dl = ds + 4L * st.length;
        int bx = (p + 255) / 256;
        // segments of at most 64 rows: one 64-row block per (segment, channel), which also writes the new tail
        boolean oneLaunch = maxLen <= 64;
        boolean aligned = p % 4 == 0 && (a.ptr() | o.ptr()) % 16 == 0;
        for (long t : tp) aligned &= t % 16 == 0;
        if (v2 && !oneLaunch && k == 4 && aligned) {
            dev.conv.launch("short_conv4_silu", (p / 4 + 255) / 256, seg.count(), (maxLen + 63) / 64, 256, 0, dev.stream, a.ptr(),
                    floats(w), tab.ptr, ds, dl, o.ptr(), p);
        } else {
            dev.conv.launch("short_conv_silu", bx, seg.count(), (maxLen + 63) / 64, 256, 0, dev.stream, a.ptr(), floats(w), tab.ptr,
                    ds, dl, o.ptr(), p, k, oneLaunch && k > 1 ? 1 : 0);
        }
        if (k > 1 && !oneLaunch) dev.conv.launch("short_conv_tail", bx, seg.count(), 1, 256, 0, dev.stream, a.ptr(), tab.ptr, ds, dl, p, k);
        dev.free(tab);
    }

    /** KDA's three convolutions of a decode step (segments of at most 64 rows) in one launch (short_conv_silu3). */
    @Override
    public void shortConvSilus(Tensor[] x, Weight[] conv, Segments seg, Tensor[][] tails, Tensor[] out) {
        dev.bind();
        int maxLen = 0;
        for (int i = 0; i < seg.count(); i++) maxLen = Math.max(maxLen, seg.length(i));
        boolean fused = FUSED_CONV && x.length == 3 && conv.length == 3 && tails.length == 3 && out.length == 3 && maxLen <= 64;
        CudaTensor[] a = new CudaTensor[3], o = new CudaTensor[3];
        CudaWeight[] w = new CudaWeight[3];
        int p = 0, k = 0;
        for (int j = 0; fused && j < 3; j++) {
            a[j] = CudaTensor.cast(x[j]);
            o[j] = written(out[j]);
            w[j] = CudaWeight.cast(conv[j]);
            if (j == 0) {
                p = a[0].cols();
                k = w[0].cols();
            }
            fused = a[j].cols() == p && w[j].rows() == p && w[j].cols() == k && k > 1 && k <= 8 && tails[j].length == seg.count()
                    && o[j].rows() == a[j].rows() && o[j].cols() == p;
            for (int i = 0; fused && i < seg.count(); i++) {
                CudaTensor tl = CudaTensor.cast(tails[j][i]);
                fused = tl.rows() == k - 1 && tl.cols() == p;
            }
        }
        if (!fused) {
            Backend.super.shortConvSilus(x, conv, seg, tails, out);
            return;
        }
        int n = seg.count();
        long[] tp = new long[3 * n];
        for (int j = 0; j < 3; j++) for (int i = 0; i < n; i++) tp[j * n + i] = CudaTensor.cast(tails[j][i]).ptr();
        int[] st = starts(seg), ln = seg.lengths();
        DeviceBuffer tab = dev.table(tp, st, ln);
        long ds = tab.ptr + 8L * tp.length, dl = ds + 4L * st.length;
        dev.conv.launch("short_conv_silu3", (p + 255) / 256, 3 * n, (maxLen + 63) / 64, 256, 0, dev.stream, a[0].ptr(), a[1].ptr(),
                a[2].ptr(), floats(w[0]), floats(w[1]), floats(w[2]), o[0].ptr(), o[1].ptr(), o[2].ptr(), tab.ptr, ds, dl, p, k, 1, n);
        dev.free(tab);
    }

    /** In the bf16-compute mode's prefill with {@code -Dkimimesh.cuda.activations=bf16}: q, k, v projected in bf16 ({@link Bf16Activations}). */
    @Override
    public void kdaProjections(Tensor x, Weight[] qkv, Weight[] conv, Segments seg, Tensor[][] tails, Tensor[] qkvOut, Weight[] also,
                               Tensor[] alsoOut) {
        dev.bind();
        CudaTensor a = CudaTensor.cast(x);
        CudaWeight[] qw = new CudaWeight[qkv.length], cw = new CudaWeight[conv.length], aw = new CudaWeight[also.length];
        CudaTensor[] qo = new CudaTensor[qkvOut.length], ao = new CudaTensor[alsoOut.length];
        for (int j = 0; j < qw.length; j++) qw[j] = CudaWeight.cast(qkv[j]);
        for (int j = 0; j < cw.length; j++) cw[j] = CudaWeight.cast(conv[j]);
        for (int j = 0; j < aw.length; j++) aw[j] = CudaWeight.cast(also[j]);
        for (int j = 0; j < qo.length; j++) qo[j] = written(qkvOut[j]);
        for (int j = 0; j < ao.length; j++) ao[j] = written(alsoOut[j]);
        if (!Bf16Activations.kdaProjections(this, a, qw, cw, seg, tails, qo, aw, ao)) {
            Backend.super.kdaProjections(x, qkv, conv, seg, tails, qkvOut, also, alsoOut);
        }
    }

    /** {@code -Dkimimesh.cuda.fusedConv=false}: one short_conv_silu launch per convolution, for comparison. */
    private static final boolean FUSED_CONV = !"false".equals(System.getProperty("kimimesh.cuda.fusedConv", "true"));

    static int[] starts(Segments seg) {
        int[] s = new int[seg.count()];
        for (int i = 1; i < s.length; i++) s[i] = s[i - 1] + seg.length(i - 1);
        return s;
    }

    @Override
    public void kdaGate(Tensor f, Weight aLog, Weight dtBias, int headDim, Tensor g) {
        kdaGate(f, aLog, dtBias, headDim, g, KDA_GATE_V4);
    }

    /** {@link #kdaGate} with the kernel chosen here (the kernel checks compare the two): {@code v4} kda_gate_v4 where it applies. */
    public void kdaGate(Tensor f, Weight aLog, Weight dtBias, int headDim, Tensor g, boolean v4) {
        dev.bind();
        CudaTensor fi = CudaTensor.cast(f), go = written(g);
        if (fi.size() != go.size()) throw new IllegalArgumentException("kdaGate: " + fi + " into " + go);
        CudaWeight a = CudaWeight.cast(aLog), dt = CudaWeight.cast(dtBias);
        if ((long) dt.rows() * dt.cols() != fi.cols()) throw new IllegalArgumentException("kdaGate: dt_bias " + dt + " for width " + fi.cols());
        if (v4 && fi.rows() <= 65535 && fi.cols() % 4 == 0 && headDim % 4 == 0 && (fi.ptr() | go.ptr()) % 16 == 0) {
            dev.elementwise.launch("kda_gate_v4", (fi.cols() / 4 + 255) / 256, fi.rows(), 1, 256, 0, dev.stream, fi.ptr(), floats(a),
                    floats(dt), go.ptr(), fi.cols(), headDim);
            return;
        }
        dev.elementwise.launch("kda_gate", CudaDevice.blocks(fi.size()), 1, 1, 256, 0, dev.stream, fi.ptr(), floats(a), floats(dt),
                go.ptr(), fi.size(), fi.cols(), headDim);
    }

    /**
     * {@code -Dkimimesh.cuda.kdaGate}: {@code v2} (default since its H100 check of 2026-12-06: kda_gate_v4, 4 columns a
     * thread on a (column block, row) grid, the same bits; 0.61 -> 0.35 ms a 32k layer) or {@code v1} (kda_gate, one
     * element a thread, the earlier kernel).
     */
    private static final boolean KDA_GATE_V4 = kdaGateMode(System.getProperty("kimimesh.cuda.kdaGate", "v2"));

    private static boolean kdaGateMode(String v) {
        if (v.equals("v1") || v.equals("v2")) return v.equals("v2");
        throw new IllegalArgumentException("kimimesh.cuda.kdaGate must be v1 or v2, not " + v);
    }

    /** At few rows, one gemv_kda_gate launch (decode_fused.cu) for the f_b product, the decay gate and beta's sigmoid. */
    @Override
    public void kdaGates(Tensor fLow, Weight fB, Weight aLog, Weight dtBias, int headDim, Tensor g, Tensor beta) {
        dev.bind();
        CudaTensor f = CudaTensor.cast(fLow), go = written(g), b = written(beta);
        CudaWeight w = CudaWeight.cast(fB), a = CudaWeight.cast(aLog), dt = CudaWeight.cast(dtBias);
        if (w.cols() != f.cols() || go.rows() != f.rows() || go.cols() != w.rows() || b.rows() != f.rows()) {
            throw new IllegalArgumentException("kdaGates: fLow " + f + ", f_b " + w + ", g " + go + ", beta " + b);
        }
        if (headDim < 1 || go.cols() % headDim != 0 || (long) dt.rows() * dt.cols() != go.cols() || (long) a.rows() * a.cols() * headDim < go.cols()) {
            throw new IllegalArgumentException("kdaGates: width " + go.cols() + ", head dim " + headDim + ", dt_bias " + dt + ", A_log " + a);
        }
        if (DecodeFusions.kdaGates(this, f, w, floats(a), floats(dt), headDim, go, b)) return;
        if (Bf16Activations.kdaGate(this, f, w, floats(a), floats(dt), headDim, go)) sigmoid(beta, beta);
        else Backend.super.kdaGates(fLow, fB, aLog, dtBias, headDim, g, beta);
    }

    @Override
    public void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
                    Tensor[] states, KdaForm form, Tensor out) {
        dev.bind();
        KdaKernels.run(this, CudaTensor.cast(q), CudaTensor.cast(k), CudaTensor.cast(v), CudaTensor.cast(g), CudaTensor.cast(beta),
                heads, headDim, seg, states, form, written(out));
    }

    /**
     * {@link #kda} with the chunk scan on tensor cores (kda_chunk_scan_tc, the bf16-compute mode's form) or on the fp32
     * scan, whatever {@code kimimesh.cuda.kdaChunk} says, so that the kernel checks reach both in either mode.
     */
    public void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
                    Tensor[] states, KdaForm form, Tensor out, boolean tensorCores) {
        dev.bind();
        KdaKernels.run(this, CudaTensor.cast(q), CudaTensor.cast(k), CudaTensor.cast(v), CudaTensor.cast(g), CudaTensor.cast(beta),
                heads, headDim, seg, states, form, written(out), tensorCores);
    }

    /**
     * {@link #kda} with the tensor-core scan or the fp32 one and the chunk prep named by its
     * {@code kimimesh.cuda.kdaPrep} value (v5, v6, v4, tc, tc2, tc3), whatever the flags say, so that GpuBench times the preps
     * side by side in one run.
     */
    public void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
                    Tensor[] states, KdaForm form, Tensor out, boolean tensorCores, String prepVersion) {
        dev.bind();
        KdaKernels.run(this, CudaTensor.cast(q), CudaTensor.cast(k), CudaTensor.cast(v), CudaTensor.cast(g), CudaTensor.cast(beta),
                heads, headDim, seg, states, form, written(out), tensorCores, KdaKernels.prepKernel(prepVersion));
    }

    /** Whether {@link #kda} runs prefill chunks through TF32 tensor cores ({@code kimimesh.cuda.kdaChunk=tc} or {@code kdaPrep=tc|tc2|tc3}). */
    public static boolean kdaTensorCores() {
        return KdaKernels.TENSOR_CORES || KdaKernels.PREP_TENSOR_CORES;
    }

    private final java.util.Set<String> sharedRaised = new java.util.HashSet<>();

    /** Raises a KDA kernel's dynamic shared memory limit once (Hopper allows up to 227 KiB per block). */
    void kdaShared(String kernel, int bytes) {
        if (bytes > 227 * 1024) throw new IllegalArgumentException("KDA head dim too large for " + kernel);
        if (bytes > 48 * 1024 && sharedRaised.add(kernel)) {
            Driver.setMaxDynamicShared(dev.kda.function(kernel), 227 * 1024);
            // the chunk prep is sized so that two blocks share an SM: that needs the largest carveout
            Driver.preferMaxShared(dev.kda.function(kernel));
        }
    }

    // ---- MLA ----

    @Override
    public void mlaAttention(Tensor q, Tensor[] latents, Tensor[] kRots, Weight kvB, int heads, int nope, int rope, int vDim,
                             float scale, Segments seg, Tensor out) {
        dev.bind();
        MlaKernels.run(this, CudaTensor.cast(q), latents, kRots, CudaWeight.cast(kvB), heads, nope, rope, vDim, scale, seg,
                written(out));
    }

    /**
     * {@link #mlaAttention} with the bf16-compute prefill path (the fused flash kernel for Kimi Linear's head dims)
     * whatever {@code kimimesh.cuda.gemm} says, so that the kernel checks reach it in the default mode.
     */
    public void mlaAttentionBf16(Tensor q, Tensor[] latents, Tensor[] kRots, Weight kvB, int heads, int nope, int rope, int vDim,
                                 float scale, Segments seg, Tensor out) {
        dev.bind();
        MlaKernels.run(this, CudaTensor.cast(q), latents, kRots, CudaWeight.cast(kvB), heads, nope, rope, vDim, scale, seg,
                written(out), true);
    }

    /** Raises an MLA kernel's dynamic shared memory limit once, with the largest carveout (flash kernels: 67..137 KiB). */
    void mlaShared(String kernel, int bytes) {
        mlaShared(dev.mla, kernel, bytes);
    }

    /** {@link #mlaShared(String, int)} for a kernel of another module (mla_decode_v3.cu's split: up to 155 KiB). */
    void mlaShared(KernelModule module, String kernel, int bytes) {
        if (bytes > 48 * 1024 && sharedRaised.add(kernel)) {
            Driver.setMaxDynamicShared(module.function(kernel), bytes);
            Driver.preferMaxShared(module.function(kernel));
        }
    }

    // ---- MoE ----

    @Override
    public Routing route(Tensor logits, Weight bias, RouterSpec spec) {
        dev.bind();
        CudaTensor l = CudaTensor.cast(logits);
        checkRoute(l, spec);
        return routed(l, spec, (de, dw) -> routeOnDevice(l, bias, spec, de, dw));
    }

    /**
     * {@link #route} through the prefill routing kernel ({@code rows}: a warp a row, where the router allows it) or
     * moe_route ({@code block}), for the kernel checks (the two must agree bit for bit).
     */
    public Routing routePrefill(Tensor logits, Weight bias, RouterSpec spec, String kernel) {
        dev.bind();
        CudaTensor l = CudaTensor.cast(logits);
        checkRoute(l, spec);
        if (!kernel.equals("rows") && !kernel.equals("block")) throw new IllegalArgumentException("routePrefill: kernel rows or block, not " + kernel);
        return routed(l, spec, (de, dw) -> PrefillExperts.route(this, l, bias, spec, de, dw, kernel.equals("rows")));
    }

    /** Queues a routing kernel ({@code queue} gets the device experts and weights arrays) and reads its [T, k] result back. */
    private Routing routed(CudaTensor l, RouterSpec spec, java.util.function.BiConsumer<Long, Long> queue) {
        int t = l.rows(), k = spec.topK();
        int[] experts = new int[t * k];
        float[] weights = new float[t * k];
        if (t == 0) return new Routing(0, k, experts, weights);
        DeviceBuffer de = dev.scratch(4L * t * k), dw = dev.scratch(4L * t * k);
        queue.accept(de.ptr, dw.ptr);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment he = a.allocate(4L * t * k, 16), hw = a.allocate(4L * t * k, 16);
            Driver.copyDtoH(he, de.ptr, 4L * t * k, dev.stream);
            Driver.copyDtoH(hw, dw.ptr, 4L * t * k, dev.stream);
            dev.synchronize();
            MemorySegment.copy(he, ValueLayout.JAVA_INT, 0, experts, 0, experts.length);
            MemorySegment.copy(hw, ValueLayout.JAVA_FLOAT, 0, weights, 0, weights.length);
        }
        dev.free(de);
        dev.free(dw);
        return new Routing(t, k, experts, weights);
    }

    private static void checkRoute(CudaTensor l, RouterSpec spec) {
        int e = l.cols(), k = spec.topK();
        if (e != spec.numExperts()) throw new IllegalArgumentException("router logits have " + e + " experts, spec " + spec.numExperts());
        if (k > e || k < 1) throw new IllegalArgumentException("router top-k " + k + " of " + e + " experts");
        if (spec.numExpertGroup() > 64) throw new IllegalArgumentException("router: more than 64 expert groups");
    }

    /** Queues the routing kernel: experts (ints) and weights (floats), [rows, topK] each, stay on the device. */
    void routeOnDevice(CudaTensor l, Weight bias, RouterSpec spec, long experts, long weights) {
        checkRoute(l, spec);
        int e = l.cols();
        dev.moe.launch("moe_route", l.rows(), 1, 1, 256, 8 * e, dev.stream, l.ptr(), bias == null ? 0L : floats(CudaWeight.cast(bias)),
                e, spec.topK(), spec.softmax() ? 1 : 0, spec.numExpertGroup(), spec.topkGroup(), spec.renormalize() ? 1 : 0,
                spec.weights() == RouterWeights.BIAS_CORRECTED ? 1 : 0, spec.routedScalingFactor(), experts, weights);
    }

    @Override
    public void routeAndRunExperts(Tensor logits, Weight bias, RouterSpec spec, Tensor x, ExpertWeights[] experts, Tensor out) {
        dev.bind();
        CudaTensor l = CudaTensor.cast(logits), xi = CudaTensor.cast(x), o = written(out);
        if (MoeKernels.routeAndRun(this, l, bias, spec, xi, experts, o)) return;
        // more rows (prefill): grouped on the device (-Dkimimesh.cuda.moeRouting=host: on the host)
        if (PrefillExperts.DEVICE_ROUTING && PrefillExperts.run(this, l, bias, spec, xi, experts, o, prefillGlue())) return;
        moeExperts(x, route(logits, bias, spec), experts, out);
    }

    /**
     * With {@code -Dkimimesh.cuda.moeReadback=overlap} and more rows than the decode path's grouped kernels
     * take: the device-grouped prefill experts' routing, counts and count read-back are queued now, and {@code finish}
     * waits for the counts (an event, not the stream) and queues the rest, so that the caller's work in between (the
     * shared expert) keeps the device busy while the host waits and lays the pairs out. Same result as
     * {@link #routeAndRunExperts}.
     */
    @Override
    public RoutedExperts startRoutedExperts(Tensor logits, Weight bias, RouterSpec spec, Tensor x, ExpertWeights[] experts) {
        dev.bind();
        CudaTensor l = CudaTensor.cast(logits), xi = CudaTensor.cast(x);
        PrefillExperts.Started s = PrefillExperts.OVERLAP && PrefillExperts.DEVICE_ROUTING && l.rows() > MoeKernels.GROUPED_MAX_ROWS
                ? PrefillExperts.start(this, l, bias, spec, xi, experts, prefillGlue()) : null;
        if (s == null) return Backend.super.startRoutedExperts(logits, bias, spec, x, experts);
        return out -> {
            dev.bind();
            if (!PrefillExperts.finish(s, written(out))) moeExperts(x, route(logits, bias, spec), experts, out);
        };
    }

    /**
     * With {@code -Dkimimesh.cuda.moeReadback=early}: yes for the rows {@link #startRoutedExperts} overlaps (the
     * device-grouped prefill experts), so that the whole shared expert is queued behind the count read-back.
     */
    @Override
    public boolean routeFirst(int rows) {
        return PrefillExperts.EARLY && PrefillExperts.DEVICE_ROUTING && rows > MoeKernels.GROUPED_MAX_ROWS
                && prefillGlue() != MoeKernels.Glue.CONVERT;
    }

    /** How the host-routed or device-grouped prefill experts feed their GEMMs in this backend's mode. */
    private static MoeKernels.Glue prefillGlue() {
        return GEMM != Gemm.Mode.BF16 || !Gemm.BF16_OPERANDS ? MoeKernels.Glue.CONVERT
                : MoeKernels.BATCHED_EXPERT_GEMM ? MoeKernels.Glue.BATCHED : MoeKernels.Glue.BF16;
    }

    /**
     * Routing and experts of many rows in the bf16-compute mode whatever {@code kimimesh.cuda.gemm} says, for the kernel
     * checks: {@code grouping} {@code host} (routed on the host, run as {@link #moeExpertsBf16}), {@code device}
     * ({@link PrefillExperts}), {@code device-per-group} (its combine after each glue group instead of one at the end) or
     * {@code device-bf16} (its expert GEMMs writing bf16 intermediates); {@code glue} {@code bf16} or {@code batched}.
     */
    public void routeAndRunExpertsBf16(Tensor logits, Weight bias, RouterSpec spec, Tensor x, ExpertWeights[] experts, Tensor out,
                                       String glue, String grouping) {
        dev.bind();
        MoeKernels.Glue g = switch (glue) {
            case "bf16" -> MoeKernels.Glue.BF16;
            case "batched" -> MoeKernels.Glue.BATCHED;
            default -> throw new IllegalArgumentException("routeAndRunExpertsBf16: glue must be bf16 or batched, not " + glue);
        };
        int onceRows = switch (grouping) {
            case "host" -> -1;
            case "device", "device-bf16" -> PrefillExperts.ONCE_ROWS;
            case "device-per-group" -> 0;
            default -> throw new IllegalArgumentException(
                    "routeAndRunExpertsBf16: grouping must be host, device, device-per-group or device-bf16, not " + grouping);
        };
        if (onceRows < 0) {
            moeExpertsBf16(x, route(logits, bias, spec), experts, out, glue);
        } else if (!PrefillExperts.run(this, CudaTensor.cast(logits), bias, spec, CudaTensor.cast(x), experts, written(out), g,
                onceRows, grouping.equals("device-bf16"))) {
            throw new IllegalArgumentException("device-grouped experts do not take these shapes: " + logits + ", " + x);
        }
    }

    // ---- sampling ----

    /** Samples each row on the device (sample.cu); empty for a top-k above {@link CudaSampler#MAX_TOP_K}. */
    @Override
    public Optional<SampledTokens> sample(Tensor logits, RowSampling[] rows) {
        return CudaSampler.sample(this, CudaTensor.cast(logits), rows);
    }

    private final java.util.Map<ExpertWeights[], java.util.Optional<MoeKernels.ExpertTable>> expertTables = new java.util.IdentityHashMap<>();

    /** The device table of a layer's expert weights (made once per array), or null when they are not uniform bf16. */
    synchronized MoeKernels.ExpertTable expertTable(ExpertWeights[] experts) {
        return expertTables.computeIfAbsent(experts,
                ex -> java.util.Optional.ofNullable(MoeKernels.ExpertTable.build(ex, weightMemory, dev.stream))).orElse(null);
    }

    @Override
    public void moeExperts(Tensor x, Routing routing, ExpertWeights[] experts, Tensor out) {
        dev.bind();
        MoeKernels.experts(this, CudaTensor.cast(x), routing, experts, written(out), prefillGlue());
    }

    /**
     * {@link #moeExperts} with the expert GEMMs of the bf16-compute mode whatever {@code kimimesh.cuda.gemm} says, for
     * the kernel checks. {@code glue}: {@code convert} (fp32 gather and SwiGLU, a conversion before each GEMM: the
     * earlier path), {@code bf16} (the gather and SwiGLU write bf16 operands; the same bf16 values for experts of more
     * than {@link #GEMV_MAX_ROWS} rows) or {@code batched} (as bf16, one batched GEMM per bucket of experts).
     */
    public void moeExpertsBf16(Tensor x, Routing routing, ExpertWeights[] experts, Tensor out, String glue) {
        dev.bind();
        MoeKernels.Glue g = switch (glue) {
            case "convert" -> MoeKernels.Glue.CONVERT;
            case "bf16" -> MoeKernels.Glue.BF16;
            case "batched" -> MoeKernels.Glue.BATCHED;
            default -> throw new IllegalArgumentException("moeExpertsBf16: glue must be convert, bf16 or batched, not " + glue);
        };
        MoeKernels.expertsBf16(this, CudaTensor.cast(x), routing, experts, written(out), g);
    }

    /**
     * Records a decode step as a CUDA graph: its temporaries come from a pool of the graph's own, its small uploads
     * go to one pinned region (copied before each replay), and the token ids, positions and sampling parameters are
     * region slots that each replay rewrites. Anything that would bake a per-step value into the graph (a copy at a
     * position, a cuBLAS product over a cache length, a wait for the device) throws, and the step is not recorded.
     */
    @Override
    public Optional<DecodeGraph> captureDecode(Runnable step) {
        dev.bind();
        dev.synchronize();
        StepArena arena = new StepArena();
        dev.arenas.add(arena);
        forgetPositions();
        MemorySegment[] g = null;
        RuntimeException failure = null;
        try {
            Driver.beginCapture(dev.stream);
        } catch (RuntimeException e) {
            dev.arenas.remove(arena);
            arena.close();
            throw e;
        }
        try {
            dev.arena = arena;
            step.run();
        } catch (RuntimeException e) {
            failure = e;
        } finally {
            dev.arena = null;
            positions = null; // a region slice: not the pool's
            positionsOf = null;
            try {
                g = Driver.endCapture(dev.stream);
            } catch (RuntimeException e) {
                if (failure == null) failure = e;
            }
        }
        if (failure == null && (arena.idsAt < 0 || arena.samplingAt < 0)) failure = new IllegalStateException("the step did not embed and sample");
        if (failure != null) {
            if (g != null) Driver.graphDestroy(g[0], g[1]);
            dev.arenas.remove(arena);
            arena.close();
            throw failure;
        }
        return Optional.of(new StepGraph(g[0], g[1], arena));
    }

    /** A recorded decode step and what it owns. */
    private final class StepGraph implements DecodeGraph {
        private final MemorySegment graph, exec;
        private final StepArena arena;
        private boolean closed;

        StepGraph(MemorySegment graph, MemorySegment exec, StepArena arena) {
            this.graph = graph;
            this.exec = exec;
            this.arena = arena;
        }

        @Override
        public Optional<SampledTokens> replay(int[] ids, int[] pos, RowSampling[] rows) {
            if (closed) throw new IllegalStateException("replay of a closed decode graph");
            int n = arena.samplingRows;
            if (ids.length != arena.idsCount || rows.length != n || (arena.positionsAt >= 0 && pos.length != arena.positionsCount)) {
                throw new IllegalArgumentException("replay of a step of " + arena.idsCount + " sequences with " + ids.length + " ids, "
                        + pos.length + " positions, " + rows.length + " sampling rows");
            }
            long[] params = CudaSampler.params(rows, arena.vocab);
            if (params == null) return Optional.empty();
            dev.bind();
            synchronized (dev) {
                arena.write(arena.idsAt, ids);
                if (arena.positionsAt >= 0) arena.write(arena.positionsAt, pos);
                arena.write(arena.samplingAt, params);
                Driver.copyHtoD(arena.device, arena.host, arena.used(), dev.stream);
                Driver.graphLaunch(exec, dev.stream);
                dev.synchronize();
                int[] tokens = new int[n];
                float[] logprobs = new float[n];
                MemorySegment.copy(arena.results(), ValueLayout.JAVA_INT, 0, tokens, 0, n);
                MemorySegment.copy(arena.results(), ValueLayout.JAVA_FLOAT, 4L * n, logprobs, 0, n);
                return Optional.of(new SampledTokens(tokens, logprobs));
            }
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            dev.bind();
            dev.synchronize();
            Driver.graphDestroy(graph, exec);
            dev.arenas.remove(arena);
            arena.close();
        }
    }

    /**
     * Captures the device work {@code work} queues into a CUDA graph without running it (work that synchronises, or
     * uploads from pageable memory, cannot be captured). Replaying repeats the same kernels on the same buffers with the
     * same arguments: a measure of a step's device time without host launch gaps.
     */
    public CapturedWork capture(Runnable work) {
        dev.bind();
        dev.synchronize();
        Driver.beginCapture(dev.stream);
        MemorySegment[] g;
        try {
            work.run();
        } finally {
            g = Driver.endCapture(dev.stream);
        }
        return new CapturedWork(g[0], g[1]);
    }

    /** An instantiated CUDA graph on this backend's stream. */
    public final class CapturedWork implements AutoCloseable {
        private final MemorySegment graph, exec;

        CapturedWork(MemorySegment graph, MemorySegment exec) {
            this.graph = graph;
            this.exec = exec;
        }

        public void replay() {
            Driver.graphLaunch(exec, dev.stream);
        }

        @Override
        public void close() {
            dev.synchronize();
            Driver.graphDestroy(graph, exec);
        }
    }

    /** Runs {@code work} as the range a profiler started with profiling off records (synchronised at both ends). */
    public void profiled(Runnable work) {
        dev.bind();
        dev.synchronize();
        Driver.profiler(true);
        try {
            work.run();
            dev.synchronize();
        } finally {
            Driver.profiler(false);
        }
    }

    /**
     * Runs {@code work} with a GPU-side timeline of every op it queues ({@link LaunchTimeline}: events around each
     * launch, cuBLAS call and copy, host waits timed) and returns the report: per phase GPU, idle and host
     * milliseconds, and where the GPU waited for the host. For benchmarks: the events slow the work a little.
     */
    public String timeline(Runnable work) {
        dev.bind();
        return LaunchTimeline.record(dev, work);
    }

    /** Device time of {@code work} in milliseconds, by events around it on the stream. */
    public float time(Runnable work) {
        dev.bind();
        MemorySegment a = Driver.eventCreate(), b = Driver.eventCreate();
        try {
            Driver.eventRecord(a, dev.stream);
            work.run();
            Driver.eventRecord(b, dev.stream);
            return Driver.elapsedMs(a, b);
        } finally {
            Driver.eventDestroy(a);
            Driver.eventDestroy(b);
        }
    }

    @Override
    public void close() {
        dev.bind();
        dev.synchronize();
        for (long p : weightMemory) Driver.memFree(p);
        weightMemory.clear();
        dev.close();
    }
}
