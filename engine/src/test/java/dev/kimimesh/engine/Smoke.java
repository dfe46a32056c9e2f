package dev.kimimesh.engine;

import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.nio.file.Path;

public class Smoke {
    public static void main(String[] a) {
        Path fx = Path.of(a[0]);
        String name = a.length > 1 ? a[1] : "T7";
        try (Checkpoint ck = Checkpoint.open(fx); SafetensorsFile g = SafetensorsFile.open(fx.resolve("goldens/prefill_" + name + ".safetensors"))) {
            CpuBackend be = new CpuBackend();
            KimiLinearModel m = KimiLinearModel.load(ck, be, ModelOptions.defaults());
            int[] ids = g.tensor("input_ids").toIntArray();
            SequenceState st = m.newState();
            Tensor x = m.embed(ids);
            long t0 = System.nanoTime();
            m.forward(x, new int[] {ids.length}, new SequenceState[] {st});
            int[] rows = new int[ids.length];
            for (int i = 0; i < rows.length; i++) rows[i] = i;
            float[] lg = be.download(m.logits(x, rows));
            float[] gold = g.tensor("logits").toFloatArray();
            double maxd = 0, maxg = 0;
            for (int i = 0; i < gold.length; i++) {
                maxd = Math.max(maxd, Math.abs(lg[i] - gold[i]));
                maxg = Math.max(maxg, Math.abs(gold[i]));
            }
            System.out.printf("%s: max abs diff %.3g, rel %.3g (%.1f ms)%n", name, maxd, maxd / maxg, (System.nanoTime() - t0) / 1e6);
        }
    }
}
