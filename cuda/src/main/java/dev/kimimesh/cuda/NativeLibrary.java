package dev.kimimesh.cuda;

import java.io.File;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds a shared library by its standard name: first as the dynamic loader would (LD_LIBRARY_PATH, ldconfig), then in
 * the lib folders of CUDA_HOME / CUDA_PATH, the folders of LD_LIBRARY_PATH and the system property
 * {@code kimimesh.cuda.libdir}.
 */
final class NativeLibrary {
    private NativeLibrary() {}

    /** A library that may be absent (libcuda on a machine without a GPU, libnvrtc without a toolkit): its lookup, or why not. */
    record Probe(SymbolLookup lookup, String error) {
        boolean loaded() {
            return lookup != null;
        }
    }

    /** {@link #load}, never throwing: for libraries whose absence callers report rather than fail on. */
    static Probe tryLoad(String... names) {
        try {
            return new Probe(load(names), null);
        } catch (Throwable t) {
            return new Probe(null, t.getMessage());
        }
    }

    /** The first of {@code names} that loads; a CudaException listing where it looked otherwise. */
    static SymbolLookup load(String... names) {
        List<String> tried = new ArrayList<>();
        for (String name : names) {
            try {
                return SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException e) {
                tried.add(name);
            }
            for (Path dir : searchDirs()) {
                Path p = dir.resolve(name);
                if (Files.isRegularFile(p) || Files.isSymbolicLink(p)) {
                    try {
                        return SymbolLookup.libraryLookup(p, Arena.global());
                    } catch (IllegalArgumentException e) {
                        tried.add(p + " (" + e.getMessage() + ")");
                    }
                }
            }
        }
        throw new CudaException("cannot load " + String.join(" or ", names) + " (looked in the loader path and "
                + searchDirs() + "; set CUDA_HOME or LD_LIBRARY_PATH)");
    }

    static List<Path> searchDirs() {
        Set<Path> dirs = new LinkedHashSet<>();
        String prop = System.getProperty("kimimesh.cuda.libdir");
        if (prop != null) for (String d : prop.split(File.pathSeparator)) if (!d.isBlank()) dirs.add(Path.of(d));
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"}) {
            String v = System.getenv(env);
            if (v != null && !v.isBlank()) {
                dirs.add(Path.of(v, "lib64"));
                dirs.add(Path.of(v, "lib"));
                dirs.add(Path.of(v, "targets", "x86_64-linux", "lib"));
            }
        }
        String ld = System.getenv("LD_LIBRARY_PATH");
        if (ld != null) for (String d : ld.split(File.pathSeparator)) if (!d.isBlank()) dirs.add(Path.of(d));
        return new ArrayList<>(dirs);
    }
}
