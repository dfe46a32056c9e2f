package dev.kimimesh.gateway.app;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** The gateway's configuration keys (prefix {@code kimimesh}); see docs/gateway.md. */
@ConfigMapping(prefix = "kimimesh")
public interface GatewayConfig {
    Model model();

    Mesh mesh();

    Embedded embedded();

    Scheduler scheduler();

    Sessions sessions();

    /** The model: its directory (config.json, tokenizer files; weights too in embedded mode). */
    interface Model {
        /** Model directory; required. */
        Optional<String> dir();

        /** Name clients use (OpenAI "model"); default: the directory's name. */
        Optional<String> name();

        /** Tokenizer directory when the model directory has none (tiktoken.model + tokenizer_config.json). */
        Optional<String> tokenizer();

        /** unbiased (default) or bias_corrected MoE routing weights (embedded mode). */
        @WithDefault("unbiased")
        String routerWeights();
    }

    /** The remote pipeline. */
    interface Mesh {
        /** Layer shard addresses host:port in layer order; none = embedded mode. */
        Optional<List<String>> shards();

        /** How long to wait at start for every shard and expert service to answer. */
        @WithDefault("10s")
        Duration connectTimeout();

        /** Activations between shards: f32 (exact, default) or bf16. */
        @WithDefault("f32")
        String activationDtype();
    }

    /** The in-process pipeline used when no shards are configured. */
    interface Embedded {
        /** Local pipeline stages (threads), each a contiguous layer range. */
        @WithDefault("1")
        int stages();

        /** cpu, cuda or auto. */
        @WithDefault("auto")
        String backend();
    }

    /** Continuous batching. */
    interface Scheduler {
        @WithDefault("64")
        int maxRunning();

        @WithDefault("256")
        int maxQueued();

        @WithDefault("512")
        int batchTokens();

        /** Micro-batches in flight; 0 = one per pipeline stage. */
        @WithDefault("0")
        int inFlight();

        /** Prompt + generated tokens per sequence; 0 = the model's max_position_embeddings. */
        @WithDefault("0")
        int contextLimit();
    }

    /** Sessions: conversations whose state stays on the shards between requests. */
    interface Sessions {
        /** An idle session is released (its state freed on every stage) this long after its last turn ended. */
        @WithDefault("10m")
        Duration ttl();
    }
}
