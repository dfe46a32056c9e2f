package dev.kimimesh.engine.tokenizer;

import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.goldens;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.ints;
import static dev.kimimesh.engine.tokenizer.TokenizerFixtures.tokenizer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** Every conversation of goldens.json rendered and encoded as the original does. */
class TokenizerChatTemplateTest {

    @TestFactory
    Stream<DynamicTest> chatSection() {
        KimiTokenizer t = tokenizer();
        ChatTemplate template = t.chatTemplate();
        List<JsonNode> records = new ArrayList<>();
        goldens().get("chat").forEach(records::add);
        return records.stream().map(r -> DynamicTest.dynamicTest(r.get("name").asText(), () -> {
            JsonNode kwargs = r.get("kwargs");
            // the class's apply_chat_template defaults to add_generation_prompt=True
            boolean gen = !kwargs.has("add_generation_prompt") || kwargs.get("add_generation_prompt").asBoolean();
            JsonNode tools = kwargs.get("tools");
            String rendered = r.get("rendered").asText();
            assertEquals(rendered, template.render(r.get("messages"), tools, gen));
            if (r.hasNonNull("ids")) {
                int[] ids = ints(r.get("ids"));
                ChatEncoding original = template.encodeChat(r.get("messages"), tools, gen, ControlTokenPolicy.AS_ORIGINAL);
                assertEquals(rendered, original.text());
                assertArrayEquals(ids, original.ids());
                assertArrayEquals(ints(r.get("ids_class_encode_of_rendered")), t.encode(rendered));
                assertEquals(r.get("decoded").asText(), t.decode(original.ids()));
                // without a special literal in the content, the safe default gives the very same ids
                ChatEncoding safe = template.encodeChat(r.get("messages"), tools, gen);
                assertEquals(rendered, safe.text());
                if (!r.get("name").asText().contains("injection")) assertArrayEquals(ids, safe.ids());
            }
        }));
    }
}
