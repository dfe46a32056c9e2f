package dev.kimimesh.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.kimimesh.proto.v1.LayerShardGrpc;
import dev.kimimesh.proto.v1.MicroBatch;
import dev.kimimesh.proto.v1.MicroBatchResult;
import dev.kimimesh.proto.v1.SampledToken;
import dev.kimimesh.proto.v1.SamplingParams;
import dev.kimimesh.proto.v1.SequenceChunk;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * What a gateway does, reduced to a test: one Forward stream into the first shard, groups of sequences whose
 * micro-batches are in flight at the same time, greedy decoding that feeds each sampled token back.
 */
final class PipelineDriver implements AutoCloseable {
    static final SamplingParams GREEDY = SamplingParams.newBuilder().setTemperature(0).build();

    /** A sequence: its id, its prompt, and the micro-batch of its group at which it joins (prefill mixed with decode). */
    record Seq(long id, int[] prompt, int joinAt) {}

    private final StreamObserver<MicroBatch> requests;
    private final LinkedBlockingQueue<Object> results = new LinkedBlockingQueue<>();
    private long nextId = 1;

    PipelineDriver(Channel firstShard) {
        requests = LayerShardGrpc.newStub(firstShard).forward(new StreamObserver<>() {
            @Override
            public void onNext(MicroBatchResult r) {
                results.add(r);
            }

            @Override
            public void onError(Throwable t) {
                results.add(t);
            }

            @Override
            public void onCompleted() {
                results.add("completed");
            }
        });
    }

    long send(MicroBatch.Builder mb) {
        long id = nextId++;
        requests.onNext(mb.setMicroBatchId(id).build());
        return id;
    }

    MicroBatchResult next() throws InterruptedException {
        Object o = results.poll(60, TimeUnit.SECONDS);
        assertNotNull(o, "no result from the pipeline within 60 s");
        if (o instanceof Throwable t) throw new AssertionError("stream failed", t);
        if (!(o instanceof MicroBatchResult r)) throw new AssertionError("stream ended early: " + o);
        return r;
    }

    /**
     * Greedy generation of {@code steps} tokens per sequence: each group's next micro-batch is sent as soon as its
     * previous result is back, so the groups' micro-batches overlap in the pipeline. Returns tokens per sequence id.
     */
    Map<Long, List<Integer>> generate(List<List<Seq>> groups, int steps) throws InterruptedException {
        return generate(groups, steps, Map.of());
    }

    /** As above, continuing sequences whose state the shards already hold after the tokens in {@code so far}. */
    Map<Long, List<Integer>> generate(List<List<Seq>> groups, int steps, Map<Long, List<Integer>> soFar) throws InterruptedException {
        Map<Long, List<Integer>> out = new LinkedHashMap<>();
        for (List<Seq> g : groups) for (Seq s : g) out.put(s.id(), new ArrayList<>(soFar.getOrDefault(s.id(), List.of())));
        Map<Long, Integer> groupOf = new HashMap<>();
        int[] sent = new int[groups.size()];
        int active = 0;
        for (int g = 0; g < groups.size(); g++) {
            MicroBatch.Builder mb = step(groups.get(g), sent[g]++, out, steps);
            if (mb != null) {
                groupOf.put(send(mb), g);
                active++;
            }
        }
        while (active > 0) {
            MicroBatchResult r = next();
            assertEquals(MicroBatchResult.ResultCase.SAMPLED, r.getResultCase(), () -> "micro-batch failed: " + r);
            for (SampledToken t : r.getSampled().getTokensList()) out.get(t.getSequenceId()).add(t.getTokenId());
            int g = groupOf.remove(r.getMicroBatchId());
            active--;
            MicroBatch.Builder mb = step(groups.get(g), sent[g]++, out, steps);
            if (mb != null) {
                groupOf.put(send(mb), g);
                active++;
            }
        }
        return out;
    }

    /** A group's micro-batch number {@code index}: prefill chunks for joining sequences, one token for the others. */
    private static MicroBatch.Builder step(List<Seq> group, int index, Map<Long, List<Integer>> out, int steps) {
        MicroBatch.Builder mb = MicroBatch.newBuilder();
        for (Seq s : group) {
            List<Integer> done = out.get(s.id());
            if (index < s.joinAt() || done.size() >= steps) continue;
            SequenceChunk.Builder c = SequenceChunk.newBuilder().setSequenceId(s.id()).setSample(true).setSampling(GREEDY);
            if (done.isEmpty()) {
                c.setPosition(0).setNumTokens(s.prompt().length);
                for (int t : s.prompt()) c.addTokenIds(t);
            } else {
                c.setPosition(s.prompt().length + done.size() - 1).setNumTokens(1).addTokenIds(done.getLast());
            }
            mb.addSequences(c);
        }
        return mb.getSequencesCount() == 0 ? null : mb;
    }

    @Override
    public void close() {
        requests.onCompleted();
    }
}
