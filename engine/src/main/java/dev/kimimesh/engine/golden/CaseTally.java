package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.Routing;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Collects the comparisons of one case against the tolerance and builds its {@link CaseResult}. */
final class CaseTally {
    private final String name;
    private final Tolerance tol;
    private final Map<String, Double> rel = new LinkedHashMap<>();
    private final List<String> failures = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();
    private double routerWeightErr = Double.NaN;
    private int routerRows, routerRowsDiffering, tokensCompared, tokensMatched;

    CaseTally(String name, Tolerance tol) {
        this.name = name;
        this.tol = tol;
    }

    /**
     * Records {@code max|ours-golden| / max|golden|} of one tensor under its family; a NaN or infinity in ours counts
     * as an infinite error.
     */
    void relative(String family, String tensor, float[] ours, float[] golden) {
        if (ours.length != golden.length) {
            fail(tensor + ": " + ours.length + " values computed, golden has " + golden.length);
            rel.merge(family, Double.POSITIVE_INFINITY, Math::max);
            return;
        }
        double maxAbs = 0, maxGolden = 0;
        int worst = -1;
        for (int i = 0; i < ours.length; i++) {
            double d = Math.abs((double) ours[i] - golden[i]);
            if (!Double.isFinite(d)) d = Double.POSITIVE_INFINITY;
            if (d > maxAbs || worst < 0) {
                maxAbs = Math.max(maxAbs, d);
                worst = i;
            }
            maxGolden = Math.max(maxGolden, Math.abs(golden[i]));
        }
        double r = maxAbs == 0 ? 0 : maxGolden == 0 ? Double.POSITIVE_INFINITY : maxAbs / maxGolden;
        rel.merge(family, r, Math::max);
        if (!(r <= tol.relative())) {
            fail(String.format(java.util.Locale.ROOT, "%s: max|a-b| %.3e at flat index %d (ours %s, golden %s) is %.3e of max|golden| %.3e (limit %.1e)",
                    tensor, maxAbs, worst, ours[worst], golden[worst], r, maxGolden, tol.relative()));
        }
    }

    /**
     * Compares the experts chosen for each row as sets and, where golden weights are given, each expert's weight
     * (absolute difference, paired by expert id).
     */
    void router(String tensor, int[] goldenIdx, float[] goldenWeight, Routing ours) {
        int k = ours.topK();
        if (goldenIdx.length != ours.rows() * k) {
            fail(tensor + ": golden has " + goldenIdx.length + " expert ids, the model routed " + ours.rows() + " rows x top-" + k);
            routerRows += ours.rows();
            routerRowsDiffering += ours.rows();
            return;
        }
        int differing = 0;
        double maxW = 0;
        String firstDiff = null;
        for (int r = 0; r < ours.rows(); r++) {
            boolean same = true;
            for (int j = 0; j < k; j++) {
                int e = goldenIdx[r * k + j];
                int at = -1;
                for (int m = 0; m < k; m++) if (ours.expert(r, m) == e) at = m;
                if (at < 0) {
                    same = false;
                    continue;
                }
                if (goldenWeight != null) {
                    double d = Math.abs((double) ours.weight(r, at) - goldenWeight[r * k + j]);
                    maxW = Math.max(maxW, Double.isFinite(d) ? d : Double.POSITIVE_INFINITY);
                }
            }
            if (!same) {
                differing++;
                if (firstDiff == null) firstDiff = "row " + r;
            }
        }
        routerRows += ours.rows();
        routerRowsDiffering += differing;
        if (differing > 0) fail(tensor + ": expert set differs in " + differing + " of " + ours.rows() + " rows (first: " + firstDiff + ")");
        if (goldenWeight != null) {
            routerWeightErr = Double.isNaN(routerWeightErr) ? maxW : Math.max(routerWeightErr, maxW);
            if (!(maxW <= tol.routerWeight())) {
                fail(String.format(java.util.Locale.ROOT, "%s: routing weights differ by up to %.3e (limit %.1e)",
                        tensor.replace("topk_idx", "topk_weight"), maxW, tol.routerWeight()));
            }
        }
    }

    /** Greedy tokens: ours must equal the golden ones at every step. */
    void tokens(String tensor, int[] golden, int[] ours) {
        int n = Math.min(golden.length, ours.length);
        int matched = 0, first = -1;
        for (int i = 0; i < n; i++) {
            if (golden[i] == ours[i]) matched++;
            else if (first < 0) first = i;
        }
        tokensCompared += golden.length;
        tokensMatched += matched;
        if (matched != golden.length) {
            fail(tensor + ": " + matched + " of " + golden.length + " greedy tokens match"
                    + (first >= 0 ? " (first difference at step " + first + ": ours " + ours[first] + ", golden " + golden[first] + ")" : ""));
        }
    }

    void fail(String message) {
        failures.add(message);
    }

    void note(String message) {
        notes.add(message);
    }

    CaseResult result() {
        return new CaseResult(name, java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rel)),
                routerWeightErr, routerRows, routerRowsDiffering, tokensCompared, tokensMatched, List.copyOf(failures),
                List.copyOf(notes));
    }
}
