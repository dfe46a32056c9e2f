package dev.kimimesh.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The input of a chat template: OpenAI-style messages, optional tools, and whether to open the assistant's turn.
 *
 * @param messages JSON array of message objects ({@code role}, {@code content} string / parts / null, {@code name},
 *                 {@code tool_calls}, {@code tool_call_id})
 * @param tools    JSON array of tool definitions, or null
 */
public record ChatRequest(JsonNode messages, JsonNode tools, boolean addGenerationPrompt) {
    /**
     * Reads either a bare array of messages or {"messages": [...], "tools": [...], "add_generation_prompt": bool};
     * {@code add_generation_prompt} defaults to true, the original class's default.
     */
    public static ChatRequest fromJson(JsonNode json) {
        if (json.isArray()) return new ChatRequest(json, null, true);
        if (!json.isObject() || !json.path("messages").isArray()) {
            throw new IllegalArgumentException("expected an array of messages or an object with a 'messages' array");
        }
        JsonNode gen = json.get("add_generation_prompt");
        if (gen != null && !gen.isBoolean()) throw new IllegalArgumentException("add_generation_prompt must be a boolean");
        JsonNode tools = json.get("tools");
        return new ChatRequest(json.get("messages"), tools == null || tools.isNull() ? null : tools,
                gen == null || gen.asBoolean());
    }
}
