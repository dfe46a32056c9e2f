package dev.kimimesh.gateway;

/** Helpers of the session tests. */
final class SessionsFixture {
    private SessionsFixture() {}

    /** The parts one after the other: what one uninterrupted run sees of a session's turns. */
    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] all = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }
}
