package dev.kimimesh.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;

/** OpenAI-style JSON turned into the plain values a Jinja template sees (dict, list, str, int, float, bool, None). */
final class TemplateValues {
    private TemplateValues() {}

    /** JSON as Python's {@code json.loads} gives it: objects keep their key order. */
    static Object fromJson(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isBoolean()) return n.asBoolean();
        if (n.isIntegralNumber()) return n.canConvertToLong() ? (Object) n.asLong() : n.bigIntegerValue();
        if (n.isNumber()) return n.asDouble();
        if (n.isArray()) {
            List<Object> list = new ArrayList<>(n.size());
            for (JsonNode e : n) list.add(fromJson(e));
            return list;
        }
        if (n.isObject()) {
            Map<String, Object> map = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                map.put(e.getKey(), fromJson(e.getValue()));
            }
            return map;
        }
        throw new IllegalArgumentException("unsupported JSON value: " + n.getNodeType());
    }

    /** The original class's {@code deep_sort_dict}: every dict's keys sorted (code point order), recursively. */
    static Object deepSort(Object v) {
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> sorted = new TreeMap<>(PythonJson::compareCodePoints);
            m.forEach((k, x) -> sorted.put(String.valueOf(k), deepSort(x)));
            return new LinkedHashMap<>(sorted);
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object x : l) out.add(deepSort(x));
            return out;
        }
        return v;
    }

    /**
     * Copies {@code v} with {@code f} applied to every string value (not to keys, and not to the values of
     * {@code skipKeys}, which templates compare against fixed words such as "user" or "image").
     */
    static Object mapStrings(Object v, UnaryOperator<String> f, java.util.Set<String> skipKeys) {
        if (v instanceof String s) return f.apply(s);
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), skipKeys.contains(String.valueOf(k)) ? x : mapStrings(x, f, skipKeys)));
            return out;
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object x : l) out.add(mapStrings(x, f, skipKeys));
            return out;
        }
        return v;
    }

    /** True when any string (key or value) in {@code v} contains the code point {@code cp}. */
    static boolean containsCodePoint(Object v, int cp) {
        if (v instanceof String s) return s.indexOf(cp) >= 0;
        if (v instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (String.valueOf(e.getKey()).indexOf(cp) >= 0 || containsCodePoint(e.getValue(), cp)) return true;
            }
            return false;
        }
        if (v instanceof List<?> l) {
            for (Object x : l) if (containsCodePoint(x, cp)) return true;
        }
        return false;
    }
}
