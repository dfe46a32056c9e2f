package dev.kimimesh.engine.generate;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.DecodeGraph;
import dev.kimimesh.engine.backend.RowSampling;
import dev.kimimesh.engine.backend.SampledTokens;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.state.SequenceState;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * Decode steps (one new token per sequence, every row sampled) run as a recorded step that the backend replays
 * ({@link Backend#captureDecode}, a CUDA graph): the host then queues one copy and one launch per step instead of a
 * hundred kernels. A recording serves while the batch keeps the same sequences in the same order and no MLA cache
 * has moved; the first step of a new batch layout runs eagerly, the second records it. Results are those of the eager
 * step: the same kernels on the same inputs. {@code -Dkimimesh.graphs=false} turns recording off.
 */
public final class DecodeGraphs implements AutoCloseable {
    /** Whether decode steps may be recorded and replayed ({@code kimimesh.graphs}, default true). */
    public static boolean enabledByDefault() {
        return !"false".equalsIgnoreCase(System.getProperty("kimimesh.graphs", "true"));
    }

    private static final System.Logger LOG = System.getLogger(DecodeGraphs.class.getName());
    /** Layouts whose recording failed, remembered so that they are not tried every step (bounded). */
    private static final int FAILED_MAX = 64;

    private final KimiLinearModel model;
    private final Backend backend;
    private boolean enabled;
    private DecodeGraph graph;
    private Layout graphLayout, seen;
    private final Set<Layout> failed = new HashSet<>();
    private long replays, captures;

    public DecodeGraphs(KimiLinearModel model, boolean enabled) {
        this.model = model;
        this.backend = model.backend();
        // observers and remote experts look at a step's intermediate results on the host: those steps run eagerly
        this.enabled = enabled && model.hasEmbedding() && model.hasHead() && model.options().observer() == null
                && model.options().experts() == null;
    }

    public DecodeGraphs(KimiLinearModel model) {
        this(model, enabledByDefault());
    }

    /** Steps replayed from a recording so far. */
    public long replays() {
        return replays;
    }

    /** Recordings made so far (one per batch layout that ran two steps in a row). */
    public long captures() {
        return captures;
    }

    /**
     * One decode step of {@code states} (sequence i gets token {@code ids[i]} and its row is sampled with
     * {@code rows[i]}) through a recording; empty when the caller must run it eagerly (nothing ran, nothing changed
     * but the MLA caches' reserved capacity).
     */
    public Optional<SampledTokens> step(int[] ids, SequenceState[] states, RowSampling[] rows) {
        if (!enabled || states.length == 0) return Optional.empty();
        if (ids.length != states.length || rows.length != states.length) {
            throw new IllegalArgumentException("decode step: " + ids.length + " ids and " + rows.length + " sampling rows for " + states.length + " sequences");
        }
        int vocab = model.config().vocabSize();
        for (int id : ids) {
            if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " is outside the model's vocabulary 0.." + (vocab - 1));
        }
        int[] positions = new int[states.length];
        for (int i = 0; i < states.length; i++) {
            positions[i] = states[i].position();
            // caches grow here, outside any recording: a recording must never own a cache's storage
            states[i].reserve(positions[i] + 1);
        }
        Layout layout = Layout.of(states);
        if (graph != null && layout.equals(graphLayout)) {
            Optional<SampledTokens> out = graph.replay(ids, positions, rows);
            if (out.isPresent()) {
                for (SequenceState s : states) s.advanceReplayed(1);
                replays++;
            }
            return out;
        }
        if (!layout.equals(seen) || failed.contains(layout)) {
            seen = layout; // the first step of a layout runs eagerly (and warms what a recording cannot do: JIT, tables)
            return Optional.empty();
        }
        closeGraph();
        Optional<DecodeGraph> g;
        try {
            g = backend.captureDecode(() -> queueStep(ids, states, rows));
        } catch (RuntimeException e) {
            rewind(states, positions);
            if (failed.size() >= FAILED_MAX) failed.clear();
            failed.add(layout);
            LOG.log(System.Logger.Level.WARNING, "decode step of " + states.length + " sequences not recorded, it runs eagerly: " + e.getMessage());
            return Optional.empty();
        }
        if (g.isEmpty()) {
            rewind(states, positions);
            enabled = false; // this backend records nothing
            return Optional.empty();
        }
        graph = g.get();
        graphLayout = layout;
        captures++;
        // the recording's own run advanced the states; its device work runs now
        Optional<SampledTokens> out = graph.replay(ids, positions, rows);
        if (out.isEmpty()) rewind(states, positions);
        else replays++;
        return out;
    }

    /** What the recording records: the eager step's calls, whose results the graph's replay delivers. */
    private void queueStep(int[] ids, SequenceState[] states, RowSampling[] rows) {
        int[] ones = new int[states.length], sampleRows = new int[states.length];
        for (int i = 0; i < states.length; i++) {
            ones[i] = 1;
            sampleRows[i] = i;
        }
        Tensor x = model.embed(ids);
        try {
            model.forward(x, ones, states);
            Tensor logits = model.logits(x, sampleRows);
            try {
                if (backend.sample(logits, rows).isEmpty()) throw new IllegalStateException("these sampling parameters are not sampled on the device");
            } finally {
                backend.release(logits);
            }
        } finally {
            backend.release(x);
        }
    }

    private static void rewind(SequenceState[] states, int[] positions) {
        for (int i = 0; i < states.length; i++) states[i].rewind(positions[i]); // MLA lengths too, where a layer appended
    }

    private void closeGraph() {
        if (graph != null) graph.close();
        graph = null;
        graphLayout = null;
    }

    @Override
    public void close() {
        closeGraph();
    }

    /** The sequences of a batch, in order, by identity, and where their storage is. */
    private record Layout(SequenceState[] states, long[] versions) {
        static Layout of(SequenceState[] states) {
            long[] v = new long[states.length];
            for (int i = 0; i < v.length; i++) v[i] = states[i].layoutVersion();
            return new Layout(states.clone(), v);
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Layout l) || l.states.length != states.length || !Arrays.equals(l.versions, versions)) return false;
            for (int i = 0; i < states.length; i++) if (l.states[i] != states[i]) return false;
            return true;
        }

        @Override
        public int hashCode() {
            int h = Arrays.hashCode(versions);
            for (SequenceState s : states) h = 31 * h + System.identityHashCode(s);
            return h;
        }
    }
}
