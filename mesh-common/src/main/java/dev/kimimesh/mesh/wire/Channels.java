package dev.kimimesh.mesh.wire;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;

/** Opens the channels mesh services use to reach each other; tests swap in in-process channels. */
@FunctionalInterface
public interface Channels {
    /** Activations of a long prefill chunk exceed gRPC's 4 MiB default. */
    int MAX_MESSAGE_BYTES = 512 << 20;

    ManagedChannel open(String address);

    /**
     * Plaintext channels to host:port addresses over whichever transport is on the class path. Their callbacks run
     * on the transport's event loop ({@code directExecutor}): every mesh callback only completes a future or passes
     * a message on, and handing each answer to gRPC's default executor first would add a thread wake-up to every
     * expert round trip and stage hop (7 MoE layers x 2 services per token on the tiny model).
     */
    static Channels plaintext() {
        return address -> Grpc.newChannelBuilder(address, InsecureChannelCredentials.create())
                .maxInboundMessageSize(MAX_MESSAGE_BYTES).directExecutor().build();
    }
}
