package dev.kimimesh.engine.checkpoint;

import dev.kimimesh.engine.config.KimiLinearConfig;
import java.util.Map;

/**
 * Parameters and stored bytes of a model, from its config alone (the checkpoint layout). Active counts what one
 * token reads: every weight except the routed experts it is not sent to, and of the input embedding table only its
 * own row (lm_head is read whole). The active bytes are the memory traffic that bounds decode speed.
 *
 * @param embedding parameters of the input embedding table
 * @param experts   parameters of all routed experts
 */
public record ParameterCount(long total, long active, long embedding, long experts, long totalBytes, long activeBytes) {

    private static final String EMBEDDING = "model.embed_tokens.weight";

    public static ParameterCount of(KimiLinearConfig c) {
        long total = 0, embedding = 0, experts = 0, bytes = 0, expertBytes = 0, embeddingBytes = 0;
        for (Map.Entry<String, long[]> e : CheckpointLayout.expected(c).entrySet()) {
            long n = 1;
            for (long d : e.getValue()) n *= d;
            long b = n * CheckpointLayout.storedDType(e.getKey()).bytes();
            total += n;
            bytes += b;
            if (e.getKey().contains(".block_sparse_moe.experts.")) {
                experts += n;
                expertBytes += b;
            } else if (e.getKey().equals(EMBEDDING)) {
                embedding = n;
                embeddingBytes = b;
            }
        }
        // Each MoE layer sends a token to num_experts_per_token of its num_experts equally sized experts.
        double share = c.numExperts() == 0 ? 0 : (double) c.numExpertsPerToken() / c.numExperts();
        long active = total - experts + Math.round(experts * share);
        long activeBytes = bytes - expertBytes + Math.round(expertBytes * share);
        if (!c.tieWordEmbeddings() && embedding > 0) {
            // the table is read one row per token (a tied table is read whole, as lm_head)
            active -= embedding - c.hiddenSize();
            activeBytes -= embeddingBytes - c.hiddenSize() * (embeddingBytes / embedding);
        }
        return new ParameterCount(total, active, embedding, experts, bytes, activeBytes);
    }
}
