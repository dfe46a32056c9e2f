package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The chunk-kernel choice (no GPU needed): each version names its kernel, anything else is refused by name. */
class KdaKernelsTest {
    @Test
    void versionsNameTheirKernels() {
        assertEquals("kda_chunk_prep_v5", KdaKernels.prepKernel("v5"));
        assertEquals("kda_chunk_prep_v6", KdaKernels.prepKernel("v6"));
        assertEquals("kda_chunk_prep", KdaKernels.prepKernel("v4"));
        assertEquals("kda_chunk_prep_tc", KdaKernels.prepKernel("tc"));
        assertEquals("kda_chunk_prep_tc2", KdaKernels.prepKernel("tc2"));
        assertEquals("kda_chunk_prep_tc3", KdaKernels.prepKernel("tc3"));
        assertEquals("kda_chunk_scan", KdaKernels.scanKernel("v4"));
        assertEquals("kda_chunk_scan_v5", KdaKernels.scanKernel("v5"));
        assertEquals("kda_chunk_scan_v6", KdaKernels.scanKernel("v6"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdaKernels.scanKernel("v3"));
        assertTrue(e.getMessage().contains("kimimesh.cuda.kdaScan"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KdaKernels.prepKernel("v7"));
        assertTrue(e.getMessage().contains("kimimesh.cuda.kdaPrep"), e.getMessage());
    }

    /** kdaChunk: tc takes the tensor-core scan, fp32 the fp32 one; anything else is refused by the flag's name. */
    @Test
    void chunkPathFlag() {
        assertTrue(KdaKernels.tensorCores("tc"));
        assertEquals(false, KdaKernels.tensorCores("fp32"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdaKernels.tensorCores("bf16"));
        assertTrue(e.getMessage().contains("kimimesh.cuda.kdaChunk"), e.getMessage());
        // the tensor-core scan is the default of the bf16-compute mode only
        assertEquals("tc", KdaKernels.defaultChunkPath(Gemm.Mode.BF16));
        assertEquals("fp32", KdaKernels.defaultChunkPath(Gemm.Mode.SPLIT));
        assertEquals("fp32", KdaKernels.defaultChunkPath(Gemm.Mode.FP32));
    }

    /** tc, tc2 and tc3 round the products' operands to TF32 (the bf16-compute mode's tolerance); v4 and v5 are fp32. */
    @Test
    void tensorCorePreps() {
        assertTrue(KdaKernels.prepTensorCores(KdaKernels.prepKernel("tc")));
        assertTrue(KdaKernels.prepTensorCores(KdaKernels.prepKernel("tc2")));
        assertTrue(KdaKernels.prepTensorCores(KdaKernels.prepKernel("tc3")));
        assertEquals(false, KdaKernels.prepTensorCores(KdaKernels.prepKernel("v5")));
        assertEquals(false, KdaKernels.prepTensorCores(KdaKernels.prepKernel("v6")));
        assertEquals(false, KdaKernels.prepTensorCores(KdaKernels.prepKernel("v4")));
        // every mode takes the fp32 prep v6 (v5's bits)
        assertEquals("v6", KdaKernels.defaultPrep(Gemm.Mode.SPLIT));
        assertEquals("v6", KdaKernels.defaultPrep(Gemm.Mode.FP32));
        assertEquals("v6", KdaKernels.defaultPrep(Gemm.Mode.BF16));
    }

    /** The shared-memory sizes are kda.cu's (kda_scan_shared_floats, the v5 / v6 forms, kda_tc.cuh's) at Kimi Linear's head dim. */
    @Test
    void scanSharedBytesAtHeadDim128() {
        assertEquals(142_848, KdaKernels.scanShared("kda_chunk_scan", 128));
        assertEquals(208_384, KdaKernels.scanShared("kda_chunk_scan_v5", 128));
        assertEquals(142_848 + 4 * (64 * 132 + 128), KdaKernels.scanShared("kda_chunk_scan_v6", 128));
        assertEquals(4 * (128 + 64) * 34, KdaKernels.scanShared("kda_chunk_scan_tc", 128)); // kda_scan_tc_shared_floats
    }
}
