package dev.kimimesh.engine.state;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Everything one sequence carries between calls for the layers [from, to) that one process owns: the KDA states and
 * conv tails, the MLA latent caches, and the number of tokens consumed. It serialises to bytes (little-endian,
 * float32) and restores exactly, so the mesh can snapshot, move and resume it.
 */
public final class SequenceState {
    private static final int MAGIC = 0x4B4D5353; // "KMSS"
    private static final int VERSION = 1;

    private final int from, to;
    private final LayerState[] layers;
    private int position;

    private SequenceState(int from, int to, LayerState[] layers, int position) {
        this.from = from;
        this.to = to;
        this.layers = layers;
        this.position = position;
    }

    /** A fresh state (position 0) for layers [from, to). */
    public static SequenceState fresh(Backend backend, KimiLinearConfig c, int from, int to) {
        LayerState[] ls = new LayerState[to - from];
        for (int l = from; l < to; l++) {
            ls[l - from] = c.layerKind(l) == LayerKind.KDA
                    ? KdaState.fresh(backend, c.kdaNumHeads(), c.kdaHeadDim(), c.shortConvKernelSize(), c.kdaProjectionSize())
                    : new MlaCache(backend, c.kvLoraRank(), c.qkRopeHeadDim(), 64);
        }
        return new SequenceState(from, to, ls, 0);
    }

    public static SequenceState fresh(Backend backend, KimiLinearConfig c) {
        return fresh(backend, c, 0, c.numHiddenLayers());
    }

    public int from() {
        return from;
    }

    public int to() {
        return to;
    }

    /** Tokens this state has consumed (the position of the next token). */
    public int position() {
        return position;
    }

    public void advance(int tokens) {
        position += tokens;
    }

    /** Grows the MLA caches to hold {@code positions} positions now (so that a recorded step finds them in place). */
    public void reserve(int positions) {
        for (LayerState l : layers) if (l instanceof MlaCache m) m.ensureCapacity(positions);
    }

    /** Changes whenever a layer's device storage moves; with the same value, a recorded step's buffers are still these. */
    public long layoutVersion() {
        long v = 0;
        for (LayerState l : layers) if (l instanceof MlaCache m) v += m.generation();
        return v;
    }

    /** The bookkeeping of a forward pass whose device work ran elsewhere (a replayed decode step): n tokens per layer. */
    public void advanceReplayed(int tokens) {
        for (LayerState l : layers) if (l instanceof MlaCache m) m.appended(tokens);
        position += tokens;
    }

    /** Undoes the bookkeeping of steps whose device work never ran: back to {@code position} tokens. */
    public void rewind(int position) {
        if (position < 0 || position > this.position) throw new IllegalArgumentException("rewind to " + position + " from " + this.position);
        for (LayerState l : layers) if (l instanceof MlaCache m) m.truncate(Math.min(m.length(), position));
        this.position = position;
    }

    public LayerState layer(int layer) {
        if (layer < from || layer >= to) throw new IllegalArgumentException("layer " + layer + " is outside [" + from + ", " + to + ")");
        return layers[layer - from];
    }

    public KdaState kda(int layer) {
        return (KdaState) layer(layer);
    }

    public MlaCache mla(int layer) {
        return (MlaCache) layer(layer);
    }

    public void release() {
        for (LayerState l : layers) l.release();
    }

    /** Bytes a snapshot of this state takes (for stats and the state store). */
    public long byteSize() {
        long n = 24;
        for (LayerState l : layers) {
            n += 1 + 16;
            if (l instanceof KdaState k) {
                n += 4L * k.recurrent().size();
                for (Tensor t : k.convTails()) n += 4L * t.size();
            } else if (l instanceof MlaCache m) {
                n += 4L * m.length() * ((long) m.rank() + m.rope());
            }
        }
        return n;
    }

    public byte[] serialize(Backend backend) {
        ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.min(Integer.MAX_VALUE - 8, byteSize()));
        ByteBuffer head = le(24).putInt(MAGIC).putInt(VERSION).putInt(from).putInt(to).putLong(position);
        out.writeBytes(head.array());
        for (LayerState l : layers) {
            if (l instanceof KdaState k) {
                Tensor s = k.recurrent(), t0 = k.convTails()[0];
                out.writeBytes(le(17).put((byte) 0).putInt(s.rows()).putInt(s.cols()).putInt(t0.rows()).putInt(t0.cols()).array());
                writeFloats(out, backend.download(s));
                for (Tensor t : k.convTails()) writeFloats(out, backend.download(t));
            } else if (l instanceof MlaCache m) {
                out.writeBytes(le(17).put((byte) 1).putInt(m.length()).putInt(m.rank()).putInt(m.rope()).putInt(0).array());
                if (m.length() > 0) {
                    writeFloats(out, backend.download(m.latent().rowSlice(0, m.length())));
                    if (m.rope() > 0) writeFloats(out, backend.download(m.kRot().rowSlice(0, m.length())));
                }
            }
        }
        return out.toByteArray();
    }

    /** Restores a snapshot made by {@link #serialize}, checking it against the config. */
    public static SequenceState deserialize(Backend backend, KimiLinearConfig c, byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            if (in.getInt() != MAGIC) throw new IllegalArgumentException("not a Kimi Mesh sequence state (bad magic)");
            int version = in.getInt();
            if (version != VERSION) throw new IllegalArgumentException("sequence state version " + version + " is not supported");
            int from = in.getInt(), to = in.getInt();
            long position = in.getLong();
            if (from < 0 || to > c.numHiddenLayers() || from >= to) {
                throw new IllegalArgumentException("sequence state covers layers [" + from + ", " + to + "), not within this model's "
                        + c.numHiddenLayers());
            }
            if (position < 0 || position > Integer.MAX_VALUE) throw new IllegalArgumentException("bad position " + position);
            SequenceState st = fresh(backend, c, from, to);
            st.position = (int) position;
            for (int l = from; l < to; l++) {
                byte kind = in.get();
                int a = in.getInt(), b = in.getInt(), cc = in.getInt(), d = in.getInt();
                if (c.layerKind(l) == LayerKind.KDA) {
                    KdaState k = st.kda(l);
                    if (kind != 0 || a != k.recurrent().rows() || b != k.recurrent().cols()
                            || cc != k.convTails()[0].rows() || d != k.convTails()[0].cols()) {
                        throw new IllegalArgumentException("layer " + l + ": KDA state shape does not match the model");
                    }
                    backend.copy(backend.upload(readFloats(in, a * b), a, b), k.recurrent());
                    for (Tensor t : k.convTails()) backend.copy(backend.upload(readFloats(in, cc * d), cc, d), t);
                } else {
                    MlaCache m = st.mla(l);
                    if (kind != 1 || b != m.rank() || cc != m.rope() || a < 0) {
                        throw new IllegalArgumentException("layer " + l + ": MLA cache shape does not match the model");
                    }
                    // checked before allocating: a corrupt length must not become a huge or negative array
                    if ((long) a * (b + cc) > in.remaining() / 4) {
                        throw new IllegalArgumentException("sequence state is truncated: layer " + l + " claims " + a
                                + " cached positions, more than the remaining " + in.remaining() + " bytes hold");
                    }
                    if (a > 0) {
                        Tensor lat = backend.upload(readFloats(in, a * b), a, b);
                        Tensor rot = cc > 0 ? backend.upload(readFloats(in, a * cc), a, cc) : backend.allocate(a, 1);
                        m.append(lat, rot);
                        backend.release(lat);
                        backend.release(rot);
                    }
                }
            }
            if (in.hasRemaining()) throw new IllegalArgumentException(in.remaining() + " trailing bytes after the sequence state");
            return st;
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("sequence state is truncated", e);
        }
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void writeFloats(ByteArrayOutputStream out, float[] f) {
        ByteBuffer b = le(f.length * 4);
        b.asFloatBuffer().put(f);
        out.writeBytes(b.array());
    }

    private static float[] readFloats(ByteBuffer in, int n) {
        float[] f = new float[n];
        FloatBuffer fb = in.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        if (fb.remaining() < n) throw new java.nio.BufferUnderflowException();
        fb.get(f);
        in.position(in.position() + 4 * n);
        return f;
    }
}
