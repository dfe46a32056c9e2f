package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.golden.GoldenIndex;
import dev.kimimesh.engine.golden.GoldenVerifier;
import dev.kimimesh.engine.golden.VerifyOptions;
import dev.kimimesh.engine.golden.VerifyReport;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** `verify <model-dir> <golden-dir>`: runs every golden case and prints one line per case, then the verdict. */
public final class VerifyVerb implements Verb {
    @Override
    public String name() {
        return "verify";
    }

    @Override
    public String usage() {
        return "<model-dir> <golden-dir> [--router unbiased|bias_corrected] [--kda-form auto|chunked|recurrent]"
                + " [--backend auto|cpu|...]  check the engine against golden outputs";
    }

    @Override
    public int run(List<String> argv) throws Exception {
        Args a = Args.parse(argv, Set.of("--router", "--kda-form", "--backend"), Set.of());
        if (a.positional().size() > 2) throw new UsageException("too many arguments: " + a.positional());
        Path modelDir = Path.of(a.positional(0, "<model-dir>"));
        Path goldenDir = Path.of(a.positional(1, "<golden-dir>"));
        VerifyOptions opts = VerifyOptions.defaults();
        if (a.has("--router")) {
            try {
                opts = opts.withRouter(RouterWeights.parse(a.get("--router", "")));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--router: " + e.getMessage());
            }
        }
        String form = a.get("--kda-form", "auto").trim().toUpperCase(Locale.ROOT);
        try {
            opts = opts.withKdaForm(KdaForm.valueOf(form));
        } catch (IllegalArgumentException e) {
            throw new UsageException("--kda-form must be auto, chunked or recurrent, not '" + a.get("--kda-form", "") + "'");
        }
        GoldenIndex index = GoldenIndex.load(goldenDir);
        try (Checkpoint ckpt = Checkpoint.open(modelDir); Backend backend = Backends.create(a.get("--backend", "auto"))) {
            String indexRouter = index.routerWeights() == null ? "not named (unbiased assumed)" : index.routerWeights().name().toLowerCase(Locale.ROOT);
            String router = opts.router() == null ? indexRouter
                    : opts.router().name().toLowerCase(Locale.ROOT) + " (--router; index.json: " + indexRouter + ")";
            System.out.println("verify: " + goldenDir + ": router_weights " + router + ", kda form "
                    + opts.kdaForm().name().toLowerCase(Locale.ROOT) + ", backend " + backend.name());
            VerifyReport report = new GoldenVerifier(ckpt, backend, opts).verify(goldenDir, r -> {
                System.out.println(r.line());
                System.out.flush();
            });
            System.out.println(report.summaryLine());
            return report.passed() ? 0 : 1;
        }
    }
}
