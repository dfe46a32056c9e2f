package dev.kimimesh.engine.tokenizer;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps} over template values (Map, List, String, Number, Boolean, null), byte for byte:
 * separators, {@code ensure_ascii}, {@code indent}, {@code sort_keys} and Python's float repr. Chat templates print
 * tool schemas and tool-call arguments with it, and the model saw exactly these bytes in training.
 */
final class PythonJson {
    private final String itemSeparator;
    private final String keySeparator;
    private final String indent; // null = one line
    private final boolean ensureAscii;
    private final boolean sortKeys;

    PythonJson(String itemSeparator, String keySeparator, String indent, boolean ensureAscii, boolean sortKeys) {
        this.indent = indent;
        this.itemSeparator = itemSeparator != null ? itemSeparator : indent == null ? ", " : ",";
        this.keySeparator = keySeparator != null ? keySeparator : ": ";
        this.ensureAscii = ensureAscii;
        this.sortKeys = sortKeys;
    }

    /** {@code json.dumps(x, ensure_ascii=False)}: what transformers' {@code tojson} filter does by default. */
    static String dumps(Object value) {
        return new PythonJson(null, null, null, false, false).write(value);
    }

    String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(value, sb, 0);
        return sb.toString();
    }

    private void write(Object v, StringBuilder sb, int depth) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof CharSequence s) {
            string(s.toString(), sb);
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float || v instanceof BigDecimal) {
            sb.append(floatRepr(((Number) v).doubleValue()));
        } else if (v instanceof Number n) {
            sb.append(n instanceof BigInteger big ? big.toString() : Long.toString(n.longValue()));
        } else if (v instanceof Map<?, ?> m) {
            object(m, sb, depth);
        } else if (v instanceof Collection<?> c) {
            array(c, sb, depth);
        } else if (v instanceof Object[] a) {
            array(List.of(a), sb, depth);
        } else if (v instanceof Character c) {
            string(c.toString(), sb);
        } else {
            throw new IllegalArgumentException("Object of type " + v.getClass().getSimpleName() + " is not JSON serializable");
        }
    }

    private void object(Map<?, ?> m, StringBuilder sb, int depth) {
        if (m.isEmpty()) {
            sb.append("{}");
            return;
        }
        List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
        if (sortKeys) entries.sort((a, b) -> compareCodePoints(String.valueOf(a.getKey()), String.valueOf(b.getKey())));
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : entries) {
            if (!first) sb.append(itemSeparator);
            first = false;
            newline(sb, depth + 1);
            string(keyString(e.getKey()), sb);
            sb.append(keySeparator);
            write(e.getValue(), sb, depth + 1);
        }
        newline(sb, depth);
        sb.append('}');
    }

    private void array(Collection<?> c, StringBuilder sb, int depth) {
        if (c.isEmpty()) {
            sb.append("[]");
            return;
        }
        sb.append('[');
        boolean first = true;
        for (Object o : c) {
            if (!first) sb.append(itemSeparator);
            first = false;
            newline(sb, depth + 1);
            write(o, sb, depth + 1);
        }
        newline(sb, depth);
        sb.append(']');
    }

    private void newline(StringBuilder sb, int depth) {
        if (indent == null) return;
        sb.append('\n');
        sb.append(indent.repeat(depth));
    }

    /** Python turns non-string keys into strings: True -> "true", None -> "null", 1.5 -> "1.5". */
    private static String keyString(Object k) {
        if (k == null) return "null";
        if (k instanceof Boolean b) return b ? "true" : "false";
        if (k instanceof Double || k instanceof Float) return floatRepr(((Number) k).doubleValue());
        return k.toString();
    }

    private void string(String s, StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python's {@code repr(float)}: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        // Double.toString gives the shortest round-trip digits (JDK 19+), like Python's repr
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int decpt = digits.length() - bd.scale(); // value = 0.digits * 10^decpt
        StringBuilder sb = new StringBuilder();
        if (d < 0) sb.append('-');
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                sb.append("0.").append("0".repeat(-decpt)).append(digits);
            } else if (decpt >= digits.length()) {
                sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
            } else {
                sb.append(digits, 0, decpt).append('.').append(digits, decpt, digits.length());
            }
        } else {
            sb.append(digits.charAt(0));
            if (digits.length() > 1) sb.append('.').append(digits, 1, digits.length());
            int exp = decpt - 1;
            sb.append('e').append(exp < 0 ? '-' : '+');
            String e = Integer.toString(Math.abs(exp));
            if (e.length() < 2) sb.append('0');
            sb.append(e);
        }
        return sb.toString();
    }

    /** Python compares str by code point; String.compareTo by UTF-16 unit differs above U+FFFF. */
    static int compareCodePoints(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) return Integer.compare(ca, cb);
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
