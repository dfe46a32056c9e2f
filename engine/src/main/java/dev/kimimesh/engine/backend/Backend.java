package dev.kimimesh.engine.backend;

import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.util.Optional;

/**
 * The compute seam of the engine. The model is written once against these operations; the CPU backend (Vector API)
 * and the CUDA backend implement them. Activations are float32 {@link Tensor}s [rows, cols]; weights keep their
 * checkpoint dtype (bf16 on the real model) and every product accumulates in float32.
 *
 * <p>Operations may run asynchronously on a device; {@link #download} and {@link #route} synchronise.
 * Output tensors never alias inputs unless the method says so.
 */
public interface Backend extends AutoCloseable {
    String name();

    // ---- memory ----

    /** A zero-filled tensor. */
    Tensor allocate(int rows, int cols);

    /**
     * A tensor for a result that is written in full before anything reads it (a step's temporaries, a matmul's
     * output): zero-filled here; a device backend may skip the fill (one memset per temporary: about 60 in a decode
     * step of the 4-layer bench model).
     */
    default Tensor scratch(int rows, int cols) {
        return allocate(rows, cols);
    }

    Tensor upload(float[] data, int rows, int cols);

    /** The tensor's values, row-major. */
    float[] download(Tensor t);

    /** Copies {@code src} into {@code dst} (same shape). */
    void copy(Tensor src, Tensor dst);

    void zero(Tensor t);

    /** Frees a tensor made by {@link #allocate} or {@link #upload}; a no-op where memory is garbage-collected. */
    default void release(Tensor t) {}

    /** Makes a checkpoint tensor usable by this backend (the CPU maps it in place; a GPU uploads it). */
    Weight weight(TensorInfo t);

    /** Waits until all queued work has finished. */
    default void synchronize() {}

    // ---- dense math ----

    /** {@code out[r] = table[ids[r]]}. */
    void embed(Weight table, int[] ids, Tensor out);

    /** {@code out = x W^T}: x [T, in], W [out, in], out [T, out]; fp32 accumulation. */
    void matmul(Tensor x, Weight w, Tensor out);

    /**
     * {@code out[i] = x W[i]^T} for every i: several projections of the same input (q/k/v, gate/up), which a backend
     * may run as one parallel pass over all their rows. Each result equals what {@link #matmul} gives.
     */
    default void matmuls(Tensor x, Weight[] w, Tensor[] out) {
        if (w.length != out.length) throw new IllegalArgumentException("matmuls: " + w.length + " weights, " + out.length + " outputs");
        for (int i = 0; i < w.length; i++) matmul(x, w[i], out[i]);
    }

    /**
     * RMSNorm over groups of {@code w.rows()} consecutive columns (one group = a whole row when the weight has the
     * row's width; one head when it has the head's width): {@code out = w * x / sqrt(mean(x^2) + eps)}.
     * {@code out} may be {@code x}.
     */
    void rmsNorm(Tensor x, Weight w, float eps, Tensor out);

    /** {@code out = rmsNorm(x) * sigmoid(gate)}, grouped as {@link #rmsNorm}; gate has x's shape. */
    void gatedRmsNorm(Tensor x, Weight w, float eps, Tensor gate, Tensor out);

    /**
     * KDA's output norm: {@code out = gatedRmsNorm(o, w, eps, gate)} with the output gate {@code gate = gLow gB^T}
     * from its low-rank half; {@code out} may be {@code o}. A device backend may compute each head's gate rows and
     * its norm in one block. The same values as {@link #matmul} then {@link #gatedRmsNorm}, which is what this
     * default does.
     */
    default void kdaOutputNorm(Tensor o, Weight w, float eps, Tensor gLow, Weight gB, Tensor out) {
        Tensor gate = scratch(o.rows(), gB.rows());
        matmul(gLow, gB, gate);
        gatedRmsNorm(o, w, eps, gate, out);
        release(gate);
    }

    /** {@code acc += x}. */
    void add(Tensor acc, Tensor x);

    /** {@code acc += x} then {@code out = rmsNorm(acc)}: a decoder layer's residual add and the norm after it, fusable. */
    default void addRmsNorm(Tensor acc, Tensor x, Weight w, float eps, Tensor out) {
        add(acc, x);
        rmsNorm(acc, w, eps, out);
    }

    /** {@code out = silu(gate) * up}. {@code out} may be {@code gate}. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /** {@code out = sigmoid(x)}. {@code out} may be {@code x}. */
    void sigmoid(Tensor x, Tensor out);

    /**
     * A SwiGLU MLP's first half, {@code act = silu(x gate^T) * (x up^T)}, together with other projections of the same
     * input ({@code alsoOut[i] = x also[i]^T}, e.g. the MoE router's logits): a device backend may compute the pair and
     * the SwiGLU in one pass (no gate and up tensors, one launch fewer in a decode step). The same values as
     * {@link #matmuls} then {@link #swiglu}, which is what this default does.
     */
    default void swigluProjection(Tensor x, Weight gate, Weight up, Tensor act, Weight[] also, Tensor[] alsoOut) {
        if (also.length != alsoOut.length) throw new IllegalArgumentException("swigluProjection: " + also.length + " weights, " + alsoOut.length + " outputs");
        Tensor g = scratch(x.rows(), gate.rows()), u = scratch(x.rows(), up.rows());
        Weight[] w = java.util.Arrays.copyOf(also, also.length + 2);
        Tensor[] o = java.util.Arrays.copyOf(alsoOut, alsoOut.length + 2);
        w[also.length] = gate;
        w[also.length + 1] = up;
        o[also.length] = g;
        o[also.length + 1] = u;
        matmuls(x, w, o);
        swiglu(g, u, act);
        release(g);
        release(u);
    }

    /**
     * A dense SwiGLU MLP, {@code out = down(silu(x gate^T) * (x up^T))}: the activation between the projections is this
     * method's own, so a device backend may keep it in another type. {@link #swigluProjection} then {@link #matmul},
     * which is what this default does.
     */
    default void swigluMlp(Tensor x, ExpertWeights w, Tensor out) {
        Tensor act = scratch(x.rows(), w.gate().rows());
        swigluProjection(x, w.gate(), w.up(), act, new Weight[0], new Tensor[0]);
        matmul(act, w.down(), out);
        release(act);
    }

    /** {@code out[i] = x[rows[i]]}. */
    void gatherRows(Tensor x, int[] rows, Tensor out);

    /** Copies {@code src} into rows [row, row + src.rows()) of {@code dst} (same column count). */
    void copyRows(Tensor src, Tensor dst, int row);

    /**
     * Appends each segment's rows of {@code rows} [T, cols] to its cache: segment i's rows go to rows
     * [position(i), position(i) + length(i)) of {@code caches[i]} (the MLA latent and k_rot caches). A device
     * backend may do it in one launch that reads the positions from device memory (a replayable decode step).
     */
    default void appendRows(Tensor rows, Tensor[] caches, Segments seg) {
        if (caches.length != seg.count()) throw new IllegalArgumentException("appendRows: " + caches.length + " caches for " + seg.count() + " segments");
        for (int i = 0; i < caches.length; i++) copyRows(rows.rowSlice(seg.start(i), seg.length(i)), caches[i], seg.position(i));
    }

    /**
     * MLA's new cache rows: {@code latent = rmsNorm(latent, norm, eps)} in place, then {@link #appendRows} of it into
     * {@code latents} and, unless {@code kRot} is null, of {@code kRot} into {@code kRots}. A device backend may do
     * it in one launch for single-token segments (decode). The same values as the three calls, which is what this
     * default does.
     */
    default void appendLatentRows(Tensor latent, Weight norm, float eps, Tensor kRot, Tensor[] latents, Tensor[] kRots, Segments seg) {
        rmsNorm(latent, norm, eps, latent);
        appendRows(latent, latents, seg);
        if (kRot != null) appendRows(kRot, kRots, seg);
    }

    // ---- Kimi Delta Attention ----

    /**
     * Causal depthwise convolution of kernel K followed by SiLU, per segment. {@code x} [T, P] holds the pre-conv
     * inputs; {@code conv} is [P, 1, K] (tap K-1 = current token). {@code tails[i]} [K-1, P] holds the K-1 pre-conv
     * inputs before segment i (oldest first, zeros at a sequence start) and is updated to the last K-1 inputs.
     */
    void shortConvSilu(Tensor x, Weight conv, Segments seg, Tensor[] tails, Tensor out);

    /**
     * Several {@link #shortConvSilu} of one step at once (KDA's q, k and v): {@code tails[j]} are convolution j's
     * tails per segment. A device backend may run them as one launch.
     */
    default void shortConvSilus(Tensor[] x, Weight[] conv, Segments seg, Tensor[][] tails, Tensor[] out) {
        if (x.length != conv.length || x.length != tails.length || x.length != out.length) {
            throw new IllegalArgumentException("shortConvSilus: " + x.length + " inputs, " + conv.length + " weights, " + tails.length
                    + " tail sets, " + out.length + " outputs");
        }
        for (int j = 0; j < x.length; j++) shortConvSilu(x[j], conv[j], seg, tails[j], out[j]);
    }

    /**
     * KDA's inputs from the normed x: {@code qkvOut[j] = silu(shortConv(x qkv[j]^T))} (tails advanced as
     * {@link #shortConvSilus} does) and the other projections of x, {@code alsoOut[i] = x also[i]^T}. The projections
     * before the convolutions are this method's own, so a device backend may keep them in another type (the
     * bf16-compute mode's bf16 linear outputs). The same values as {@link #matmuls} of qkv then also, followed by
     * {@link #shortConvSilus}, which is what this default does.
     */
    default void kdaProjections(Tensor x, Weight[] qkv, Weight[] conv, Segments seg, Tensor[][] tails, Tensor[] qkvOut, Weight[] also,
                                Tensor[] alsoOut) {
        if (qkv.length != qkvOut.length || also.length != alsoOut.length) {
            throw new IllegalArgumentException("kdaProjections: " + qkv.length + " q/k/v weights for " + qkvOut.length + " outputs, "
                    + also.length + " others for " + alsoOut.length);
        }
        Tensor[] pre = new Tensor[qkv.length];
        for (int j = 0; j < pre.length; j++) pre[j] = scratch(x.rows(), qkv[j].rows());
        Weight[] w = java.util.Arrays.copyOf(qkv, qkv.length + also.length);
        Tensor[] o = java.util.Arrays.copyOf(pre, pre.length + alsoOut.length);
        System.arraycopy(also, 0, w, qkv.length, also.length);
        System.arraycopy(alsoOut, 0, o, pre.length, alsoOut.length);
        matmuls(x, w, o);
        shortConvSilus(pre, conv, seg, tails, qkvOut);
        for (Tensor t : pre) release(t);
    }

    /**
     * Per-channel log decay {@code g = -exp(A_log[head]) * softplus(f + dt_bias)}; f and g are [T, heads * headDim]
     * head-major, A_log has one value per head. {@code g} may be {@code f}.
     */
    void kdaGate(Tensor f, Weight aLog, Weight dtBias, int headDim, Tensor g);

    /**
     * KDA's two per-token gates: the decay {@code g = kdaGate(fLow fB^T)} from the low-rank half {@code fLow}, and
     * {@code beta = sigmoid(beta)} in place. A device backend may take both into the f_b product's launch. The same
     * values as {@link #matmul}, {@link #kdaGate} and {@link #sigmoid}, which is what this default does.
     */
    default void kdaGates(Tensor fLow, Weight fB, Weight aLog, Weight dtBias, int headDim, Tensor g, Tensor beta) {
        matmul(fLow, fB, g);
        kdaGate(g, aLog, dtBias, headDim, g);
        sigmoid(beta, beta);
    }

    /**
     * The KDA recurrence per head: q, k L2-normalised (eps 1e-6) and q scaled by headDim^-1/2 inside;
     * {@code S_t = (I - b k k^T) Diag(exp g_t) S_{t-1} + b k v^T}, {@code o_t = S_t^T q_t}.
     * q, k, g: [T, heads * headDim]; v and out: [T, heads * headDim]; beta: [T, heads] (after the sigmoid).
     * {@code states[i]}: [heads * headDim, headDim] (per head [k_dim, v_dim]) of segment i, updated in place.
     */
    void kda(Tensor q, Tensor k, Tensor v, Tensor g, Tensor beta, int heads, int headDim, Segments seg,
             Tensor[] states, KdaForm form, Tensor out);

    // ---- Multi-head latent attention (NoPE) ----

    /**
     * Causal MLA over each segment's latent cache. q [T, heads * (nope + rope)] (per head [q_nope | q_rope]);
     * {@code latents[i]} [>= position + length, R] and {@code kRots[i]} [>= position + length, rope] already hold
     * segment i's own rows; kv_b_proj [heads * (nope + vDim), R] expands the latent to per-head [k_nope | v].
     * Scores are {@code scale * (q_nope . k_nope + q_rope . k_rot)}; out [T, heads * vDim].
     * A backend may absorb kv_b_proj into the query and output (decode) or expand the cache (prefill).
     */
    void mlaAttention(Tensor q, Tensor[] latents, Tensor[] kRots, Weight kvB, int heads, int nope, int rope, int vDim,
                      float scale, Segments seg, Tensor out);

    // ---- Mixture of experts ----

    /**
     * Chooses experts from router logits [T, E]: scores = sigmoid (or softmax) of the logits, choice by top-k of
     * {@code scores + bias} (grouped when numExpertGroup > 1), weights from the unbiased or bias-corrected scores as
     * the spec says, renormalised, times routed_scaling_factor. Returns to the host (the mesh dispatches by it).
     */
    Routing route(Tensor logits, Weight bias, RouterSpec spec);

    /**
     * {@code out[r] += sum_j weight(r, j) * expert_{e(r,j)}(x[r])} over the chosen experts that {@code experts}
     * holds (a null entry is an expert served elsewhere).
     */
    void moeExperts(Tensor x, Routing routing, ExpertWeights[] experts, Tensor out);

    /**
     * {@link #route} then {@link #moeExperts} for experts computed in this process, when nobody needs the routing on
     * the host: a device backend may keep the routing on the device and skip the synchronisation {@link #route}
     * implies. Same result as the two calls.
     */
    default void routeAndRunExperts(Tensor logits, Weight bias, RouterSpec spec, Tensor x, ExpertWeights[] experts, Tensor out) {
        moeExperts(x, route(logits, bias, spec), experts, out);
    }

    /**
     * {@link #routeAndRunExperts} in two halves, so that the caller can queue other work between them (the MoE layer's
     * shared expert): a device backend may queue the routing at once and wait for what its host needs of it (the
     * experts' row counts) only at {@link RoutedExperts#finish}, while the device runs that other work. Same result as
     * routeAndRunExperts; {@code logits} and {@code x} must stay unchanged until finish. Default: all of it at finish.
     */
    default RoutedExperts startRoutedExperts(Tensor logits, Weight bias, RouterSpec spec, Tensor x, ExpertWeights[] experts) {
        return out -> routeAndRunExperts(logits, bias, spec, x, experts, out);
    }

    /**
     * Whether a MoE layer of {@code rows} rows should compute its router logits alone and start its routed experts
     * ({@link #startRoutedExperts}) before it queues the shared expert, rather than computing the logits together with
     * the shared expert's gate and up ({@link #swigluProjection}) first: a device backend that waits for part of the
     * routing on its host then has the whole shared expert queued behind that wait. The same products either way
     * ({@link #matmuls} gives what {@link #matmul} gives). Default: no.
     */
    default boolean routeFirst(int rows) {
        return false;
    }

    /** Routed experts begun by {@link #startRoutedExperts}. */
    interface RoutedExperts {
        /** {@code out[r] +=} the row's weighted expert outputs, as {@link #routeAndRunExperts} adds them. */
        void finish(Tensor out);
    }

    // ---- sampling ----

    /**
     * Picks one token per row of {@code logits} [rows, vocab] where the logits are, so that only ids (and logprobs)
     * travel to the host instead of the whole rows. Empty when this backend does not sample, or not with these
     * parameters: the caller then downloads the logits and samples on the host with the same uniform numbers.
     * Same tokens as the engine's Sampler given the same numbers.
     */
    default Optional<SampledTokens> sample(Tensor logits, RowSampling[] rows) {
        return Optional.empty();
    }

    // ---- replayable decode steps ----

    /**
     * Records the device work of one decode step, which {@code step} queues (embed, forward, logits and
     * {@link #sample} of one new token per sequence), so that later steps of the same sequences replay it with new
     * token ids, positions and sampling numbers instead of queueing it again (a CUDA graph). {@code step} runs once,
     * with its host-side effects (states advance), but its device work runs only at the returned graph's first
     * {@link DecodeGraph#replay}. Empty when this backend cannot record steps; an exception when this step cannot be
     * recorded (nothing of it ran on the device).
     */
    default Optional<DecodeGraph> captureDecode(Runnable step) {
        return Optional.empty();
    }

    @Override
    default void close() {}
}
