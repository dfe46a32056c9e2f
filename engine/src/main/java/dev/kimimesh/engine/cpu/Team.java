package dev.kimimesh.engine.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed team of worker threads that, together with the calling thread, share out the chunks of one range at a time.
 *
 * <p>Why not the ForkJoin pool: a decode step is about a hundred short parallel operations (a matmul of a few MB, an
 * attention over 32 heads) separated by short serial ones. Through {@code ForkJoinPool.invoke} each operation wakes
 * parked workers (a futex wake, slow under a hypervisor) while the caller only waits, and the workers park again in
 * between, so the cores idle for part of every step. Here the caller works too, workers spin for a short while
 * before parking (the next operation usually follows within microseconds), and chunks are taken from a shared
 * counter, so a core slowed by a neighbour simply takes fewer of them.
 *
 * <p>One range runs at a time: a caller that finds the team busy (another thread's range, or a range started from
 * inside a chunk) gets {@code false} from {@link #tryRun} and does its range some other way.
 */
final class Team {
    /**
     * How long an idle worker spins before parking: longer than the serial gaps inside a decode step. Where several
     * engine processes share few cores (the local mesh on a small machine), {@code -Dkimimesh.spin-micros=0} makes
     * idle workers park at once, leaving the cores to the others.
     */
    private static final long SPIN_NANOS = 1000L * Math.max(0, Integer.getInteger("kimimesh.spin-micros", 100));

    private final Thread[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile Job job;
    /** The thread whose range is running, if any. */
    private volatile Thread owner;
    /** Bumped once per job; workers watch it. */
    private volatile int generation;

    private static final class Job {
        final Parallel.RangeBody body;
        final int n, step, chunks;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
        volatile Throwable error;

        Job(Parallel.RangeBody body, int n, int chunks, Thread caller) {
            this.body = body;
            this.n = n;
            this.step = (n + chunks - 1) / chunks;
            this.chunks = (n + step - 1) / step;
            this.caller = caller;
        }

        /**
         * Takes chunks until none is left. Completion is counted per chunk, not per thread, so the caller never
         * waits for a worker that found nothing left to take (one descheduled by a neighbour, say); a worker that
         * wakes late for a finished job finds no chunk and goes back to waiting.
         */
        void work() {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                try {
                    body.run(c * step, Math.min(n, (c + 1) * step));
                } catch (Throwable t) {
                    if (error == null) error = t;
                }
                if (done.incrementAndGet() == chunks && Thread.currentThread() != caller) LockSupport.unpark(caller);
            }
        }
    }

    Team(int workerCount) {
        workers = new Thread[workerCount];
        for (int i = 0; i < workerCount; i++) {
            Thread t = new Worker(this::workerLoop, "kimimesh-cpu-" + (i + 1));
            t.setDaemon(true);
            workers[i] = t;
        }
        for (Thread t : workers) t.start();
    }

    /**
     * Runs body over [0, n) in {@code chunks} contiguous chunks on the caller and the workers; false (nothing run) if
     * the team is busy or the caller is one of its workers.
     */
    boolean tryRun(int n, int chunks, Parallel.RangeBody body) {
        if (Thread.currentThread() instanceof Worker || !busy.compareAndSet(false, true)) return false;
        owner = Thread.currentThread();
        try {
            Job j = new Job(body, n, chunks, Thread.currentThread());
            job = j;
            generation++;
            for (Thread w : workers) LockSupport.unpark(w);
            j.work();
            long start = System.nanoTime();
            int spins = 0;
            while (j.done.get() != j.chunks) {
                if (++spins < 64 || System.nanoTime() - start < SPIN_NANOS) idle(spins);
                else LockSupport.parkNanos(this, 50_000);
            }
            job = null;
            Throwable e = j.error;
            if (e instanceof RuntimeException re) throw re;
            if (e instanceof Error er) throw er;
            if (e != null) throw new IllegalStateException(e);
            return true;
        } finally {
            owner = null;
            busy.set(false);
        }
    }

    /**
     * One turn of waiting: a pause instruction for the first microseconds, then a yield, so that on a machine with
     * more runnable threads than cores the waiting thread hands its core to whoever can use it (the thread it waits
     * for, perhaps) instead of burning its time slice.
     */
    private static void idle(int spins) {
        if (spins < 1024) Thread.onSpinWait();
        else Thread.yield();
    }

    private void workerLoop() {
        int seen = generation;
        while (true) {
            long start = System.nanoTime();
            int spins = 0;
            while (generation == seen) {
                if (++spins < 64 || System.nanoTime() - start < SPIN_NANOS) idle(spins);
                else LockSupport.park(this);
            }
            seen = generation;
            Job j = job;
            if (j == null) continue;
            j.work();
        }
    }

    /** Whether the calling thread is running a chunk of this team's current range. */
    boolean insideRange() {
        Thread t = Thread.currentThread();
        return t instanceof Worker || owner == t;
    }

    /** Marks the team's threads, so that a range started inside a chunk runs on its own thread. */
    private static final class Worker extends Thread {
        Worker(Runnable r, String name) {
            super(r, name);
        }
    }
}
