package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.RouterSpec;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.util.Arrays;

/**
 * The bf16 GEMM operands written by their producers (RMSNorm, add + RMSNorm, gated RMSNorm, SwiGLU: CudaBackend's bf16
 * copies, -Dkimimesh.cuda.fusedOperands) and kda_gate_v4, in any mode. Each producer's fp32 output must be bit-identical
 * to the kernel without the copy (the same arithmetic) and its copy bit-identical to f32_to_bf16 of that output (round to
 * nearest even, done here on the host); each reader (the bf16 GEMMs, the MoE gather) must give the bits of the path that
 * converts; a write into a tensor must drop its copy.
 */
final class OperandCheck {
    private final Backend cpu = new CpuBackend();
    private final CudaBackend gpu;
    private final RandomTensors r;
    private final Compare cmp;

    OperandCheck(CudaBackend gpu, long seed, Compare cmp) {
        this.gpu = gpu;
        this.r = new RandomTensors(seed);
        this.cmp = cmp;
    }

    /** f32_to_bf16's rounding (round to nearest even; the inputs here are finite), widened back to fp32. */
    static float bf16(float f) {
        int b = Float.floatToRawIntBits(f);
        return Float.intBitsToFloat((b + 0x7FFF + ((b >>> 16) & 1)) & 0xFFFF0000);
    }

    private void identical(String what, float[] got, float[] want) {
        if (Arrays.equals(got, want)) cmp.pass(what, "bit-identical");
        else cmp.fail(what, "differs");
    }

    /** t's bf16 copy against the host rounding of t's fp32 values. */
    private void copyOf(String what, Tensor t) {
        copyOf(gpu, cmp, what, "out", t);
    }

    /** As above, for any check: {@code name} names t in the check's label. */
    static void copyOf(CudaBackend gpu, Compare cmp, String what, String name, Tensor t) {
        float[] copy = gpu.downloadBf16Copy(t);
        if (copy == null) {
            cmp.fail(what + " bf16 copy", "none was made");
            return;
        }
        float[] v = gpu.download(t);
        for (int i = 0; i < v.length; i++) v[i] = bf16(v[i]);
        String label = what + " bf16 copy = f32_to_bf16(" + name + ")";
        if (Arrays.equals(copy, v)) cmp.pass(label, "bit-identical");
        else cmp.fail(label, "differs");
    }

    void run() {
        try {
            norms();
            swiglu();
            readers();
            kdaGate();
        } finally {
            gpu.bf16Copies(null);
        }
    }

    private void norms() {
        // the bench width (one float4 per thread), KDA's per-head gated norm (groups of 128), a row count not a multiple of 4
        for (int[] s : new int[][] {{40, 2304}, {33, 4096}}) {
            int t = s[0], h = s[1];
            boolean heads = h == 4096;
            Weight nw = gpu.weight(r.weight("norm" + h, DType.BF16, 1, 0.1, heads ? 128 : h));
            float[] x = r.floats(t * h, 2), gate = r.floats(t * h, 3);
            Tensor xs = gpu.upload(x, t, h), gs = gpu.upload(gate, t, h), plain = gpu.allocate(t, h), fused = gpu.allocate(t, h);
            String what = (heads ? "gatedRmsNorm " : "rmsNorm ") + t + "x" + h;
            gpu.bf16Copies(false);
            if (heads) gpu.gatedRmsNorm(xs, nw, 1e-5f, gs, plain);
            else gpu.rmsNorm(xs, nw, 1e-5f, plain);
            gpu.bf16Copies(true);
            if (heads) gpu.gatedRmsNorm(xs, nw, 1e-5f, gs, fused);
            else gpu.rmsNorm(xs, nw, 1e-5f, fused);
            identical(what + " with bf16 copy = without", gpu.download(fused), gpu.download(plain));
            copyOf(what, fused);
            if (!heads) {
                // add + norm: the sum written back and the normed output
                float[] d = r.floats(t * h, 2);
                Tensor acc1 = gpu.upload(x, t, h), acc2 = gpu.upload(x, t, h), ds = gpu.upload(d, t, h);
                gpu.bf16Copies(false);
                gpu.addRmsNorm(acc1, ds, nw, 1e-5f, plain);
                gpu.bf16Copies(true);
                gpu.addRmsNorm(acc2, ds, nw, 1e-5f, fused);
                identical("addRmsNorm " + t + "x" + h + " with bf16 copy = without (out)", gpu.download(fused), gpu.download(plain));
                identical("addRmsNorm " + t + "x" + h + " with bf16 copy = without (sum)", gpu.download(acc2), gpu.download(acc1));
                copyOf("addRmsNorm " + t + "x" + h, fused);
                for (Tensor one : new Tensor[] {acc1, acc2, ds}) gpu.release(one);
            }
            for (Tensor one : new Tensor[] {xs, gs, plain, fused}) gpu.release(one);
        }
        // few rows (decode): no copy
        gpu.bf16Copies(true);
        Weight nw = gpu.weight(r.weight("norm2304", DType.BF16, 1, 0.1, 2304));
        Tensor few = gpu.upload(r.floats(8 * 2304, 2), 8, 2304), o = gpu.allocate(8, 2304);
        gpu.rmsNorm(few, nw, 1e-5f, o);
        if (gpu.downloadBf16Copy(o) == null) cmp.pass("rmsNorm 8 rows: no bf16 copy", "GEMV rows");
        else cmp.fail("rmsNorm 8 rows: no bf16 copy", "a copy was made");
        gpu.release(few);
        gpu.release(o);
    }

    private void swiglu() {
        int t = 40, c = 1000;
        Tensor g = gpu.upload(r.floats(t * c, 3), t, c), u = gpu.upload(r.floats(t * c, 3), t, c);
        Tensor plain = gpu.allocate(t, c), fused = gpu.allocate(t, c);
        gpu.bf16Copies(false);
        gpu.swiglu(g, u, plain);
        gpu.bf16Copies(true);
        gpu.swiglu(g, u, fused);
        identical("swiglu " + t + "x" + c + " with bf16 copy = without", gpu.download(fused), gpu.download(plain));
        copyOf("swiglu " + t + "x" + c, fused);
        for (Tensor one : new Tensor[] {g, u, plain, fused}) gpu.release(one);
    }

    /** The GEMMs and the MoE gather read the copy: the same bits as converting; a write drops the copy. */
    private void readers() {
        int t = 300, h = 256;
        Weight nw = gpu.weight(r.weight("norm" + h, DType.BF16, 1, 0.1, h));
        Weight[] ws = {gpu.weight(r.weight("wa", DType.BF16, 0, 0.1, 96, h)), gpu.weight(r.weight("wb", DType.BF16, 0, 0.1, 40, h))};
        Tensor x = gpu.upload(r.floats(t * h, 2), t, h), normed = gpu.allocate(t, h), bare = gpu.allocate(t, h);
        gpu.bf16Copies(true);
        gpu.rmsNorm(x, nw, 1e-5f, normed);
        gpu.bf16Copies(false);
        gpu.copy(normed, bare); // the same fp32 values, no copy: the readers convert
        Tensor[] viaCopy = {gpu.allocate(t, 96), gpu.allocate(t, 40)}, converted = {gpu.allocate(t, 96), gpu.allocate(t, 40)};
        gpu.matmulsBf16(normed, ws, viaCopy);
        gpu.matmulsBf16(bare, ws, converted);
        for (int i = 0; i < 2; i++) identical("matmulsBf16 of a norm's bf16 copy = converted (" + i + ")", gpu.download(viaCopy[i]), gpu.download(converted[i]));
        if (gpu.bf16Compute()) {
            gpu.matmul(normed, ws[0], viaCopy[0]);
            gpu.matmul(bare, ws[0], converted[0]);
            identical("matmul (bf16 mode) of a norm's bf16 copy = converted", gpu.download(viaCopy[0]), gpu.download(converted[0]));
        }
        // experts grouped on the device, gathering from the copy
        int e = 64, k = 8, inter = 128;
        Tensor logits = gpu.upload(r.floats(t * e, 2), t, e);
        Weight bias = gpu.weight(r.weight("bias", DType.BF16, 0, 0.05, e));
        RouterSpec spec = new RouterSpec(e, k, false, 1, 1, true, 2.446f, RouterWeights.BIAS_CORRECTED);
        ExpertWeights[] ex = new ExpertWeights[e];
        for (int i = 0; i < e; i++) {
            ex[i] = new ExpertWeights(gpu.weight(r.weight("w1", DType.BF16, 0, 0.1, inter, h)), gpu.weight(r.weight("w3", DType.BF16, 0, 0.1, inter, h)),
                    gpu.weight(r.weight("w2", DType.BF16, 0, 0.1, h, inter)));
        }
        float[] start = r.floats(t * h, 1);
        for (String glue : new String[] {"bf16", "batched"}) {
            Tensor a = gpu.upload(start, t, h), b = gpu.upload(start, t, h);
            gpu.routeAndRunExpertsBf16(logits, bias, spec, normed, ex, a, glue, "device");
            gpu.routeAndRunExpertsBf16(logits, bias, spec, bare, ex, b, glue, "device");
            identical("experts (" + glue + ") gathering a norm's bf16 copy = converting", gpu.download(a), gpu.download(b));
            gpu.release(a);
            gpu.release(b);
        }
        // a write into the tensor drops its copy: the GEMM then converts the new values
        Tensor other = gpu.upload(r.floats(t * h, 1), t, h);
        gpu.copy(other, normed);
        if (gpu.downloadBf16Copy(normed) == null) cmp.pass("a copy into a normed tensor drops its bf16 copy", "dropped");
        else cmp.fail("a copy into a normed tensor drops its bf16 copy", "still there");
        gpu.matmulsBf16(normed, ws, viaCopy);
        gpu.matmulsBf16(other, ws, converted);
        identical("matmulsBf16 after the write = of the new values", gpu.download(viaCopy[0]), gpu.download(converted[0]));
        for (Tensor one : new Tensor[] {x, normed, bare, viaCopy[0], viaCopy[1], converted[0], converted[1], logits, other}) gpu.release(one);
    }

    /** kda_gate_v4 against the CPU backend and against kda_gate (the same expressions: the same bits), in place too. */
    private void kdaGate() {
        int t = 37, heads = 32, d = 128;
        var aInfo = r.weight("A_log", DType.F32, 0, 1, 1, 1, heads, 1);
        var dtInfo = r.weight("dt_bias", DType.F32, 0, 1, heads * d);
        Weight[] aLog = {cpu.weight(aInfo), gpu.weight(aInfo)}, dt = {cpu.weight(dtInfo), gpu.weight(dtInfo)};
        float[] f = r.floats(t * heads * d, 8);
        Tensor fc = cpu.upload(f, t, heads * d), gc = cpu.allocate(t, heads * d);
        cpu.kdaGate(fc, aLog[0], dt[0], d, gc);
        Tensor fg = gpu.upload(f, t, heads * d), v1 = gpu.allocate(t, heads * d), v4 = gpu.allocate(t, heads * d);
        gpu.kdaGate(fg, aLog[1], dt[1], d, v1, false);
        gpu.kdaGate(fg, aLog[1], dt[1], d, v4, true);
        float[] got = gpu.download(v4);
        cmp.check("kdaGate v4 " + t + "x" + heads * d, got, cpu.download(gc), KernelCheck.FP32);
        identical("kdaGate v4 = kda_gate", got, gpu.download(v1));
        gpu.kdaGate(fg, aLog[1], dt[1], d, fg, true);
        identical("kdaGate v4 in place = kda_gate", gpu.download(fg), gpu.download(v1));
        for (Tensor one : new Tensor[] {fg, v1, v4}) gpu.release(one);
    }
}
