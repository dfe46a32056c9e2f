package dev.kimimesh.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The model directory's Jinja chat template, rendered as transformers' {@code apply_chat_template} renders it
 * ({@code trim_blocks}, {@code lstrip_blocks}, {@code tojson} = {@code json.dumps(ensure_ascii=False)}, tools
 * deep-sorted by key), and encoded either exactly as the original or with message content kept out of the control
 * tokens ({@link ControlTokenPolicy}).
 *
 * <p>Rendering uses Jinjava (HubSpot's Java Jinja engine) with its Python-compatibility switches on; the
 * Python-specific pieces chat templates rely on ({@code tojson} with {@code separators}, {@code raise_exception})
 * are supplied here. Thread-safe.
 */
public final class ChatTemplate {
    /** Keys whose values templates compare against fixed words; they are never wrapped as user text. */
    private static final Set<String> STRUCTURAL_KEYS = Set.of("role", "type");

    private final KimiTokenizer tokenizer;
    private final String source;
    private final String origin;
    private final Jinjava jinjava;

    ChatTemplate(KimiTokenizer tokenizer, String source, String origin) {
        this.tokenizer = tokenizer;
        this.source = source;
        this.origin = origin;
        LegacyOverrides python = LegacyOverrides.newBuilder()
                .withEvaluateMapKeys(true)
                .withIterateOverMapKeys(true)
                .withUsePyishObjectMapper(true)
                .withUseNaturalOperatorPrecedence(true)
                .withParseWhitespaceControlStrictly(true)
                .withKeepNullableLoopValues(true)
                .build();
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withNestedInterpretationEnabled(false) // content that looks like {{ ... }} stays text
                .withFailOnUnknownTokens(false)
                .withLegacyOverrides(python)
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.getGlobalContext().registerFilter(new ToJsonFilter());
        try {
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    ChatTemplate.class.getDeclaredMethod("raiseException", String.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Where the template came from (file path), for messages. */
    public String origin() {
        return origin;
    }

    /** The template text. */
    public String source() {
        return source;
    }

    /**
     * Renders the prompt string exactly as the original.
     *
     * @param messages JSON array of OpenAI-style messages
     * @param tools    JSON array of tool definitions, or null / JSON null for none
     */
    public String render(JsonNode messages, JsonNode tools, boolean addGenerationPrompt) {
        return renderValues(messagesValue(messages), toolsValue(tools), addGenerationPrompt);
    }

    /** Renders a chat request: an array of messages, or {"messages", "tools", "add_generation_prompt"}. */
    public String render(ChatRequest request) {
        return render(request.messages(), request.tools(), request.addGenerationPrompt());
    }

    /** Renders and encodes with the default {@link ControlTokenPolicy#TEMPLATE_ONLY}. */
    public ChatEncoding encodeChat(JsonNode messages, JsonNode tools, boolean addGenerationPrompt) {
        return encodeChat(messages, tools, addGenerationPrompt, ControlTokenPolicy.TEMPLATE_ONLY);
    }

    /** Renders and encodes a chat request with the given policy. */
    public ChatEncoding encodeChat(ChatRequest request, ControlTokenPolicy policy) {
        return encodeChat(request.messages(), request.tools(), request.addGenerationPrompt(), policy);
    }

    /**
     * Renders and encodes. {@code AS_ORIGINAL} gives the original's ids ({@code encode(rendered)}).
     * {@code TEMPLATE_ONLY} renders with every user string that contains a special literal wrapped in two Unicode
     * noncharacters, removes them again, and encodes the text in one pass in which literals inside the wrapped
     * ranges are plain text: the text is identical, and the ids are identical too unless content carries such a
     * literal (only those literals change, no extra cut appears between template text and content).
     */
    public ChatEncoding encodeChat(JsonNode messages, JsonNode tools, boolean addGenerationPrompt,
                                   ControlTokenPolicy policy) {
        Object msgs = messagesValue(messages);
        Object tls = toolsValue(tools);
        if (policy == ControlTokenPolicy.AS_ORIGINAL) {
            String text = renderValues(msgs, tls, addGenerationPrompt);
            return new ChatEncoding(text, tokenizer.encode(text, true));
        }
        int open = pickSentinel(msgs, tls);
        int close = open + 1;
        SpecialTokens specials = tokenizer.specials();
        java.util.function.UnaryOperator<String> wrap = s -> containsSpecialLiteral(s, specials)
                ? new StringBuilder().appendCodePoint(open).append(s).appendCodePoint(close).toString() : s;
        Object wrappedMsgs = TemplateValues.mapStrings(msgs, wrap, STRUCTURAL_KEYS);
        Object wrappedTools = tls == null ? null : TemplateValues.mapStrings(tls, wrap, Set.of());
        String marked = renderValues(wrappedMsgs, wrappedTools, addGenerationPrompt);
        return unwrapAndEncode(marked, open, close);
    }

    private ChatEncoding unwrapAndEncode(String marked, int open, int close) {
        StringBuilder text = new StringBuilder(marked.length());
        List<Integer> starts = new ArrayList<>();
        List<Integer> ends = new ArrayList<>();
        int depth = 0;
        for (int i = 0; i < marked.length(); i++) {
            char c = marked.charAt(i);
            if (c == open) {
                if (depth++ == 0) starts.add(text.length());
            } else if (c == close) {
                if (depth > 0 && --depth == 0) ends.add(text.length());
            } else {
                text.append(c);
            }
        }
        if (depth > 0) ends.add(text.length());
        String s = text.toString();
        int[] st = starts.stream().mapToInt(Integer::intValue).toArray();
        int[] en = ends.stream().mapToInt(Integer::intValue).toArray();
        return new ChatEncoding(s, tokenizer.encode(s, true, new PlainSpans(st, en)));
    }

    /** A noncharacter (U+FDD0..U+FDEE) that no input string uses, as the opening mark; the next one closes. */
    private static int pickSentinel(Object msgs, Object tools) {
        for (int cp = 0xFDD0; cp < 0xFDEF; cp += 2) {
            if (!TemplateValues.containsCodePoint(msgs, cp) && !TemplateValues.containsCodePoint(msgs, cp + 1)
                    && !TemplateValues.containsCodePoint(tools, cp) && !TemplateValues.containsCodePoint(tools, cp + 1)) {
                return cp;
            }
        }
        throw new TokenizerException("chat input uses every noncharacter U+FDD0..U+FDEF; cannot mark user text");
    }

    private static boolean containsSpecialLiteral(String s, SpecialTokens specials) {
        int[] end = new int[1];
        for (int i = 0; i < s.length(); i++) {
            if (specials.canStart(s.charAt(i)) && specials.matchAt(s, i, s.length(), end) >= 0) return true;
        }
        return false;
    }

    private static Object messagesValue(JsonNode messages) {
        if (messages == null || !messages.isArray()) {
            throw new IllegalArgumentException("messages must be a JSON array of message objects");
        }
        for (JsonNode m : messages) {
            if (!m.isObject()) throw new IllegalArgumentException("every message must be a JSON object, got: " + m);
        }
        return TemplateValues.fromJson(messages);
    }

    private static Object toolsValue(JsonNode tools) {
        if (tools == null || tools.isNull() || tools.isMissingNode()) return null;
        if (!tools.isArray()) throw new IllegalArgumentException("tools must be a JSON array");
        return TemplateValues.deepSort(TemplateValues.fromJson(tools));
    }

    private String renderValues(Object messages, Object tools, boolean addGenerationPrompt) {
        Map<String, Object> context = new HashMap<>();
        context.put("messages", messages);
        context.put("tools", tools);
        context.put("add_generation_prompt", addGenerationPrompt);
        // transformers passes the special tokens map to every template
        SpecialTokens sp = tokenizer.specials();
        if (sp.bos() >= 0) context.put("bos_token", sp.name(sp.bos()));
        if (sp.eos() >= 0) context.put("eos_token", sp.name(sp.eos()));
        if (sp.unk() >= 0) context.put("unk_token", sp.name(sp.unk()));
        if (sp.pad() >= 0) context.put("pad_token", sp.name(sp.pad()));
        RenderResult result;
        try {
            result = jinjava.renderForResult(source, context);
        } catch (RuntimeException e) {
            throw new TokenizerException("chat template " + origin + " failed to render: " + e.getMessage(), e);
        }
        List<TemplateError> fatal = result.getErrors().stream()
                .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL).toList();
        if (!fatal.isEmpty()) {
            String why = fatal.stream()
                    .map(e -> "line " + e.getLineno() + ": " + describe(e))
                    .collect(Collectors.joining("; "));
            throw new TokenizerException("chat template " + origin + " failed to render: " + why);
        }
        return result.getOutput();
    }

    /** The template's own message when it called raise_exception, else Jinjava's. */
    private static String describe(TemplateError e) {
        for (Throwable c = e.getException(); c != null; c = c.getCause()) {
            if (c instanceof TemplateRaisedException r) return "raise_exception: " + r.getMessage();
        }
        return e.getMessage();
    }

    /** {@code raise_exception(msg)} of transformers' template globals. */
    public static String raiseException(String message) {
        throw new TemplateRaisedException(message);
    }

    /** Thrown by a template's {@code raise_exception}. */
    static final class TemplateRaisedException extends RuntimeException {
        TemplateRaisedException(String message) {
            super(message);
        }
    }

    /** transformers' {@code tojson}: {@code json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)}. */
    private static final class ToJsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indentArg = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            String indent = null;
            if (indentArg instanceof Number n) indent = " ".repeat(n.intValue());
            else if (indentArg instanceof String s) indent = s;
            String itemSep = null;
            String keySep = null;
            Object seps = kwargs.get("separators");
            if (seps instanceof List<?> l && l.size() == 2) {
                itemSep = String.valueOf(l.get(0));
                keySep = String.valueOf(l.get(1));
            } else if (seps != null) {
                throw new IllegalArgumentException("tojson: separators must be a pair of strings, got " + seps);
            }
            boolean ensureAscii = Boolean.TRUE.equals(kwargs.get("ensure_ascii"));
            boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
            return new PythonJson(itemSep, keySep, indent, ensureAscii, sortKeys).write(var);
        }
    }
}
