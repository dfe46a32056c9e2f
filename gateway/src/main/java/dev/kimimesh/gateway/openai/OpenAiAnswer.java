package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.gateway.api.GenerationListener;
import dev.kimimesh.gateway.api.GenerationOutcome;
import dev.kimimesh.gateway.text.TextCodec;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes one generation as an OpenAI answer: a JSON object at the end, or server-sent events ({@code data: {...}}
 * chunks ending in {@code data: [DONE]}) as tokens arrive. Every choice also carries the generated {@code token_ids}.
 * Writes are moved onto the request's Vert.x context, in order.
 */
final class OpenAiAnswer implements GenerationListener {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServerResponse response;
    private final Context context;
    private final OpenAiRequest request;
    private final boolean chat;
    private final String id;
    private final long created = System.currentTimeMillis() / 1000;
    private final TextCodec codec;
    private final StringBuilder text = new StringBuilder();
    private final List<Integer> tokens = new ArrayList<>();
    private final List<Float> logprobs = new ArrayList<>();
    private boolean started;

    OpenAiAnswer(HttpServerResponse response, Context context, OpenAiRequest request, boolean chat, String id, TextCodec codec) {
        this.response = response;
        this.context = context;
        this.request = request;
        this.chat = chat;
        this.id = id;
        this.codec = codec;
    }

    @Override
    public void onToken(int token, float logprob, String piece) {
        if (!request.stream()) {
            tokens.add(token);
            logprobs.add(logprob);
            text.append(piece);
            return;
        }
        ObjectNode chunk = chunk();
        ObjectNode choice = ((ArrayNode) chunk.get("choices")).addObject();
        choice.put("index", 0);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (!started) delta.put("role", "assistant");
            delta.put("content", piece);
        } else {
            choice.put("text", piece);
        }
        choice.putArray("token_ids").add(token);
        if (request.logprobs()) choice.set("logprobs", logprobsJson(List.of(token), List.of(logprob)));
        else choice.putNull("logprobs");
        choice.putNull("finish_reason");
        send(chunk);
    }

    @Override
    public void onFinish(GenerationOutcome o) {
        if (o.reason() == FinishReason.CANCELLED) {
            context.runOnContext(v -> {
                if (!response.ended() && !response.closed()) response.end();
            });
            return;
        }
        String finish = switch (o.reason()) {
            case STOP -> "stop";
            case LENGTH -> "length";
            case ERROR -> "error";
            case CANCELLED -> "cancelled";
        };
        if (!request.stream()) {
            text.append(o.text());
            if (o.reason() == FinishReason.ERROR) {
                OpenAiRoutes.error(response, context, new ApiError(500, "server_error", o.error(), null, null));
                return;
            }
            ObjectNode body = JSON.createObjectNode();
            body.put("id", id);
            body.put("object", chat ? "chat.completion" : "text_completion");
            body.put("created", created);
            body.put("model", request.model());
            ObjectNode choice = body.putArray("choices").addObject();
            choice.put("index", 0);
            if (chat) {
                ObjectNode message = choice.putObject("message");
                message.put("role", "assistant");
                message.put("content", text.toString());
            } else {
                choice.put("text", text.toString());
            }
            ArrayNode ids = choice.putArray("token_ids");
            tokens.forEach(ids::add);
            if (request.logprobs()) choice.set("logprobs", logprobsJson(tokens, logprobs));
            else choice.putNull("logprobs");
            choice.put("finish_reason", finish);
            if (!o.stopReason().isEmpty()) choice.put("stop_reason", o.stopReason());
            body.set("usage", usage(o));
            String json = body.toString();
            context.runOnContext(v -> {
                if (response.ended() || response.closed()) return;
                response.putHeader("Content-Type", "application/json").end(json);
            });
            return;
        }
        ObjectNode chunk = chunk();
        ObjectNode choice = ((ArrayNode) chunk.get("choices")).addObject();
        choice.put("index", 0);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (!started) delta.put("role", "assistant");
            if (!o.text().isEmpty()) delta.put("content", o.text());
        } else {
            choice.put("text", o.text());
        }
        choice.putArray("token_ids");
        choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        if (!o.stopReason().isEmpty()) choice.put("stop_reason", o.stopReason());
        chunk.set("usage", usage(o));
        if (o.error() != null) chunk.putObject("error").put("message", o.error()).put("type", "server_error");
        send(chunk);
        if (request.includeUsage()) {
            ObjectNode last = chunk();
            last.set("usage", usage(o));
            send(last);
        }
        context.runOnContext(v -> {
            if (response.ended() || response.closed()) return;
            response.write("data: [DONE]\n\n");
            response.end();
        });
    }

    private ObjectNode chunk() {
        ObjectNode c = JSON.createObjectNode();
        c.put("id", id);
        c.put("object", chat ? "chat.completion.chunk" : "text_completion");
        c.put("created", created);
        c.put("model", request.model());
        c.putArray("choices");
        return c;
    }

    private void send(ObjectNode chunk) {
        String data = "data: " + chunk + "\n\n";
        boolean first = !started;
        started = true;
        context.runOnContext(v -> {
            if (response.ended() || response.closed()) return;
            if (first) {
                response.setChunked(true);
                response.putHeader("Content-Type", "text/event-stream");
                response.putHeader("Cache-Control", "no-cache");
            }
            response.write(data);
        });
    }

    private ObjectNode logprobsJson(List<Integer> ids, List<Float> lps) {
        ObjectNode l = JSON.createObjectNode();
        if (chat) {
            ArrayNode content = l.putArray("content");
            for (int i = 0; i < ids.size(); i++) {
                ObjectNode t = content.addObject();
                t.put("token", codec.tokenText(ids.get(i)));
                t.put("token_id", ids.get(i));
                t.put("logprob", lps.get(i));
                t.putArray("top_logprobs");
            }
        } else {
            ArrayNode toks = l.putArray("tokens"), lp = l.putArray("token_logprobs");
            for (int i = 0; i < ids.size(); i++) {
                toks.add(codec.tokenText(ids.get(i)));
                lp.add(lps.get(i));
            }
            l.putNull("top_logprobs");
        }
        return l;
    }

    private static ObjectNode usage(GenerationOutcome o) {
        ObjectNode u = JSON.createObjectNode();
        u.put("prompt_tokens", o.promptTokens());
        u.put("completion_tokens", o.completionTokens());
        u.put("total_tokens", o.totalTokens());
        return u;
    }
}
