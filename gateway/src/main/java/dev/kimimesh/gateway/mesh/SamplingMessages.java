package dev.kimimesh.gateway.mesh;

import dev.kimimesh.engine.generate.SamplingParams;

/** Engine sampling parameters as the shard pipeline's protobuf message, and back. */
public final class SamplingMessages {
    private SamplingMessages() {}

    public static dev.kimimesh.proto.v1.SamplingParams toProto(SamplingParams p) {
        var b = dev.kimimesh.proto.v1.SamplingParams.newBuilder()
                .setTemperature(p.temperature())
                .setTopK(p.topK())
                .setTopP(p.topP())
                .setSeed(p.seed())
                .setMaxTokens(p.maxTokens())
                .setIgnoreEos(p.ignoreEos())
                .setLogprobs(p.logprobs());
        for (int id : p.stopTokenIds()) b.addStopTokenIds(id);
        return b.build();
    }
}
