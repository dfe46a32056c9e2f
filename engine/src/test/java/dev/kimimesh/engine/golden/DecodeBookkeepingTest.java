package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.Segments;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.generate.DecodeGraphs;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.MlaCache;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The host-side bookkeeping a replayed decode step does instead of a forward pass (positions, MLA cache lengths),
 * the undo of a step whose device work never ran, the cache append every backend inherits, and that a backend
 * without recordings (the CPU) leaves every step to the eager path untouched.
 */
class DecodeBookkeepingTest {
    static Checkpoint ckpt;
    static CpuBackend backend;
    static KimiLinearConfig config;
    static KimiLinearModel model;
    static int[] ids;

    @BeforeAll
    static void open() {
        ckpt = TinyFixture.checkpoint();
        backend = new CpuBackend();
        config = ckpt.config();
        model = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults());
        ids = TinyFixture.promptIds("prefill_T200");
    }

    private SequenceState prefilled(int n) {
        SequenceState s = model.newState();
        Tensor x = model.embed(Arrays.copyOf(ids, n));
        model.forward(x, new int[] {n}, new SequenceState[] {s});
        backend.release(x);
        return s;
    }

    private int[] mlaLengths(SequenceState s) {
        int[] out = new int[config.numHiddenLayers()];
        for (int l = 0; l < out.length; l++) out[l] = config.layerKind(l) == LayerKind.MLA ? s.mla(l).length() : -1;
        return out;
    }

    @Test
    void replayedBookkeepingIsThatOfAForwardPass() {
        SequenceState a = prefilled(20), b = prefilled(20);
        Tensor x = model.embed(new int[] {ids[20]});
        model.forward(x, new int[] {1}, new SequenceState[] {a});
        backend.release(x);
        b.advanceReplayed(1);
        assertEquals(a.position(), b.position());
        assertArrayEquals(mlaLengths(a), mlaLengths(b));
        b.rewind(20);
        assertEquals(20, b.position());
        for (int len : mlaLengths(b)) assertTrue(len == -1 || len == 20, "MLA length after rewind: " + len);
        assertThrows(IllegalArgumentException.class, () -> b.rewind(21));
    }

    @Test
    void reserveMovesStorageOnlyWhenItGrows() {
        SequenceState s = prefilled(10);
        int mlaLayer = -1;
        for (int l = 0; l < config.numHiddenLayers(); l++) if (config.layerKind(l) == LayerKind.MLA) mlaLayer = l;
        MlaCache c = s.mla(mlaLayer);
        long v = s.layoutVersion();
        Tensor before = c.latent();
        s.reserve(c.capacity());
        assertEquals(v, s.layoutVersion());
        assertTrue(before == c.latent());
        s.reserve(c.capacity() + 1);
        assertNotEquals(v, s.layoutVersion());
        assertTrue(c.capacity() > 10 && c.length() == 10);
        assertThrows(IllegalArgumentException.class, () -> c.appended(c.capacity()));
    }

    @Test
    void appendRowsPutsEachSegmentAtItsPosition() {
        int cols = 5;
        float[] rows = new float[4 * cols];
        for (int i = 0; i < rows.length; i++) rows[i] = i + 1;
        Tensor src = backend.upload(rows, 4, cols);
        Tensor[] caches = {backend.allocate(8, cols), backend.allocate(8, cols)};
        // segment 0: row 0 at position 6; segment 1: rows 1..3 at positions 2..4
        backend.appendRows(src, caches, new Segments(new int[] {1, 3}, new int[] {6, 2}));
        float[] c0 = backend.download(caches[0]), c1 = backend.download(caches[1]);
        for (int j = 0; j < cols; j++) {
            assertEquals(rows[j], c0[6 * cols + j]);
            for (int r = 0; r < 3; r++) assertEquals(rows[(1 + r) * cols + j], c1[(2 + r) * cols + j]);
            assertEquals(0f, c1[5 * cols + j]);
        }
    }

    @Test
    void aBackendWithoutRecordingsRunsEveryStepEagerly() {
        SequenceState s = prefilled(12);
        RowSampling greedy = new RowSampling(true, 1f, 0, 1.0, 0.0, false);
        try (DecodeGraphs graphs = new DecodeGraphs(model, true)) {
            for (int step = 0; step < 3; step++) {
                assertTrue(graphs.step(new int[] {ids[12]}, new SequenceState[] {s}, new RowSampling[] {greedy}).isEmpty());
                assertEquals(12, s.position());
            }
            assertEquals(0, graphs.replays());
        }
        try (DecodeGraphs fresh = new DecodeGraphs(model, true)) {
            assertThrows(IllegalArgumentException.class,
                    () -> fresh.step(new int[] {config.vocabSize()}, new SequenceState[] {s}, new RowSampling[] {greedy}));
        }
    }
}
