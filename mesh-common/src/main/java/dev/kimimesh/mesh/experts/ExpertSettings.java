package dev.kimimesh.mesh.experts;

import java.nio.file.Path;

/**
 * How an expert service is set up (the {@code kimimesh.experts.*} configuration keys).
 *
 * @param layers  id set of the layers to serve ("all" = every MoE layer, or e.g. "1-3")
 * @param experts id set of the experts to serve in each of those layers ("all", "even", "odd", "0-7", "1,5,9")
 */
public record ExpertSettings(Path modelDir, String layers, String experts, String backend) {
    public static ExpertSettings of(Path modelDir, String layers, String experts) {
        return new ExpertSettings(modelDir, layers, experts, "auto");
    }
}
