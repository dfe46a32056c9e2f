package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.checkpoint.Checkpoint;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where the tests find the tiny fixture: the `kimimesh.shared` system property (set by surefire). */
final class TinyFixture {
    private TinyFixture() {}

    static Path dir() {
        String shared = System.getProperty("kimimesh.shared");
        if (shared == null) throw new IllegalStateException("system property kimimesh.shared is not set (run the tests through Maven)");
        Path p = Path.of(shared, "fixtures", "tiny");
        if (!Files.isDirectory(p)) throw new IllegalStateException("tiny fixture not found at " + p);
        return p;
    }

    static Path goldens() {
        return dir().resolve("goldens");
    }

    static Path remoteCodeGoldens() {
        return dir().resolve("goldens-remote-code");
    }

    static Checkpoint checkpoint() {
        return Checkpoint.open(dir());
    }

    /** The token ids of a golden prompt file, e.g. "prefill_T200". */
    static int[] promptIds(String file) {
        try (SafetensorsFile f = SafetensorsFile.open(goldens().resolve(file + ".safetensors"))) {
            return f.tensor("input_ids").toIntArray();
        }
    }

    /** max|a-b| / max|b|: the relative error the fixture manifest's tolerances use. */
    static double relErr(float[] a, float[] b) {
        if (a.length != b.length) throw new AssertionError("lengths differ: " + a.length + " vs " + b.length);
        double d = 0, m = 0;
        for (int i = 0; i < a.length; i++) {
            double x = Math.abs((double) a[i] - b[i]);
            d = Double.isNaN(x) ? Double.POSITIVE_INFINITY : Math.max(d, x);
            m = Math.max(m, Math.abs(b[i]));
        }
        return d == 0 ? 0 : d / m;
    }
}
