package dev.kimimesh.gateway.embedded;

import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.gateway.schedule.MicroBatch;
import dev.kimimesh.gateway.schedule.Pipeline;
import dev.kimimesh.gateway.schedule.SampledToken;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The embedded mode: the whole model in this process, cut into one or more local stages (one thread each) that form
 * a pipeline exactly like remote shards do, so the same scheduler drives both.
 */
public final class LocalPipeline implements Pipeline {
    private final List<LocalStage> stages;

    private LocalPipeline(List<LocalStage> stages) {
        this.stages = stages;
    }

    /** Splits the model's layers into {@code stages} nearly equal ranges. */
    public static LocalPipeline load(Checkpoint ckpt, Backend backend, ModelOptions options, int stages) {
        int layers = ckpt.config().numHiddenLayers();
        if (stages < 1 || stages > layers) {
            throw new IllegalArgumentException("embedded stages must be in 1.." + layers + ", got " + stages);
        }
        List<LocalStage> list = new ArrayList<>();
        for (int i = 0; i < stages; i++) {
            int from = layers * i / stages, to = layers * (i + 1) / stages;
            list.add(new LocalStage(KimiLinearModel.loadRange(ckpt, backend, options, from, to), i));
        }
        return new LocalPipeline(list);
    }

    @Override
    public CompletableFuture<List<SampledToken>> run(MicroBatch batch) {
        LocalStage first = stages.getFirst();
        CompletableFuture<Tensor> hidden = CompletableFuture.supplyAsync(() -> {
            Tensor h = first.embed(batch);
            try {
                first.forward(batch, h);
            } catch (RuntimeException e) {
                first.model().backend().release(h);
                throw e;
            }
            return h;
        }, first.thread());
        for (int i = 1; i < stages.size(); i++) {
            LocalStage stage = stages.get(i);
            hidden = hidden.thenApplyAsync(h -> {
                try {
                    stage.forward(batch, h);
                } catch (RuntimeException e) {
                    stage.model().backend().release(h);
                    throw e;
                }
                return h;
            }, stage.thread());
        }
        LocalStage last = stages.getLast();
        return hidden.thenApplyAsync(h -> {
            try {
                return last.sample(batch, h);
            } finally {
                last.model().backend().release(h);
            }
        }, last.thread());
    }

    @Override
    public void release(long sequenceId) {
        for (LocalStage s : stages) s.thread().execute(() -> s.release(sequenceId));
    }

    /** Sequences whose state each stage holds (waits for work queued before). */
    public int[] heldSequences() {
        int[] held = new int[stages.size()];
        CountDownLatch done = new CountDownLatch(stages.size());
        for (int i = 0; i < held.length; i++) {
            int k = i;
            stages.get(i).thread().execute(() -> {
                held[k] = stages.get(k).sequences();
                done.countDown();
            });
        }
        try {
            done.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return held;
    }

    @Override
    public int depth() {
        return stages.size();
    }

    @Override
    public String describe() {
        StringBuilder b = new StringBuilder("embedded:");
        for (LocalStage s : stages) b.append(" [").append(s.model().from()).append(", ").append(s.model().to()).append(")");
        return b.toString();
    }

    @Override
    public void close() {
        stages.forEach(LocalStage::close);
    }
}
