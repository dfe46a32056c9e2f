package dev.kimimesh.engine.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The bytes the read-bandwidth floor is measured over are the bytes a batch-1 decode step reads. */
class WeightTrafficTest {
    private static final Path TINY = Path.of(System.getProperty("kimimesh.shared", "../shared")).resolve("fixtures/tiny");

    @Test
    void batchOneSegmentsAreTheStepsWeightsWithoutTheEmbeddingRow() {
        try (Checkpoint ck = Checkpoint.open(TINY)) {
            KimiLinearConfig c = ck.config();
            // independent tally by tensor name: everything but the embedding table (untied) and experts >= top-k
            long expected = 0;
            for (String name : ck.names()) {
                int e = name.indexOf(".experts.");
                if (e >= 0 && Integer.parseInt(name.substring(e + 9, name.indexOf('.', e + 9))) >= c.numExpertsPerToken()) continue;
                if (name.equals("model.embed_tokens.weight") && !c.tieWordEmbeddings()) continue;
                expected += ck.tensor(name).data().byteSize();
            }
            long got = 0;
            List<MemorySegment> segs = WeightTraffic.batchOneStepSegments(ck);
            for (MemorySegment s : segs) got += s.byteSize();
            assertEquals(expected, got);
            WeightTraffic t = new WeightTraffic(ck);
            assertEquals(t.stepBytes(1, t.topK()) - t.embedRowBytes(), got, 0.5);
            for (int i = 1; i < segs.size(); i++) assertTrue(segs.get(i - 1).address() <= segs.get(i).address(), "sorted by address");
        }
    }

    @Test
    void readBandwidthSplitsSegmentsOfAnySizeOverThreads() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            // fewer slices than threads, odd lengths and a tail shorter than one unrolled step
            List<MemorySegment> segs = List.of(arena.allocate(3 << 20), arena.allocate(4096 + 7), arena.allocate(100));
            double bw = ReadBandwidth.overSegments(segs, 3, 1);
            assertTrue(bw > 0 && Double.isFinite(bw), "bandwidth " + bw);
        }
        assertThrows(IllegalArgumentException.class, () -> ReadBandwidth.overSegments(List.of(), 2, 1));
    }
}
