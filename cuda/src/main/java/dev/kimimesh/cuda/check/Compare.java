package dev.kimimesh.cuda.check;

/** Relative errors between a result and its reference, printed as one line per check with PASS or FAIL. */
final class Compare {
    int failures, checks;

    /** ||a - ref|| / ||ref|| and max|a - ref| / max|ref|; NaN never passes. */
    boolean check(String what, float[] a, float[] ref, double tol) {
        checks++;
        if (a.length != ref.length) {
            failures++;
            System.out.printf("FAIL %-48s length %d vs %d%n", what, a.length, ref.length);
            return false;
        }
        double num = 0, den = 0, maxDiff = 0, maxRef = 0;
        boolean nan = false;
        for (int i = 0; i < a.length; i++) {
            if (Float.isNaN(a[i]) || Float.isInfinite(a[i])) nan = true;
            double d = (double) a[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
            maxDiff = Math.max(maxDiff, Math.abs(d));
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
        }
        double rel = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        double maxRel = maxRef == 0 ? maxDiff : maxDiff / maxRef;
        boolean ok = !nan && rel <= tol && maxRel <= tol * 10;
        if (!ok) failures++;
        System.out.printf("%s %-48s rel %.2e  max %.2e  (tol %.0e)%s%n", ok ? "PASS" : "FAIL", what, rel, maxRel, tol, nan ? " NaN!" : "");
        return ok;
    }

    void fail(String what, String why) {
        checks++;
        failures++;
        System.out.printf("FAIL %-48s %s%n", what, why);
    }

    void pass(String what, String note) {
        checks++;
        System.out.printf("PASS %-48s %s%n", what, note);
    }
}
