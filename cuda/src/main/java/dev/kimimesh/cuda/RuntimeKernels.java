package dev.kimimesh.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Kernels compiled at run time by NVRTC from the CUDA sources the jar carries ({@code kernels/NAME.cu} and the
 * {@code .cuh} headers they include), for jars built where nvcc was absent, or on request
 * ({@code -Dkimimesh.cuda.kernelSource=nvrtc}). The options are those of {@code build-kernels.sh} (C++17, sm_90 or,
 * for {@code *_sm90a} sources, sm_90a), so the code is the nvcc build's. Cubins are cached on disk by a hash of the
 * sources, options and NVRTC version ({@code -Dkimimesh.cuda.kernelCache}, default
 * {@code ~/.cache/kimi-mesh/kernels}), each entry followed by its SHA-256 so a damaged one is compiled again: only the
 * first start on a machine pays for compiling.
 */
final class RuntimeKernels {
    private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s*\"([^\"]+)\"", Pattern.MULTILINE);

    /**
     * Fixed-width integers for NVRTC, which has no C library headers of its own: the sources' {@code <cstdint>} and
     * {@code <stdint.h>} resolve to these (the LP64 widths nvcc's host headers give).
     */
    static final String STDINT = """
            #pragma once
            typedef signed char int8_t; typedef unsigned char uint8_t;
            typedef short int16_t; typedef unsigned short uint16_t;
            typedef int int32_t; typedef unsigned int uint32_t;
            typedef long long int64_t; typedef unsigned long long uint64_t;
            typedef unsigned long long uintptr_t; typedef long long intptr_t;
            """;

    /**
     * Included before every source: what nvcc's host headers give each translation unit and NVRTC does not (math.h's
     * INFINITY: the same constant).
     */
    static final String PRELUDE_NAME = "kimimesh_nvrtc_prelude.h";
    static final String PRELUDE = """
            #pragma once
            #define INFINITY __int_as_float(0x7f800000)
            """;

    private RuntimeKernels() {}

    /** A source file and every project header it includes, transitively, by include name. */
    record Sources(String name, String source, Map<String, String> headers) {}

    /** Whether the jar carries {@code kernels/NAME.cu}. */
    static boolean hasSource(String module) {
        return RuntimeKernels.class.getClassLoader().getResource("kernels/" + module + ".cu") != null;
    }

    static Sources sources(String module) {
        String source = text("kernels/" + module + ".cu");
        if (source == null) throw new CudaException("kernels/" + module + ".cu is not on the class path");
        Map<String, String> headers = new LinkedHashMap<>();
        collect(source, headers);
        headers.put(PRELUDE_NAME, PRELUDE);
        headers.put("cstdint", STDINT);
        headers.put("stdint.h", STDINT);
        return new Sources(module + ".cu", source, headers);
    }

    private static void collect(String text, Map<String, String> headers) {
        Matcher m = INCLUDE.matcher(text);
        while (m.find()) {
            String include = m.group(1);
            if (headers.containsKey(include)) continue;
            String h = text("kernels/" + include);
            if (h == null) throw new CudaException("kernels/" + include + " (included by a kernel source) is not on the class path");
            headers.put(include, h);
            collect(h, headers);
        }
    }

    /** The GPU architecture a module is compiled for: sm_90a sources need compute capability 9.0 exactly. */
    static String arch(String module, int major, int minor) {
        if (module.endsWith("_sm90a")) {
            if (major != 9 || minor != 0) throw new CudaException(module + " needs a Hopper GPU (sm_90a); this one is sm_" + major + minor);
            return "sm_90a";
        }
        return "sm_" + major + minor;
    }

    static List<String> options(String arch) {
        List<String> o = new ArrayList<>();
        o.add("--gpu-architecture=" + arch);
        o.add("-std=c++17");
        // unannotated functions are the sources' constexpr helpers (shared-memory sizes): nvcc allows them in
        // constant expressions, NVRTC (which has no host side) wants them device functions
        o.add("-default-device");
        o.add("--pre-include=" + PRELUDE_NAME);
        Path inc = toolkitInclude();
        if (inc != null) o.add("--include-path=" + inc);
        return o;
    }

    /**
     * The folder holding cuda_bf16.h, which NVRTC does not carry: {@code -Dkimimesh.cuda.include}, else the include
     * folder of CUDA_HOME / CUDA_PATH / CUDA_ROOT, of a library folder's toolkit, or of the standard install prefix.
     */
    static Path toolkitInclude() {
        List<Path> candidates = new ArrayList<>();
        String prop = System.getProperty("kimimesh.cuda.include");
        if (prop != null && !prop.isBlank()) candidates.add(Path.of(prop));
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"}) {
            String v = System.getenv(env);
            if (v != null && !v.isBlank()) {
                candidates.add(Path.of(v, "include"));
                candidates.add(Path.of(v, "targets", "x86_64-linux", "include"));
            }
        }
        for (Path dir : NativeLibrary.searchDirs()) if (dir.getParent() != null) candidates.add(dir.getParent().resolve("include"));
        candidates.add(Path.of("/usr/local/cuda/include"));
        for (Path c : candidates) if (Files.isRegularFile(c.resolve("cuda_bf16.h"))) return c;
        return null;
    }

    /** The cubin of {@code module} for {@code arch}: from the cache, else compiled now (and cached). */
    static byte[] cubin(String module, String arch) {
        Sources s = sources(module);
        List<String> options = options(arch);
        Path cache = cacheDir();
        Path file = cache == null ? null : cache.resolve(module + "-" + arch + "-" + key(s, options) + ".cubin");
        if (file != null && Files.isRegularFile(file)) {
            byte[] cached = readChecked(file);
            if (cached != null) return cached;
            // unreadable, truncated or altered (a disk that filled up, a copy cut short): compile again and replace it
        }
        long t0 = System.nanoTime();
        Nvrtc.Output out;
        try {
            out = Nvrtc.compile(s.name(), s.source(), s.headers(), options);
        } catch (CudaException e) {
            if (toolkitInclude() != null || !e.getMessage().contains("cuda_bf16.h")) throw e;
            throw new CudaException("NVRTC needs the CUDA headers (cuda_bf16.h) to compile kernels/" + module
                    + ".cu: set CUDA_HOME to a CUDA toolkit or -Dkimimesh.cuda.include to the folder holding cuda_bf16.h", e);
        }
        System.err.printf("[cuda] compiled kernels/%s.cu for %s with NVRTC %s in %.1f s%s%n", module, arch, Nvrtc.version(),
                (System.nanoTime() - t0) / 1e9, file == null ? "" : " (cached in " + cache + ")");
        if (file != null) store(file, out.cubin());
        return out.cubin();
    }

    static String key(Sources s, List<String> options) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            d.update(Nvrtc.version().getBytes(StandardCharsets.UTF_8));
            for (String o : options) d.update(("\0" + o).getBytes(StandardCharsets.UTF_8));
            d.update(("\0" + s.source()).getBytes(StandardCharsets.UTF_8));
            for (Map.Entry<String, String> h : s.headers().entrySet()) {
                d.update(("\0" + h.getKey() + "\0" + h.getValue()).getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(d.digest(), 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The cache folder, or null where caching is off ({@code -Dkimimesh.cuda.kernelCache=none}). */
    static Path cacheDir() {
        String p = System.getProperty("kimimesh.cuda.kernelCache");
        if ("none".equals(p)) return null;
        return p != null ? Path.of(p) : Path.of(System.getProperty("user.home"), ".cache", "kimi-mesh", "kernels");
    }

    /** A cache entry's cubin if its SHA-256 trailer matches it, else null. */
    static byte[] readChecked(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            if (all.length <= DIGEST) return null;
            byte[] cubin = java.util.Arrays.copyOf(all, all.length - DIGEST);
            byte[] trailer = java.util.Arrays.copyOfRange(all, all.length - DIGEST, all.length);
            return MessageDigest.isEqual(sha256(cubin), trailer) ? cubin : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static final int DIGEST = 32;

    private static byte[] sha256(byte[] b) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(b);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Writes the cubin and its SHA-256 (so a damaged entry is recompiled, not loaded) through a temporary file and a
     * rename, so a concurrent start never reads half a cubin.
     */
    private static void store(Path file, byte[] cubin) {
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
            byte[] entry = java.util.Arrays.copyOf(cubin, cubin.length + DIGEST);
            System.arraycopy(sha256(cubin), 0, entry, cubin.length, DIGEST);
            Files.write(tmp, entry);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | UncheckedIOException e) {
            System.err.println("[cuda] kernel cache not written (" + e.getMessage() + "): the next start compiles again");
        }
    }

    private static String text(String path) {
        try (InputStream in = RuntimeKernels.class.getClassLoader().getResourceAsStream(path)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new CudaException("cannot read " + path + ": " + e.getMessage(), e);
        }
    }
}
