package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.gateway.api.Generation;
import dev.kimimesh.gateway.api.GenerationRequest;
import dev.kimimesh.gateway.session.SessionBusyException;
import dev.kimimesh.gateway.session.SessionNotFoundException;
import dev.kimimesh.gateway.session.SessionTurn;
import dev.kimimesh.gateway.session.Sessions;
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
        router.get("/v1/models/:model").handler(this::model);
        // tokenising a long prompt or rendering a chat template must not hold the event loop
        router.post("/v1/completions").blockingHandler(ctx -> generate(ctx, false), false);
        router.post("/v1/chat/completions").blockingHandler(ctx -> generate(ctx, true), false);
        router.get("/v1/sessions/:id").handler(this::sessionInfo);
        router.delete("/v1/sessions/:id").handler(this::deleteSession);
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
        body.putArray("data").add(modelJson());
        ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
    }

    private void model(RoutingContext ctx) {
        String name = ctx.pathParam("model");
        if (!name.equals(runtime.modelName())) {
            error(ctx.response(), null, new ApiError(404, "invalid_request_error", "The model '" + name + "' does not exist; this gateway serves '"
                    + runtime.modelName() + "'", "model", "model_not_found"));
            return;
        }
        ctx.response().putHeader("Content-Type", "application/json").end(modelJson().toString());
    }

    private ObjectNode modelJson() {
        ObjectNode m = JSON.createObjectNode();
        m.put("id", runtime.modelName());
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "kimi-mesh");
        m.put("max_model_len", runtime.scheduler().contextLimit());
        return m;
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
            String sessionId = body.path("session_id").isTextual() ? body.get("session_id").asText() : "";
            if (body.hasNonNull("session_id") && !body.get("session_id").isTextual()) throw ApiError.invalid("session_id must be a string", "session_id");
            if (body.hasNonNull("keep_session") && !body.get("keep_session").isBoolean()) {
                throw ApiError.invalid("keep_session must be true or false", "keep_session");
            }
            boolean keepSession = body.path("keep_session").asBoolean(false);
            if ((keepSession || !sessionId.isEmpty()) && request.n() > 1) throw ApiError.invalid("sessions serve one choice (n = 1)", "n");
            SessionTurn turn = null;
            try {
                turn = sessions(sessionId, keepSession);
                run(ctx, request, chat, turn);
            } catch (RuntimeException e) {
                if (turn != null) runtime.sessions().abort(turn);
                throw e;
            }
        } catch (ApiError e) {
            error(response, vertx, e);
        }
    }

    /** Starts the turn of a session, or nothing for a one-off request (404 unknown session, 409 busy). */
    private SessionTurn sessions(String sessionId, boolean keep) {
        try {
            return runtime.sessions().begin(sessionId, keep);
        } catch (SessionNotFoundException e) {
            throw new ApiError(404, "invalid_request_error", e.getMessage(), "session_id", "session_not_found");
        } catch (SessionBusyException e) {
            throw new ApiError(409, "invalid_request_error", e.getMessage(), "session_id", "session_busy");
        }
    }

    private void run(RoutingContext ctx, OpenAiRequest request, boolean chat, SessionTurn turn) {
        Context vertx = Vertx.currentContext();
        HttpServerResponse response = ctx.response();
        Scheduler scheduler = runtime.scheduler();
        GenerationRequest generation = request.generation();
        if (turn != null) {
            generation = new GenerationRequest(turn.prompt(generation.prompt()), generation.params(), generation.stopStrings(),
                    generation.skipSpecial(), turn.sequence().withTopLogprobs(request.topLogprobs()));
        }
        try {
            scheduler.validatePrompt(generation.prompt(), generation.sequence().position());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(e.getMessage(), chat ? "messages" : "prompt");
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        OpenAiAnswer answer = new OpenAiAnswer(response, vertx, request, chat, id, runtime.codec());
        if (turn != null) answer.sessionId(turn.sessionId());
        List<Generation> started = new ArrayList<>();
        try {
            for (int i = 0; i < request.n(); i++) {
                // choice i samples with seed + i: independent choices, all reproducible from the request's seed
                GenerationRequest g = i == 0 ? generation : generation.withParams(generation.params().withSeed(generation.params().seed() + i));
                started.add(Generation.start(scheduler, runtime.codec(), g, answer.choice(i), runtime.sessions(), turn));
            }
        } catch (QueueFullException e) {
            answer.abandon();
            started.forEach(Generation::cancel);
            throw new ApiError(429, "rate_limit_exceeded", e.getMessage(), null, "queue_full");
        } catch (IllegalArgumentException e) {
            answer.abandon();
            started.forEach(Generation::cancel);
            throw ApiError.invalid(e.getMessage(), null);
        }
        // A client that goes away cancels its work; the shards release the sequences.
        response.closeHandler(v -> started.forEach(Generation::cancel));
        ctx.request().connection().closeHandler(v -> started.forEach(Generation::cancel));
    }

    private void sessionInfo(RoutingContext ctx) {
        try {
            Sessions.Info info = runtime.sessions().touch(ctx.pathParam("id"));
            ObjectNode body = JSON.createObjectNode();
            body.put("id", info.sessionId());
            body.put("object", "session");
            body.put("tokens", info.tokens());
            body.put("expires_at_ms", info.expiresAtMs());
            ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
        } catch (SessionNotFoundException e) {
            error(ctx.response(), null, new ApiError(404, "invalid_request_error", e.getMessage(), "session_id", "session_not_found"));
        }
    }

    private void deleteSession(RoutingContext ctx) {
        try {
            runtime.sessions().release(ctx.pathParam("id"));
            ObjectNode body = JSON.createObjectNode();
            body.put("id", ctx.pathParam("id"));
            body.put("object", "session");
            body.put("deleted", true);
            ctx.response().putHeader("Content-Type", "application/json").end(body.toString());
        } catch (SessionNotFoundException e) {
            error(ctx.response(), null, new ApiError(404, "invalid_request_error", e.getMessage(), "session_id", "session_not_found"));
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
