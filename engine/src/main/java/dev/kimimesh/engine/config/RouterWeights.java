package dev.kimimesh.engine.config;

/**
 * Where the MoE routing weights of the chosen experts come from. Both conventions choose the same experts
 * (top-k of sigmoid + e_score_correction_bias).
 */
public enum RouterWeights {
    /** Weights from the sigmoid scores without the bias: DeepSeek-V3, vLLM, transformers. The default. */
    UNBIASED,
    /** Weights from the bias-corrected scores: Moonshot's original trust_remote_code modeling_kimi.py. */
    BIAS_CORRECTED;

    /** Parses the `router_weights` field of a goldens index.json or a CLI flag. */
    public static RouterWeights parse(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT).replace('-', '_')) {
            case "unbiased" -> UNBIASED;
            case "bias_corrected", "remote_code" -> BIAS_CORRECTED;
            default -> throw new IllegalArgumentException(
                    "unknown router_weights '" + s + "' (expected unbiased or bias_corrected)");
        };
    }
}
