package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.mesh.PipelineDriver.Seq;
import dev.kimimesh.mesh.wire.RawTensors;
import dev.kimimesh.proto.v1.DType;
import dev.kimimesh.proto.v1.ExpertStats;
import dev.kimimesh.proto.v1.ExpertStatsRequest;
import dev.kimimesh.proto.v1.ExpertsGrpc;
import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.ReleaseSequenceRequest;
import dev.kimimesh.proto.v1.SequenceChunk;
import dev.kimimesh.proto.v1.ShardStats;
import dev.kimimesh.proto.v1.ShardStatsRequest;
import io.grpc.Status;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The tiny model as two shards and two expert services, driven like a gateway drives it. */
class MeshPipelineTest {
    private static InProcessMesh mesh;

    @BeforeAll
    static void start() {
        mesh = new InProcessMesh("pipeline");
    }

    @AfterAll
    static void stop() throws Exception {
        mesh.close();
    }

    private static ShardStats stats(String shard) {
        return LayerShardGrpc.newBlockingStub(mesh.channel(shard)).stats(ShardStatsRequest.getDefaultInstance());
    }

    private static ExpertStats expertStats(String service) {
        return ExpertsGrpc.newBlockingStub(mesh.channel(service)).stats(ExpertStatsRequest.getDefaultInstance());
    }

    @Test
    void greedyTokensMatchTheSingleProcessEngineAndTheGoldens() throws Exception {
        long expertTokensBefore = expertStats("experts-a").getTokens() + expertStats("experts-b").getTokens();
        List<List<Seq>> groups = List.of(
                List.of(new Seq(1, Goldens.prompt("T1"), 0), new Seq(2, Goldens.prompt("T64"), 0)),
                List.of(new Seq(3, Goldens.prompt("T7"), 0), new Seq(4, Goldens.prompt("T65"), 2)));
        int steps = 17; // the prefill's token + 16 decode steps
        Map<Long, List<Integer>> got;
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            got = driver.generate(groups, steps);
        }
        String[] names = {"T1", "T64", "T7", "T65"};
        for (int i = 0; i < names.length; i++) {
            List<Integer> tokens = got.get((long) i + 1);
            assertEquals(Goldens.decodeTokens(names[i]), tokens.subList(0, 16), names[i] + " vs goldens decode_tokens");
            assertEquals(Goldens.singleProcessGreedy(Goldens.prompt(names[i]), steps), tokens, names[i] + " vs the single-process engine");
        }
        // the routed experts really ran remotely: every MoE layer of both shards sent rows to both services
        long expertTokens = expertStats("experts-a").getTokens() + expertStats("experts-b").getTokens();
        assertTrue(expertStats("experts-a").getLoadCount() > 0 && expertStats("experts-b").getLoadCount() > 0);
        assertTrue(expertTokens > expertTokensBefore);
        for (String shard : List.of("shard-0", "shard-1")) {
            assertTrue(stats(shard).getSequenceIdsList().containsAll(List.of(1L, 2L, 3L, 4L)), shard + " holds the sequences");
        }
        release(1, 2, 3, 4);
    }

    @Test
    void releaseFreesStateOnEveryShard() throws Exception {
        List<List<Seq>> groups = List.of(List.of(new Seq(201, Goldens.prompt("T7"), 0), new Seq(202, Goldens.prompt("T64"), 0)));
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            driver.generate(groups, 3);
        }
        ShardStats[] before = {stats("shard-0"), stats("shard-1")};
        for (ShardStats s : before) {
            assertTrue(s.getSequenceIdsList().containsAll(List.of(201L, 202L)));
            assertTrue(s.getStateBytes() > 0);
        }
        assertEquals(2, release(201, 202));
        ShardStats[] after = {stats("shard-0"), stats("shard-1")};
        for (int i = 0; i < 2; i++) {
            assertFalse(after[i].getSequenceIdsList().contains(201L) || after[i].getSequenceIdsList().contains(202L));
            assertEquals(before[i].getSequencesHeld() - 2, after[i].getSequencesHeld());
            assertTrue(after[i].getStateBytes() < before[i].getStateBytes());
        }
        assertEquals(0, release(201, 202), "a second release finds nothing");
    }

    @Test
    void snapshotsRestoreOnEveryShardAndGenerationContinuesWithTheSameTokens() throws Exception {
        int[] prompt = Goldens.prompt("T65");
        List<List<Seq>> group = List.of(List.of(new Seq(301, prompt, 0)));
        Map<Long, List<Integer>> first;
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            first = driver.generate(group, 6);
        }
        var snaps = new java.util.ArrayList<dev.kimimesh.proto.v1.SequenceSnapshot>();
        for (String shard : List.of("shard-0", "shard-1")) {
            var snap = LayerShardGrpc.newBlockingStub(mesh.channel(shard)).snapshotSequence(
                    dev.kimimesh.proto.v1.SnapshotSequenceRequest.newBuilder().setSequenceId(301).build());
            assertEquals(prompt.length + 5, snap.getPosition()); // the 6th token is sampled but not yet fed
            snaps.add(snap);
        }
        assertEquals(1, release(301));
        for (String shard : List.of("shard-0", "shard-1")) assertFalse(stats(shard).getSequenceIdsList().contains(301L));
        assertEquals(0, snaps.get(0).getLayerFrom());
        assertEquals(4, snaps.get(1).getLayerFrom());
        LayerShardGrpc.newBlockingStub(mesh.channel("shard-0")).restoreSequence(snaps.get(0));
        LayerShardGrpc.newBlockingStub(mesh.channel("shard-1")).restoreSequence(snaps.get(1));
        // a snapshot of the wrong layer range is refused by name
        var wrong = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class, () ->
                LayerShardGrpc.newBlockingStub(mesh.channel("shard-1")).restoreSequence(snaps.get(0)));
        assertEquals(Status.Code.INVALID_ARGUMENT, wrong.getStatus().getCode());
        Map<Long, List<Integer>> rest;
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            rest = driver.generate(group, 16, first);
        }
        assertEquals(Goldens.decodeTokens("T65"), rest.get(301L));
        release(301);
    }

    @Test
    void manyMicroBatchesInFlightAllComeBackThroughTheFlowControlWindow() throws Exception {
        int n = 24; // three times the per-stream window
        int[] prompt = Goldens.prompt("T7");
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            for (int i = 0; i < n; i++) {
                SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(400 + i).setNumTokens(prompt.length)
                        .setSample(true).setSampling(PipelineDriver.GREEDY);
                for (int t : prompt) c.addTokenIds(t);
                driver.send(MicroBatch.newBuilder().addSequences(c));
            }
            java.util.Set<Long> seen = new java.util.HashSet<>();
            for (int i = 0; i < n; i++) {
                MicroBatchResult r = driver.next();
                assertEquals(MicroBatchResult.ResultCase.SAMPLED, r.getResultCase(), r::toString);
                assertEquals(Goldens.decodeTokens("T7").get(0), r.getSampled().getTokens(0).getTokenId());
                seen.add(r.getSampled().getTokens(0).getSequenceId());
            }
            assertEquals(n, seen.size());
        }
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = 400 + i;
        assertEquals(n, release(ids));
    }

    @Test
    void chunkedPrefillThatSamplesOnlyAtTheEndGivesTheGoldenTokens() throws Exception {
        int[] prompt = Goldens.prompt("T200");
        List<Integer> golden = Goldens.decodeTokens("T200");
        try (var client = new dev.kimimesh.mesh.shard.PipelineClient(mesh.channel("shard-0"))) {
            // 100 + 60 + 40 tokens, sampling only after the last chunk (as a gateway's chunked prefill does)
            int[][] chunks = {{0, 100}, {100, 160}, {160, 200}};
            MicroBatchResult r = null;
            for (int[] c : chunks) {
                SequenceChunk.Builder ch = SequenceChunk.newBuilder().setSequenceId(500).setPosition(c[0])
                        .setNumTokens(c[1] - c[0]).setSample(c[1] == 200).setSampling(PipelineDriver.GREEDY);
                for (int i = c[0]; i < c[1]; i++) ch.addTokenIds(prompt[i]);
                r = client.submit(MicroBatch.newBuilder().addSequences(ch)).get(60, java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(MicroBatchResult.ResultCase.SAMPLED, r.getResultCase(), r::toString);
                assertEquals(c[1] == 200 ? 1 : 0, r.getSampled().getTokensCount());
            }
            int token = r.getSampled().getTokens(0).getTokenId();
            assertEquals(golden.get(0), token);
            // then decode with bf16 activations between the stages (the golden margins here are >= 0.24)
            for (int s = 1; s < 4; s++) {
                r = client.submit(MicroBatch.newBuilder().setActivationDtype(DType.DTYPE_BF16).addSequences(SequenceChunk.newBuilder()
                        .setSequenceId(500).setPosition(199 + s).setNumTokens(1).addTokenIds(token).setSample(true)
                        .setSampling(PipelineDriver.GREEDY))).get(60, java.util.concurrent.TimeUnit.SECONDS);
                token = r.getSampled().getTokens(0).getTokenId();
                assertEquals(golden.get(s), token, "bf16 step " + s);
            }
            assertEquals(1, client.release(List.of(500L)));
        }
    }

    @Test
    void seededSamplingDrawsWhatTheEngineDrawsWhateverTheBatch() throws Exception {
        // two sequences sampled in the same micro-batches, each with its own seed and parameters
        var wire = List.of(
                dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTemperature(0.9).setTopP(0.95).setSeed(11).build(),
                dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTemperature(1.3).setTopK(50).setSeed(12).build());
        var engine = List.of(
                dev.kimimesh.engine.generate.SamplingParams.sampled(0.9, 11, 8).withTopP(0.95),
                dev.kimimesh.engine.generate.SamplingParams.sampled(1.3, 12, 8).withTopK(50));
        int[][] prompts = {Goldens.prompt("T7"), Goldens.prompt("T64")};
        List<List<Integer>> got = List.of(new java.util.ArrayList<>(), new java.util.ArrayList<>());
        try (var client = new dev.kimimesh.mesh.shard.PipelineClient(mesh.channel("shard-0"))) {
            for (int step = 0; step < 8; step++) {
                MicroBatch.Builder mb = MicroBatch.newBuilder();
                for (int i = 0; i < 2; i++) {
                    SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(600 + i).setSample(true).setSampling(wire.get(i));
                    if (step == 0) {
                        c.setPosition(0).setNumTokens(prompts[i].length);
                        for (int t : prompts[i]) c.addTokenIds(t);
                    } else {
                        c.setPosition(prompts[i].length + step - 1).setNumTokens(1).addTokenIds(got.get(i).getLast());
                    }
                    mb.addSequences(c);
                }
                MicroBatchResult r = client.submit(mb).get(60, java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(MicroBatchResult.ResultCase.SAMPLED, r.getResultCase(), r::toString);
                for (var t : r.getSampled().getTokensList()) got.get((int) (t.getSequenceId() - 600)).add(t.getTokenId());
            }
            for (int i = 0; i < 2; i++) {
                assertEquals(Goldens.singleProcess(prompts[i], 8, new dev.kimimesh.engine.generate.Sampler(engine.get(i))),
                        got.get(i), "sequence " + i);
            }
            // a bad parameter is refused by name before anything changes
            SequenceChunk.Builder bad = SequenceChunk.newBuilder().setSequenceId(602).setNumTokens(1).addTokenIds(1)
                    .setSample(true).setSampling(dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTopP(1.5));
            assertFailure(client.submit(MicroBatch.newBuilder().addSequences(bad)).get(60, java.util.concurrent.TimeUnit.SECONDS),
                    Status.Code.INVALID_ARGUMENT, "top_p");
            assertEquals(2, client.release(List.of(600L, 601L, 602L)), "602 got no state anywhere");
        }
    }

    @Test
    void newSamplerStartsTheNextTurnsOwnSamplerOnAContinuedSequence() throws Exception {
        // turn 1 samples with seed 11; turn 2 continues the state at its position with its own parameters (seed 12)
        var first = dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTemperature(0.9).setSeed(11).build();
        var second = dev.kimimesh.proto.v1.SamplingParams.newBuilder().setTemperature(1.2).setSeed(12).setLogprobs(true).setTopLogprobs(3).build();
        int[] prompt = Goldens.prompt("T7");
        List<Integer> turn1 = new java.util.ArrayList<>(), turn2 = new java.util.ArrayList<>();
        try (var client = new dev.kimimesh.mesh.shard.PipelineClient(mesh.channel("shard-0"))) {
            int position = 0;
            int[] feed = prompt;
            for (int step = 0; step < 6; step++) {
                boolean turnTwo = step >= 3;
                if (step == 3) feed = new int[] {turn1.getLast(), 5, 6}; // the last token of turn 1, then turn 2's prompt
                SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(650).setPosition(position).setNumTokens(feed.length)
                        .setSample(true).setSampling(turnTwo ? second : first).setNewSampler(step == 3);
                for (int t : feed) c.addTokenIds(t);
                MicroBatchResult r = client.submit(MicroBatch.newBuilder().addSequences(c)).get(60, java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(MicroBatchResult.ResultCase.SAMPLED, r.getResultCase(), r::toString);
                var t = r.getSampled().getTokens(0);
                (turnTwo ? turn2 : turn1).add(t.getTokenId());
                if (turnTwo) {
                    assertEquals(3, t.getTopTokenIdsCount(), t::toString);
                    assertTrue(t.getTopLogprobs(0) >= t.getTopLogprobs(1) && t.getTopLogprobs(1) >= t.getTopLogprobs(2), t::toString);
                    assertTrue(t.getTopTokenIdsList().contains(t.getTokenId()) || t.getLogprob() <= t.getTopLogprobs(2) + 1e-5f, t::toString);
                }
                position += feed.length;
                feed = new int[] {t.getTokenId()};
            }
            assertEquals(1, client.release(List.of(650L)));
        }
        assertEquals(Goldens.singleProcess(prompt, 3, new dev.kimimesh.engine.generate.Sampler(
                dev.kimimesh.engine.generate.SamplingParams.sampled(0.9, 11, 3))), turn1);
        int[] whole = new int[prompt.length + 3 + 2];
        System.arraycopy(prompt, 0, whole, 0, prompt.length);
        for (int i = 0; i < 3; i++) whole[prompt.length + i] = turn1.get(i);
        whole[prompt.length + 3] = 5;
        whole[prompt.length + 4] = 6;
        assertEquals(Goldens.singleProcess(whole, 3, new dev.kimimesh.engine.generate.Sampler(
                dev.kimimesh.engine.generate.SamplingParams.sampled(1.2, 12, 3))), turn2, "turn 2 draws with a fresh seed-12 sampler");
    }

    @Test
    void aFailureOnALaterStageReleasesTheSequenceOnEveryStage() throws Exception {
        int[] prompt = Goldens.prompt("T7");
        List<List<Seq>> group = List.of(List.of(new Seq(700, prompt, 0)));
        Map<Long, List<Integer>> first;
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            first = driver.generate(group, 2);
        }
        // make the second stage disagree: put it back one token (a snapshot from before the last step)
        var stage2 = LayerShardGrpc.newBlockingStub(mesh.channel("shard-1"));
        var old = stage2.snapshotSequence(dev.kimimesh.proto.v1.SnapshotSequenceRequest.newBuilder().setSequenceId(700).build());
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            driver.generate(group, 3, first);
        }
        stage2.restoreSequence(old);
        try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
            driver.send(MicroBatch.newBuilder().addSequences(SequenceChunk.newBuilder().setSequenceId(700)
                    .setPosition(prompt.length + 2).setNumTokens(1).addTokenIds(1).setSample(true).setSampling(PipelineDriver.GREEDY)));
            MicroBatchResult r = driver.next();
            assertFailure(r, Status.Code.FAILED_PRECONDITION, "[700] were released on every stage");
            assertTrue(r.getFailure().getMessage().contains("shard [4, 8)"), r.getFailure().getMessage());
        }
        // the first stage had advanced the sequence: it is gone there and on the second stage too
        for (String shard : List.of("shard-0", "shard-1")) assertFalse(stats(shard).getSequenceIdsList().contains(700L), shard);
    }

    @Test
    void malformedMicroBatchesGetTheirStatusAndTheShardKeepsServing() throws Exception {
        int hidden = 256;
        float[] h = new float[2 * hidden];
        Random rnd = new Random(7);
        for (int i = 0; i < h.length; i++) h[i] = (float) rnd.nextGaussian();
        SequenceChunk.Builder chunk = SequenceChunk.newBuilder().setSequenceId(900).setPosition(0).setNumTokens(2)
                .setSample(true).setSampling(PipelineDriver.GREEDY);
        var good = RawTensors.encode(h, 2, hidden, DType.DTYPE_F32);
        var shortData = good.toBuilder().setData(good.getData().substring(0, good.getData().size() - 4)).build();
        try (PipelineDriver stage2 = new PipelineDriver(mesh.channel("shard-1"))) {
            stage2.send(MicroBatch.newBuilder().addSequences(chunk).setHidden(shortData));
            assertFailure(stage2.next(), Status.Code.INVALID_ARGUMENT, "bytes");

            stage2.send(MicroBatch.newBuilder().addSequences(chunk)
                    .setHidden(good.toBuilder().setDtype(DType.DTYPE_I32)));
            assertFailure(stage2.next(), Status.Code.INVALID_ARGUMENT, "dtype");

            stage2.send(MicroBatch.newBuilder().addSequences(chunk).setHidden(good));
            MicroBatchResult ok = stage2.next();
            assertEquals(MicroBatchResult.ResultCase.SAMPLED, ok.getResultCase(), ok::toString);
            assertEquals(900, ok.getSampled().getTokens(0).getSequenceId());

            var one = RawTensors.encode(java.util.Arrays.copyOf(h, hidden), 1, hidden, DType.DTYPE_F32);
            stage2.send(MicroBatch.newBuilder().addSequences(chunk.clone().setSequenceId(901).setPosition(5).setNumTokens(1))
                    .setHidden(one));
            assertFailure(stage2.next(), Status.Code.FAILED_PRECONDITION, "sequence 901 is unknown");

            stage2.send(MicroBatch.newBuilder().addSequences(chunk.clone().setPosition(3).setNumTokens(1)).setHidden(one));
            assertFailure(stage2.next(), Status.Code.FAILED_PRECONDITION, "at position 2");

            stage2.send(MicroBatch.newBuilder().addSequences(chunk.clone().setPosition(2).setNumTokens(1)).setHidden(one));
            assertEquals(MicroBatchResult.ResultCase.SAMPLED, stage2.next().getResultCase());
        }
        // the first stage names bad token ids and keeps its state untouched
        try (PipelineDriver stage1 = new PipelineDriver(mesh.channel("shard-0"))) {
            stage1.send(MicroBatch.newBuilder().addSequences(SequenceChunk.newBuilder().setSequenceId(902).setNumTokens(2)
                    .addTokenIds(5).addTokenIds(99999)));
            assertFailure(stage1.next(), Status.Code.INVALID_ARGUMENT, "99999");
            stage1.send(MicroBatch.newBuilder().addSequences(SequenceChunk.newBuilder().setSequenceId(902).setNumTokens(2)
                    .addTokenIds(5)));
            assertFailure(stage1.next(), Status.Code.INVALID_ARGUMENT, "token_ids");
        }
        assertFalse(stats("shard-0").getSequenceIdsList().contains(902L));
        assertTrue(stats("shard-1").getMicroBatchesFailed() >= 4);
        release(900);
    }

    private static void assertFailure(MicroBatchResult r, Status.Code code, String mentions) {
        assertEquals(MicroBatchResult.ResultCase.FAILURE, r.getResultCase(), r::toString);
        assertEquals(code.value(), r.getFailure().getCode(), r.getFailure().getMessage());
        assertTrue(r.getFailure().getMessage().contains(mentions), r.getFailure().getMessage());
    }

    private static int release(long... ids) {
        ReleaseSequenceRequest.Builder req = ReleaseSequenceRequest.newBuilder().setPropagate(true);
        for (long id : ids) req.addSequenceIds(id);
        return LayerShardGrpc.newBlockingStub(mesh.channel("shard-0")).releaseSequence(req.build()).getReleased();
    }

}
