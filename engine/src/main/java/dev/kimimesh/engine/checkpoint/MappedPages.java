package dev.kimimesh.engine.checkpoint;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How the kernel backs the memory-mapped weights, through libc (Linux only; elsewhere every call is a no-op).
 *
 * <p>A decode step streams 1.5 GB of weights scattered over the checkpoint (the routed experts change every token).
 * With 4 KiB pages every 4 KiB is a TLB miss whose page-table walk (two-dimensional under a hypervisor) comes from
 * DRAM, since the streamed weights evict the page tables from the caches; with 2 MiB pages there are 512 times
 * fewer. On the 2-core EPYC VM of docs/benchmarks.md, random 14 MB expert-sized reads went from 12 to 22 GB/s.
 * The page cache holds a file in 2 MiB folios (mapped by one PMD entry) only if they were read in that way, which
 * the kernel does for faults inside a mapping advised {@code MADV_HUGEPAGE} (with transparent huge pages "madvise"
 * or "always"). {@code MADV_WILLNEED} ({@code MemorySegment.load()}) reads 4 KiB folios instead, so pages are
 * brought in by touching them.
 */
public final class MappedPages {
    private static final boolean LINUX = System.getProperty("os.name", "").toLowerCase().startsWith("linux");
    /** {@code -Dkimimesh.hugepages=false} keeps the mappings as the JVM makes them (4 KiB pages unless THP is "always"). */
    private static final boolean HUGE = !"false".equalsIgnoreCase(System.getProperty("kimimesh.hugepages", "true"));
    private static final int MADV_HUGEPAGE = 14, POSIX_FADV_DONTNEED = 4, O_RDONLY = 0;
    private static final long PAGE = 4096;
    private static final MethodHandle MADVISE, OPEN, FADVISE, CLOSE;

    static {
        MethodHandle madvise = null, open = null, fadvise = null, close = null;
        // without --enable-native-access the JVM would warn on first use: then the mappings simply stay as they are
        if (LINUX && MappedPages.class.getModule().isNativeAccessEnabled()) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                open = linker.downcallHandle(libc.find("open").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
                        Linker.Option.firstVariadicArg(2));
                fadvise = linker.downcallHandle(libc.find("posix_fadvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                close = linker.downcallHandle(libc.find("close").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            } catch (RuntimeException | LinkageError e) {
                // no native access (or an unusual libc): the mapping stays as the JVM made it
                madvise = open = fadvise = close = null;
            }
        }
        MADVISE = madvise;
        OPEN = open;
        FADVISE = fadvise;
        CLOSE = close;
    }

    private MappedPages() {}

    /**
     * Asks for 2 MiB pages over a whole mapping (page-aligned start); true if the kernel accepted the advice, false
     * where it was not given (not Linux, no native access, {@code kimimesh.hugepages=false}).
     */
    public static boolean adviseHugePages(MemorySegment mapping) {
        if (!HUGE || MADVISE == null || mapping.address() % PAGE != 0 || mapping.byteSize() == 0) return false;
        try {
            return (int) MADVISE.invokeExact(mapping, mapping.byteSize(), MADV_HUGEPAGE) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /**
     * Drops the file's pages from the page cache where no process maps them (clean pages only: nothing is lost), so
     * that the next faults read it again, in 2 MiB folios under {@link #adviseHugePages}. True if the kernel accepted.
     */
    public static boolean dropCached(Path file) {
        if (FADVISE == null || !Files.isRegularFile(file)) return false;
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) OPEN.invokeExact(arena.allocateFrom(file.toAbsolutePath().toString()), O_RDONLY);
            if (fd < 0) return false;
            int rc = (int) FADVISE.invokeExact(fd, 0L, 0L, POSIX_FADV_DONTNEED);
            int ignored = (int) CLOSE.invokeExact(fd);
            return rc == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /** Faults every page of {@code seg} in by reading one byte of each 4 KiB; returns a value that keeps the reads alive. */
    public static int touch(MemorySegment seg) {
        int acc = 0;
        for (long o = 0; o < seg.byteSize(); o += PAGE) acc += seg.get(ValueLayout.JAVA_BYTE, o);
        return acc;
    }

    /** Bytes of file-backed memory this process maps with 2 MiB page-table entries ({@code FilePmdMapped}), or -1. */
    public static long pmdMappedBytes() {
        if (!LINUX) return -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps_rollup"))) {
                if (line.startsWith("FilePmdMapped:")) return 1024 * Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        } catch (Exception e) {
            // no smaps_rollup (old kernel, restricted /proc): unknown
        }
        return -1;
    }
}
