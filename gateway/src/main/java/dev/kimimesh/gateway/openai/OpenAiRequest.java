package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.gateway.api.GenerationRequest;
import dev.kimimesh.gateway.api.SamplingDefaults;
import dev.kimimesh.gateway.schedule.SequenceOptions;
import dev.kimimesh.gateway.text.TextCodec;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * A parsed and checked /v1/completions or /v1/chat/completions body.
 *
 * @param logprobs     whether per-token logprobs are returned
 * @param topLogprobs  how many most likely alternatives come with each token's logprob
 * @param includeUsage stream_options.include_usage: a last chunk with usage only
 * @param n            choices to generate (independent sequences; with a seed, choice i samples with seed + i)
 */
public record OpenAiRequest(String model, GenerationRequest generation, boolean stream, boolean logprobs, int topLogprobs,
                            boolean includeUsage, int n) {
    /** Most choices one request may ask for. */
    static final int MAX_N = 16;

    /**
     * Reads the fields shared by both endpoints around a prompt built by {@code promptOf} (which sees the body).
     *
     * @throws ApiError 400 naming the field, 404 for an unknown model
     */
    static OpenAiRequest parse(JsonNode body, String servedModel, int contextLimit, int defaultMaxTokens, boolean chat,
                               TextCodec codec, Function<JsonNode, int[]> promptOf, List<Integer> extraStopIds) {
        if (body == null || !body.isObject()) throw ApiError.invalid("the request body must be a JSON object", null);
        String model = servedModel;
        JsonNode m = body.get("model");
        if (m != null && !m.isNull()) {
            if (!m.isTextual()) throw ApiError.invalid("model must be a string", "model");
            if (!m.asText().equals(servedModel)) {
                throw new ApiError(404, "invalid_request_error", "The model '" + m.asText() + "' does not exist; this gateway serves '"
                        + servedModel + "'", "model", "model_not_found");
            }
        }
        OpenAiParameters.check(body, chat);
        int n = intField(body, "n", 1);
        if (n < 1 || n > MAX_N) throw ApiError.invalid("n must be in 1.." + MAX_N + ", got " + n, "n");
        if (body.has("best_of") && !body.get("best_of").isNull() && intField(body, "best_of", n) != n) {
            throw ApiError.invalid("best_of must equal n (no server-side ranking of choices)", "best_of");
        }
        int[] prompt = promptOf.apply(body);
        if (prompt.length == 0) throw ApiError.invalid("the prompt is empty", chat ? "messages" : "prompt");
        if (prompt.length >= contextLimit) {
            throw ApiError.invalid("the prompt has " + prompt.length + " tokens; the model's context holds " + contextLimit
                    + ", which leaves no room to generate", chat ? "messages" : "prompt");
        }
        String maxField = chat && body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        Integer maxTokens = body.has(maxField) && !body.get(maxField).isNull() ? intField(body, maxField, 0) : null;
        if (maxTokens == null && defaultMaxTokens > 0) maxTokens = Math.min(defaultMaxTokens, contextLimit - prompt.length);
        if (maxTokens != null && maxTokens <= 0) throw ApiError.invalid(maxField + " must be >= 1, got " + maxTokens, maxField);
        Double temperature = doubleField(body, "temperature");
        Double topP = doubleField(body, "top_p");
        Long seed = body.has("seed") && !body.get("seed").isNull() ? longField(body, "seed") : null;
        int topK = body.has("top_k") && !body.get("top_k").isNull() ? intField(body, "top_k", 0) : 0;
        if (topK == -1) topK = 0; // vLLM: -1 = off
        boolean stream = boolField(body, "stream");
        boolean logprobs = logprobsOf(body, chat);
        int topLogprobs = topLogprobsOf(body, chat, logprobs);
        boolean includeUsage = body.path("stream_options").path("include_usage").asBoolean(false);
        List<String> stops = stopsOf(body.get("stop"));
        if (!stops.isEmpty() && !codec.available()) {
            throw ApiError.invalid("stop strings need a tokenizer; this model has none (use stop_token_ids)", "stop");
        }
        List<Integer> stopIds = new ArrayList<>(extraStopIds);
        JsonNode ids = body.get("stop_token_ids");
        if (ids != null && !ids.isNull()) {
            if (!ids.isArray()) throw ApiError.invalid("stop_token_ids must be an array of token ids", "stop_token_ids");
            for (JsonNode id : ids) {
                if (!id.isIntegralNumber()) throw ApiError.invalid("stop_token_ids must hold integers", "stop_token_ids");
                stopIds.add(id.asInt());
            }
        }
        boolean ignoreEos = boolField(body, "ignore_eos");
        SamplingParams params;
        try {
            params = SamplingDefaults.of(temperature, topP, topK, seed, maxTokens, stopIds, ignoreEos, logprobs, prompt.length, contextLimit);
        } catch (IllegalArgumentException e) {
            String msg = e.getMessage();
            String param = msg.startsWith("temperature") ? "temperature" : msg.startsWith("top_p") ? "top_p"
                    : msg.startsWith("max_tokens") ? maxField : msg.startsWith("top_k") ? "top_k" : null;
            throw ApiError.invalid(msg, param);
        }
        boolean skipSpecial = !body.has("skip_special_tokens") || body.get("skip_special_tokens").asBoolean(true);
        return new OpenAiRequest(model, new GenerationRequest(prompt, params, stops, skipSpecial, SequenceOptions.topLogprobs(topLogprobs)),
                stream, logprobs, topLogprobs, includeUsage, n);
    }

    /** The prompt of /v1/completions: a string, an array of token ids, or a one-element array of either. */
    static int[] completionPrompt(JsonNode body, TextCodec codec) {
        JsonNode p = body.get("prompt");
        if (p == null || p.isNull()) throw ApiError.invalid("prompt is required", "prompt");
        if (p.isArray() && p.size() == 1 && (p.get(0).isTextual() || p.get(0).isArray())) p = p.get(0);
        if (p.isTextual()) {
            if (p.asText().isEmpty()) throw ApiError.invalid("the prompt is empty", "prompt");
            try {
                return codec.encode(p.asText(), false);
            } catch (IllegalArgumentException e) {
                throw ApiError.invalid(e.getMessage(), "prompt");
            }
        }
        if (p.isArray()) {
            int[] ids = new int[p.size()];
            for (int i = 0; i < ids.length; i++) {
                JsonNode id = p.get(i);
                if (id.isArray() || id.isTextual()) throw ApiError.invalid("one prompt per request is served (not a batch of prompts)", "prompt");
                if (!id.isIntegralNumber() || !id.canConvertToInt()) {
                    throw ApiError.invalid("prompt[" + i + "] must be a token id (an integer), got " + id, "prompt");
                }
                ids[i] = id.asInt();
            }
            return ids;
        }
        throw ApiError.invalid("prompt must be a string or an array of token ids", "prompt");
    }

    private static boolean logprobsOf(JsonNode body, boolean chat) {
        JsonNode l = body.get("logprobs");
        if (l == null || l.isNull()) return false;
        if (chat) {
            if (!l.isBoolean()) throw ApiError.invalid("logprobs must be a boolean", "logprobs");
            return l.asBoolean();
        }
        if (l.isBoolean()) return l.asBoolean();
        if (!l.isIntegralNumber() || l.asInt() < 0 || l.asInt() > 20) throw ApiError.invalid("logprobs must be an integer in 0..20", "logprobs");
        return true;
    }

    /** Chat: top_logprobs 0..20 (needs logprobs: true). Completions: the integer logprobs is the count of alternatives. */
    private static int topLogprobsOf(JsonNode body, boolean chat, boolean logprobs) {
        if (chat) {
            JsonNode t = body.get("top_logprobs");
            if (t == null || t.isNull()) return 0;
            int n = intField(body, "top_logprobs", 0);
            if (n < 0 || n > 20) throw ApiError.invalid("top_logprobs must be an integer in 0..20, got " + n, "top_logprobs");
            if (n > 0 && !logprobs) throw ApiError.invalid("top_logprobs needs logprobs: true", "top_logprobs");
            return n;
        }
        JsonNode l = body.get("logprobs");
        return l != null && l.isIntegralNumber() ? l.asInt() : 0;
    }

    private static List<String> stopsOf(JsonNode s) {
        List<String> stops = new ArrayList<>();
        if (s == null || s.isNull()) return stops;
        if (s.isTextual()) {
            if (!s.asText().isEmpty()) stops.add(s.asText());
        } else if (s.isArray()) {
            if (s.size() > 4) throw ApiError.invalid("stop takes at most 4 strings", "stop");
            for (JsonNode x : s) {
                if (!x.isTextual()) throw ApiError.invalid("stop must be a string or an array of strings", "stop");
                if (!x.asText().isEmpty()) stops.add(x.asText());
            }
        } else {
            throw ApiError.invalid("stop must be a string or an array of strings", "stop");
        }
        return stops;
    }

    static int intField(JsonNode body, String name, int dflt) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw ApiError.invalid(name + " must be an integer, got " + v, name);
        return v.asInt();
    }

    private static long longField(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiError.invalid(name + " must be an integer, got " + v, name);
        return v.asLong();
    }

    private static Double doubleField(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw ApiError.invalid(name + " must be a number, got " + v, name);
        return v.asDouble();
    }

    private static boolean boolField(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw ApiError.invalid(name + " must be true or false, got " + v, name);
        return v.asBoolean();
    }
}
