package dev.kimimesh.engine.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A sequence state serialised after a 40-token prefix and restored into a fresh model continues exactly as the
 * uninterrupted run; damaged snapshots are refused with an IllegalArgumentException, never a crash.
 */
class StateSnapshotTest {
    static Checkpoint ckpt;
    static CpuBackend backend;
    static KimiLinearConfig config;
    static int[] ids;

    @BeforeAll
    static void open() {
        ckpt = TinyFixture.checkpoint();
        backend = new CpuBackend();
        config = ckpt.config();
        ids = TinyFixture.promptIds("prefill_T200");
    }

    @AfterAll
    static void close() {
        ckpt.close();
    }

    /** The rest of the prompt in one call, then greedy decode of 4 tokens: all logits rows. */
    private static float[] continueFrom(KimiLinearModel m, SequenceState st) {
        float[] out = Forward.feed(m, st, Arrays.copyOfRange(ids, 40, ids.length));
        for (int s = 0; s < 4; s++) {
            int tok = ModelRun.argmax(Arrays.copyOfRange(out, out.length - config.vocabSize(), out.length));
            out = Forward.concat(out, Forward.feed(m, st, tok));
        }
        return out;
    }

    private static byte[] prefixSnapshot() {
        KimiLinearModel m = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults());
        SequenceState st = m.newState();
        Forward.feed(m, st, Arrays.copyOf(ids, 40));
        return st.serialize(backend);
    }

    @Test
    void resumedStateContinuesBitForBit() {
        KimiLinearModel a = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults());
        SequenceState uninterrupted = a.newState();
        Forward.feed(a, uninterrupted, Arrays.copyOf(ids, 40));
        byte[] snapshot = uninterrupted.serialize(backend);
        float[] expected = continueFrom(a, uninterrupted);

        KimiLinearModel fresh = KimiLinearModel.load(ckpt, backend, ModelOptions.defaults());
        SequenceState restored = SequenceState.deserialize(backend, config, snapshot);
        assertEquals(40, restored.position());
        assertArrayEquals(snapshot, restored.serialize(backend), "serialise(deserialise(x)) == x");
        float[] resumed = continueFrom(fresh, restored);

        System.out.printf("snapshot of %d bytes after 40 tokens; resumed vs uninterrupted: %.2e%n", snapshot.length,
                TinyFixture.relErr(resumed, expected));
        assertArrayEquals(expected, resumed);
        assertArrayEquals(uninterrupted.serialize(backend), restored.serialize(backend), "final states are identical");
    }

    @Test
    void aShardsRangeStateRoundTrips() {
        int n = config.numHiddenLayers(), k = n / 2;
        KimiLinearModel head = KimiLinearModel.loadRange(ckpt, backend, ModelOptions.defaults(), 0, k);
        KimiLinearModel tail = KimiLinearModel.loadRange(ckpt, backend, ModelOptions.defaults(), k, n);
        SequenceState sh = head.newState(), st = tail.newState();
        Forward.feed(new KimiLinearModel[] {head, tail}, new SequenceState[] {sh, st}, Arrays.copyOf(ids, 40));
        byte[] bytes = st.serialize(backend);
        SequenceState back = SequenceState.deserialize(backend, config, bytes);
        assertEquals(k, back.from());
        assertEquals(n, back.to());
        assertEquals(40, back.position());
        for (int l = k; l < n; l++) {
            LayerKind kind = config.layerKind(l);
            assertArrayEquals(Forward.layerState(st, l, kind, backend), Forward.layerState(back, l, kind, backend), "layer " + l);
        }
    }

    private static IllegalArgumentException rejected(byte[] bytes, String what) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SequenceState.deserialize(backend, config, bytes), what);
        assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), what + ": no message");
        return e;
    }

    @Test
    void truncatedSnapshotsAreRefused() {
        byte[] good = prefixSnapshot();
        for (int cut : new int[] {0, 1, 4, 8, 23, 24, 25, 40, 41, good.length / 3, good.length / 2, good.length - 4, good.length - 1}) {
            IllegalArgumentException e = rejected(Arrays.copyOf(good, cut), "cut at " + cut);
            assertTrue(e.getMessage().contains("truncated"), "cut at " + cut + ": " + e.getMessage());
        }
        IllegalArgumentException e = rejected(Arrays.copyOf(good, good.length + 3), "trailing bytes");
        assertTrue(e.getMessage().contains("trailing"), e.getMessage());
    }

    @Test
    void garbageSnapshotsAreRefused() {
        byte[] good = prefixSnapshot();
        Random rnd = new Random(42);
        for (int i = 0; i < 20; i++) {
            byte[] junk = new byte[1 + rnd.nextInt(good.length)];
            rnd.nextBytes(junk);
            rejected(junk, "random bytes #" + i);
        }
        // a valid header followed by random bytes
        for (int i = 0; i < 20; i++) {
            byte[] junk = good.clone();
            byte[] tail = new byte[junk.length - 24];
            rnd.nextBytes(tail);
            System.arraycopy(tail, 0, junk, 24, tail.length);
            rejected(junk, "valid header, random body #" + i);
        }
        assertTrue(rejected(field(good, 0, 0x12345678), "bad magic").getMessage().contains("magic"));
        assertTrue(rejected(field(good, 4, 99), "version").getMessage().contains("version"));
        rejected(field(good, 8, config.numHiddenLayers()), "from past the last layer");
        rejected(field(good, 12, config.numHiddenLayers() + 1), "to past the last layer");
        rejected(ByteBuffer.wrap(good.clone()).order(ByteOrder.LITTLE_ENDIAN).putLong(16, -5).array(), "negative position");

        // the first MLA layer's header: a huge or negative position count must not allocate, and the kind byte is checked
        int mla = firstMlaLayerOffset();
        assertEquals(1, good[mla], "layout assumption: kind byte 1 marks an MLA layer");
        assertEquals(40, ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getInt(mla + 1));
        for (int count : new int[] {Integer.MAX_VALUE, 1 << 28, 1 << 20, -1, Integer.MIN_VALUE}) {
            rejected(field(good, mla + 1, count), "MLA length " + count);
        }
        byte[] kind = good.clone();
        kind[mla] = 0;
        assertTrue(rejected(kind, "kind byte").getMessage().contains("layer"));
        rejected(field(good, 24 + 1, 3), "KDA rows");
    }

    /** Byte offset of the first MLA layer's header: 24 header bytes, then per KDA layer 17 + its floats. */
    private static int firstMlaLayerOffset() {
        int off = 24;
        int kdaFloats = config.kdaNumHeads() * config.kdaHeadDim() * config.kdaHeadDim()
                + 3 * (config.shortConvKernelSize() - 1) * config.kdaProjectionSize();
        for (int l = 0; config.layerKind(l) == LayerKind.KDA; l++) off += 17 + 4 * kdaFloats;
        return off;
    }

    private static byte[] field(byte[] good, int at, int value) {
        byte[] b = good.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, value);
        assertFalse(Arrays.equals(b, good));
        return b;
    }
}
