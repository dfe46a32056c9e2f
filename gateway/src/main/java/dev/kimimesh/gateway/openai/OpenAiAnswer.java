package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.gateway.api.GenerationListener;
import dev.kimimesh.gateway.api.GenerationOutcome;
import dev.kimimesh.gateway.schedule.SampledToken;
import dev.kimimesh.gateway.text.TextCodec;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes the n generations of one request as an OpenAI answer: a JSON object once every choice has finished, or
 * server-sent events ({@code data: {...}} chunks, each naming its choice's index, ending in {@code data: [DONE]}) as
 * tokens arrive. Every choice also carries the generated {@code token_ids}. All choices report on the scheduler's
 * single thread; writes are moved onto the request's Vert.x context, in order.
 */
final class OpenAiAnswer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServerResponse response;
    private final Context context;
    private final OpenAiRequest request;
    private final boolean chat;
    private final String id;
    private final long created = System.currentTimeMillis() / 1000;
    private final TextCodec codec;
    private final List<Choice> choices = new ArrayList<>();
    private boolean headersSent, failed;
    private volatile boolean abandoned; // the request was answered with an error before every choice started
    private int finished, promptTokens, cachedTokens, completionTokens;
    private String sessionId;

    OpenAiAnswer(HttpServerResponse response, Context context, OpenAiRequest request, boolean chat, String id, TextCodec codec) {
        this.response = response;
        this.context = context;
        this.request = request;
        this.chat = chat;
        this.id = id;
        this.codec = codec;
        for (int i = 0; i < request.n(); i++) choices.add(new Choice(i));
    }

    /** The listener of choice {@code index}. */
    GenerationListener choice(int index) {
        return choices.get(index);
    }

    /** The request failed before all its choices started: the started ones are being cancelled, write nothing. */
    void abandon() {
        abandoned = true;
    }

    /** Reported in the answer (the session this turn continued or created). */
    void sessionId(String id) {
        this.sessionId = id;
    }

    /** One generated choice: its tokens, text and logprobs so far. */
    private final class Choice implements GenerationListener {
        final int index;
        final StringBuilder text = new StringBuilder();
        final List<SampledToken> tokens = new ArrayList<>();
        final List<Integer> offsets = new ArrayList<>();
        boolean started;
        GenerationOutcome outcome;

        Choice(int index) {
            this.index = index;
        }

        /**
         * This choice's entry in a streamed chunk: the text as a chat delta (with the role on the first one) or as a
         * completion's text. A token's delta always carries its content; the closing one only when it has text.
         */
        private ObjectNode streamChoice(ObjectNode chunk, String piece, boolean closing) {
            ObjectNode choice = ((ArrayNode) chunk.get("choices")).addObject();
            choice.put("index", index);
            if (chat) {
                ObjectNode delta = choice.putObject("delta");
                if (!started) delta.put("role", "assistant");
                if (!closing || !piece.isEmpty()) delta.put("content", piece);
            } else {
                choice.put("text", piece);
            }
            return choice;
        }

        @Override
        public void onToken(SampledToken token, String piece) {
            if (!request.stream()) {
                offsets.add(text.length());
                tokens.add(token);
                text.append(piece);
                return;
            }
            ObjectNode chunk = chunk();
            ObjectNode choice = streamChoice(chunk, piece, false);
            started = true;
            choice.putArray("token_ids").add(token.token());
            if (request.logprobs()) choice.set("logprobs", logprobsJson(List.of(token), List.of(text.length())));
            else choice.putNull("logprobs");
            text.append(piece);
            choice.putNull("finish_reason");
            send(chunk);
        }

        @Override
        public void onFinish(GenerationOutcome o) {
            outcome = o;
            finished++;
            promptTokens = o.promptTokens();
            cachedTokens = o.cachedPromptTokens();
            completionTokens += o.completionTokens();
            boolean last = finished == choices.size();
            if (o.reason() == FinishReason.CANCELLED) {
                // the client went away (a stop string ends as STOP): nothing more to write
                failed = true;
                if (last) endResponse();
                return;
            }
            if (!request.stream()) {
                text.append(o.text());
                if (o.reason() == FinishReason.ERROR && !failed) {
                    failed = true;
                    OpenAiRoutes.error(response, context, new ApiError(500, "server_error", o.error(), null, null));
                }
                if (last && !failed) sendBody();
                return;
            }
            ObjectNode chunk = chunk();
            ObjectNode choice = streamChoice(chunk, o.text(), true);
            choice.putArray("token_ids");
            choice.putNull("logprobs");
            choice.put("finish_reason", finishReason(o));
            if (!o.stopReason().isEmpty()) choice.put("stop_reason", o.stopReason());
            // without stream_options.include_usage the last finishing chunk carries the usage (an extension)
            if (last && !request.includeUsage()) chunk.set("usage", usage());
            if (o.error() != null) chunk.putObject("error").put("message", o.error()).put("type", "server_error");
            send(chunk);
            if (!last) return;
            if (request.includeUsage()) {
                ObjectNode tail = chunk();
                tail.set("usage", usage());
                send(tail);
            }
            context.runOnContext(v -> {
                if (response.ended() || response.closed()) return;
                response.write("data: [DONE]\n\n");
                response.end();
            });
        }
    }

    private static String finishReason(GenerationOutcome o) {
        return switch (o.reason()) {
            case STOP -> "stop";
            case LENGTH -> "length";
            case ERROR -> "error";
            case CANCELLED -> "cancelled";
        };
    }

    private void sendBody() {
        ObjectNode body = JSON.createObjectNode();
        body.put("id", id);
        body.put("object", chat ? "chat.completion" : "text_completion");
        body.put("created", created);
        body.put("model", request.model());
        if (sessionId != null) body.put("session_id", sessionId);
        ArrayNode list = body.putArray("choices");
        for (Choice c : choices) {
            ObjectNode choice = list.addObject();
            choice.put("index", c.index);
            if (chat) {
                ObjectNode message = choice.putObject("message");
                message.put("role", "assistant");
                message.put("content", c.text.toString());
            } else {
                choice.put("text", c.text.toString());
            }
            ArrayNode ids = choice.putArray("token_ids");
            c.tokens.forEach(t -> ids.add(t.token()));
            if (request.logprobs()) choice.set("logprobs", logprobsJson(c.tokens, c.offsets));
            else choice.putNull("logprobs");
            choice.put("finish_reason", finishReason(c.outcome));
            if (!c.outcome.stopReason().isEmpty()) choice.put("stop_reason", c.outcome.stopReason());
        }
        body.set("usage", usage());
        String json = body.toString();
        context.runOnContext(v -> {
            if (response.ended() || response.closed()) return;
            response.putHeader("Content-Type", "application/json").end(json);
        });
    }

    private void endResponse() {
        if (abandoned) return;
        context.runOnContext(v -> {
            if (!response.ended() && !response.closed()) response.end();
        });
    }

    private ObjectNode chunk() {
        ObjectNode c = JSON.createObjectNode();
        c.put("id", id);
        c.put("object", chat ? "chat.completion.chunk" : "text_completion");
        c.put("created", created);
        c.put("model", request.model());
        if (sessionId != null) c.put("session_id", sessionId);
        c.putArray("choices");
        return c;
    }

    private void send(ObjectNode chunk) {
        String data = "data: " + chunk + "\n\n";
        boolean first = !headersSent;
        headersSent = true;
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

    /** OpenAI's logprobs object: chat's {@code content} list, or the completions' parallel arrays. */
    private ObjectNode logprobsJson(List<SampledToken> tokens, List<Integer> offsets) {
        ObjectNode l = JSON.createObjectNode();
        if (chat) {
            ArrayNode content = l.putArray("content");
            for (SampledToken t : tokens) {
                ObjectNode o = tokenJson(t.token(), t.logprob());
                o.put("token_id", t.token());
                ArrayNode top = o.putArray("top_logprobs");
                for (int j = 0; j < t.topIds().length; j++) top.add(tokenJson(t.topIds()[j], t.topLogprobs()[j]));
                content.add(o);
            }
            return l;
        }
        ArrayNode toks = l.putArray("tokens"), lp = l.putArray("token_logprobs"), top = l.putArray("top_logprobs"),
                offs = l.putArray("text_offset");
        for (int i = 0; i < tokens.size(); i++) {
            SampledToken t = tokens.get(i);
            toks.add(codec.tokenText(t.token()));
            lp.add(t.logprob());
            ObjectNode alternatives = top.addObject();
            for (int j = 0; j < t.topIds().length; j++) alternatives.put(codec.tokenText(t.topIds()[j]), t.topLogprobs()[j]);
            offs.add(offsets.get(i));
        }
        return l;
    }

    private ObjectNode tokenJson(int token, float logprob) {
        String text = codec.tokenText(token);
        ObjectNode o = JSON.createObjectNode();
        o.put("token", text);
        o.put("logprob", logprob);
        ArrayNode bytes = o.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xff);
        return o;
    }

    private ObjectNode usage() {
        ObjectNode u = JSON.createObjectNode();
        u.put("prompt_tokens", promptTokens);
        u.put("completion_tokens", completionTokens);
        u.put("total_tokens", promptTokens + completionTokens);
        if (cachedTokens > 0) u.putObject("prompt_tokens_details").put("cached_tokens", cachedTokens);
        return u;
    }
}
