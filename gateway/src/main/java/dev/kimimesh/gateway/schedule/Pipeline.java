package dev.kimimesh.gateway.schedule;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The chain of stages that turns micro-batches into sampled tokens: shards reached over gRPC, or the model in this
 * process. Several micro-batches may be in flight at once; each completes with the tokens of its sampled entries.
 */
public interface Pipeline extends AutoCloseable {
    /** Runs one micro-batch through every stage; completes exceptionally when a stage fails. */
    CompletableFuture<List<SampledToken>> run(MicroBatch batch);

    /** Tells every stage to drop the sequence's state and sampler (after any work already queued for it). */
    void release(long sequenceId);

    /** Number of stages; the scheduler keeps this many micro-batches in flight unless told otherwise. */
    int depth();

    /** Human-readable topology, for logs and the model-info answer. */
    String describe();

    @Override
    void close();
}
