package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.config.RouterWeights;
import java.util.List;
import java.util.Locale;

/** Every case of one goldens directory and the verdict: passed iff every case is within tolerance. */
public record VerifyReport(RouterWeights router, List<CaseResult> cases) {

    public boolean passed() {
        return !cases.isEmpty() && cases.stream().allMatch(CaseResult::passed);
    }

    public double maxRelErr() {
        return cases.stream().mapToDouble(CaseResult::maxRelErr).max().orElse(0);
    }

    public boolean tokensMatch() {
        return cases.stream().allMatch(CaseResult::tokensMatch);
    }

    public CaseResult get(String name) {
        return cases.stream().filter(c -> c.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no case '" + name + "' in this report"));
    }

    /** The verb's last line: {@code verify: max_rel_err=<x> tokens_match=<true|false> cases=<n>}. */
    public String summaryLine() {
        return String.format(Locale.ROOT, "verify: max_rel_err=%.3e tokens_match=%b cases=%d", maxRelErr(), tokensMatch(), cases.size());
    }
}
