package dev.kimimesh.mesh.shard;

import io.grpc.Status;
import java.util.List;

/**
 * A micro-batch failed while running, after some layers had advanced its sequences' state: those sequences were
 * released here and must be released on every other stage too.
 */
public final class DroppedSequences extends RuntimeException {
    /** The phrase every failure that released sequences carries, so later relays do not release twice. */
    public static final String RELEASED = "were released on every stage (restart them at position 0 or restore their snapshots)";

    private final transient Status status;
    private final List<Long> sequenceIds;

    public DroppedSequences(Status status, List<Long> sequenceIds) {
        super(status.getDescription());
        this.status = status;
        this.sequenceIds = List.copyOf(sequenceIds);
    }

    public Status status() {
        return status;
    }

    public List<Long> sequenceIds() {
        return sequenceIds;
    }
}
