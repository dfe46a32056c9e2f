package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** Which tensors share device memory under {@code --expert-sets} (names only: runs without a GPU). */
class ExpertSetKeyTest {

    @Test
    void routedExpertsOfLayersNApartShareAKey() {
        String a = CudaBackend.expertSetKey("model.layers.1.block_sparse_moe.experts.7.w1.weight", 16);
        assertEquals(a, CudaBackend.expertSetKey("model.layers.17.block_sparse_moe.experts.7.w1.weight", 16));
        assertNotEquals(a, CudaBackend.expertSetKey("model.layers.2.block_sparse_moe.experts.7.w1.weight", 16));
        assertNotEquals(a, CudaBackend.expertSetKey("model.layers.17.block_sparse_moe.experts.7.w3.weight", 16));
        assertNotEquals(a, CudaBackend.expertSetKey("model.layers.17.block_sparse_moe.experts.70.w1.weight", 16));
        // transformers' stacked layout is a routed-expert tensor too
        assertEquals(CudaBackend.expertSetKey("model.layers.3.mlp.experts.gate_up_proj", 4),
                CudaBackend.expertSetKey("model.layers.7.mlp.experts.gate_up_proj", 4));
    }

    @Test
    void everythingElseKeepsItsOwnMemory() {
        assertNull(CudaBackend.expertSetKey("model.layers.17.block_sparse_moe.shared_experts.gate_proj.weight", 16));
        assertNull(CudaBackend.expertSetKey("model.layers.17.block_sparse_moe.gate.weight", 16));
        assertNull(CudaBackend.expertSetKey("model.layers.17.self_attn.q_proj.weight", 16));
        assertNull(CudaBackend.expertSetKey("model.embed_tokens.weight", 16));
    }
}
