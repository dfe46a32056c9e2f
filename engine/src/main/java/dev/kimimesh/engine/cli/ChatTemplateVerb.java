package dev.kimimesh.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.tokenizer.ChatEncoding;
import dev.kimimesh.engine.tokenizer.ChatRequest;
import dev.kimimesh.engine.tokenizer.ControlTokenPolicy;
import dev.kimimesh.engine.tokenizer.KimiTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * {@code kimi-mesh chat-template <model-dir> <messages.json>}: prints the rendered prompt, then its ids on one line.
 */
public final class ChatTemplateVerb implements Verb {
    @Override
    public String name() {
        return "chat-template";
    }

    @Override
    public String usage() {
        return "<model-dir> <messages.json> [--as-original]  rendered chat prompt, then its ids (docs/tokenizer.md)";
    }

    @Override
    public int run(List<String> args) throws UsageException, IOException {
        Args a = Args.parse(args, Set.of(), Set.of("--as-original"));
        Path dir = Path.of(a.positional(0, "model-dir"));
        Path file = Path.of(a.positional(1, "messages.json"));
        JsonNode json;
        try {
            json = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
        ChatRequest request;
        try {
            request = ChatRequest.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new UsageException(file + ": " + e.getMessage());
        }
        ControlTokenPolicy policy = a.has("--as-original") ? ControlTokenPolicy.AS_ORIGINAL : ControlTokenPolicy.TEMPLATE_ONLY;
        ChatEncoding enc = KimiTokenizer.load(dir).chatTemplate().encodeChat(request, policy);
        System.out.println(enc.text());
        System.out.println(TokenizeVerb.join(enc.ids()));
        return 0;
    }
}
