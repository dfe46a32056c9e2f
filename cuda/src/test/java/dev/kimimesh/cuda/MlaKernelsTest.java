package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The launch choices of the MLA prefill kernels (no GPU needed). */
class MlaKernelsTest {
    @Test
    void oneReadBlockHoldsTheRowAt32ValuesAThread() {
        assertEquals(128, MlaKernels.oneReadThreads(1));
        assertEquals(128, MlaKernels.oneReadThreads(4096));
        assertEquals(160, MlaKernels.oneReadThreads(4097));
        assertEquals(1024, MlaKernels.oneReadThreads(MlaKernels.ONE_READ_MAX));
        for (int w = 1; w <= MlaKernels.ONE_READ_MAX; w += 997) {
            int t = MlaKernels.oneReadThreads(w);
            assertEquals(0, t % 32, "whole warps at width " + w);
            assertTrue(t <= 1024 && (long) t * 32 >= w, "block of " + t + " holds width " + w);
        }
    }

    @Test
    void flashTakesOnlyTheHeadDimsItIsCompiledFor() {
        assertTrue(MlaKernels.flashShape(128, 64, 128));
        assertFalse(MlaKernels.flashShape(32, 16, 32));
        assertFalse(MlaKernels.flashShape(128, 0, 128));
        assertFalse(MlaKernels.flashShape(128, 64, 64));
    }

    @Test
    void wgmmaVariantsLaunchAsMlaFlashSm90aLaysThemOut() {
        // mla_wgmma::Layout<BN, STAGES, CWG>::SMEM: 3 x 64 CWG x 128 + STAGES x 5 x BN x 128 + 16 STAGES + 8 + 1024 bytes
        MlaKernels.FlashKernel a = MlaKernels.flashKernel("wgmma_n128s2pp");
        assertEquals("mla_flash_wgmma_n128s2pp", a.name());
        assertEquals(128, a.rows());
        assertEquals(384, a.threads());
        assertEquals(214_056, a.shared());
        assertTrue(a.hopper());
        MlaKernels.FlashKernel b = MlaKernels.flashKernel("wgmma_m192n64s3ov");
        assertEquals(192, b.rows());
        assertEquals(512, b.threads());
        assertEquals(197_688, b.shared());
        assertEquals(214_088, MlaKernels.flashKernel("wgmma_n64s4ovpp").shared());
        assertEquals(MlaKernels.flashKernel("wgmma_n128s2pptmaf"), MlaKernels.flashKernel("wgmma"));
        // every variant fits the 227 KiB a Hopper block may have
        for (String v : MlaKernels.WGMMA_VARIANTS) assertTrue(MlaKernels.flashKernel("wgmma_" + v).shared() <= 227 * 1024, v);
        MlaKernels.FlashKernel m = MlaKernels.flashKernel("m2s1");
        assertEquals(128, m.threads());
        assertFalse(m.hopper());
        assertThrows(IllegalArgumentException.class, () -> MlaKernels.flashKernel("wgmma_n256s2"));
        assertThrows(IllegalArgumentException.class, () -> MlaKernels.flashKernel("n128s2"));
        assertFalse(a.tma());
    }

    @Test
    void tmaVariantsTakeTensorMapsWithTheirTilesBoxes() {
        MlaKernels.FlashKernel t = MlaKernels.flashKernel("wgmma_m192n64s3tmaf");
        assertEquals("mla_flash_wgmma_m192n64s3tmaf", t.name());
        assertTrue(t.tma());
        assertEquals(192, t.rows());
        assertEquals(64, t.keys());
        assertEquals(MlaKernels.flashKernel("wgmma_m192n64s3").shared(), t.shared());
        MlaKernels.FlashKernel p = MlaKernels.flashKernel("wgmma_n128s2pptmaf");
        assertEquals(128, p.keys());
        assertEquals(384, p.threads());
        // a TMA suffix exists only on the kernels mla_flash_sm90a.cu instantiates
        assertThrows(IllegalArgumentException.class, () -> MlaKernels.flashKernel("wgmma_n64s3tma"));
        assertThrows(IllegalArgumentException.class, () -> MlaKernels.flashKernel("wgmma_m192n64s3tmax"));
    }
}
