package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The run-time kernel compiler: source and header collection and the settings everywhere; where libnvrtc loads
 * (CUDA_HOME, LD_LIBRARY_PATH or -Dkimimesh.cuda.libdir), every kernel source compiled to a cubin, and the cache.
 */
class RuntimeKernelsTest {
    static List<String> modules() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("src/main/cuda"))) {
            return files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu"))
                    .map(n -> n.substring(0, n.length() - 3)).sorted().toList();
        }
    }

    @Test
    void everySourceTravelsWithItsHeaders() throws IOException {
        List<String> modules = modules();
        assertTrue(modules.size() >= 15, modules.toString());
        for (String m : modules) {
            assertTrue(RuntimeKernels.hasSource(m), m);
            RuntimeKernels.Sources s = RuntimeKernels.sources(m);
            for (String line : s.source().lines().filter(l -> l.strip().startsWith("#include \"")).toList()) {
                String include = line.strip().split("\"")[1];
                assertTrue(s.headers().containsKey(include), m + " includes " + include);
            }
        }
        assertTrue(RuntimeKernels.sources("mla").headers().containsKey("mla_flash.cuh"));
        assertTrue(RuntimeKernels.sources("sample").headers().containsKey("cstdint")); // NVRTC has no C library headers
        assertThrows(CudaException.class, () -> RuntimeKernels.sources("no_such_module"));
    }

    @Test
    void architectureFollowsTheGpu() {
        assertEquals("sm_90", RuntimeKernels.arch("kda", 9, 0));
        assertEquals("sm_89", RuntimeKernels.arch("kda", 8, 9));
        assertEquals("sm_90a", RuntimeKernels.arch("mla_flash_sm90a", 9, 0));
        // wgmma exists on Hopper only: other GPUs fall back to the sm_90 kernels (KernelModule.loadIfSupported)
        assertThrows(CudaException.class, () -> RuntimeKernels.arch("mla_flash_sm90a", 10, 0));
        assertTrue(RuntimeKernels.options("sm_90").containsAll(List.of("--gpu-architecture=sm_90", "-std=c++17")));
    }

    @Test
    void kernelSourceSettingIsChecked() {
        String before = System.getProperty("kimimesh.cuda.kernelSource");
        try {
            System.setProperty("kimimesh.cuda.kernelSource", "jit");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, KernelModule::kernelSource);
            assertTrue(e.getMessage().contains("auto, built or nvrtc"), e.getMessage());
            System.setProperty("kimimesh.cuda.kernelSource", "built");
            assertEquals("built", KernelModule.kernelSource());
            if (!KernelModule.built("kda")) assertTrue(KernelModule.unavailable("kda").contains("kernelSource=built"));
        } finally {
            if (before == null) System.clearProperty("kimimesh.cuda.kernelSource");
            else System.setProperty("kimimesh.cuda.kernelSource", before);
        }
    }

    @Test
    void cacheKeyChangesWithSourceAndOptions() {
        assumeTrue(Nvrtc.loaded(), "NVRTC not loadable here (" + Nvrtc.loadError() + ")");
        RuntimeKernels.Sources s = RuntimeKernels.sources("elementwise");
        String k = RuntimeKernels.key(s, RuntimeKernels.options("sm_90"));
        assertEquals(k, RuntimeKernels.key(s, RuntimeKernels.options("sm_90")));
        assertFalse(k.equals(RuntimeKernels.key(s, RuntimeKernels.options("sm_89"))));
        RuntimeKernels.Sources edited = new RuntimeKernels.Sources(s.name(), s.source() + "\n// edit\n", s.headers());
        assertFalse(k.equals(RuntimeKernels.key(edited, RuntimeKernels.options("sm_90"))));
    }

    @Test
    void everyKernelCompilesWithNvrtc(@TempDir Path cache) throws IOException {
        assumeTrue(Nvrtc.loaded(), "NVRTC not loadable here (" + Nvrtc.loadError() + "): run-time compilation is checked where it is");
        String before = System.getProperty("kimimesh.cuda.kernelCache");
        System.setProperty("kimimesh.cuda.kernelCache", cache.toString());
        try {
            for (String m : modules()) {
                String arch = RuntimeKernels.arch(m, 9, 0);
                byte[] cubin = RuntimeKernels.cubin(m, arch);
                assertTrue(cubin.length > 1000 && cubin[0] == 0x7f && cubin[1] == 'E' && cubin[2] == 'L' && cubin[3] == 'F', m + ": not an ELF cubin");
            }
            try (Stream<Path> cached = Files.list(cache)) {
                assertEquals(modules().size(), cached.filter(p -> p.toString().endsWith(".cubin")).count());
            }
            // a second request is served from the cache, byte for byte
            byte[] again = RuntimeKernels.cubin("elementwise", "sm_90");
            Path f;
            try (Stream<Path> cached = Files.list(cache)) {
                f = cached.filter(p -> p.getFileName().toString().startsWith("elementwise-sm_90-")).findFirst().orElseThrow();
            }
            assertTrue(java.util.Arrays.equals(RuntimeKernels.readChecked(f), again));
            // a damaged entry (cut short, as by a full disk) is not loaded: compiled again and replaced
            byte[] whole = Files.readAllBytes(f);
            Files.write(f, java.util.Arrays.copyOf(whole, whole.length - 100));
            assertEquals(null, RuntimeKernels.readChecked(f));
            byte[] recompiled = RuntimeKernels.cubin("elementwise", "sm_90");
            assertTrue(recompiled[0] == 0x7f && recompiled[1] == 'E', "not an ELF cubin");
            assertTrue(java.util.Arrays.equals(RuntimeKernels.readChecked(f), recompiled), "the entry was not replaced");
        } finally {
            if (before == null) System.clearProperty("kimimesh.cuda.kernelCache");
            else System.setProperty("kimimesh.cuda.kernelCache", before);
        }
    }

    @Test
    void compileErrorsCarryTheLog() {
        assumeTrue(Nvrtc.loaded(), "NVRTC not loadable here (" + Nvrtc.loadError() + ")");
        CudaException e = assertThrows(CudaException.class, () -> Nvrtc.compile("broken.cu",
                "extern \"C\" __global__ void k(float* x) { x[0] = undeclared; }", java.util.Map.of(), List.of("--gpu-architecture=sm_90")));
        assertTrue(e.getMessage().contains("undeclared"), e.getMessage());
    }
}
