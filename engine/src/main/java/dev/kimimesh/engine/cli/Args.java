package dev.kimimesh.engine.cli;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Parsed command line of a verb: positional arguments and `--name value` / `--flag` options. */
public final class Args {
    private final List<String> positional = new ArrayList<>();
    private final Map<String, String> options = new HashMap<>();

    /**
     * @param flags options that take no value (e.g. "--verbose"); every other `--x` takes the next argument
     */
    public static Args parse(List<String> args, Set<String> valueOptions, Set<String> flags) throws UsageException {
        Args a = new Args();
        for (int i = 0; i < args.size(); i++) {
            String s = args.get(i);
            if (s.startsWith("--") && s.length() > 2) {
                String name = s;
                String value = null;
                int eq = s.indexOf('=');
                if (eq > 0) {
                    name = s.substring(0, eq);
                    value = s.substring(eq + 1);
                }
                if (flags.contains(name)) {
                    a.options.put(name, value == null ? "true" : value);
                } else if (valueOptions.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= args.size()) throw new UsageException("option " + name + " needs a value");
                        value = args.get(++i);
                    }
                    a.options.put(name, value);
                } else {
                    throw new UsageException("unknown option " + name);
                }
            } else {
                a.positional.add(s);
            }
        }
        return a;
    }

    public List<String> positional() {
        return positional;
    }

    public String positional(int i, String what) throws UsageException {
        if (i >= positional.size()) throw new UsageException("missing argument: " + what);
        return positional.get(i);
    }

    public boolean has(String name) {
        return options.containsKey(name);
    }

    public String get(String name, String dflt) {
        return options.getOrDefault(name, dflt);
    }

    public int getInt(String name, int dflt) throws UsageException {
        String v = options.get(name);
        if (v == null) return dflt;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(name + " must be an integer, got '" + v + "'");
        }
    }

    public long getLong(String name, long dflt) throws UsageException {
        String v = options.get(name);
        if (v == null) return dflt;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(name + " must be an integer, got '" + v + "'");
        }
    }

    public double getDouble(String name, double dflt) throws UsageException {
        String v = options.get(name);
        if (v == null) return dflt;
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(name + " must be a number, got '" + v + "'");
        }
    }
}
