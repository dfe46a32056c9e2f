package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.ExpertWeights;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.cpu.CpuBackend;
import java.util.Arrays;

/**
 * The bf16 linear outputs of -Dkimimesh.cuda.activations=bf16 (CudaBackend's Bf16Activations), in any mode: KDA's q / k
 * / v projections read by short_conv4_silu_bf16in, the SwiGLU's gate / up read by swiglu_bf16in_f32_bf16 and the dense
 * MLP whose activation stays bf16, KDA's f_b and g_b projections read by kda_gate_v4_bf16in and rms_norm_v4_gbf16_bf16,
 * against
 * the CPU backend (fp32) at the bf16-compute tolerance; each must also differ from the fp32 path's bits (else the bf16
 * path did not run), and the activation's bf16 copy must be f32_to_bf16 of its fp32 values.
 */
final class ActivationCheck {
    private final Backend cpu = new CpuBackend();
    private final CudaBackend gpu;
    private final RandomTensors r;
    private final Compare cmp;

    ActivationCheck(CudaBackend gpu, long seed, Compare cmp) {
        this.gpu = gpu;
        this.r = new RandomTensors(seed);
        this.cmp = cmp;
    }

    void run() {
        try {
            // segments over 64 rows (the prefill path), with a short one among them, a row count not a multiple of 4,
            // tails from earlier tokens; then the bench's widths (hidden 2304, KDA width 4096)
            kdaProjections(384, 512, 8, new int[] {1000, 5, 129}, new int[] {0, 3, 2});
            kdaProjections(2304, 4096, 32, new int[] {130, 70}, new int[] {0, 9});
            // the dense MLP's / shared expert's shapes with a router beside (MoE layer) and without (dense layer)
            swiglu(601, 2304, 1024, 64);
            swiglu(300, 256, 512, 0);
            mlp(601, 2304, 9216 / 4);
            mlp(300, 256, 512);
            // KDA's gates: the bench's width and low rank (4096, 128), head dim 128; a smaller head dim
            kdaGates(300, 128, 4096, 128, 32);
            kdaGates(70, 16, 256, 32, 8);
        } finally {
            gpu.bf16Activations(null);
            gpu.bf16Copies(null);
        }
    }

    private Weight[] w(String name, double offset, double scale, long... shape) {
        var t = r.weight(name, DType.BF16, offset, scale, shape);
        return new Weight[] {cpu.weight(t), gpu.weight(t)};
    }

    private void kdaProjections(int h, int p, int heads, int[] lens, int[] pos) {
        Segments seg = new Segments(lens, pos);
        int t = seg.totalRows(), low = 16;
        float[] x = r.floats(t * h, 1);
        Tensor xc = cpu.upload(x, t, h), xg = gpu.upload(x, t, h);
        double s = 1 / Math.sqrt(h);
        Weight[][] qkv = {w("q", 0, s, p, h), w("k", 0, s, p, h), w("v", 0, s, p, h)};
        Weight[][] conv = {w("qc", 0, 0.5, p, 1, 4), w("kc", 0, 0.5, p, 1, 4), w("vc", 0, 0.5, p, 1, 4)};
        Weight[][] also = {w("fa", 0, s, low, h), w("ga", 0, s, low, h), w("b", 0, s, heads, h)};
        int[] alsoCols = {low, low, heads};
        // three sides: the CPU, the GPU's bf16 path, the GPU's fp32 path (must differ from the bf16 one)
        Tensor[][] out = new Tensor[3][3], alsoOut = new Tensor[3][3];
        Tensor[][][] tails = new Tensor[3][3][lens.length];
        for (int j = 0; j < 3; j++) {
            for (int i = 0; i < lens.length; i++) {
                float[] tl = r.floats(3 * p, 1);
                tails[0][j][i] = cpu.upload(tl, 3, p);
                tails[1][j][i] = gpu.upload(tl, 3, p);
                tails[2][j][i] = gpu.upload(tl, 3, p);
            }
        }
        for (int side = 0; side < 3; side++) {
            Backend b = side == 0 ? cpu : gpu;
            for (int j = 0; j < 3; j++) {
                out[side][j] = b.allocate(t, p);
                alsoOut[side][j] = b.allocate(t, alsoCols[j]);
            }
            if (side > 0) gpu.bf16Activations(side == 1);
            b.kdaProjections(side == 0 ? xc : xg, pick(qkv, side), pick(conv, side), seg, tails[side], out[side], pick(also, side),
                    alsoOut[side]);
        }
        gpu.bf16Activations(null);
        String what = "kdaProjections bf16 H=" + h + " P=" + p + " " + Arrays.toString(lens);
        boolean differs = false;
        for (int j = 0; j < 3; j++) {
            float[] got = gpu.download(out[1][j]);
            cmp.check(what + " qkv " + j, got, cpu.download(out[0][j]), KernelCheck.GEMM_BF16);
            differs |= !Arrays.equals(got, gpu.download(out[2][j]));
            for (int i = 0; i < lens.length; i++) {
                cmp.check(what + " tail " + j + "." + i, gpu.download(tails[1][j][i]), cpu.download(tails[0][j][i]), KernelCheck.GEMM_BF16);
            }
            cmp.check(what + " also " + j, gpu.download(alsoOut[1][j]), cpu.download(alsoOut[0][j]), KernelCheck.GEMM_BF16);
        }
        if (differs) cmp.pass(what + " took the bf16 path", "differs from the fp32 path");
        else cmp.fail(what + " took the bf16 path", "bit-identical to the fp32 path");
    }

    private void swiglu(int t, int h, int inter, int experts) {
        float[] x = r.floats(t * h, 1);
        Tensor xc = cpu.upload(x, t, h), xg = gpu.upload(x, t, h);
        double s = 1 / Math.sqrt(h);
        Weight[] gate = w("gate", 0, s, inter, h), up = w("up", 0, s, inter, h);
        Weight[][] also = experts > 0 ? new Weight[][] {w("router", 0, s, experts, h)} : new Weight[0][];
        Tensor[] act = new Tensor[3];
        Tensor[][] alsoOut = new Tensor[3][also.length];
        for (int side = 0; side < 3; side++) {
            Backend b = side == 0 ? cpu : gpu;
            act[side] = b.allocate(t, inter);
            for (int i = 0; i < also.length; i++) alsoOut[side][i] = b.allocate(t, experts);
            if (side > 0) {
                gpu.bf16Activations(side == 1);
                gpu.bf16Copies(side == 1);
            }
            b.swigluProjection(side == 0 ? xc : xg, gate[side == 0 ? 0 : 1], up[side == 0 ? 0 : 1], act[side], pick(also, side), alsoOut[side]);
        }
        gpu.bf16Activations(null);
        gpu.bf16Copies(null);
        String what = "swigluProjection bf16 T=" + t + " H=" + h + " I=" + inter + (experts > 0 ? " + router" : "");
        float[] got = gpu.download(act[1]);
        cmp.check(what, got, cpu.download(act[0]), KernelCheck.GEMM_BF16);
        for (int i = 0; i < also.length; i++) cmp.check(what + " router", gpu.download(alsoOut[1][i]), cpu.download(alsoOut[0][i]), KernelCheck.GEMM_BF16);
        if (!Arrays.equals(got, gpu.download(act[2]))) cmp.pass(what + " took the bf16 path", "differs from the fp32 path");
        else cmp.fail(what + " took the bf16 path", "bit-identical to the fp32 path");
        OperandCheck.copyOf(gpu, cmp, what, "act", act[1]);
    }

    /**
     * The dense MLP with its activation only in bf16 (swigluMlp): against the CPU, against the fp32 path (must differ),
     * and in the bf16-compute mode bit-identical to swigluProjection's bf16 path followed by the down projection of its
     * copy (the same bf16 activation reaches the same GEMM).
     */
    private void mlp(int t, int h, int inter) {
        float[] x = r.floats(t * h, 1);
        Tensor xc = cpu.upload(x, t, h), xg = gpu.upload(x, t, h);
        double s = 1 / Math.sqrt(h);
        Weight[] gate = w("gate", 0, s, inter, h), up = w("up", 0, s, inter, h), down = w("down", 0, 1 / Math.sqrt(inter), h, inter);
        Tensor[] out = new Tensor[3];
        for (int side = 0; side < 3; side++) {
            Backend b = side == 0 ? cpu : gpu;
            int i = side == 0 ? 0 : 1;
            out[side] = b.allocate(t, h);
            if (side > 0) gpu.bf16Activations(side == 1);
            b.swigluMlp(side == 0 ? xc : xg, new ExpertWeights(gate[i], up[i], down[i]), out[side]);
        }
        String what = "swigluMlp bf16 T=" + t + " H=" + h + " I=" + inter;
        float[] got = gpu.download(out[1]);
        cmp.check(what, got, cpu.download(out[0]), KernelCheck.GEMM_BF16);
        if (!Arrays.equals(got, gpu.download(out[2]))) cmp.pass(what + " took the bf16 path", "differs from the fp32 path");
        else cmp.fail(what + " took the bf16 path", "bit-identical to the fp32 path");
        if (gpu.bf16Compute()) {
            gpu.bf16Activations(true);
            gpu.bf16Copies(true);
            Tensor act = gpu.allocate(t, inter), two = gpu.allocate(t, h);
            gpu.swigluProjection(xg, gate[1], up[1], act, new Weight[0], new Tensor[0]);
            gpu.matmul(act, down[1], two);
            if (Arrays.equals(got, gpu.download(two))) cmp.pass(what + " = swigluProjection + down", "bit-identical");
            else cmp.fail(what + " = swigluProjection + down", "differs");
            gpu.release(act);
            gpu.release(two);
        }
        gpu.bf16Activations(null);
        gpu.bf16Copies(null);
    }

    /**
     * KDA's decay gate from a bf16 f_b projection (kdaGates) and its output gate from a bf16 g_b projection
     * (kdaOutputNorm): against the CPU, against the fp32 path (must differ); the output's bf16 copy = f32_to_bf16(out).
     */
    private void kdaGates(int t, int low, int width, int headDim, int heads) {
        float[] fl = r.floats(t * low, 1), gl = r.floats(t * low, 1), be = r.floats(t * heads, 1), o = r.floats(t * width, 1);
        double s = 1 / Math.sqrt(low);
        Weight[] fb = w("fb", 0, s, width, low), gb = w("gb", 0, s, width, low), norm = w("onorm", 1, 0.1, headDim);
        var aLog = r.weight("alog", DType.F32, 0, 0.5, 1, 1, heads, 1);
        var dt = r.weight("dt", DType.F32, 0, 0.5, width);
        Weight[] al = {cpu.weight(aLog), gpu.weight(aLog)}, dtb = {cpu.weight(dt), gpu.weight(dt)};
        Tensor[] g = new Tensor[3], beta = new Tensor[3], out = new Tensor[3];
        for (int side = 0; side < 3; side++) {
            Backend b = side == 0 ? cpu : gpu;
            int i = side == 0 ? 0 : 1;
            Tensor f = b.upload(fl, t, low), gLow = b.upload(gl, t, low), on = b.upload(o, t, width);
            g[side] = b.allocate(t, width);
            beta[side] = b.upload(be, t, heads);
            out[side] = on;
            if (side > 0) {
                gpu.bf16Activations(side == 1);
                gpu.bf16Copies(side == 1);
            }
            b.kdaGates(f, fb[i], al[i], dtb[i], headDim, g[side], beta[side]);
            b.kdaOutputNorm(on, norm[i], 1e-5f, gLow, gb[i], on); // in place, as KdaAttention does
        }
        gpu.bf16Activations(null);
        gpu.bf16Copies(null);
        String what = "kdaGates / kdaOutputNorm bf16 T=" + t + " low=" + low + " width=" + width + " d=" + headDim;
        float[] gg = gpu.download(g[1]), og = gpu.download(out[1]);
        cmp.check(what + " g", gg, cpu.download(g[0]), KernelCheck.GEMM_BF16);
        cmp.check(what + " beta", gpu.download(beta[1]), cpu.download(beta[0]), KernelCheck.FP32);
        cmp.check(what + " out", og, cpu.download(out[0]), KernelCheck.GEMM_BF16);
        if (!Arrays.equals(gg, gpu.download(g[2])) && !Arrays.equals(og, gpu.download(out[2]))) {
            cmp.pass(what + " took the bf16 paths", "both differ from the fp32 paths");
        } else {
            cmp.fail(what + " took the bf16 paths", "a result is bit-identical to the fp32 path");
        }
        OperandCheck.copyOf(gpu, cmp, what, "out", out[1]);
    }

    /** Side 0 takes the CPU's weights, sides 1 and 2 the GPU's. */
    private static Weight[] pick(Weight[][] pairs, int side) {
        Weight[] w = new Weight[pairs.length];
        for (int i = 0; i < pairs.length; i++) w[i] = pairs[i][side == 0 ? 0 : 1];
        return w;
    }
}
