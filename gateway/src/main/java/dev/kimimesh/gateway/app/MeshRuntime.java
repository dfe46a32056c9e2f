package dev.kimimesh.gateway.app;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.gateway.embedded.LocalPipeline;
import dev.kimimesh.gateway.mesh.ShardPipeline;
import dev.kimimesh.gateway.schedule.Pipeline;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.session.Sessions;
import dev.kimimesh.gateway.schedule.SchedulerOptions;
import dev.kimimesh.gateway.text.TextCodec;
import dev.kimimesh.gateway.text.TextCodecs;
import dev.kimimesh.proto.v1.DType;
import io.quarkus.runtime.Startup;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.logging.Logger;

/**
 * What the gateway serves: the model's config and tokenizer, the pipeline (remote shards, or the model in this process
 * when no shards are configured) and the scheduler over it. Built at start; a shard or expert service that is down
 * makes the start fail with a message naming it.
 */
@ApplicationScoped
@Startup
public class MeshRuntime {
    private static final Logger LOG = Logger.getLogger(MeshRuntime.class.getName());

    private final String modelName;
    private final KimiLinearConfig config;
    private final String routerWeights;
    private final TextCodec codec;
    private final Pipeline pipeline;
    private final Scheduler scheduler;
    private final Sessions sessions;
    private final Checkpoint checkpoint;
    private final Backend backend;

    public MeshRuntime(GatewayConfig cfg) {
        String dirText = cfg.model().dir().orElseThrow(() -> new IllegalArgumentException(
                "kimimesh.model.dir is not set: give the model directory (config.json, and the weights in embedded mode)"));
        Path dir = Path.of(dirText).toAbsolutePath().normalize();
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            throw new IllegalArgumentException("kimimesh.model.dir " + dir + " has no config.json");
        }
        this.modelName = cfg.model().name().orElse(dir.getFileName().toString());
        this.routerWeights = cfg.model().routerWeights().toLowerCase(Locale.ROOT);
        this.codec = TextCodecs.load(dir, cfg.model().tokenizer().map(Path::of).orElse(null));
        List<String> shards = cfg.mesh().shards().orElse(List.of()).stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
        SchedulerOptions opts = new SchedulerOptions(cfg.scheduler().maxRunning(), cfg.scheduler().maxQueued(),
                cfg.scheduler().batchTokens(), cfg.scheduler().inFlight(), cfg.scheduler().contextLimit());
        if (shards.isEmpty()) {
            this.checkpoint = Checkpoint.open(dir);
            this.config = checkpoint.config();
            this.backend = Backends.create(cfg.embedded().backend());
            ModelOptions mo = ModelOptions.defaults().withRouterWeights(switch (routerWeights) {
                case "unbiased" -> RouterWeights.UNBIASED;
                case "bias_corrected" -> RouterWeights.BIAS_CORRECTED;
                default -> throw new IllegalArgumentException("kimimesh.model.router-weights must be unbiased or bias_corrected, got "
                        + routerWeights);
            });
            this.pipeline = LocalPipeline.load(checkpoint, backend, mo, cfg.embedded().stages());
        } else {
            this.checkpoint = null;
            this.backend = null;
            this.config = KimiLinearConfig.load(dir.resolve("config.json"));
            DType dtype = switch (cfg.mesh().activationDtype().toLowerCase(Locale.ROOT)) {
                case "f32" -> DType.DTYPE_F32;
                case "bf16" -> DType.DTYPE_BF16;
                default -> throw new IllegalArgumentException("kimimesh.mesh.activation-dtype must be f32 or bf16, got "
                        + cfg.mesh().activationDtype());
            };
            this.pipeline = ShardPipeline.connect(shards, config, cfg.mesh().connectTimeout(), dtype);
        }
        this.scheduler = new Scheduler(pipeline, opts, config.vocabSize(), config.eosTokenId(), config.maxPositionEmbeddings());
        this.sessions = new Sessions(scheduler, cfg.sessions().ttl());
        LOG.info("Kimi Mesh gateway serving " + modelName + " on " + pipeline.describe() + ", "
                + scheduler.inFlightLimit() + " micro-batches in flight");
    }

    public String modelName() {
        return modelName;
    }

    public KimiLinearConfig config() {
        return config;
    }

    public String routerWeights() {
        return routerWeights;
    }

    public TextCodec codec() {
        return codec;
    }

    public Pipeline pipeline() {
        return pipeline;
    }

    public Scheduler scheduler() {
        return scheduler;
    }

    public Sessions sessions() {
        return sessions;
    }

    @PreDestroy
    void close() {
        sessions.close();
        scheduler.close();
        pipeline.close();
        if (backend != null) backend.close();
        if (checkpoint != null) checkpoint.close();
    }
}
