package dev.kimimesh.engine.checkpoint;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensor names and shapes a Kimi Linear checkpoint must hold for a given config (the real checkpoint's names),
 * and the check of a loaded checkpoint against them.
 */
public final class CheckpointLayout {
    private CheckpointLayout() {}

    public static String layer(int l) {
        return "model.layers." + l + ".";
    }

    /** Every expected tensor name with its shape, in checkpoint order. */
    public static Map<String, long[]> expected(KimiLinearConfig c) {
        Map<String, long[]> m = new LinkedHashMap<>();
        int h = c.hiddenSize();
        m.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = layer(l);
            m.put(p + "input_layernorm.weight", new long[] {h});
            if (c.layerKind(l) == LayerKind.KDA) {
                int pw = c.kdaProjectionSize(), d = c.kdaHeadDim(), k = c.shortConvKernelSize();
                String a = p + "self_attn.";
                for (String x : new String[] {"q", "k", "v"}) m.put(a + x + "_proj.weight", new long[] {pw, h});
                for (String x : new String[] {"q", "k", "v"}) m.put(a + x + "_conv1d.weight", new long[] {pw, 1, k});
                m.put(a + "A_log", new long[] {1, 1, c.kdaNumHeads(), 1});
                m.put(a + "f_a_proj.weight", new long[] {d, h});
                m.put(a + "f_b_proj.weight", new long[] {pw, d});
                m.put(a + "dt_bias", new long[] {pw});
                m.put(a + "b_proj.weight", new long[] {c.kdaNumHeads(), h});
                m.put(a + "g_a_proj.weight", new long[] {d, h});
                m.put(a + "g_b_proj.weight", new long[] {pw, d});
                m.put(a + "o_norm.weight", new long[] {d});
                m.put(a + "o_proj.weight", new long[] {h, pw});
            } else {
                String a = p + "self_attn.";
                int nh = c.numAttentionHeads(), qk = c.qkHeadDim();
                if (c.qLoraRank() == 0) {
                    m.put(a + "q_proj.weight", new long[] {(long) nh * qk, h});
                } else {
                    m.put(a + "q_a_proj.weight", new long[] {c.qLoraRank(), h});
                    m.put(a + "q_a_layernorm.weight", new long[] {c.qLoraRank()});
                    m.put(a + "q_b_proj.weight", new long[] {(long) nh * qk, c.qLoraRank()});
                }
                m.put(a + "kv_a_proj_with_mqa.weight", new long[] {c.kvLoraRank() + c.qkRopeHeadDim(), h});
                m.put(a + "kv_a_layernorm.weight", new long[] {c.kvLoraRank()});
                m.put(a + "kv_b_proj.weight", new long[] {(long) nh * (c.qkNopeHeadDim() + c.vHeadDim()), c.kvLoraRank()});
                m.put(a + "o_proj.weight", new long[] {h, (long) nh * c.vHeadDim()});
            }
            m.put(p + "post_attention_layernorm.weight", new long[] {h});
            if (c.isMoeLayer(l)) {
                String e = p + "block_sparse_moe.";
                m.put(e + "gate.weight", new long[] {c.numExperts(), h});
                m.put(e + "gate.e_score_correction_bias", new long[] {c.numExperts()});
                int mi = c.moeIntermediateSize();
                for (int x = 0; x < c.numExperts(); x++) {
                    String ex = e + "experts." + x + ".";
                    m.put(ex + "w1.weight", new long[] {mi, h});
                    m.put(ex + "w2.weight", new long[] {h, mi});
                    m.put(ex + "w3.weight", new long[] {mi, h});
                }
                if (c.numSharedExperts() > 0) {
                    int si = c.sharedExpertIntermediateSize();
                    m.put(e + "shared_experts.gate_proj.weight", new long[] {si, h});
                    m.put(e + "shared_experts.up_proj.weight", new long[] {si, h});
                    m.put(e + "shared_experts.down_proj.weight", new long[] {h, si});
                }
            } else {
                int in = c.intermediateSize();
                m.put(p + "mlp.gate_proj.weight", new long[] {in, h});
                m.put(p + "mlp.up_proj.weight", new long[] {in, h});
                m.put(p + "mlp.down_proj.weight", new long[] {h, in});
            }
        }
        m.put("model.norm.weight", new long[] {h});
        if (!c.tieWordEmbeddings()) m.put("lm_head.weight", new long[] {c.vocabSize(), h});
        return m;
    }

    /** The dtype the real checkpoint stores a tensor in (what init-random writes). */
    public static DType storedDType(String name) {
        return name.endsWith(".A_log") || name.endsWith(".dt_bias") ? DType.F32 : DType.BF16;
    }

    /** Throws a {@link CheckpointException} naming the first missing, unexpected or mis-shaped tensor. */
    public static void validate(KimiLinearConfig c, Map<String, TensorInfo> tensors) {
        Map<String, long[]> expected = expected(c);
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            TensorInfo t = tensors.get(e.getKey());
            if (t == null) {
                throw new CheckpointException("missing tensor '" + e.getKey() + "' (expected shape "
                        + Arrays.toString(e.getValue()) + " for this config.json)");
            }
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new CheckpointException(t.where() + ": shape " + Arrays.toString(t.shape()) + " does not match "
                        + Arrays.toString(e.getValue()) + " expected from config.json");
            }
            if (t.dtype() != DType.BF16 && t.dtype() != DType.F16 && t.dtype() != DType.F32) {
                throw new CheckpointException(t.where() + ": dtype " + t.dtype() + " is not a float type (bf16, f16, f32)");
            }
        }
        for (String name : tensors.keySet()) {
            if (!expected.containsKey(name) && !ignorable(c, name)) {
                throw new CheckpointException(tensors.get(name).where() + ": unexpected tensor for this config.json");
            }
        }
    }

    /**
     * Tensors a checkpoint may carry that the forward pass does not use: rotary caches, MTP layers, and lm_head.weight
     * when the embeddings are tied (transformers loads it, then ties lm_head to the embedding, so the stored copy
     * is never read).
     */
    private static boolean ignorable(KimiLinearConfig c, String name) {
        if (name.endsWith("rotary_emb.inv_freq")) return true;
        if (c.tieWordEmbeddings() && name.equals("lm_head.weight")) return true;
        if (name.startsWith("model.layers.")) {
            String rest = name.substring("model.layers.".length());
            int dot = rest.indexOf('.');
            try {
                return Integer.parseInt(rest.substring(0, dot)) >= c.numHiddenLayers(); // MTP (nextn) layers
            } catch (RuntimeException e) {
                return false;
            }
        }
        return false;
    }
}
