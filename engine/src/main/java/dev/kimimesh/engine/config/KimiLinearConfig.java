package dev.kimimesh.engine.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The fields of a Hugging Face `config.json` of `model_type: kimi_linear` that change the computation.
 * Layer indices here are 0-based; the JSON's `kda_layers` / `full_attn_layers` are 1-based.
 */
public record KimiLinearConfig(
        int vocabSize,
        int hiddenSize,
        int numHiddenLayers,
        int intermediateSize,
        float rmsNormEps,
        boolean tieWordEmbeddings,
        int bosTokenId,
        int eosTokenId,
        int padTokenId,
        long maxPositionEmbeddings,
        LayerKind[] layerKinds,
        // KDA (linear attention)
        int kdaNumHeads,
        int kdaHeadDim,
        int shortConvKernelSize,
        // MLA (full attention)
        int numAttentionHeads,
        int qkNopeHeadDim,
        int qkRopeHeadDim,
        int vHeadDim,
        int kvLoraRank,
        int qLoraRank,
        // FFN
        int firstKDenseReplace,
        int moeLayerFreq,
        int numExperts,
        int numExpertsPerToken,
        int moeIntermediateSize,
        int numSharedExperts,
        float routedScalingFactor,
        boolean moeRenormalize,
        boolean routerSoftmax,
        int numExpertGroup,
        int topkGroup) {

    /** rms_norm eps of kv_a_layernorm: the original builds it with the class default, not config.rms_norm_eps. */
    public static final float KV_A_LAYERNORM_EPS = 1e-6f;

    private static final ObjectMapper JSON = new ObjectMapper();

    public static KimiLinearConfig load(Path file) {
        if (Files.isDirectory(file)) file = file.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new ConfigException(file + ": config.json is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read config.json: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new ConfigException(file + ": config.json is not a JSON object");
        try {
            return parse(root);
        } catch (ConfigException e) {
            throw new ConfigException(file + ": " + e.getMessage(), e);
        }
    }

    public static KimiLinearConfig parse(String json) {
        try {
            return parse(JSON.readTree(json));
        } catch (IOException e) {
            throw new ConfigException("config.json is not valid JSON: " + e.getMessage(), e);
        }
    }

    /**
     * The MoE keys under the names transformers' KimiLinearConfig maps onto the original ones (its attribute_map),
     * so a config.json saved by transformers reads the same: alias -> original key.
     */
    private static final Map<String, String> ALIASES = Map.of(
            "num_local_experts", "num_experts",
            "n_routed_experts", "num_experts",
            "num_experts_per_tok", "num_experts_per_token",
            "n_shared_experts", "num_shared_experts",
            "n_group", "num_expert_group",
            "norm_topk_prob", "moe_renormalize");

    public static KimiLinearConfig parse(JsonNode c) {
        if (c instanceof ObjectNode o) {
            ObjectNode copy = null;
            for (Map.Entry<String, String> a : ALIASES.entrySet()) {
                if (o.hasNonNull(a.getKey()) && !o.hasNonNull(a.getValue())) {
                    if (copy == null) copy = o.deepCopy();
                    copy.set(a.getValue(), o.get(a.getKey()));
                }
            }
            if (copy != null) c = copy;
        }
        String modelType = text(c, "model_type", "kimi_linear");
        if (!modelType.equals("kimi_linear")) {
            throw new ConfigException("model_type is '" + modelType + "'; Kimi Mesh serves 'kimi_linear'");
        }
        String act = text(c, "hidden_act", "silu");
        if (!act.equals("silu")) throw new ConfigException("hidden_act '" + act + "' is not supported (only silu)");

        int hidden = positive(c, "hidden_size", null);
        int layers = positive(c, "num_hidden_layers", null);
        int vocab = positive(c, "vocab_size", null);

        // Layer kinds: kda_layers / full_attn_layers are 1-based in the real config.
        LayerKind[] kinds = new LayerKind[layers];
        JsonNode lin = c.get("linear_attn_config");
        int kdaHeads = 0, kdaHeadDim = 0, convK = 0;
        if (lin == null || lin.isNull()) {
            Arrays.fill(kinds, LayerKind.MLA);
        } else {
            kdaHeads = positive(lin, "num_heads", "linear_attn_config.");
            kdaHeadDim = positive(lin, "head_dim", "linear_attn_config.");
            convK = positive(lin, "short_conv_kernel_size", "linear_attn_config.");
            for (int l : layerList(lin, "kda_layers", layers)) assign(kinds, l, LayerKind.KDA);
            for (int l : layerList(lin, "full_attn_layers", layers)) assign(kinds, l, LayerKind.MLA);
            // The original decides by kda_layers alone ((i + 1) in kda_layers, else full attention);
            // full_attn_layers is only checked for consistency, so a layer in neither list is MLA.
            for (int i = 0; i < layers; i++) if (kinds[i] == null) kinds[i] = LayerKind.MLA;
        }
        boolean anyMla = Arrays.asList(kinds).contains(LayerKind.MLA);

        int nh = anyMla ? positive(c, "num_attention_heads", null) : intOr(c, "num_attention_heads", 0);
        int dn = anyMla ? positive(c, "qk_nope_head_dim", null) : intOr(c, "qk_nope_head_dim", 0);
        int dr = anyMla ? nonNegative(c, "qk_rope_head_dim") : intOr(c, "qk_rope_head_dim", 0);
        int dv = anyMla ? positive(c, "v_head_dim", null) : intOr(c, "v_head_dim", 0);
        int kvRank = anyMla ? positive(c, "kv_lora_rank", null) : intOr(c, "kv_lora_rank", 0);
        int qRank = 0;
        JsonNode qr = c.get("q_lora_rank");
        if (qr != null && !qr.isNull()) {
            if (!qr.canConvertToInt() || qr.asInt() <= 0) {
                throw new ConfigException("q_lora_rank must be null or a positive integer, got " + qr);
            }
            qRank = qr.asInt();
        }
        if (anyMla) {
            JsonNode nope = c.get("mla_use_nope");
            if (nope != null && !nope.asBoolean(false)) {
                throw new ConfigException("mla_use_nope=false (rotary MLA) is not supported: Kimi Linear's MLA uses NoPE");
            }
        }

        int numExperts = intOr(c, "num_experts", 0);
        int firstDense = intOr(c, "first_k_dense_replace", numExperts > 0 ? 0 : layers);
        int moeFreq = intOr(c, "moe_layer_freq", 1);
        if (moeFreq <= 0) throw new ConfigException("moe_layer_freq must be >= 1, got " + moeFreq);
        int topK = 0, moeI = 0, shared = 0, groups = 1, topkGroup = 1;
        float scaling = 1f;
        boolean renorm = true, softmax = false;
        boolean anyMoe = false;
        for (int i = 0; i < layers; i++) anyMoe |= numExperts > 0 && i >= firstDense && i % moeFreq == 0;
        boolean anyDense = false;
        for (int i = 0; i < layers; i++) anyDense |= !(numExperts > 0 && i >= firstDense && i % moeFreq == 0);
        if (anyMoe) {
            topK = positive(c, "num_experts_per_token", null);
            if (topK > numExperts) {
                throw new ConfigException("num_experts_per_token (" + topK + ") exceeds num_experts (" + numExperts + ")");
            }
            moeI = positive(c, "moe_intermediate_size", null);
            // the original's default is 0 shared experts (KimiLinearConfig(num_shared_experts=0))
            shared = c.hasNonNull("num_shared_experts") ? nonNegative(c, "num_shared_experts") : 0;
            scaling = (float) doubleOr(c, "routed_scaling_factor", 1.0);
            renorm = boolOr(c, "moe_renormalize", true);
            String fn = text(c, "moe_router_activation_func", "sigmoid").toLowerCase(Locale.ROOT);
            softmax = switch (fn) {
                case "sigmoid" -> false;
                case "softmax" -> true;
                default -> throw new ConfigException("moe_router_activation_func '" + fn + "' is not supported (sigmoid or softmax)");
            };
            groups = intOr(c, "num_expert_group", 1);
            topkGroup = intOr(c, "topk_group", 1);
            if (groups <= 0 || numExperts % groups != 0) {
                throw new ConfigException("num_expert_group (" + groups + ") must divide num_experts (" + numExperts + ")");
            }
            if (topkGroup <= 0 || topkGroup > groups) {
                throw new ConfigException("topk_group (" + topkGroup + ") must be in 1..num_expert_group (" + groups + ")");
            }
        }
        int inter = anyDense ? positive(c, "intermediate_size", null) : intOr(c, "intermediate_size", 0);
        if (intOr(c, "num_nextn_predict_layers", 0) != 0) {
            // MTP layers are not part of the forward pass of the served model; their tensors are simply not loaded.
        }
        double eps = doubleOr(c, "rms_norm_eps", 1e-6);
        if (!(eps > 0)) throw new ConfigException("rms_norm_eps must be > 0, got " + eps);

        long maxPos = c.has("model_max_length") ? c.get("model_max_length").asLong()
                : c.has("max_position_embeddings") ? c.get("max_position_embeddings").asLong() : 1L << 20;

        return new KimiLinearConfig(vocab, hidden, layers, inter, (float) eps,
                boolOr(c, "tie_word_embeddings", false),
                intOr(c, "bos_token_id", -1), eosId(c), intOr(c, "pad_token_id", -1), maxPos, kinds,
                kdaHeads, kdaHeadDim, convK,
                nh, dn, dr, dv, kvRank, qRank,
                firstDense, moeFreq, numExperts, topK, moeI, shared, scaling, renorm, softmax, groups, topkGroup);
    }

    public LayerKind layerKind(int layer) {
        return layerKinds[layer];
    }

    /** True when layer `layer` (0-based) has the routed MoE, false when it has the dense SwiGLU MLP. */
    public boolean isMoeLayer(int layer) {
        return numExperts > 0 && layer >= firstKDenseReplace && layer % moeLayerFreq == 0;
    }

    /** KDA projection width: heads x head_dim (need not equal hidden_size). */
    public int kdaProjectionSize() {
        return kdaNumHeads * kdaHeadDim;
    }

    public int qkHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    public int sharedExpertIntermediateSize() {
        return moeIntermediateSize * numSharedExperts;
    }

    public int countLayers(LayerKind kind) {
        int n = 0;
        for (LayerKind k : layerKinds) if (k == kind) n++;
        return n;
    }

    /** A few lines describing the model, for `kimi-mesh describe` and logs. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "kimi_linear: %d layers, hidden %d, vocab %d, rms_norm_eps %g%n",
                numHiddenLayers, hiddenSize, vocabSize, rmsNormEps));
        StringBuilder kinds = new StringBuilder();
        for (int i = 0; i < numHiddenLayers; i++) {
            kinds.append(layerKinds[i] == LayerKind.KDA ? 'K' : 'M');
        }
        sb.append("  layer kinds (0-based, K=KDA M=MLA): ").append(kinds).append('\n');
        if (countLayers(LayerKind.KDA) > 0) {
            sb.append(String.format(Locale.ROOT, "  KDA: %d heads x %d (projection %d), short conv kernel %d%n",
                    kdaNumHeads, kdaHeadDim, kdaProjectionSize(), shortConvKernelSize));
        }
        if (countLayers(LayerKind.MLA) > 0) {
            sb.append(String.format(Locale.ROOT,
                    "  MLA (NoPE): %d heads, qk %d+%d, v %d, kv_lora_rank %d, q_lora_rank %s%n",
                    numAttentionHeads, qkNopeHeadDim, qkRopeHeadDim, vHeadDim, kvLoraRank,
                    qLoraRank == 0 ? "none" : Integer.toString(qLoraRank)));
        }
        sb.append(String.format(Locale.ROOT, "  dense MLP in layers [0, %d): intermediate %d%n",
                Math.min(firstKDenseReplace, numHiddenLayers), intermediateSize));
        if (numExperts > 0) {
            sb.append(String.format(Locale.ROOT,
                    "  MoE: %d experts, top-%d (%s router, groups %d/%d), intermediate %d, %d shared, scaling %g, renormalise %b%n",
                    numExperts, numExpertsPerToken, routerSoftmax ? "softmax" : "sigmoid", topkGroup,
                    numExpertGroup, moeIntermediateSize, numSharedExperts, routedScalingFactor, moeRenormalize));
        }
        sb.append(String.format(Locale.ROOT, "  tokens: bos %d, eos %d, pad %d; max length %d; tied embeddings %b%n",
                bosTokenId, eosTokenId, padTokenId, maxPositionEmbeddings, tieWordEmbeddings));
        return sb.toString();
    }

    // ---- JSON helpers: each error names the field ----

    private static int eosId(JsonNode c) {
        JsonNode n = c.get("eos_token_id");
        if (n == null || n.isNull()) return -1;
        if (n.isArray()) return n.size() == 0 ? -1 : n.get(0).asInt();
        return n.asInt();
    }

    private static List<Integer> layerList(JsonNode lin, String field, int layers) {
        JsonNode n = lin.get(field);
        List<Integer> out = new ArrayList<>();
        if (n == null || n.isNull()) return out;
        if (!n.isArray()) throw new ConfigException("linear_attn_config." + field + " must be a list of 1-based layer numbers");
        for (JsonNode e : n) {
            if (!e.canConvertToInt()) throw new ConfigException("linear_attn_config." + field + " has a non-integer entry " + e);
            int oneBased = e.asInt();
            if (oneBased < 1 || oneBased > layers) {
                throw new ConfigException("linear_attn_config." + field + " names layer " + oneBased
                        + ", outside 1.." + layers + " (the lists are 1-based)");
            }
            out.add(oneBased - 1);
        }
        return out;
    }

    private static void assign(LayerKind[] kinds, int layer, LayerKind kind) {
        if (kinds[layer] != null && kinds[layer] != kind) {
            throw new ConfigException("linear_attn_config: layer " + (layer + 1)
                    + " (1-based) is in both kda_layers and full_attn_layers");
        }
        kinds[layer] = kind;
    }

    private static String text(JsonNode c, String f, String dflt) {
        JsonNode n = c.get(f);
        return n == null || n.isNull() ? dflt : n.asText();
    }

    private static int positive(JsonNode c, String f, String prefix) {
        JsonNode n = c.get(f);
        String name = (prefix == null ? "" : prefix) + f;
        if (n == null || n.isNull()) throw new ConfigException("missing field " + name);
        if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() <= 0) {
            throw new ConfigException(name + " must be a positive integer, got " + n);
        }
        return n.asInt();
    }

    private static int nonNegative(JsonNode c, String f) {
        JsonNode n = c.get(f);
        if (n == null || n.isNull()) throw new ConfigException("missing field " + f);
        if (!n.isIntegralNumber() || n.asInt() < 0) throw new ConfigException(f + " must be an integer >= 0, got " + n);
        return n.asInt();
    }

    private static int intOr(JsonNode c, String f, int dflt) {
        JsonNode n = c.get(f);
        if (n == null || n.isNull()) return dflt;
        if (!n.isIntegralNumber()) throw new ConfigException(f + " must be an integer, got " + n);
        return n.asInt();
    }

    private static double doubleOr(JsonNode c, String f, double dflt) {
        JsonNode n = c.get(f);
        if (n == null || n.isNull()) return dflt;
        if (!n.isNumber()) throw new ConfigException(f + " must be a number, got " + n);
        return n.asDouble();
    }

    private static boolean boolOr(JsonNode c, String f, boolean dflt) {
        JsonNode n = c.get(f);
        if (n == null || n.isNull()) return dflt;
        if (!n.isBoolean()) throw new ConfigException(f + " must be true or false, got " + n);
        return n.asBoolean();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KimiLinearConfig k && toString().equals(k.toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }

    @Override
    public String toString() {
        return describe();
    }
}
