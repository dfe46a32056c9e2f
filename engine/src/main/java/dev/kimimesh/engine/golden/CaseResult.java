package dev.kimimesh.engine.golden;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The outcome of one golden case: per tensor family the largest relative error ({@code max|a-b| / max|golden|} of
 * the worst tensor of that family), the router agreement, the greedy-token agreement, and what failed.
 *
 * @param routerWeightErr largest absolute routing-weight difference, NaN when the case has no router tensors
 * @param failures empty when the case passed
 * @param notes what was not compared, and why
 */
public record CaseResult(String name, Map<String, Double> relErrors, double routerWeightErr, int routerRows,
                         int routerRowsDiffering, int tokensCompared, int tokensMatched, List<String> failures,
                         List<String> notes) {

    public boolean passed() {
        return failures.isEmpty();
    }

    /** A case that failed before anything was compared (the model threw): it must not read as a clean match. */
    public boolean aborted() {
        return !failures.isEmpty() && relErrors.isEmpty() && tokensCompared == 0;
    }

    public boolean tokensMatch() {
        return tokensMatched == tokensCompared && !aborted();
    }

    /**
     * The largest relative error over the case's float tensors (router weights are absolute, not included);
     * infinite for an aborted case, so that the summary line never reports 0 for a case that computed nothing.
     */
    public double maxRelErr() {
        if (aborted()) return Double.POSITIVE_INFINITY;
        double m = 0;
        for (double v : relErrors.values()) m = Double.isNaN(v) ? Double.POSITIVE_INFINITY : Math.max(m, v);
        return m;
    }

    /** One line: status, per-family errors, router and token agreement, failures. */
    public String line() {
        StringBuilder sb = new StringBuilder();
        sb.append(name).append(passed() ? " PASS" : " FAIL");
        relErrors.forEach((k, v) -> sb.append(' ').append(k).append('=').append(fmt(v)));
        if (routerRows > 0) {
            sb.append(" moe.experts=").append(routerRows - routerRowsDiffering).append('/').append(routerRows).append("_rows");
            if (!Double.isNaN(routerWeightErr)) sb.append(" moe.topk_weight_abs=").append(fmt(routerWeightErr));
        }
        if (tokensCompared > 0) sb.append(" tokens=").append(tokensMatched).append('/').append(tokensCompared);
        for (String f : failures) sb.append("\n  FAIL: ").append(f);
        for (String n : notes) sb.append("\n  note: ").append(n);
        return sb.toString();
    }

    static String fmt(double v) {
        return String.format(Locale.ROOT, "%.2e", v);
    }
}
