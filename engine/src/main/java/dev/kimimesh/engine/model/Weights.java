package dev.kimimesh.engine.model;

import dev.kimimesh.engine.backend.Backend;
import dev.kimimesh.engine.backend.Weight;
import dev.kimimesh.engine.checkpoint.Checkpoint;

/** Looks up checkpoint tensors by name under a prefix and hands them to the backend. */
record Weights(Checkpoint checkpoint, Backend backend, String prefix) {
    Weight get(String name) {
        return backend.weight(checkpoint.tensor(prefix + name));
    }

    Weights under(String sub) {
        return new Weights(checkpoint, backend, prefix + sub);
    }
}
