package dev.kimimesh.engine.backend;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.RouterWeights;

/** The MoE routing rule of a model: how many experts, which activation, grouping, and where the weights come from. */
public record RouterSpec(
        int numExperts,
        int topK,
        boolean softmax,
        int numExpertGroup,
        int topkGroup,
        boolean renormalize,
        float routedScalingFactor,
        RouterWeights weights) {

    /**
     * The spec of a config. The original gate renormalises only when it picks more than one expert
     * ({@code if self.top_k > 1 and self.moe_renormalize}): with top-1 the weight stays the score itself.
     */
    public static RouterSpec of(KimiLinearConfig c, RouterWeights weights) {
        return new RouterSpec(c.numExperts(), c.numExpertsPerToken(), c.routerSoftmax(), c.numExpertGroup(),
                c.topkGroup(), c.moeRenormalize() && c.numExpertsPerToken() > 1, c.routedScalingFactor(), weights);
    }
}
