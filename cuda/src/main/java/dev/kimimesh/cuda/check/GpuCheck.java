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
            System.err.println("usage: GpuCheck kernels [GROUP] | goldens FIXTURE_DIR | bench CONFIG_JSON [--prefill N,..] [--context N,..] [--batch N,..|none] [--no-kda] [--work DIR] [--experts-on-device] [--expert-sets N] [--warmup STEPS] [--prefill-warmup N] [--timeline] | profile CONFIG [--context N --batch N | --prefill N]");
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
                case "kernels" -> new KernelCheck(be, System.nanoTime(), cmp).run(a.size() > 1 ? a.get(1) : "all");
                case "goldens" -> new GoldenCheck(be, Path.of(a.get(1)), cmp).run();
                case "bench" -> {
                    GpuBench b = new GpuBench(be);
                    if (!a.contains("--no-graph-check")) b.cmp = cmp;
                    b.decodeWarmup = Integer.parseInt(opt(a, "--warmup", String.valueOf(b.decodeWarmup)));
                    b.prefillTimeline = a.contains("--timeline");
                    b.prefillWarmup = Integer.parseInt(opt(a, "--prefill-warmup", "0"));
                    b.ceilings();
                    if (!a.contains("--no-kda")) b.kda(32, 128, 32768);
                    int[] prefills = ints(opt(a, "--prefill", "4096,32768")), contexts = ints(opt(a, "--context", "4096,32768"));
                    int[] batches = ints(opt(a, "--batch", "1,8,64"));
                    Path work = Path.of(opt(a, "--work", System.getProperty("java.io.tmpdir") + "/kimi-bench-ckpt"));
                    // --prefill none --batch none: the ceilings and the KDA kernels only (no checkpoint written)
                    if (prefills.length > 0 || batches.length > 0) b.model(Path.of(a.get(1)), work, prefills, batches, contexts, a.contains("--experts-on-device"),
                            Integer.parseInt(opt(a, "--expert-sets", "0")));
                }
                case "profile" -> {
                    Path work = Path.of(opt(a, "--work", System.getProperty("java.io.tmpdir") + "/kimi-bench-ckpt"));
                    if (a.contains("--prefill")) new GpuBench(be).profilePrefill(Path.of(a.get(1)), work, ints(opt(a, "--prefill", "32768"))[0]);
                    else new GpuBench(be).profileStep(Path.of(a.get(1)), work, ints(opt(a, "--context", "4096"))[0], ints(opt(a, "--batch", "1"))[0]);
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

    /** A comma-separated list of numbers; empty for "none". */
    private static int[] ints(String list) {
        if (list.isBlank() || list.equals("none")) return new int[0];
        return Arrays.stream(list.split(",")).mapToInt(x -> Integer.parseInt(x.trim())).toArray();
    }
}
