package dev.kimimesh.gateway.mesh;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.generate.FinishReason;
import dev.kimimesh.engine.generate.SamplingParams;
import dev.kimimesh.engine.generate.TokenSink;
import dev.kimimesh.gateway.TinyFixture;
import dev.kimimesh.gateway.schedule.Scheduler;
import dev.kimimesh.gateway.schedule.SchedulerOptions;
import dev.kimimesh.proto.v1.DType;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The remote pipeline without Quarkus: start-up checks of the topology, and the gateway driving both shards itself. */
class ShardPipelineTest {
    private static final KimiLinearConfig CONFIG = KimiLinearConfig.load(TinyFixture.dir().resolve("config.json"));
    private static final Duration TIMEOUT = Duration.ofMillis(1500);

    private static String deadAddress() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return "127.0.0.1:" + s.getLocalPort();
        }
    }

    @Test
    void aShardThatIsDownAtStartIsNamed() throws Exception {
        String dead = deadAddress();
        var e = assertThrows(MeshUnavailableException.class, () -> ShardPipeline.connect(List.of(dead), CONFIG, TIMEOUT, DType.DTYPE_F32));
        assertTrue(e.getMessage().contains("layer shard 1 of 1 at " + dead) && e.getMessage().contains("not reachable"), e.getMessage());
    }

    @Test
    void anExpertServiceThatIsDownIsNamedAndGapsInTheLayersAreRefused() throws Exception {
        try (LocalMesh mesh = new LocalMesh(TinyFixture.dir(), false)) {
            var gap = assertThrows(MeshUnavailableException.class,
                    () -> ShardPipeline.connect(List.of(mesh.shard0), CONFIG, TIMEOUT, DType.DTYPE_F32));
            assertTrue(gap.getMessage().contains("layers [4, 8) have no shard"), gap.getMessage());
            var order = assertThrows(MeshUnavailableException.class,
                    () -> ShardPipeline.connect(List.of(mesh.shard1, mesh.shard0), CONFIG, TIMEOUT, DType.DTYPE_F32));
            assertTrue(order.getMessage().contains(mesh.shard1) && order.getMessage().contains("layer order"), order.getMessage());
            mesh.stopExpertsB();
            var e = assertThrows(MeshUnavailableException.class,
                    () -> ShardPipeline.connect(mesh.shards(), CONFIG, TIMEOUT, DType.DTYPE_F32));
            assertTrue(e.getMessage().contains("expert service at " + mesh.expertsB), e.getMessage());
        }
    }

    @Test
    void theGatewayDrivingUnchainedShardsGivesTheEnginesGreedyTokens() throws Exception {
        List<int[]> prompts = TinyFixture.eightPrompts();
        List<int[]> expected = TinyFixture.engineGreedy(prompts, 10);
        try (LocalMesh mesh = new LocalMesh(TinyFixture.dir(), false);
             ShardPipeline p = ShardPipeline.connect(mesh.shards(), CONFIG, TIMEOUT, DType.DTYPE_F32);
             Scheduler s = new Scheduler(p, SchedulerOptions.defaults().withBatchTokens(40), CONFIG.vocabSize(), CONFIG.eosTokenId(),
                     CONFIG.maxPositionEmbeddings())) {
            assertEquals(2, p.hopLatencies().size(), "the gateway sends to both shards");
            List<CompletableFuture<int[]>> outs = new ArrayList<>();
            for (int[] prompt : prompts) {
                CompletableFuture<int[]> f = new CompletableFuture<>();
                List<Integer> ids = new ArrayList<>();
                s.submit(prompt, SamplingParams.greedy(10), new TokenSink() {
                    @Override
                    public void onToken(int id, float logprob) {
                        ids.add(id);
                    }

                    @Override
                    public void onFinish(FinishReason reason) {
                        f.complete(ids.stream().mapToInt(Integer::intValue).toArray());
                    }
                });
                outs.add(f);
            }
            for (int i = 0; i < prompts.size(); i++) assertArrayEquals(expected.get(i), outs.get(i).get(120, TimeUnit.SECONDS), "prompt " + i);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < end && (p.stats(0).getSequencesHeld() + p.stats(1).getSequencesHeld()) > 0) Thread.sleep(20);
            assertEquals(0, p.stats(0).getSequencesHeld());
            assertEquals(0, p.stats(1).getSequencesHeld());
            assertTrue(p.hopLatencies().get(1).count() > 0);
        }
    }
}
