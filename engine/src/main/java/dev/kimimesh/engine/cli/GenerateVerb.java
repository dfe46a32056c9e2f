package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.Generator;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.Sequence;
import dev.kimimesh.engine.generate.TokenSink;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** `kimi-mesh generate`: token ids in, generated token ids out (one line), throughput on stderr. */
public final class GenerateVerb implements Verb {
    private final PrintStream out, err;

    public GenerateVerb() {
        this(System.out, System.err);
    }

    GenerateVerb(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    @Override
    public String name() {
        return "generate";
    }

    @Override
    public String usage() {
        return "<model-dir> --prompt-ids 1,2,3 [--max-tokens 16] [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] "
                + "[--stop-ids a,b] [--ignore-eos] [--router unbiased|bias_corrected] [--backend auto|cpu|cuda] "
                + "[--prefill-chunk 512]   generate token ids";
    }

    @Override
    public int run(List<String> args) throws Exception {
        Args a = Args.parse(args, Set.of("--prompt-ids", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed",
                "--stop-ids", "--router", "--backend", "--prefill-chunk"), Set.of("--ignore-eos"));
        if (a.positional().isEmpty()) {
            throw new UsageException("missing <model-dir>: a Hugging Face checkpoint directory (config.json and *.safetensors)");
        }
        Path dir = Path.of(a.positional(0, "model directory"));
        checkModelDir(dir);
        if (!a.has("--prompt-ids")) throw new UsageException("missing --prompt-ids (comma-separated token ids)");
        int[] prompt = ids(a.get("--prompt-ids", ""), "--prompt-ids");
        SamplingParams params = new SamplingParams(a.getDouble("--temperature", 0), a.getInt("--top-k", 0),
                a.getDouble("--top-p", 1), a.getLong("--seed", 0), a.getInt("--max-tokens", 16),
                a.has("--stop-ids") ? ids(a.get("--stop-ids", ""), "--stop-ids") : new int[0], a.has("--ignore-eos"), false);
        try {
            params.validate();
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        RouterWeights router;
        try {
            router = RouterWeights.parse(a.get("--router", "unbiased"));
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        int chunk = a.getInt("--prefill-chunk", Generator.Options.defaults().maxPrefillTokens());
        if (chunk <= 0) throw new UsageException("--prefill-chunk must be >= 1, got " + chunk);

        long t0 = System.nanoTime();
        try (Checkpoint ckpt = Checkpoint.open(dir); Backend backend = Backends.create(a.get("--backend", "auto"))) {
            KimiLinearModel model = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults().withRouterWeights(router));
            long loaded = System.nanoTime();
            Generator g = new Generator(model, Generator.Options.defaults().withMaxPrefillTokens(chunk));
            List<Integer> tokens = new ArrayList<>();
            Sequence s;
            try {
                s = g.submit(prompt, params.validate(model.config().vocabSize()), new TokenSink() {
                    @Override
                    public void onToken(int id, float logprob) {
                        tokens.add(id);
                    }

                    @Override
                    public void onFinish(FinishReason r) {}
                });
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage());
            }
            g.runUntilIdle();
            if (s.finishReason() == FinishReason.ERROR) {
                throw new IllegalStateException("generation failed: " + s.failure().getMessage(), s.failure());
            }
            out.println(tokens.stream().map(String::valueOf).collect(Collectors.joining(",")));
            Generator.Stats st = g.stats();
            err.printf(Locale.ROOT, "%d prompt + %d generated tokens (%s) on %s; load %.2f s; prefill %.1f tok/s (%d tok, %.3f s), "
                            + "decode %.1f tok/s (%d tok, %.3f s)%n",
                    prompt.length, tokens.size(), s.finishReason().name().toLowerCase(Locale.ROOT), backend.name(),
                    (loaded - t0) / 1e9, st.prefillTokensPerSecond(), st.prefillTokens(), st.prefillNanos() / 1e9,
                    st.decodeTokensPerSecond(), st.decodeTokens(), st.decodeNanos() / 1e9);
        }
        return 0;
    }

    /** A clear message for a path that is not a model directory with a checkpoint. */
    static void checkModelDir(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) throw new UsageException(dir + " is not a directory (expected a model checkpoint directory)");
        if (!Files.exists(dir.resolve("config.json"))) {
            throw new UsageException(dir + " holds no config.json: not a model checkpoint directory");
        }
        boolean weights;
        try (Stream<Path> s = Files.list(dir)) {
            weights = s.anyMatch(p -> p.getFileName().toString().endsWith(".safetensors"));
        }
        if (!weights) throw new UsageException(dir + " holds no checkpoint: no *.safetensors files next to its config.json");
    }

    static int[] ids(String csv, String option) throws UsageException {
        if (csv.isBlank()) throw new UsageException(option + " is empty: give at least one token id");
        String[] parts = csv.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UsageException(option + " must be comma-separated integers; '" + parts[i].trim() + "' is not one");
            }
        }
        return out;
    }
}
