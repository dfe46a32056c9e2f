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

    public static RouterSpec of(KimiLinearConfig c, RouterWeights weights) {
        return new RouterSpec(c.numExperts(), c.numExpertsPerToken(), c.routerSoftmax(), c.numExpertGroup(),
                c.topkGroup(), c.moeRenormalize(), c.routedScalingFactor(), weights);
    }
}
