package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.bench.GenerationRun;
import dev.kimimesh.engine.bench.MatmulPeak;
import dev.kimimesh.engine.bench.OpProfile;
import dev.kimimesh.engine.bench.ReadBandwidth;
import dev.kimimesh.engine.bench.WeightTraffic;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.MappedPages;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * `bench`: decode and prefill tokens/s at several batch sizes, each set against its floor measured in the same run:
 * weight bytes per decode step over this machine's read bandwidth, and prefill FLOPs over the matmul kernel's peak.
 */
public final class Bench implements Verb {
    @Override
    public String name() {
        return "bench";
    }

    @Override
    public String usage() {
        return "<model-dir> [--prompt 512] [--decode 32] [--batches 1,8] [--threads N] [--backend cpu] [--profile] [--keep-page-cache]   "
                + "decode/prefill tokens/s against the bandwidth and FLOP floors";
    }

    @Override
    public int run(List<String> argv) throws Exception {
        Args a = Args.parse(argv, Set.of("--prompt", "--decode", "--batches", "--threads", "--backend"), Set.of("--profile", "--keep-page-cache"));
        Path dir = Path.of(a.positional(0, "<model-dir>"));
        int prompt = a.getInt("--prompt", 512), steps = a.getInt("--decode", 32);
        if (prompt < 1 || steps < 1) throw new UsageException("--prompt and --decode must be >= 1");
        List<Integer> batches = new ArrayList<>();
        for (String s : a.get("--batches", "1,8").split(",")) {
            try {
                batches.add(Integer.parseInt(s.trim()));
            } catch (NumberFormatException e) {
                throw new UsageException("--batches: '" + s + "' is not an integer");
            }
        }
        if (a.has("--threads")) {
            // read by the CPU backend's thread pool when it is first used, so set before anything runs
            System.setProperty("kimimesh.threads", a.get("--threads", null));
        }
        int threads = Integer.getInteger("kimimesh.threads", Runtime.getRuntime().availableProcessors());

        Backend be = Backends.create(a.get("--backend", "cpu"));
        OpProfile profile = a.has("--profile") ? new OpProfile(be) : null;
        if (profile != null) be = profile;
        System.out.printf("machine: %s, %d threads; %s; Java %s%n", cpuModel(), threads, be.name(), Runtime.version());
        System.out.printf("off-heap read bandwidth (reference, not the floor): %.1f GB/s (1 GiB buffer, %d threads, best of 5)%n",
                ReadBandwidth.offHeap(1L << 30, threads, 5) / 1e9, threads);
        MatmulPeak.measure(be, 64, 2304, 2); // warms the kernel up before it is timed
        double peak = MatmulPeak.measure(be, 512, 2304, 3);
        System.out.printf("matmul peak: %.1f GFLOP/s (this backend's matmul, bf16 W 2304x2304, 512 tokens, best of 3)%n", peak / 1e9);

        if (!a.has("--keep-page-cache")) {
            // the page cache may hold the checkpoint in 4 KiB folios (as init-random wrote it); read it again so that
            // the run sees what this engine gets from a cold start: 2 MiB pages (MappedPages)
            int dropped = 0;
            try (var files = Files.list(dir)) {
                for (Path f : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) if (MappedPages.dropCached(f)) dropped++;
            }
            System.out.printf("page cache: dropped %d checkpoint file(s), to be read again in 2 MiB pages (--keep-page-cache skips this)%n", dropped);
        }
        try (Checkpoint ck = Checkpoint.open(dir)) {
            WeightTraffic traffic = new WeightTraffic(ck);
            GenerationRun gen = new GenerationRun(ck.config().numHiddenLayers());
            KimiLinearModel m = KimiLinearModel.load(ck, be, ModelOptions.defaults().withObserver(gen));
            System.out.printf("model: %s, %.2f GB of weights; bytes per batch-1 decode step (top-%d experts): %.3f GB%n",
                    dir.getFileName(), ck.totalBytes() / 1e9, ck.config().numExpertsPerToken(),
                    traffic.stepBytes(1, traffic.topK()) / 1e9);
            // map every weight page into this process first, as llama.cpp's MAP_POPULATE does, so first-touch page
            // faults of experts not yet routed to do not count as decode time; touched, not load()ed: MADV_WILLNEED
            // would read 4 KiB folios where the mapping asked for 2 MiB ones
            long t0 = System.nanoTime();
            int sink = 0;
            for (String name : ck.names()) {
                var seg = ck.tensor(name).data();
                if (seg.isMapped()) sink += MappedPages.touch(seg);
            }
            long pmd = MappedPages.pmdMappedBytes();
            System.out.printf("weights paged in: %.1f s%s%s%n", (System.nanoTime() - t0) / 1e9, sink == 42 ? " " : "",
                    pmd < 0 ? "" : String.format("; %.2f of %.2f GB mapped in 2 MiB pages", pmd / 1e9, ck.totalBytes() / 1e9));
            List<MemorySegment> stepWeights = WeightTraffic.batchOneStepSegments(ck);
            double bw = weightBandwidth(stepWeights, threads, "before the runs");
            gen.run(m, 1, prompt, 8, 99); // JIT warm-up (a whole prefill: C2 must have compiled every kernel), not reported
            if (profile != null) profile.reset();

            List<GenerationRun.Result> results = new ArrayList<>();
            for (int b : batches) {
                if (profile != null) {
                    profile.reset();
                    gen.afterPrefill(() -> {
                        System.out.printf("prefill, batch %d, time per op kind:%n%s", b, profile.report(1));
                        profile.reset();
                    });
                }
                results.add(gen.run(m, b, prompt, steps, 1234 + b));
                if (profile != null) System.out.printf("decode, batch %d, time per op kind per step:%n%s", b, profile.report(steps));
            }
            // floors measured again at the end: on a shared machine a neighbour's burst can depress one measurement
            double bw2 = weightBandwidth(stepWeights, threads, "after the runs"), peak2 = MatmulPeak.measure(be, 512, 2304, 3);
            System.out.printf("after the runs: matmul peak %.1f GFLOP/s; the floors use the better of before and after%n", peak2 / 1e9);
            bw = Math.max(bw, bw2);
            peak = Math.max(peak, peak2);
            System.out.printf("floors: read bandwidth %.1f GB/s (mapped weights), matmul peak %.1f GFLOP/s%n", bw / 1e9, peak / 1e9);
            System.out.println();
            System.out.println("| phase | batch | tokens | seconds | tok/s | floor tok/s | ratio | cpu s | tok/s per " + threads
                    + " cpu-s | ratio (cpu) | floor basis |");
            System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
            for (GenerationRun.Result r : results) {
                int b = r.batch();
                double flops = b * (prompt * (traffic.tokenMatmulFlops()) + traffic.promptAttentionFlops(prompt) + traffic.headFlops());
                double prefillFloor = b * (double) prompt / (flops / peak);
                double pc = b * (double) prompt / (r.prefillCpuSeconds() / threads);
                System.out.printf("| prefill | %d | %d | %.2f | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.2f GFLOP/token at %.0f GFLOP/s |%n",
                        b, b * prompt, r.prefillSeconds(), r.prefillTokensPerSecond(), prefillFloor,
                        r.prefillTokensPerSecond() / prefillFloor, r.prefillCpuSeconds(), pc, pc / prefillFloor,
                        flops / (b * prompt) / 1e9, peak / 1e9);
                double bytes = traffic.stepBytes(b, r.expertsTouched());
                double decodeFloor = b / (bytes / bw);
                double dc = b * (double) steps / (r.decodeCpuSeconds() / threads);
                System.out.printf("| decode | %d | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f | %.2f | %.3f GB/step at %.1f GB/s |%n",
                        b, b * steps, r.decodeSeconds(), r.decodeTokensPerSecond(), decodeFloor,
                        r.decodeTokensPerSecond() / decodeFloor, r.decodeCpuSeconds(), dc, dc / decodeFloor, bytes / 1e9, bw / 1e9);
            }
        }
        return 0;
    }

    /**
     * Read bandwidth over the mapped weight pages a batch-1 decode step reads (the floor's own bytes), with one
     * thread and with all: on a small VM one core may already saturate memory, so the better of the two is the floor.
     */
    private static double weightBandwidth(List<MemorySegment> segs, int threads, String when) throws Exception {
        long bytes = 0;
        for (MemorySegment s : segs) bytes += s.byteSize();
        double one = ReadBandwidth.overSegments(segs, 1, 3), all = threads > 1 ? ReadBandwidth.overSegments(segs, threads, 5) : one;
        System.out.printf("read bandwidth %s: %.1f GB/s with 1 thread, %.1f GB/s with %d (Vector API sum over the %.2f GB of mapped "
                + "weights a batch-1 step reads, best of 3 and 5)%n", when, one / 1e9, all / 1e9, threads, bytes / 1e9);
        return Math.max(one, all);
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (Exception e) {
            // not Linux: the OS name is the best we have
        }
        return System.getProperty("os.arch");
    }
}
