package dev.kimimesh.mesh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/** The tiny fixture's golden prompts and greedy tokens, and the single-process engine's greedy tokens to compare with. */
final class Goldens {
    private static final JsonNode INDEX;

    static {
        try {
            INDEX = new ObjectMapper().readTree(InProcessMesh.TINY.resolve("goldens/index.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Goldens() {}

    static int[] prompt(String name) {
        return ints(INDEX.get("prompts").get(name).get("input_ids"));
    }

    static List<Integer> decodeTokens(String name) {
        List<Integer> out = new ArrayList<>();
        for (int t : ints(INDEX.get("prompts").get(name).get("decode_tokens"))) out.add(t);
        return out;
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    /** Greedy tokens of the whole model in this process, one sequence at a time. */
    static List<Integer> singleProcessGreedy(int[] prompt, int steps) {
        return singleProcess(prompt, steps, null);
    }

    /** Tokens of the whole model in this process drawn by the engine's own sampler (null = greedy argmax). */
    static List<Integer> singleProcess(int[] prompt, int steps, dev.kimimesh.engine.generate.Sampler sampler) {
        try (Checkpoint ck = Checkpoint.open(InProcessMesh.TINY)) {
            CpuBackend be = new CpuBackend();
            KimiLinearModel m = KimiLinearModel.load(ck, be, ModelOptions.defaults());
            SequenceState st = m.newState();
            List<Integer> out = new ArrayList<>();
            int[] feed = prompt;
            for (int s = 0; s < steps; s++) {
                Tensor x = m.embed(feed);
                m.forward(x, new int[] {feed.length}, new SequenceState[] {st});
                float[] l = be.download(m.logits(x, new int[] {feed.length - 1}));
                int best = 0;
                for (int i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
                if (sampler != null) best = sampler.sample(l);
                out.add(best);
                feed = new int[] {best};
            }
            return out;
        }
    }
}
