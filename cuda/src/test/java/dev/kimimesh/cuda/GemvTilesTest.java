package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The tiled GEMV choice (no GPU needed): every tiling it can pick is instantiated in gemv.cu, and blocks cover N. */
class GemvTilesTest {

    /** The (R, U, S) triples gemv.cu instantiates through GEMV_TILES, for TB 1, 2, 4 and 8 each. */
    private static Set<String> instantiated() throws IOException {
        String src = Files.readString(Path.of("src/main/cuda/gemv.cu"));
        Matcher m = Pattern.compile("^GEMV_TILES\\((.*)$", Pattern.MULTILINE).matcher(src);
        Set<String> out = new HashSet<>();
        while (m.find()) {
            Matcher t = Pattern.compile("GEMV_TILES\\((\\d+), (\\d+), (\\d+)\\)").matcher(m.group(0));
            while (t.find()) out.add(t.group(1) + "," + t.group(2) + "," + t.group(3));
        }
        return out;
    }

    @Test
    void everyPickIsAKernelOfGemvCu() throws IOException {
        Set<String> have = instantiated();
        assertTrue(have.size() >= 6, "GEMV_TILES lines not found: " + have);
        int[] ns = {1, 5, 32, 128, 512, 513, 1000, 2304, 4096, 32767, 32768, 163840};
        int[] ks = {8, 128, 1016, 1024, 1032, 2304, 4096, 9216};
        for (int t = 1; t <= CudaBackend.GEMV_MAX_ROWS; t++) {
            for (int n : ns) {
                for (int k : ks) {
                    GemvTiles g = GemvTiles.pick(t, n, k);
                    String key = g.rows() + "," + g.loads() + "," + g.split();
                    assertTrue(have.contains(key), "T=" + t + " N=" + n + " K=" + k + " picks " + g.kernel() + ", not in gemv.cu");
                    assertTrue(Set.of(1, 2, 4, 8).contains(g.tokens()), g.kernel());
                    assertTrue(g.tokens() >= Math.min(t, 8), g.kernel() + " takes fewer tokens per pass than T=" + t + " allows");
                    assertTrue((long) g.blocks(n) * g.rowsPerBlock() >= n, g.kernel() + " blocks do not cover N=" + n);
                    assertTrue((long) (g.blocks(n) - 1) * g.rowsPerBlock() < n, g.kernel() + " launches an empty block for N=" + n);
                }
            }
        }
    }

    @Test
    void kernelNamesFollowTheMacro() {
        GemvTiles g = new GemvTiles(2, 2, 1, 8);
        assertEquals("gemv_r2u2t1s8", g.kernel());
        assertEquals("gemv_multi_r2u2t1s8", g.multiKernel());
        assertEquals(2, g.rowsPerBlock());
    }

    @Test
    void refusesEmptyShapes() {
        assertThrows(IllegalArgumentException.class, () -> GemvTiles.pick(0, 10, 64));
        assertThrows(IllegalArgumentException.class, () -> GemvTiles.pick(1, 0, 64));
    }
}
