package dev.kimimesh.engine.bench;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Bytes of weights a forward step reads and the floating-point work it does, from the checkpoint's own tensors:
 * every non-expert weight of every layer, the routed experts actually chosen, the embedding rows and lm_head.
 */
public final class WeightTraffic {
    private final KimiLinearConfig c;
    private final long layerBytes, headBytes, embedRowBytes;
    private final long[] expertBytes;
    private final long layerMatmulParams, expertParams, headParams;

    public WeightTraffic(Checkpoint ckpt) {
        this.c = ckpt.config();
        long lb = 0, lp = 0, hb = 0, hp = 0;
        long[] eb = new long[c.numHiddenLayers()];
        long ep = 0;
        for (String name : ckpt.names()) {
            TensorInfo t = ckpt.tensor(name);
            long bytes = t.data().byteSize();
            if (name.startsWith("model.layers.")) {
                int l = Integer.parseInt(name.substring(13, name.indexOf('.', 13)));
                if (l >= c.numHiddenLayers()) continue;
                if (name.contains(".experts.")) {
                    if (name.contains(".experts.0.")) {
                        eb[l] += bytes;
                        if (l == firstMoe()) ep += t.numel();
                    }
                } else {
                    lb += bytes;
                    if (t.rank() == 2) lp += t.numel(); // matmul weights; norms, conv taps and biases are noise
                }
            } else if (name.equals("lm_head.weight") || name.equals("model.norm.weight")) {
                hb += bytes;
                if (name.equals("lm_head.weight")) hp = t.numel();
            }
        }
        TensorInfo emb = ckpt.tensor("model.embed_tokens.weight");
        this.embedRowBytes = emb.data().byteSize() / emb.shape()[0];
        if (c.tieWordEmbeddings()) {
            hb += emb.data().byteSize();
            hp = emb.numel();
        }
        this.layerBytes = lb;
        this.headBytes = hb;
        this.expertBytes = eb;
        this.layerMatmulParams = lp;
        this.expertParams = ep;
        this.headParams = hp;
    }

    /**
     * The mapped weight segments a batch-1 decode step reads, by address: every non-expert layer weight,
     * experts 0..top-k-1 of each MoE layer (the same bytes as any top-k), {@code model.norm} and {@code lm_head}
     * (the embedding table when tied). The read-bandwidth floor is measured over exactly these pages.
     */
    public static List<MemorySegment> batchOneStepSegments(Checkpoint ckpt) {
        KimiLinearConfig c = ckpt.config();
        List<MemorySegment> out = new ArrayList<>();
        for (String name : ckpt.names()) {
            boolean read;
            if (name.startsWith("model.layers.")) {
                int l = Integer.parseInt(name.substring(13, name.indexOf('.', 13)));
                int e = name.indexOf(".experts.");
                read = l < c.numHiddenLayers()
                        && (e < 0 || Integer.parseInt(name.substring(e + 9, name.indexOf('.', e + 9))) < c.numExpertsPerToken());
            } else {
                read = name.equals("lm_head.weight") || name.equals("model.norm.weight")
                        || (c.tieWordEmbeddings() && name.equals("model.embed_tokens.weight"));
            }
            if (read) out.add(ckpt.tensor(name).data());
        }
        out.sort(java.util.Comparator.comparingLong(MemorySegment::address));
        return out;
    }

    private int firstMoe() {
        for (int l = 0; l < c.numHiddenLayers(); l++) if (c.isMoeLayer(l)) return l;
        return -1;
    }

    /** Bytes read by one decode step of {@code batch} tokens; {@code expertsTouched[l]} = distinct experts of layer l. */
    public double stepBytes(int batch, double[] expertsTouched) {
        double b = (double) batch * embedRowBytes + layerBytes + headBytes;
        for (int l = 0; l < expertBytes.length; l++) b += expertsTouched[l] * expertBytes[l];
        return b;
    }

    /** Distinct experts per MoE layer at batch 1: exactly top-k. */
    public double[] topK() {
        double[] e = new double[c.numHiddenLayers()];
        for (int l = 0; l < e.length; l++) if (c.isMoeLayer(l)) e[l] = c.numExpertsPerToken();
        return e;
    }

    /** Matmul FLOPs of one token through all layers (its top-k experts, no lm_head). */
    public double tokenMatmulFlops() {
        int moe = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) if (c.isMoeLayer(l)) moe++;
        return 2.0 * (layerMatmulParams + (double) moe * c.numExpertsPerToken() * expertParams);
    }

    /** FLOPs of lm_head for one row of logits. */
    public double headFlops() {
        return 2.0 * headParams;
    }

    /**
     * Attention FLOPs (beyond the projections) of a prompt of {@code len} tokens: the chunkwise KDA (state reads and
     * update, about 6 d^2 per token and head, plus the in-chunk products, about 4 d C) and MLA with kv_b_proj expanded
     * over the context (2 r (nope + v) per cached token, plus scores and values over the causal prefix).
     */
    public double promptAttentionFlops(int len) {
        double f = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            if (c.layerKind(l) == LayerKind.KDA) {
                double d = c.kdaHeadDim();
                f += (double) len * c.kdaNumHeads() * (6 * d * d + 4 * d * 64);
            } else {
                int h = c.numAttentionHeads();
                f += 2.0 * len * c.kvLoraRank() * h * (c.qkNopeHeadDim() + c.vHeadDim());
                double pairs = (double) len * (len + 1) / 2;
                f += 2.0 * pairs * h * (c.qkHeadDim() + c.vHeadDim());
            }
        }
        return f;
    }

    public double embedRowBytes() {
        return embedRowBytes;
    }
}
