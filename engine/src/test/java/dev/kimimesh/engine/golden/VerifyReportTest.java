package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The summary line of `verify` must never read as a pass when a case computed nothing. */
class VerifyReportTest {

    private static CaseResult compared(double err, int tokens, int matched) {
        return new CaseResult("prefill_T5", Map.of("logits", err), Double.NaN, 0, 0, tokens, matched, List.of(), List.of());
    }

    private static CaseResult aborted() {
        return new CaseResult("prefill_T1", Map.of(), Double.NaN, 0, 0, 0, 0,
                List.of("IllegalArgumentException: kda: head dim 16 must be a multiple of 32 up to 128"), List.of());
    }

    @Test
    void casesThatComparedGiveTheirWorstErrorAndTokenAgreement() {
        VerifyReport r = new VerifyReport(null, List.of(compared(2e-6, 16, 16), compared(3e-6, 16, 16)));
        assertTrue(r.passed());
        assertEquals("verify: max_rel_err=3.000e-06 tokens_match=true cases=2", r.summaryLine());
    }

    @Test
    void aCaseThatThrewIsAnInfiniteErrorAndNoTokenMatch() {
        VerifyReport r = new VerifyReport(null, List.of(compared(2e-6, 16, 16), aborted()));
        assertFalse(r.passed());
        assertFalse(r.tokensMatch());
        assertEquals(Double.POSITIVE_INFINITY, r.maxRelErr());
        assertEquals("verify: max_rel_err=Infinity tokens_match=false cases=2", r.summaryLine());
    }
}
