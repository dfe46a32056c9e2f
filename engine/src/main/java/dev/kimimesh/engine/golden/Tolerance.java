package dev.kimimesh.engine.golden;

/**
 * What "matches the goldens" means: every float tensor within {@code relative} of its own max |golden|
 * ({@code max|a-b| <= relative * max|golden|}), router weights within {@code routerWeight} absolute, identical expert
 * sets and identical greedy tokens. The defaults are the fixture manifest's checks for an fp32 engine, about 40x the
 * measured float32-vs-float64 floor of the goldens (2.5e-6).
 */
public record Tolerance(double relative, double routerWeight) {
    public static final Tolerance DEFAULT = new Tolerance(1e-4, 1e-5);
}
