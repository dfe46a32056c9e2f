package dev.kimimesh.engine.golden;

import dev.kimimesh.engine.checkpoint.CheckpointException;
import dev.kimimesh.engine.checkpoint.SafetensorsFile;
import dev.kimimesh.engine.checkpoint.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * One golden safetensors file, restricted to the tensors that are really there: those in the file and, where
 * index.json lists the file's tensors, also in that list. Remembers which tensors a check used, so that the report
 * can name the ones nobody compared.
 */
final class GoldenFile implements AutoCloseable {
    private final SafetensorsFile file;
    private final String name;
    private final Set<String> present = new LinkedHashSet<>();
    private final Set<String> used = new LinkedHashSet<>();
    private final List<String> listedButMissing = new ArrayList<>();

    private GoldenFile(SafetensorsFile file, String name, List<String> listed) {
        this.file = file;
        this.name = name;
        for (String t : file.tensors().keySet()) if (listed == null || listed.contains(t)) present.add(t);
        if (listed != null) for (String t : listed) if (!file.has(t)) listedButMissing.add(t);
    }

    static GoldenFile open(Path dir, String fileName, List<String> listed) {
        Path p = dir.resolve(fileName).normalize();
        if (!p.startsWith(dir.normalize())) throw new GoldenException("index.json: file '" + fileName + "' is outside the goldens directory");
        if (!Files.isRegularFile(p)) throw new GoldenException("index.json names '" + fileName + "', which is not in " + dir);
        try {
            return new GoldenFile(SafetensorsFile.open(p), fileName, listed);
        } catch (CheckpointException e) {
            throw new GoldenException(fileName + ": " + e.getMessage(), e);
        }
    }

    String name() {
        return name;
    }

    boolean has(String tensor) {
        return present.contains(tensor);
    }

    /** Tensors index.json lists for this file that the file does not hold. */
    List<String> listedButMissing() {
        return listedButMissing;
    }

    Set<String> present() {
        return present;
    }

    TensorInfo tensor(String tensor) {
        if (!present.contains(tensor)) throw new GoldenException(name + ": no tensor '" + tensor + "'");
        used.add(tensor);
        return file.tensor(tensor);
    }

    float[] floats(String tensor) {
        return tensor(tensor).toFloatArray();
    }

    int[] ints(String tensor) {
        try {
            return tensor(tensor).toIntArray();
        } catch (ArithmeticException e) {
            throw new GoldenException(name + ": tensor '" + tensor + "' holds a value outside the int range", e);
        }
    }

    long[] shape(String tensor) {
        return file.tensor(tensor).shape().clone();
    }

    /** Fails unless the tensor has exactly this shape. */
    void requireShape(String tensor, long... expected) {
        long[] s = shape(tensor);
        if (!Arrays.equals(s, expected)) {
            throw new GoldenException(name + ": tensor '" + tensor + "' has shape " + Arrays.toString(s) + ", the model gives "
                    + Arrays.toString(expected) + " (goldens made for another model?)");
        }
    }

    /** Present tensors no check has read. */
    List<String> unused() {
        List<String> out = new ArrayList<>();
        for (String t : present) if (!used.contains(t)) out.add(t);
        return out;
    }

    @Override
    public void close() {
        file.close();
    }
}
