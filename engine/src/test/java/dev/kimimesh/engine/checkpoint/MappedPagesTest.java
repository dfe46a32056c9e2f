package dev.kimimesh.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The libc calls behind the 2 MiB pages of the weights: they reach the kernel and leave the bytes as they were. */
class MappedPagesTest {
    @TempDir
    Path tmp;

    @Test
    void adviceDropAndTouchKeepTheFilesBytes() throws Exception {
        assumeTrue(System.getProperty("os.name").toLowerCase().startsWith("linux"), "madvise/posix_fadvise are Linux calls");
        // a kernel built without transparent huge pages refuses MADV_HUGEPAGE (EINVAL): nothing to test there
        assumeTrue(Files.isDirectory(Path.of("/sys/kernel/mm/transparent_hugepage")), "kernel without transparent huge pages");
        Path f = tmp.resolve("w.bin");
        byte[] bytes = new byte[(4 << 20) + 123];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 31 + 7);
        Files.write(f, bytes);
        try (Arena arena = Arena.ofShared(); FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            assertTrue(MappedPages.dropCached(f), "posix_fadvise(DONTNEED) accepted");
            MemorySegment map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            assertTrue(MappedPages.adviseHugePages(map), "madvise(MADV_HUGEPAGE) accepted");
            assertFalse(MappedPages.adviseHugePages(map.asSlice(1, 4096)), "an unaligned start is refused before the kernel sees it");
            int expected = 0;
            for (int o = 0; o < bytes.length; o += 4096) expected += bytes[o];
            assertEquals(expected, MappedPages.touch(map));
            assertTrue(MappedPages.pmdMappedBytes() >= 0, "FilePmdMapped readable from /proc/self/smaps_rollup");
        }
        assertFalse(MappedPages.dropCached(tmp.resolve("missing.bin")));
    }
}
