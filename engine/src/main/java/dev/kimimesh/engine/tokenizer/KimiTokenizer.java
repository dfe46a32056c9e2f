package dev.kimimesh.engine.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;

/**
 * Moonshot's Kimi tokenizer ({@code TikTokenTokenizer} of {@code tokenization_kimi.py}) loaded from a model
 * directory: byte-level BPE over {@code tiktoken.model}, 258 special ids after the ranks, and the chat template.
 *
 * <p>Immutable and thread-safe. Encoding copies the original exactly, including its pre-splitting (400,000
 * code-point slices, 25,000 code-point runs) and its default of turning every special-token literal in the text into
 * its control id; decoding copies Python's UTF-8 replacement rule.
 */
public final class KimiTokenizer {
    static final String TEMPLATE_FILE = "chat_template.jinja";

    private final Path directory;
    private final RankTable ranks;
    private final SpecialTokens specials;
    private final byte[][] specialBytes;
    private final String templateSource;
    private final String templateOrigin;
    private volatile ChatTemplate chatTemplate;

    private KimiTokenizer(Path directory, RankTable ranks, SpecialTokens specials, String templateSource,
                          String templateOrigin) {
        this.directory = directory;
        this.ranks = ranks;
        this.specials = specials;
        this.templateSource = templateSource;
        this.templateOrigin = templateOrigin;
        this.specialBytes = new byte[SpecialTokens.COUNT][];
        for (int i = 0; i < SpecialTokens.COUNT; i++) {
            specialBytes[i] = specials.name(specials.firstId() + i).getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * Loads {@code tiktoken.model}, {@code tokenizer_config.json} and the chat template ({@code chat_template.jinja},
     * else {@code chat_template} of the config; a directory without one loads, but {@link #chatTemplate()} fails).
     *
     * @throws TokenizerException naming the file (and line) that is missing or malformed
     */
    public static KimiTokenizer load(Path modelDir) {
        if (!Files.isDirectory(modelDir)) throw new TokenizerException(modelDir + ": not a directory");
        RankTable ranks = TiktokenModelFile.read(modelDir.resolve(TiktokenModelFile.NAME));
        TokenizerConfigFile config = TokenizerConfigFile.read(modelDir.resolve(TokenizerConfigFile.NAME));
        SpecialTokens specials = config.specialTokens(ranks.size());
        Path templateFile = modelDir.resolve(TEMPLATE_FILE);
        String template;
        String origin;
        if (Files.isRegularFile(templateFile)) {
            try {
                template = Files.readString(templateFile, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new TokenizerException(templateFile + ": cannot read: " + e.getMessage(), e);
            }
            origin = templateFile.toString();
        } else {
            template = config.chatTemplate();
            origin = modelDir.resolve(TokenizerConfigFile.NAME) + " (chat_template)";
        }
        return new KimiTokenizer(modelDir, ranks, specials, template, template == null ? null : origin);
    }

    /** {@code encode(text)} of the original: special-token literals in the text become their control ids. */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * @param allowSpecial true: every special-token literal becomes its id (the original's default);
     *                     false: literals are plain text ({@code allow_special_tokens=False})
     */
    public int[] encode(String text, boolean allowSpecial) {
        return encode(text, allowSpecial, PlainSpans.NONE);
    }

    /** Encodes with specials allowed except literals that overlap one of {@code plain}'s spans. */
    int[] encode(String text, boolean allowSpecial, PlainSpans plain) {
        String s = replaceLoneSurrogates(text);
        Encoder enc = new Encoder(s, allowSpecial, plain, s.length() / 3);
        TextSlicer.forEachPiece(s, (from, to) -> {
            enc.encodeSlice(from, to);
            return 0;
        });
        return enc.out.toArray();
    }

    /** {@code decode(ids)} of the original: token bytes joined, UTF-8 with replacement; special ids give their names. */
    public String decode(int[] ids) {
        byte[] bytes = decodeBytes(ids);
        return Utf8.decode(bytes, bytes.length);
    }

    /**
     * Transformers' {@code decode(ids, skip_special_tokens=...)}; skipping drops exactly the Hugging Face special
     * ids (bos, eos, unk, pad, additional_special_tokens: 12 for Kimi), not tool-call markers or reserved ids.
     */
    public String decode(int[] ids, boolean skipSpecial) {
        if (!skipSpecial) return decode(ids);
        checkIds(ids);
        return decode(Arrays.stream(ids).filter(id -> !specials.isHfSpecial(id)).toArray());
    }

    /** The bytes of all tokens, concatenated. */
    public byte[] decodeBytes(int[] ids) {
        int total = 0;
        for (int id : ids) total += tokenBytesShared(id).length;
        byte[] out = new byte[total];
        int p = 0;
        for (int id : ids) {
            byte[] b = tokenBytesShared(id);
            System.arraycopy(b, 0, out, p, b.length);
            p += b.length;
        }
        return out;
    }

    /** The bytes of one token (a special id gives its name in UTF-8). */
    public byte[] tokenBytes(int id) {
        return tokenBytesShared(id).clone();
    }

    byte[] tokenBytesShared(int id) {
        if (id >= 0 && id < ranks.size()) return ranks.bytes(id);
        if (specials.contains(id)) return specialBytes[id - specials.firstId()];
        throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (0.." + (vocabSize() - 1) + ")");
    }

    /** Throws an IllegalArgumentException naming the first id outside 0..vocabSize()-1. */
    public void checkIds(int[] ids) {
        for (int id : ids) tokenBytesShared(id);
    }

    /**
     * Rejects ids the model cannot embed: the tokenizer has {@link #vocabSize()} ids (Kimi: 163,842) while the
     * model's embedding has {@code modelVocabSize} rows (Kimi: 163,840), so the last two reserved ids, which a
     * {@code <|reserved_token_163840|>} literal in text produces, must not reach it.
     *
     * @throws IllegalArgumentException naming the first offending id and its position
     */
    public void checkIdsForModel(int[] ids, int modelVocabSize) {
        for (int i = 0; i < ids.length; i++) {
            int id = ids[i];
            if (id < 0 || id >= modelVocabSize) {
                String what = id >= 0 && id < vocabSize() ? " (" + specials.name(id) + ")" : "";
                throw new IllegalArgumentException("token id " + id + what + " at position " + i
                        + " is outside the model's vocabulary (0.." + (modelVocabSize - 1) + ")");
            }
        }
    }

    /** Number of ids: BPE ranks plus the 258 special ids ({@code n_vocab}; Kimi: 163,842). */
    public int vocabSize() {
        return specials.endId();
    }

    /** Number of BPE ranks in {@code tiktoken.model}; the first special id. */
    public int numBaseTokens() {
        return ranks.size();
    }

    /** Id of a special token by its literal name, e.g. {@code <|im_end|>}. */
    public int specialId(String name) {
        Integer id = specials.id(name);
        if (id == null) throw new IllegalArgumentException("'" + name + "' is not a special token of " + directory);
        return id;
    }

    /** Literal name of a special id. */
    public String specialName(int id) {
        if (!specials.contains(id)) throw new IllegalArgumentException("token id " + id + " is not a special id");
        return specials.name(id);
    }

    /** The 258 special names, in id order. */
    public List<String> specialNames() {
        return specials.names();
    }

    /** True for the 258 ids after the BPE ranks. */
    public boolean isSpecial(int id) {
        return specials.contains(id);
    }

    /** True for the ids that {@code skip_special_tokens} drops. */
    public boolean isHfSpecial(int id) {
        return specials.isHfSpecial(id);
    }

    /** The ids that {@code skip_special_tokens} drops, ascending. */
    public int[] hfSpecialIds() {
        return specials.hfSpecialIds();
    }

    /** Id of {@code bos_token}, or -1 when the config names none. */
    public int bosId() {
        return specials.bos();
    }

    /** Id of {@code eos_token} ({@code [EOS]}; the chat model stops at {@code <|im_end|>}, see config.json), or -1. */
    public int eosId() {
        return specials.eos();
    }

    /** Id of {@code pad_token}, or -1. */
    public int padId() {
        return specials.pad();
    }

    /** Id of {@code unk_token}, or -1. */
    public int unkId() {
        return specials.unk();
    }

    SpecialTokens specials() {
        return specials;
    }

    /** The model directory's chat template. */
    public ChatTemplate chatTemplate() {
        ChatTemplate t = chatTemplate;
        if (t == null) {
            if (templateSource == null) {
                throw new TokenizerException(directory + ": no chat template (neither " + TEMPLATE_FILE
                        + " nor chat_template in " + TokenizerConfigFile.NAME + ")");
            }
            t = new ChatTemplate(this, templateSource, templateOrigin);
            chatTemplate = t;
        }
        return t;
    }

    /** A fresh incremental decoder for one generated sequence. */
    public StreamingDetokenizer newStreamingDetokenizer() {
        return new StreamingDetokenizer(this);
    }

    /** tiktoken's own fix-up for Python strings that cannot be UTF-8 encoded: lone surrogates become U+FFFD. */
    static String replaceLoneSurrogates(String s) {
        char[] chars = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                if (chars == null) chars = s.toCharArray();
                chars[i] = Utf8.REPLACEMENT;
            }
        }
        return chars == null ? s : new String(chars);
    }

    /** State of one encode call: output, merge scratch and a reusable UTF-8 buffer. */
    private final class Encoder {
        final String text;
        final boolean allowSpecial;
        final PlainSpans plain;
        final IntList out;
        final BytePairMerger merger = new BytePairMerger(ranks);
        final Matcher matcher;
        final int[] matchEnd = new int[1];
        byte[] buf = new byte[256];

        Encoder(String text, boolean allowSpecial, PlainSpans plain, int expected) {
            this.text = text;
            this.allowSpecial = allowSpecial;
            this.plain = plain;
            this.out = new IntList(expected);
            this.matcher = PreTokenizer.PATTERN.matcher(text);
        }

        /** tiktoken's encode of one piece: ordinary text between the (allowed) special literals. */
        void encodeSlice(int from, int to) {
            int start = from;
            if (allowSpecial) {
                for (int i = from; i < to; i++) {
                    if (!specials.canStart(text.charAt(i))) continue;
                    int id = specials.matchAt(text, i, to, matchEnd);
                    if (id < 0 || plain.overlaps(i, matchEnd[0])) continue;
                    encodeOrdinary(start, i);
                    out.add(id);
                    start = matchEnd[0];
                    i = start - 1;
                }
            }
            encodeOrdinary(start, to);
        }

        void encodeOrdinary(int from, int to) {
            if (from >= to) return;
            // opaque region bounds: the regex (and its lookahead) sees only this text, as tiktoken does
            matcher.region(from, to);
            while (matcher.find()) {
                int len = utf8(matcher.start(), matcher.end());
                merger.encode(buf, len, out);
            }
        }

        /** UTF-8 of text[from, to) into buf (no lone surrogates remain at this point). */
        private int utf8(int from, int to) {
            int need = (to - from) * 3;
            if (buf.length < need) buf = new byte[Math.max(need, buf.length * 2)];
            byte[] b = buf;
            int p = 0;
            for (int i = from; i < to; i++) {
                char c = text.charAt(i);
                if (c < 0x80) {
                    b[p++] = (byte) c;
                } else if (c < 0x800) {
                    b[p++] = (byte) (0xC0 | (c >> 6));
                    b[p++] = (byte) (0x80 | (c & 0x3F));
                } else if (Character.isHighSurrogate(c)) {
                    int cp = Character.toCodePoint(c, text.charAt(++i));
                    b[p++] = (byte) (0xF0 | (cp >> 18));
                    b[p++] = (byte) (0x80 | ((cp >> 12) & 0x3F));
                    b[p++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
                    b[p++] = (byte) (0x80 | (cp & 0x3F));
                } else {
                    b[p++] = (byte) (0xE0 | (c >> 12));
                    b[p++] = (byte) (0x80 | ((c >> 6) & 0x3F));
                    b[p++] = (byte) (0x80 | (c & 0x3F));
                }
            }
            return p;
        }
    }
}
