package dev.kimimesh.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * Splits a range of independent work items over all cores: on the {@link Team} (the caller plus one worker per
 * further core), or, when the team is already running a range (another thread's, or this is a range started
 * inside one), on a ForkJoin pool or the calling thread.
 */
final class Parallel {
    interface RangeBody {
        void run(int from, int to);
    }

    static final int THREADS = Math.max(1, Integer.getInteger("kimimesh.threads", Runtime.getRuntime().availableProcessors()));
    private static final ForkJoinPool POOL = THREADS == ForkJoinPool.getCommonPoolParallelism()
            ? ForkJoinPool.commonPool() : new ForkJoinPool(THREADS);
    private static final Team TEAM = THREADS > 1 ? new Team(THREADS - 1) : null;

    private Parallel() {}

    /**
     * Runs body over [0, n) in contiguous blocks; {@code grain} is the least work per block worth a task
     * (so tiny ranges stay on the calling thread).
     */
    static void range(int n, int grain, RangeBody body) {
        int blocks = Math.min(THREADS * 4, Math.max(1, n / Math.max(1, grain)));
        if (blocks <= 1 || THREADS == 1) {
            body.run(0, n);
            return;
        }
        if (TEAM.insideRange()) {
            body.run(0, n); // a range started inside a team chunk: every core is already busy
            return;
        }
        if (TEAM.tryRun(n, blocks, body)) return;
        POOL.invoke(new Block(body, 0, n, Math.max(1, (n + blocks - 1) / blocks)));
    }

    private static final class Block extends RecursiveAction {
        final RangeBody body;
        final int from, to, step;

        Block(RangeBody body, int from, int to, int step) {
            this.body = body;
            this.from = from;
            this.to = to;
            this.step = step;
        }

        @Override
        protected void compute() {
            if (to - from <= step) {
                body.run(from, to);
                return;
            }
            int mid = from + ((to - from) / step / 2) * step;
            if (mid <= from) mid = from + step;
            invokeAll(new Block(body, from, mid, step), new Block(body, mid, to, step));
        }
    }
}
