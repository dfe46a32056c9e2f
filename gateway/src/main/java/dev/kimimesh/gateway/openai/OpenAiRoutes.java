package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.gateway.api.Generation;
import dev.kimimesh.gateway.app.MeshRuntime;
import dev.kimimesh.gateway.mesh.HopLatency;
import dev.kimimesh.gateway.mesh.ShardPipeline;
import dev.kimimesh.gateway.schedule.QueueFullException;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.text.KimiTextCodec;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/** The OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions; /health and /v1/mesh/hops. */
@ApplicationScoped
public class OpenAiRoutes {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** OpenAI's default max_tokens for /v1/completions. */
    private static final int COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

    @Inject
    MeshRuntime runtime;

    void routes(@Observes Router router) {
        router.route("/v1/*").handler(BodyHandler.create().setBodyLimit(64L << 20));
        router.get("/health").handler(this::health);
        router.get("/v1/health").handler(this::health);
        router.get("/v1/models").handler(this::models);
        // tokenising a long prompt or rendering a chat template must not hold the event loop
        router.post("/v1/completions").blockingHandler(ctx -> generate(ctx, false), false);
        router.post("/v1/chat/completions").blockingHandler(ctx -> generate(ctx, true), false);
        router.get("/v1/mesh/hops").handler(this::hops);
        router.post("/v1/mesh/hops/reset").handler(this::resetHops);
    }

    /** Per-hop latency percentiles of the remote pipeline (empty in embedded mode): for benchmarks and dashboards. */
    private void hops(RoutingContext ctx) {
        ObjectNode body = JSON.createObjectNode();
        var list = body.putArray("hops");
        if (runtime.pipeline() instanceof ShardPipeline sp) {
            for (HopLatency h : sp.hopLatencies()) {
                ObjectNode o = list.addObject();
                o.put("hop", h.hop());
                o.put("count", h.count());
                o.put("p50_us", h.percentileMicros(0.50));
                o.put("p99_us", h.percentileMicros(0.99));
            }
        }
        Scheduler s = runtime.scheduler();
        body.put("micro_batches", s.batchesSent());
        body.put("tokens", s.tokensSent());
        ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
    }

    private void resetHops(RoutingContext ctx) {
        if (runtime.pipeline() instanceof ShardPipeline sp) sp.hopLatencies().forEach(HopLatency::reset);
        ctx.response().setStatusCode(204).end();
    }

    private void health(RoutingContext ctx) {
        Scheduler s = runtime.scheduler();
        ObjectNode body = JSON.createObjectNode();
        body.put("status", "UP");
        body.put("model", runtime.modelName());
        body.put("pipeline", runtime.pipeline().describe());
        body.put("running", s.running());
        body.put("waiting", s.waiting());
        ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
    }

    private void models(RoutingContext ctx) {
        ObjectNode body = JSON.createObjectNode();
        body.put("object", "list");
        ObjectNode m = body.putArray("data").addObject();
        m.put("id", runtime.modelName());
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "kimi-mesh");
        m.put("max_model_len", runtime.scheduler().contextLimit());
        ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
    }

    private void generate(RoutingContext ctx, boolean chat) {
        Context vertx = Vertx.currentContext();
        HttpServerResponse response = ctx.response();
        try {
            JsonNode body;
            try {
                body = JSON.readTree(ctx.body().asString());
            } catch (Exception e) {
                throw ApiError.invalid("the body is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), null);
            }
            Scheduler scheduler = runtime.scheduler();
            List<Integer> extraStops = new ArrayList<>();
            if (chat && runtime.codec() instanceof KimiTextCodec k) {
                int imEnd = k.specialIdOrNone("<|im_end|>");
                if (imEnd >= 0 && imEnd < runtime.config().vocabSize()) extraStops.add(imEnd);
            }
            OpenAiRequest request = OpenAiRequest.parse(body, runtime.modelName(), scheduler.contextLimit(),
                    chat ? 0 : COMPLETIONS_DEFAULT_MAX_TOKENS, chat, runtime.codec(),
                    b -> chat ? chatPrompt(b) : OpenAiRequest.completionPrompt(b, runtime.codec()), extraStops);
            try {
                scheduler.validatePrompt(request.generation().prompt());
            } catch (IllegalArgumentException e) {
                throw ApiError.invalid(e.getMessage(), chat ? "messages" : "prompt");
            }
            String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
            OpenAiAnswer answer = new OpenAiAnswer(response, vertx, request, chat, id, runtime.codec());
            Generation g;
            try {
                g = Generation.start(scheduler, runtime.codec(), request.generation(), answer);
            } catch (QueueFullException e) {
                throw new ApiError(429, "rate_limit_exceeded", e.getMessage(), null, "queue_full");
            } catch (IllegalArgumentException e) {
                throw ApiError.invalid(e.getMessage(), null);
            }
            // A client that goes away cancels its work; the shards release the sequence.
            response.closeHandler(v -> g.cancel());
            ctx.request().connection().closeHandler(v -> g.cancel());
        } catch (ApiError e) {
            error(response, vertx, e);
        }
    }

    private int[] chatPrompt(JsonNode body) {
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray()) throw ApiError.invalid("messages must be an array of messages", "messages");
        if (messages.isEmpty()) throw ApiError.invalid("messages must not be empty", "messages");
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw ApiError.invalid("messages[" + i + "] must be an object with a role", "messages");
            }
        }
        JsonNode tools = body.get("tools");
        try {
            return runtime.codec().encodeChat(messages, tools == null || tools.isNull() ? null : tools, true);
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(e.getMessage(), "messages");
        } catch (RuntimeException e) {
            throw ApiError.invalid("the chat template failed on these messages: " + e.getMessage(), "messages");
        }
    }

    /** Sends an OpenAI error object with the error's status. */
    static void error(HttpServerResponse response, Context context, ApiError e) {
        ObjectNode body = JSON.createObjectNode();
        ObjectNode err = body.putObject("error");
        err.put("message", e.getMessage());
        err.put("type", e.type());
        if (e.param() != null) err.put("param", e.param());
        else err.putNull("param");
        if (e.code() != null) err.put("code", e.code());
        else err.putNull("code");
        String json = body.toString();
        Runnable write = () -> {
            if (response.ended() || response.closed()) return;
            response.setStatusCode(e.status()).putHeader("Content-Type", "application/json").end(json);
        };
        if (context == null || Context.isOnEventLoopThread() && Vertx.currentContext() == context) write.run();
        else context.runOnContext(v -> write.run());
    }
}
