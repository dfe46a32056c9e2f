package dev.kimimesh.gateway.schedule;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Backends;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.TokenSink;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.gateway.TinyFixture;
import dev.kimimesh.gateway.embedded.LocalPipeline;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The scheduler over the embedded pipeline (two local stages) against the engine's own generator and the goldens. */
class SchedulerEmbeddedTest {
    static Checkpoint ckpt;
    static Backend backend;

    @BeforeAll
    static void open() {
        ckpt = Checkpoint.open(TinyFixture.dir());
        backend = Backends.create("cpu");
    }

    @AfterAll
    static void close() {
        backend.close();
        ckpt.close();
    }

    /** Collects one sequence's tokens. */
    static final class Collect implements TokenSink {
        final List<Integer> tokens = new ArrayList<>();
        final CompletableFuture<FinishReason> done = new CompletableFuture<>();
        final CountDownLatch first = new CountDownLatch(1);

        @Override
        public synchronized void onToken(int id, float logprob) {
            tokens.add(id);
            first.countDown();
        }

        @Override
        public void onFinish(FinishReason reason) {
            done.complete(reason);
        }

        synchronized int[] ids() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    private Scheduler scheduler(LocalPipeline p, SchedulerOptions o) {
        return new Scheduler(p, o, ckpt.config().vocabSize(), ckpt.config().eosTokenId(), ckpt.config().maxPositionEmbeddings());
    }

    @Test
    void eightConcurrentGreedyRequestsMatchTheSingleProcessEngineAndTheGoldens() throws Exception {
        List<int[]> prompts = TinyFixture.eightPrompts();
        int max = 12;
        List<int[]> expected = TinyFixture.engineGreedy(prompts, max);
        try (LocalPipeline p = LocalPipeline.load(ckpt, backend, ModelOptions.defaults(), 2);
             Scheduler s = scheduler(p, SchedulerOptions.defaults().withBatchTokens(48).withInFlight(2))) {
            List<Collect> outs = new ArrayList<>();
            for (int[] prompt : prompts) {
                Collect c = new Collect();
                outs.add(c);
                s.submit(prompt, SamplingParams.greedy(max), c);
            }
            for (int i = 0; i < prompts.size(); i++) {
                outs.get(i).done.get(120, TimeUnit.SECONDS);
                assertArrayEquals(expected.get(i), outs.get(i).ids(), "prompt " + i + " of length " + prompts.get(i).length);
            }
            // several micro-batches were needed: prompts longer than the budget were chunked
            assertTrue(s.batchesSent() > max, "batches sent: " + s.batchesSent());
            assertArrayEquals(new int[] {0, 0}, p.heldSequences(), "finished sequences are released on every stage");
        }
        for (TinyFixture.Golden g : TinyFixture.goldens()) {
            int i = indexOf(prompts, g.prompt());
            int n = Math.min(max, g.decode().length);
            int[] got = expected.get(i);
            assertArrayEquals(Arrays.copyOf(g.decode(), Math.min(n, got.length)), Arrays.copyOf(got, Math.min(n, got.length)), g.name());
        }
    }

    private static int indexOf(List<int[]> prompts, int[] p) {
        for (int i = 0; i < prompts.size(); i++) if (Arrays.equals(prompts.get(i), p)) return i;
        throw new AssertionError("golden prompt not among the test prompts");
    }

    @Test
    void cancelledSequenceIsReleasedOnEveryStage() throws Exception {
        try (LocalPipeline p = LocalPipeline.load(ckpt, backend, ModelOptions.defaults(), 2);
             Scheduler s = scheduler(p, SchedulerOptions.defaults())) {
            Collect c = new Collect();
            ScheduledSequence seq = s.submit(new int[] {5, 6, 7, 8}, SamplingParams.greedy(100_000).withIgnoreEos(true), c);
            assertTrue(c.first.await(60, TimeUnit.SECONDS));
            seq.cancel();
            assertEquals(FinishReason.CANCELLED, c.done.get(60, TimeUnit.SECONDS));
            assertArrayEquals(new int[] {0, 0}, p.heldSequences());
        }
    }

    @Test
    void fullQueueIsRefusedAndBadPromptsNameTheProblem() throws Exception {
        try (LocalPipeline p = LocalPipeline.load(ckpt, backend, ModelOptions.defaults(), 1);
             Scheduler s = scheduler(p, SchedulerOptions.defaults().withMaxRunning(1).withMaxQueued(1).withContextLimit(64))) {
            Collect a = new Collect(), b = new Collect();
            ScheduledSequence sa = s.submit(new int[] {1, 2}, SamplingParams.greedy(50).withIgnoreEos(true), a);
            ScheduledSequence sb = s.submit(new int[] {3, 4}, SamplingParams.greedy(50).withIgnoreEos(true), b);
            assertThrows(QueueFullException.class, () -> s.submit(new int[] {5}, SamplingParams.greedy(5), new Collect()));
            var empty = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[0], SamplingParams.greedy(5), new Collect()));
            assertTrue(empty.getMessage().contains("empty"), empty.getMessage());
            var tooLong = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[64], SamplingParams.greedy(5), new Collect()));
            assertTrue(tooLong.getMessage().contains("context"), tooLong.getMessage());
            var badId = assertThrows(IllegalArgumentException.class, () -> s.submit(new int[] {1, 99999}, SamplingParams.greedy(5), new Collect()));
            assertTrue(badId.getMessage().contains("99999"), badId.getMessage());
            sa.cancel();
            sb.cancel();
            a.done.get(60, TimeUnit.SECONDS);
            b.done.get(60, TimeUnit.SECONDS);
            // capacity is back once they are gone
            Collect c = new Collect();
            s.submit(new int[] {5}, SamplingParams.greedy(2).withIgnoreEos(true), c);
            assertEquals(FinishReason.LENGTH, c.done.get(60, TimeUnit.SECONDS));
            assertEquals(2, c.ids().length);
        }
    }
}
