package dev.kimimesh.engine.cli;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Locale;

/**
 * Which layer shard serves which layers and which expert service which experts, checked against a model: the layer
 * ranges must cover every layer exactly once in order, the expert sets together every expert.
 *
 * @param layerRanges [from, to) per shard, in layer order
 * @param expertSets  id-set text per expert service ("0-7", "even", "1,5,9-12", "all")
 */
public record MeshTopology(List<int[]> layerRanges, List<String> expertSets) {

    /** Even split of {@code layers} over {@code shards} and of {@code experts} over {@code services}. */
    public static MeshTopology even(int layers, int shards, int experts, int services) throws UsageException {
        if (shards < 1 || shards > layers) throw new UsageException("--shards must be in 1.." + layers + " (the model's layers), got " + shards);
        if (services < 0) throw new UsageException("--experts must be >= 0, got " + services);
        if (experts == 0 && services > 0) throw new UsageException("the model has no routed experts; use --experts 0");
        if (services > experts && experts > 0) throw new UsageException("--experts must be in 0.." + experts + " (the model's experts), got " + services);
        List<int[]> ranges = new ArrayList<>();
        for (int i = 0; i < shards; i++) ranges.add(new int[] {layers * i / shards, layers * (i + 1) / shards});
        List<String> sets = new ArrayList<>();
        for (int i = 0; i < services; i++) {
            int a = experts * i / services, b = experts * (i + 1) / services - 1;
            sets.add(a == b ? Integer.toString(a) : a + "-" + b);
        }
        return new MeshTopology(ranges, sets);
    }

    /** Parses "0-4,4-8" (half-open layer ranges) and "0-7;8-15" (expert id sets, ';' between services). */
    public static MeshTopology parse(String layers, String experts) throws UsageException {
        List<int[]> ranges = new ArrayList<>();
        for (String r : layers.split(",")) {
            String[] ab = r.trim().split("-");
            try {
                if (ab.length != 2) throw new NumberFormatException();
                ranges.add(new int[] {Integer.parseInt(ab[0].trim()), Integer.parseInt(ab[1].trim())});
            } catch (NumberFormatException e) {
                throw new UsageException("shard layer range '" + r.trim() + "' is not FROM-TO (half-open, e.g. 0-4)");
            }
        }
        List<String> sets = new ArrayList<>();
        if (experts != null && !experts.isBlank()) for (String s : experts.split(";")) sets.add(s.trim());
        return new MeshTopology(ranges, sets);
    }

    /** Throws a UsageException naming the first problem. */
    public MeshTopology validate(int layers, int experts) throws UsageException {
        int expect = 0;
        for (int i = 0; i < layerRanges.size(); i++) {
            int[] r = layerRanges.get(i);
            if (r[0] >= r[1]) throw new UsageException("shard " + i + " has the empty layer range [" + r[0] + ", " + r[1] + ")");
            if (r[0] != expect) {
                throw new UsageException("shard " + i + " starts at layer " + r[0] + " but layer " + expect
                        + (r[0] > expect ? " has no shard" : " is already served") + " (ranges must cover every layer exactly once, in order)");
            }
            expect = r[1];
        }
        if (expect != layers) {
            throw new UsageException("the shards cover layers [0, " + expect + ") but the model has " + layers + " layers");
        }
        if (expertSets.isEmpty()) return this; // every shard computes its experts itself
        BitSet covered = new BitSet(experts);
        for (int i = 0; i < expertSets.size(); i++) covered.or(ids(expertSets.get(i), experts, "expert service " + i));
        if (covered.cardinality() != experts) {
            BitSet missing = new BitSet(experts);
            missing.set(0, experts);
            missing.andNot(covered);
            throw new UsageException("no expert service holds experts " + missing + " (the sets must cover all " + experts + " experts)");
        }
        return this;
    }

    /** The ids of an id set: all, even, odd, a-b (inclusive), and comma lists of those. */
    static BitSet ids(String set, int n, String who) throws UsageException {
        BitSet b = new BitSet(n);
        for (String part : set.split(",")) {
            String p = part.trim().toLowerCase(Locale.ROOT);
            try {
                switch (p) {
                    case "all" -> b.set(0, n);
                    case "even" -> { for (int i = 0; i < n; i += 2) b.set(i); }
                    case "odd" -> { for (int i = 1; i < n; i += 2) b.set(i); }
                    default -> {
                        String[] ab = p.split("-");
                        int lo = Integer.parseInt(ab[0]), hi = ab.length == 2 ? Integer.parseInt(ab[1]) : lo;
                        if (ab.length > 2 || lo < 0 || hi >= n || lo > hi) {
                            throw new UsageException(who + ": '" + part.trim() + "' is outside the experts 0.." + (n - 1));
                        }
                        b.set(lo, hi + 1);
                    }
                }
            } catch (NumberFormatException e) {
                throw new UsageException(who + ": '" + part.trim() + "' is not an expert id set (all, even, odd, a-b, lists)");
            }
        }
        return b;
    }
}
