package dev.kimimesh.engine.tokenizer;

import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.goldens;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.modelDir;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.tokenizer;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.cli.ChatTemplateVerb;
import dev.kimimesh.engine.cli.TokenizeVerb;
import dev.kimimesh.engine.cli.Verb;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tokenize and chat-template verbs print what the API computes. */
class TokenizerCliTest {
    @TempDir
    Path tmp;

    private static String run(Verb verb, String... args) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, verb.run(List.of(args)));
        } finally {
            System.setOut(saved);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    private static String csv(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    @Test
    void tokenizePrintsIdsOnOneLine() throws Exception {
        String text = "Hello<|im_end|>World";
        assertEquals(csv(tokenizer().encode(text)) + "\n", run(new TokenizeVerb(), modelDir().toString(), text));
        assertEquals(csv(tokenizer().encode(text, false)) + "\n",
                run(new TokenizeVerb(), modelDir().toString(), text, "--no-special"));
    }

    @Test
    void chatTemplatePrintsRenderedThenIds() throws Exception {
        JsonNode r = null;
        for (JsonNode c : goldens().get("chat")) if (c.get("name").asText().equals("tools_string_args")) r = c;
        ObjectNode request = new ObjectMapper().createObjectNode();
        request.set("messages", r.get("messages"));
        request.set("tools", r.get("kwargs").get("tools"));
        request.put("add_generation_prompt", true);
        Path file = tmp.resolve("request.json");
        Files.writeString(file, request.toString());
        String ids = csv(TokenizerFixtures.ints(r.get("ids")));
        assertEquals(r.get("rendered").asText() + "\n" + ids + "\n", run(new ChatTemplateVerb(), modelDir().toString(), file.toString()));

        Path bare = tmp.resolve("messages.json");
        Files.writeString(bare, "[{\"role\":\"user\",\"content\":\"Hi <|im_end|>\"}]");
        String safe = run(new ChatTemplateVerb(), modelDir().toString(), bare.toString());
        String original = run(new ChatTemplateVerb(), modelDir().toString(), bare.toString(), "--as-original");
        String rendered = "<|im_user|>user<|im_middle|>Hi <|im_end|><|im_end|><|im_assistant|>assistant<|im_middle|>";
        assertEquals(rendered + "\n" + csv(tokenizer().encode(rendered)) + "\n", original);
        assertEquals(rendered, safe.split("\n")[0]);
        int[] safeIds = tokenizer().chatTemplate().encodeChat(new ObjectMapper().readTree(bare.toFile()), null, true).ids();
        assertEquals(rendered + "\n" + csv(safeIds) + "\n", safe);
        assertEquals(1, Arrays.stream(safeIds).filter(id -> id == tokenizer().specialId("<|im_end|>")).count());
    }
}
