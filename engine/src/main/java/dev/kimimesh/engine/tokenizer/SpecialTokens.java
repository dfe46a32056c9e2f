package dev.kimimesh.engine.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The 258 special tokens that follow the BPE ranks, their literal names, and which of them Hugging Face treats as
 * special (the 12 that {@code skip_special_tokens} drops).
 */
final class SpecialTokens {
    /** The original's loop is {@code range(num_base, num_base + 256 + 2)}: 258 ids, two past the model's rows. */
    static final int COUNT = 256 + 2;

    private final int firstId;
    private final String[] names; // index = id - firstId
    private final Map<String, Integer> idsByName;
    private final BitSet hfSpecial; // index = id - firstId
    private final int bos, eos, pad, unk;
    private final Node trie = new Node();
    private final BitSet firstChars = new BitSet(128);

    SpecialTokens(int firstId, String[] names, BitSet hfSpecial, int bos, int eos, int pad, int unk) {
        this.firstId = firstId;
        this.names = names.clone();
        this.hfSpecial = (BitSet) hfSpecial.clone();
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.unk = unk;
        Map<String, Integer> byName = new HashMap<>();
        for (int i = 0; i < names.length; i++) {
            byName.put(names[i], firstId + i);
            firstChars.set(names[i].charAt(0));
            Node node = trie;
            for (int k = 0; k < names[i].length(); k++) {
                node = node.children.computeIfAbsent(names[i].charAt(k), c -> new Node());
            }
            node.id = firstId + i;
        }
        this.idsByName = Collections.unmodifiableMap(byName);
    }

    /** Name of every reserved slot the config does not name. */
    static String reservedName(int id) {
        return "<|reserved_token_" + id + "|>";
    }

    int firstId() {
        return firstId;
    }

    int endId() {
        return firstId + names.length;
    }

    boolean contains(int id) {
        return id >= firstId && id < endId();
    }

    String name(int id) {
        return names[id - firstId];
    }

    Integer id(String name) {
        return idsByName.get(name);
    }

    Map<String, Integer> idsByName() {
        return idsByName;
    }

    boolean isHfSpecial(int id) {
        return contains(id) && hfSpecial.get(id - firstId);
    }

    int[] hfSpecialIds() {
        return hfSpecial.stream().map(i -> i + firstId).toArray();
    }

    List<String> names() {
        return Collections.unmodifiableList(new ArrayList<>(Arrays.asList(names)));
    }

    int bos() {
        return bos;
    }

    int eos() {
        return eos;
    }

    int pad() {
        return pad;
    }

    int unk() {
        return unk;
    }

    /**
     * The special literal starting at {@code text[at]}: its id, or -1. Returns the longest name when one is a
     * prefix of another (tiktoken's order is a hash-map order there; with Kimi's names it never happens).
     */
    int matchAt(CharSequence text, int at, int end, int[] matchEnd) {
        Node node = trie;
        int found = -1;
        for (int i = at; i < end; i++) {
            node = node.children.get(text.charAt(i));
            if (node == null) break;
            if (node.id >= 0) {
                found = node.id;
                matchEnd[0] = i + 1;
            }
        }
        return found;
    }

    /** Chars that can start a special literal, so that the scan skips everything else cheaply. */
    boolean canStart(char c) {
        return firstChars.get(c);
    }

    private static final class Node {
        final Map<Character, Node> children = new HashMap<>(4);
        int id = -1;
    }
}
