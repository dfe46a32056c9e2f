package dev.kimimesh.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Which request fields the gateway serves. A field it does not implement is answered with 400 naming it, never
 * silently ignored: a client that sends a penalty or a logit bias must learn that it had no effect. Fields whose
 * value asks for the default behaviour (a penalty of 0, an empty logit_bias, echo false ...) are accepted.
 */
final class OpenAiParameters {
    private OpenAiParameters() {}

    /** Served by both endpoints (OpenAI's and this gateway's extensions). */
    private static final Set<String> COMMON = Set.of("model", "max_tokens", "n", "best_of", "logprobs", "seed", "stop", "stream",
            "stream_options", "temperature", "top_p", "user",
            // extensions (vLLM conventions)
            "top_k", "stop_token_ids", "ignore_eos", "skip_special_tokens",
            // sessions (extension): continue a conversation's state without recomputing it
            "session_id", "keep_session");
    private static final Set<String> COMPLETIONS = Set.of("prompt");
    private static final Set<String> CHAT = Set.of("messages", "max_completion_tokens", "top_logprobs", "tools");

    /** Fields accepted only with the value that means "the default behaviour". */
    private static final Map<String, Predicate<JsonNode>> DEFAULT_ONLY = Map.of(
            "presence_penalty", v -> v.isNumber() && v.asDouble() == 0,
            "frequency_penalty", v -> v.isNumber() && v.asDouble() == 0,
            "repetition_penalty", v -> v.isNumber() && v.asDouble() == 1,
            "logit_bias", v -> v.isObject() && v.isEmpty(),
            "echo", v -> v.isBoolean() && !v.asBoolean(),
            "suffix", v -> v.isTextual() && v.asText().isEmpty(),
            "response_format", v -> v.isObject() && "text".equals(v.path("type").asText()),
            "tool_choice", v -> v.isTextual() && "auto".equals(v.asText()),
            "parallel_tool_calls", v -> v.isBoolean() && v.asBoolean(),
            "store", v -> v.isBoolean() && !v.asBoolean());

    /** @throws ApiError 400 naming the first field that is unknown or asks for something not served */
    static void check(JsonNode body, boolean chat) {
        for (Iterator<Map.Entry<String, JsonNode>> it = body.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode value = f.getValue();
            if (value.isNull() || COMMON.contains(name) || (chat ? CHAT : COMPLETIONS).contains(name)) continue;
            Predicate<JsonNode> isDefault = DEFAULT_ONLY.get(name);
            if (isDefault == null) {
                String other = (chat ? COMPLETIONS : CHAT).contains(name) ? " (it belongs to " + (chat ? "/v1/completions" : "/v1/chat/completions") + ")" : "";
                throw ApiError.invalid("unrecognized request argument supplied: " + name + other, name);
            }
            if (!isDefault.test(value)) {
                throw ApiError.invalid(name + " is not supported by this gateway (only its default value is accepted), got " + value, name);
            }
        }
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!options.isObject()) throw ApiError.invalid("stream_options must be an object", "stream_options");
            for (Iterator<String> it = options.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (!name.equals("include_usage")) throw ApiError.invalid("stream_options." + name + " is not supported", "stream_options");
            }
        }
    }
}
