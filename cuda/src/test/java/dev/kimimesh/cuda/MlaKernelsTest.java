package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
}
