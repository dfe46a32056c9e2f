package dev.kimimesh.mesh.shard;

import dev.kimimesh.engine.config.RouterWeights;
import dev.kimimesh.proto.v1.DType;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * How a layer shard is set up (the {@code kimimesh.shard.*} configuration keys).
 *
 * @param to              exclusive end layer; -1 = the model's last layer
 * @param next            host:port of the next stage, or empty for none
 * @param expertServices  host:port of expert services, each optionally "=id-set" to use only those of its experts
 * @param localExperts    compute here the experts no expert service holds (else that is a start-up error)
 * @param activationDtype dtype of activations sent to the next stage and the expert services (f32 = exact)
 * @param connectTimeout  how long start-up waits for the next stage and the expert services to answer
 * @param callTimeout     how long a micro-batch waits for an expert service
 */
public record ShardSettings(Path modelDir, int from, int to, String next, List<String> expertServices,
                            boolean localExperts, RouterWeights routerWeights, String backend, DType activationDtype,
                            Duration connectTimeout, Duration callTimeout) {

    public ShardSettings {
        next = next == null ? "" : next.trim();
        expertServices = expertServices == null ? List.of()
                : expertServices.stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
    }

    /** The whole model in one shard with local experts, f32 activations and the given timeouts' defaults. */
    public static ShardSettings of(Path modelDir, int from, int to) {
        return new ShardSettings(modelDir, from, to, "", List.of(), true, RouterWeights.UNBIASED, "auto",
                DType.DTYPE_F32, Duration.ofSeconds(10), Duration.ofSeconds(60));
    }

    public ShardSettings withNext(String address) {
        return new ShardSettings(modelDir, from, to, address, expertServices, localExperts, routerWeights, backend,
                activationDtype, connectTimeout, callTimeout);
    }

    public ShardSettings withExpertServices(List<String> addresses) {
        return new ShardSettings(modelDir, from, to, next, addresses, localExperts, routerWeights, backend,
                activationDtype, connectTimeout, callTimeout);
    }

    public ShardSettings withLocalExperts(boolean local) {
        return new ShardSettings(modelDir, from, to, next, expertServices, local, routerWeights, backend,
                activationDtype, connectTimeout, callTimeout);
    }

    public ShardSettings withBackend(String name) {
        return new ShardSettings(modelDir, from, to, next, expertServices, localExperts, routerWeights, name,
                activationDtype, connectTimeout, callTimeout);
    }

    public ShardSettings withRouterWeights(RouterWeights rw) {
        return new ShardSettings(modelDir, from, to, next, expertServices, localExperts, rw, backend,
                activationDtype, connectTimeout, callTimeout);
    }

    public ShardSettings withConnectTimeout(Duration d) {
        return new ShardSettings(modelDir, from, to, next, expertServices, localExperts, routerWeights, backend,
                activationDtype, d, callTimeout);
    }

    public ShardSettings withActivationDtype(DType d) {
        return new ShardSettings(modelDir, from, to, next, expertServices, localExperts, routerWeights, backend,
                d, connectTimeout, callTimeout);
    }

    /** "f32" or "bf16". */
    public static DType parseDtype(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "f32", "float32", "fp32" -> DType.DTYPE_F32;
            case "bf16", "bfloat16" -> DType.DTYPE_BF16;
            default -> throw new IllegalArgumentException("activation dtype '" + s + "' is not f32 or bf16");
        };
    }
}
