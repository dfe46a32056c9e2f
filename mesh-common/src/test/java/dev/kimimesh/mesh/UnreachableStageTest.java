package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.mesh.shard.ShardAssembly;
import dev.kimimesh.mesh.shard.ShardSettings;
import dev.kimimesh.mesh.wire.Channels;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.SequenceChunk;
import io.grpc.Status;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A stage whose next stage or expert service is down fails with an error naming it, not a hang. */
class UnreachableStageTest {

    private static String closedAddress() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return "127.0.0.1:" + s.getLocalPort(); // free once closed: nothing listens there
        }
    }

    @Test
    void startUpNamesADownNextStage() throws IOException {
        String down = closedAddress();
        ShardSettings s = ShardSettings.of(InProcessMesh.TINY, 0, 4).withNext(down).withConnectTimeout(Duration.ofSeconds(3));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> ShardAssembly.build(s, Channels.plaintext()));
        assertTrue(e.getMessage().contains("next stage " + down), e.getMessage());
    }

    @Test
    void startUpNamesADownExpertService() throws IOException {
        String down = closedAddress();
        ShardSettings s = ShardSettings.of(InProcessMesh.TINY, 4, 8).withExpertServices(List.of(down))
                .withConnectTimeout(Duration.ofSeconds(3));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> ShardAssembly.build(s, Channels.plaintext()));
        assertTrue(e.getMessage().contains("expert service " + down), e.getMessage());
    }

    @Test
    void startUpRefusesExpertsNobodyServes() {
        ShardSettings s = ShardSettings.of(InProcessMesh.TINY, 4, 8).withLocalExperts(false);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> ShardAssembly.build(s, InProcessMesh.CHANNELS));
        assertTrue(e.getMessage().contains("layer 4"), e.getMessage());
    }

    @Test
    void aNextStageThatGoesDownFailsTheMicroBatchByName() throws Exception {
        try (InProcessMesh mesh = new InProcessMesh("down")) {
            mesh.stop("shard-1");
            try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
                driver.send(MicroBatch.newBuilder().addSequences(SequenceChunk.newBuilder().setSequenceId(1).setNumTokens(1)
                        .addTokenIds(3).setSample(true).setSampling(PipelineDriver.GREEDY)));
                MicroBatchResult r = driver.next();
                assertEquals(MicroBatchResult.ResultCase.FAILURE, r.getResultCase(), r::toString);
                assertEquals(Status.Code.UNAVAILABLE.value(), r.getFailure().getCode());
                assertTrue(r.getFailure().getMessage().contains("next stage " + mesh.name("shard-1")), r.getFailure().getMessage());
            }
        }
    }

    @Test
    void anExpertServiceThatGoesDownFailsTheMicroBatchByNameAndFreesItsSequences() throws Exception {
        try (InProcessMesh mesh = new InProcessMesh("experts-down")) {
            mesh.stop("experts-b");
            try (PipelineDriver driver = new PipelineDriver(mesh.channel("shard-0"))) {
                driver.send(MicroBatch.newBuilder().addSequences(SequenceChunk.newBuilder().setSequenceId(5).setNumTokens(3)
                        .addTokenIds(3).addTokenIds(4).addTokenIds(5).setSample(true).setSampling(PipelineDriver.GREEDY)));
                MicroBatchResult r = driver.next();
                assertEquals(MicroBatchResult.ResultCase.FAILURE, r.getResultCase(), r::toString);
                assertEquals(Status.Code.UNAVAILABLE.value(), r.getFailure().getCode(), r.getFailure().getMessage());
                assertTrue(r.getFailure().getMessage().contains("expert service " + mesh.name("experts-b")), r.getFailure().getMessage());
                assertTrue(r.getFailure().getMessage().contains("[5] were released"), r.getFailure().getMessage());
            }
        }
    }
}
