package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The chunk-kernel version flag (no GPU needed): v5 or v4, anything else refused by name. */
class KdaKernelsTest {
    @Test
    void chunkKernelVersionIsV5OrV4() {
        assertTrue(KdaKernels.isV5("v5"));
        assertFalse(KdaKernels.isV5("v4"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KdaKernels.isV5("v3"));
        assertTrue(e.getMessage().contains("kimimesh.cuda.kdaChunk"), e.getMessage());
    }
}
