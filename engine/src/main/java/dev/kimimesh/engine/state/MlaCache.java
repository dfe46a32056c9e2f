package dev.kimimesh.engine.state;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;

/**
 * The growing state of one MLA layer for one sequence: per position only the compressed latent (kv_a_layernorm
 * output, kv_lora_rank wide) and the shared k_rot slice (qk_rope_head_dim wide), never the per-head K and V.
 */
public final class MlaCache implements LayerState {
    private final Backend backend;
    private final int rank, rope;
    private Tensor latent, kRot;
    private int length;
    /** Times the storage moved (grew): a recorded decode step stays valid only while it has not. */
    private int generation;

    public MlaCache(Backend backend, int rank, int rope, int capacity) {
        this.backend = backend;
        this.rank = rank;
        this.rope = rope;
        int cap = Math.max(16, capacity);
        this.latent = backend.allocate(cap, rank);
        this.kRot = backend.allocate(cap, Math.max(1, rope));
    }

    public int length() {
        return length;
    }

    public int capacity() {
        return latent.rows();
    }

    public int rank() {
        return rank;
    }

    public int rope() {
        return rope;
    }

    public Tensor latent() {
        return latent;
    }

    public Tensor kRot() {
        return kRot;
    }

    /** Appends rows (latent [n, rank], kRot [n, rope]) at the end, growing the storage by doubling. */
    public void append(Tensor newLatent, Tensor newKRot) {
        int n = newLatent.rows();
        ensureCapacity(length + n);
        backend.copyRows(newLatent, latent, length);
        if (rope > 0) backend.copyRows(newKRot, kRot, length);
        length += n;
    }

    /** Counts storage moves: unchanged means {@link #latent()} and {@link #kRot()} are the same device buffers. */
    public int generation() {
        return generation;
    }

    /**
     * Marks {@code n} rows appended that the backend already wrote at [length, length + n) (by
     * {@link dev.kimimesh.engine.backend.Backend#appendRows} or a replayed decode step).
     */
    public void appended(int n) {
        if (n < 0 || length + n > latent.rows()) throw new IllegalArgumentException("appended " + n + " rows to " + length + " of " + latent.rows());
        length += n;
    }

    public void ensureCapacity(int needed) {
        if (needed <= latent.rows()) return;
        generation++;
        int cap = latent.rows();
        while (cap < needed) cap *= 2;
        Tensor l = backend.allocate(cap, rank), r = backend.allocate(cap, kRot.cols());
        if (length > 0) {
            backend.copyRows(latent.rowSlice(0, length), l, 0);
            backend.copyRows(kRot.rowSlice(0, length), r, 0);
        }
        backend.release(latent);
        backend.release(kRot);
        latent = l;
        kRot = r;
    }

    /** Drops positions past {@code newLength} (used when a restored snapshot is shorter). */
    public void truncate(int newLength) {
        if (newLength < 0 || newLength > length) throw new IllegalArgumentException("truncate to " + newLength + " of " + length);
        length = newLength;
    }

    @Override
    public void release() {
        backend.release(latent);
        backend.release(kRot);
    }
}
