package dev.kimimesh.engine.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Reader of {@code tokenizer_config.json}: the named special tokens ({@code added_tokens_decoder}), the
 * Hugging Face special set (bos, eos, unk, pad, {@code additional_special_tokens}) and an inline chat template.
 */
final class TokenizerConfigFile {
    static final String NAME = "tokenizer_config.json";

    private final Path file;
    private final JsonNode root;

    private TokenizerConfigFile(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    static TokenizerConfigFile read(Path file) {
        try {
            JsonNode root = new ObjectMapper().readTree(Files.readAllBytes(file));
            if (root == null || !root.isObject()) throw new TokenizerException(file + ": expected a JSON object");
            return new TokenizerConfigFile(file, root);
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": missing (a Kimi model directory carries " + NAME + ")");
        } catch (JsonProcessingException e) {
            var loc = e.getLocation();
            String where = loc == null ? "" : " line " + loc.getLineNr() + " column " + loc.getColumnNr();
            throw new TokenizerException(file + where + ": malformed JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** The 258 special tokens after {@code numBase} ranks, named as the original class names them. */
    SpecialTokens specialTokens(int numBase) {
        String[] names = new String[SpecialTokens.COUNT];
        JsonNode added = root.path("added_tokens_decoder");
        if (!added.isMissingNode() && !added.isObject()) throw error("added_tokens_decoder must be an object");
        for (Iterator<Map.Entry<String, JsonNode>> it = added.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw error("added_tokens_decoder key '" + e.getKey() + "' is not an integer id");
            }
            String content = tokenContent(e.getValue());
            if (content == null) throw error("added_tokens_decoder[" + id + "] has no string 'content'");
            // the original only reads the 258 slots after the ranks; other entries never reach tiktoken
            if (id >= numBase && id < numBase + SpecialTokens.COUNT) names[id - numBase] = content;
        }
        for (int i = 0; i < names.length; i++) {
            if (names[i] == null) names[i] = SpecialTokens.reservedName(numBase + i);
        }
        checkDistinct(names, numBase);

        List<String> hfNames = new ArrayList<>();
        for (String key : List.of("bos_token", "eos_token", "unk_token", "pad_token")) {
            String name = tokenContent(root.get(key));
            if (name != null) hfNames.add(name);
        }
        JsonNode extra = root.path("additional_special_tokens");
        if (extra.isArray()) {
            for (JsonNode n : extra) {
                String name = tokenContent(n);
                if (name == null) throw error("additional_special_tokens holds a non-token entry: " + n);
                hfNames.add(name);
            }
        }
        BitSet hf = new BitSet(SpecialTokens.COUNT);
        for (String name : hfNames) {
            int idx = indexOf(names, name);
            if (idx < 0) throw error("special token '" + name + "' is not one of the " + SpecialTokens.COUNT
                    + " special ids " + numBase + ".." + (numBase + SpecialTokens.COUNT - 1));
            hf.set(idx);
        }
        return new SpecialTokens(numBase, names, hf,
                idOf(names, numBase, "bos_token"), idOf(names, numBase, "eos_token"),
                idOf(names, numBase, "pad_token"), idOf(names, numBase, "unk_token"));
    }

    /** The inline {@code chat_template}: a string, or the "default" entry of a list of named templates. */
    String chatTemplate() {
        JsonNode t = root.get("chat_template");
        if (t == null || t.isNull()) return null;
        if (t.isTextual()) return t.asText();
        if (t.isArray()) {
            for (JsonNode n : t) {
                if ("default".equals(n.path("name").asText()) && n.path("template").isTextual()) {
                    return n.path("template").asText();
                }
            }
        }
        throw error("chat_template must be a string or a list with a 'default' entry");
    }

    private int idOf(String[] names, int numBase, String key) {
        String name = tokenContent(root.get(key));
        if (name == null) return -1;
        return numBase + indexOf(names, name);
    }

    /** A token is written either as its string or as a serialized AddedToken {"content": ...}. */
    private static String tokenContent(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        JsonNode c = n.get("content");
        return c != null && c.isTextual() ? c.asText() : null;
    }

    private static int indexOf(String[] names, String name) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) return i;
        }
        return -1;
    }

    private void checkDistinct(String[] names, int numBase) {
        for (int i = 0; i < names.length; i++) {
            if (names[i].isEmpty()) throw error("special token " + (numBase + i) + " has an empty name");
            for (int j = 0; j < i; j++) {
                if (names[i].equals(names[j])) {
                    throw error("special token name '" + names[i] + "' is used by ids " + (numBase + j) + " and " + (numBase + i));
                }
            }
        }
    }

    private TokenizerException error(String what) {
        return new TokenizerException(file + ": " + what);
    }
}
