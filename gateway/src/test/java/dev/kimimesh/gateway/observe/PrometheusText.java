package dev.kimimesh.gateway.observe;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The samples of a Prometheus text exposition, to read counters before and after a request. */
final class PrometheusText {
    record Sample(String name, Map<String, String> labels, double value) {}

    private final List<Sample> samples = new ArrayList<>();

    PrometheusText(String text) {
        for (String line : text.split("\n")) {
            if (line.isBlank() || line.startsWith("#")) continue;
            samples.add(parse(line));
        }
    }

    /** The sum of the samples named {@code name} whose labels include {@code labels} (k1, v1, k2, v2, ...); 0 when none. */
    double sum(String name, String... labels) {
        double s = 0;
        for (Sample x : samples) if (x.name().equals(name) && matches(x.labels(), labels)) s += x.value();
        return s;
    }

    boolean has(String name) {
        return samples.stream().anyMatch(x -> x.name().equals(name));
    }

    private static boolean matches(Map<String, String> have, String[] want) {
        for (int i = 0; i < want.length; i += 2) if (!want[i + 1].equals(have.get(want[i]))) return false;
        return true;
    }

    private static Sample parse(String line) {
        int brace = line.indexOf('{');
        int space = line.indexOf(' ');
        Map<String, String> labels = new LinkedHashMap<>();
        String name;
        int at;
        if (brace >= 0 && brace < space) {
            name = line.substring(0, brace);
            at = brace + 1;
            while (line.charAt(at) != '}') {
                int eq = line.indexOf('=', at);
                String key = line.substring(at, eq);
                StringBuilder v = new StringBuilder();
                int i = eq + 2; // past ="
                for (; line.charAt(i) != '"'; i++) {
                    char c = line.charAt(i);
                    if (c == '\\') c = line.charAt(++i);
                    v.append(c);
                }
                labels.put(key, v.toString());
                at = i + 1;
                if (line.charAt(at) == ',') at++;
            }
            at++;
        } else {
            name = line.substring(0, space);
            at = space;
        }
        String[] rest = line.substring(at).trim().split(" ");
        return new Sample(name, labels, Double.parseDouble(rest[0]));
    }
}
