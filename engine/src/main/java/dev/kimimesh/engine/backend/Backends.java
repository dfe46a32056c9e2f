package dev.kimimesh.engine.backend;

import dev.kimimesh.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Chooses a backend by name: "cpu", "cuda", or "auto" (the best available, CPU as the fallback). */
public final class Backends {
    private Backends() {}

    public static List<BackendProvider> providers() {
        List<BackendProvider> out = new ArrayList<>();
        out.add(new BackendProvider() {
            @Override
            public String name() {
                return "cpu";
            }

            @Override
            public int priority() {
                return 0;
            }

            @Override
            public boolean available() {
                return true;
            }

            @Override
            public Backend create() {
                return new CpuBackend();
            }
        });
        ServiceLoader.load(BackendProvider.class).forEach(out::add);
        out.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        return out;
    }

    /** The backend named (or the best available for "auto"); a clear error when the named one cannot run here. */
    public static Backend create(String name) {
        String n = name == null ? "auto" : name.trim().toLowerCase(java.util.Locale.ROOT);
        List<BackendProvider> all = providers();
        if (n.equals("auto")) {
            for (BackendProvider p : all) if (p.available()) return p.create();
        }
        for (BackendProvider p : all) {
            if (p.name().equals(n)) {
                if (!p.available()) throw new IllegalStateException("backend '" + n + "' cannot run here: " + p.unavailableReason());
                return p.create();
            }
        }
        throw new IllegalArgumentException("unknown backend '" + name + "' (known: "
                + all.stream().map(BackendProvider::name).toList() + ", auto)");
    }
}
