package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.BackendProvider;
import dev.kimimesh.engine.backend.Backends;
import org.junit.jupiter.api.Test;

/** The provider's registration and probing, which must work (and never throw) on machines without a GPU. */
class CudaBackendProviderTest {

    @Test
    void registeredThroughServiceLoader() {
        assertTrue(Backends.providers().stream().anyMatch(p -> p.name().equals("cuda")), "cuda provider not found by ServiceLoader");
    }

    @Test
    void probingNeverThrowsAndExplainsItself() {
        BackendProvider p = new CudaBackendProvider();
        boolean ok = p.available();
        assertNotNull(p.unavailableReason());
        if (!ok) assertTrue(p.unavailableReason().length() > 10, p.unavailableReason());
    }

    @Test
    void poolRoundsSizesToClasses() {
        assertEquals(256, DevicePool.sizeClass(1));
        assertEquals(1024, DevicePool.sizeClass(1000));
        assertEquals(1 << 20, DevicePool.sizeClass(1 << 20));
        assertEquals(2 << 20, DevicePool.sizeClass((1 << 20) + 1));
        assertEquals(4 << 20, DevicePool.sizeClass((2 << 20) + 1));
    }

    @Test
    void kernelsWereBuiltWhereNvccExists() {
        assumeTrue(System.getenv("PATH") != null && java.util.Arrays.stream(System.getenv("PATH").split(":"))
                .anyMatch(d -> new java.io.File(d, "nvcc").canExecute()), "nvcc is not on the PATH: kernels are not built here");
        for (String m : new String[] {"elementwise", "norms", "conv", "gemv", "kda", "mla", "mla_decode", "mla_decode_v2", "mla_decode_v3", "moe", "sample"}) {
            assertTrue(KernelModule.built(m), "kernels/" + m + ".cubin missing");
        }
    }

    @Test
    void smallOpsOnTheGpu() {
        BackendProvider p = new CudaBackendProvider();
        assumeTrue(p.available(), "no usable GPU here (" + p.unavailableReason() + "); GPU checks run via cuda/gpu-check.sh");
        try (Backend b = p.create()) {
            var x = b.upload(new float[] {1, 2, 3, 4}, 2, 2);
            b.add(x, x);
            assertEquals(8f, b.download(x)[3]);
        }
    }
}
