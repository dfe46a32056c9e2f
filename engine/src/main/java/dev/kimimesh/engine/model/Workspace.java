package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Tensor;
import java.util.ArrayList;
import java.util.List;

/** Temporaries of one forward step, released together (device backends reuse the memory). */
final class Workspace implements AutoCloseable {
    private final Backend backend;
    private final List<Tensor> owned = new ArrayList<>();

    Workspace(Backend backend) {
        this.backend = backend;
    }

    Tensor tensor(int rows, int cols) {
        // every temporary of a step is an output written in full before it is read
        Tensor t = backend.scratch(rows, cols);
        owned.add(t);
        return t;
    }

    @Override
    public void close() {
        for (Tensor t : owned) backend.release(t);
        owned.clear();
    }
}
