package dev.kimimesh.cuda.check;

import dev.kimimesh.cuda.CudaBackend;
import dev.kimimesh.cuda.CudaBackendProvider;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * GPU checks and benchmarks in one program, for a GPU machine: {@code kernels} (each op vs the CPU backend on fresh
 * random inputs), {@code goldens FIXTURE_DIR} (the tiny model's goldens on the CUDA backend), {@code bench CONFIG}
 * (ceilings, KDA kernels, model decode/prefill on random weights). Exit status 1 when a check fails.
 */
public final class GpuCheck {
    private GpuCheck() {}

    public static void main(String[] args) throws Exception {
        List<String> a = Arrays.asList(args);
        if (a.isEmpty()) {
            System.err.println("usage: GpuCheck kernels | goldens FIXTURE_DIR | bench CONFIG_JSON [--prefill N] [--context N] [--work DIR]");
            System.exit(2);
        }
        CudaBackendProvider p = new CudaBackendProvider();
        if (!p.available()) {
            System.err.println("cuda backend not available: " + p.unavailableReason());
            System.exit(3);
        }
        Compare cmp = new Compare();
        try (CudaBackend be = new CudaBackend()) {
            System.out.println("backend: " + be.name());
            switch (a.get(0)) {
                case "kernels" -> new KernelCheck(be, System.nanoTime(), cmp).run();
                case "goldens" -> new GoldenCheck(be, Path.of(a.get(1)), cmp).run();
                case "bench" -> {
                    GpuBench b = new GpuBench(be);
                    b.ceilings();
                    b.kda(32, 128, 32768);
                    int prefill = intOpt(a, "--prefill", 4096), context = intOpt(a, "--context", 4096);
                    Path work = Path.of(opt(a, "--work", System.getProperty("java.io.tmpdir") + "/kimi-bench-ckpt"));
                    b.model(Path.of(a.get(1)), work, prefill, new int[] {1, 8, 64}, context);
                }
                default -> {
                    System.err.println("unknown mode " + a.get(0));
                    System.exit(2);
                }
            }
        }
        if (cmp.checks > 0) System.out.printf("%d checks, %d failed%n", cmp.checks, cmp.failures);
        System.exit(cmp.failures == 0 ? 0 : 1);
    }

    private static String opt(List<String> a, String name, String def) {
        int i = a.indexOf(name);
        return i >= 0 && i + 1 < a.size() ? a.get(i + 1) : def;
    }

    private static int intOpt(List<String> a, String name, int def) {
        return Integer.parseInt(opt(a, name, Integer.toString(def)));
    }
}
