package dev.kimimesh.engine.config;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Edits of a config.json tree that keep it consistent: fewer or more layers (the 1-based layer lists follow, with the
 * last layer full attention as in the real model), another expert count, another vocabulary.
 */
public final class ConfigOverrides {
    private ConfigOverrides() {}

    /**
     * Sets num_hidden_layers to n. Layer i (1-based) keeps its kind from the old lists where it had one, layers past
     * the old end follow the real pattern (every fourth is full attention), and layer n is always full attention.
     */
    public static void layers(ObjectNode cfg, int n) {
        if (n < 1) throw new ConfigException("num_hidden_layers override must be >= 1, got " + n);
        int old = cfg.path("num_hidden_layers").asInt(0);
        cfg.put("num_hidden_layers", n);
        if (!(cfg.get("linear_attn_config") instanceof ObjectNode lin)) return;
        Set<Integer> full = new TreeSet<>();
        for (var v : lin.path("full_attn_layers")) full.add(v.asInt());
        List<Integer> kda = new ArrayList<>(), mla = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            boolean isFull = i == n || (i <= old ? full.contains(i) : i % 4 == 0);
            (isFull ? mla : kda).add(i);
        }
        ArrayNode k = lin.putArray("kda_layers"), f = lin.putArray("full_attn_layers");
        kda.forEach(k::add);
        mla.forEach(f::add);
        int dense = cfg.path("first_k_dense_replace").asInt(0);
        if (dense > n) cfg.put("first_k_dense_replace", n);
    }

    /** Sets num_experts to e (and top-k to at most e). */
    public static void experts(ObjectNode cfg, int e) {
        if (e < 1) throw new ConfigException("num_experts override must be >= 1, got " + e);
        cfg.put("num_experts", e);
        int k = cfg.path("num_experts_per_token").asInt(e);
        if (k > e) cfg.put("num_experts_per_token", e);
        int groups = cfg.path("num_expert_group").asInt(1);
        if (groups > 1 && e % groups != 0) {
            throw new ConfigException("num_experts " + e + " is not a multiple of num_expert_group " + groups);
        }
    }

    /** Sets the vocabulary size and the special ids the model needs to agree with its tokenizer. */
    public static void vocabulary(ObjectNode cfg, int vocabSize, int bos, int eos, int pad) {
        if (vocabSize < 1) throw new ConfigException("vocab_size override must be >= 1, got " + vocabSize);
        cfg.put("vocab_size", vocabSize);
        cfg.put("bos_token_id", bos);
        cfg.put("eos_token_id", eos);
        cfg.put("pad_token_id", pad);
    }
}
