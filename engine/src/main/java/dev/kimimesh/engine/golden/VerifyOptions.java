package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.backend.KdaForm;
import dev.kimimesh.engine.config.RouterWeights;
import java.util.Set;

/**
 * How to verify: the router convention (null = the one the goldens' index.json names), the KDA form, the
 * tolerance, and which cases to run (null = all).
 */
public record VerifyOptions(RouterWeights router, KdaForm kdaForm, Tolerance tolerance, Set<String> cases) {
    public static VerifyOptions defaults() {
        return new VerifyOptions(null, KdaForm.AUTO, Tolerance.DEFAULT, null);
    }

    public VerifyOptions withRouter(RouterWeights r) {
        return new VerifyOptions(r, kdaForm, tolerance, cases);
    }

    public VerifyOptions withKdaForm(KdaForm f) {
        return new VerifyOptions(router, f, tolerance, cases);
    }

    public VerifyOptions withCases(Set<String> c) {
        return new VerifyOptions(router, kdaForm, tolerance, c == null ? null : Set.copyOf(c));
    }
}
