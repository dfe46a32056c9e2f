package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.checkpoint.ParameterCount;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/** `kimi-mesh describe`: the model a config.json describes, with its parameter counts and sizes. */
public final class DescribeVerb implements Verb {
    private final PrintStream out;

    public DescribeVerb() {
        this(System.out);
    }

    DescribeVerb(PrintStream out) {
        this.out = out;
    }

    @Override
    public String name() {
        return "describe";
    }

    @Override
    public String usage() {
        return "<model-dir | config.json>   layers, attention, MoE, parameters (total, active per token) and bytes";
    }

    @Override
    public int run(List<String> args) throws Exception {
        Args a = Args.parse(args, Set.of(), Set.of());
        Path p = Path.of(a.positional(0, "a model directory or config.json"));
        if (!Files.exists(p)) throw new UsageException(p + " does not exist");
        if (Files.isDirectory(p) && !Files.exists(p.resolve("config.json"))) {
            throw new UsageException(p + " holds no config.json: not a Hugging Face model directory");
        }
        KimiLinearConfig c = KimiLinearConfig.load(p);
        out.print(c.describe());
        ParameterCount n = ParameterCount.of(c);
        out.printf(Locale.ROOT, "  parameters: %s total (%s in routed experts, %s in the embedding table)%n",
                count(n.total()), count(n.experts()), count(n.embedding()));
        out.printf(Locale.ROOT, "  active per token: %s parameters, %s read per decoded token%n",
                count(n.active()), bytes(n.activeBytes()));
        out.printf(Locale.ROOT, "  weights as stored (bf16, A_log/dt_bias f32): %s%n", bytes(n.totalBytes()));
        if (Files.isDirectory(p)) {
            long onDisk = 0;
            int files = 0;
            try (Stream<Path> s = Files.list(p)) {
                for (Path f : s.filter(f -> f.getFileName().toString().endsWith(".safetensors")).toList()) {
                    onDisk += Files.size(f);
                    files++;
                }
            }
            out.println(files == 0 ? "  checkpoint: no *.safetensors files in this directory"
                    : String.format(Locale.ROOT, "  checkpoint: %d safetensors file(s), %s on disk", files, bytes(onDisk)));
        }
        return 0;
    }

    static String count(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.2fB", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.2fM", n / 1e6);
        if (n >= 1_000L) return String.format(Locale.ROOT, "%.1fK", n / 1e3);
        return Long.toString(n);
    }

    static String bytes(long n) {
        if (n >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", n / (double) (1L << 30));
        if (n >= 1L << 20) return String.format(Locale.ROOT, "%.2f MiB", n / (double) (1L << 20));
        if (n >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
        return n + " B";
    }
}
