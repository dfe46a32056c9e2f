package dev.kimimesh.gateway.mesh;

import dev.kimimesh.proto.v1.MicroBatch;

/**
 * What metrics and tracing see of the hops of a {@link ShardPipeline}: a micro-batch sent to a shard the gateway
 * drives, until that shard answers (for a chained shard: until the chain's answer comes back through it).
 */
public interface HopObserver {
    /** One hop in flight; only the first {@link #ended} counts (a failed hop may be reported twice). */
    interface Hop {
        /** The message to send: the one given, or a copy carrying the hop's trace context. */
        MicroBatch message();

        /** @param failure why the hop failed, or null when the shard answered */
        void ended(String failure);
    }

    /**
     * A micro-batch is about to go to driven shard {@code stage} (named {@code shard}).
     *
     * @param message the micro-batch as it would be sent
     */
    Hop started(int stage, String shard, MicroBatch message);

    HopObserver NONE = (stage, shard, message) -> new Hop() {
        @Override
        public MicroBatch message() {
            return message;
        }

        @Override
        public void ended(String failure) {}
    };
}
