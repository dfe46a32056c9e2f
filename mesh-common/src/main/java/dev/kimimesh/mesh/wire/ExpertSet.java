package dev.kimimesh.mesh.wire;

import java.util.Arrays;
import java.util.BitSet;
import java.util.Locale;
import java.util.function.IntPredicate;

/**
 * A set of expert (or layer) ids parsed from a spec such as {@code "all"}, {@code "even"}, {@code "odd"},
 * {@code "0-7"} or {@code "0,3,8-11"} (ranges inclusive), bounded by the number of ids that exist.
 */
public record ExpertSet(String spec, int[] ids) implements IntPredicate {

    public static ExpertSet parse(String spec, int limit) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("empty id set (use e.g. all, even, odd, 0-7, 1,3,5)");
        String s = spec.trim().toLowerCase(Locale.ROOT);
        BitSet set = new BitSet(limit);
        switch (s) {
            case "all" -> set.set(0, limit);
            case "even" -> { for (int i = 0; i < limit; i += 2) set.set(i); }
            case "odd" -> { for (int i = 1; i < limit; i += 2) set.set(i); }
            case "none" -> { }
            default -> {
                for (String part : s.split(",")) {
                    String p = part.trim();
                    try {
                        int dash = p.indexOf('-', 1);
                        int a = Integer.parseInt(dash < 0 ? p : p.substring(0, dash).trim());
                        int b = dash < 0 ? a : Integer.parseInt(p.substring(dash + 1).trim());
                        if (a < 0 || b >= limit || a > b) {
                            throw new IllegalArgumentException("id range '" + p + "' in '" + spec + "' is outside 0.." + (limit - 1));
                        }
                        set.set(a, b + 1);
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("bad id set '" + spec + "': '" + p
                                + "' is not a number or range (use e.g. all, even, odd, 0-7, 1,3,5)");
                    }
                }
            }
        }
        return new ExpertSet(spec.trim(), set.stream().toArray());
    }

    @Override
    public boolean test(int id) {
        return Arrays.binarySearch(ids, id) >= 0;
    }

    public boolean isEmpty() {
        return ids.length == 0;
    }

    @Override
    public String toString() {
        return spec;
    }
}
