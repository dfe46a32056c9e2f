package dev.kimimesh.engine.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The local mesh topology: even splits, parsing, and the coverage rules `kimi-mesh up` relies on. */
class MeshTopologyTest {
    @Test
    void evenSplitCoversLayersAndExperts() throws Exception {
        MeshTopology t = MeshTopology.even(8, 3, 16, 3).validate(8, 16);
        assertEquals(3, t.layerRanges().size());
        assertArrayEquals(new int[] {0, 2}, t.layerRanges().get(0));
        assertArrayEquals(new int[] {2, 5}, t.layerRanges().get(1));
        assertArrayEquals(new int[] {5, 8}, t.layerRanges().get(2));
        assertEquals(List.of("0-4", "5-9", "10-15"), t.expertSets());
    }

    @Test
    void rangesMustCoverEveryLayerExactlyOnceInOrder() {
        var gap = assertThrows(UsageException.class, () -> MeshTopology.parse("0-3,4-8", "").validate(8, 16));
        assertTrue(gap.getMessage().contains("layer 3 has no shard"), gap.getMessage());
        var overlap = assertThrows(UsageException.class, () -> MeshTopology.parse("0-5,4-8", "").validate(8, 16));
        assertTrue(overlap.getMessage().contains("layer 5 is already served") || overlap.getMessage().contains("starts at layer 4"), overlap.getMessage());
        var shortfall = assertThrows(UsageException.class, () -> MeshTopology.parse("0-4", "").validate(8, 16));
        assertTrue(shortfall.getMessage().contains("8 layers"), shortfall.getMessage());
        var bad = assertThrows(UsageException.class, () -> MeshTopology.parse("0-4,x", ""));
        assertTrue(bad.getMessage().contains("'x'"), bad.getMessage());
    }

    @Test
    void expertSetsMustCoverEveryExpert() throws Exception {
        MeshTopology.parse("0-8", "even;odd").validate(8, 16);
        MeshTopology.parse("0-8", "0-9;8-15").validate(8, 16); // overlap (replicas) is allowed
        var missing = assertThrows(UsageException.class, () -> MeshTopology.parse("0-8", "0-7;9-15").validate(8, 16));
        assertTrue(missing.getMessage().contains("{8}"), missing.getMessage());
        var outside = assertThrows(UsageException.class, () -> MeshTopology.parse("0-8", "0-16").validate(8, 16));
        assertTrue(outside.getMessage().contains("outside the experts 0..15"), outside.getMessage());
        assertThrows(UsageException.class, () -> MeshTopology.even(8, 9, 16, 2));
        assertThrows(UsageException.class, () -> MeshTopology.even(8, 2, 16, 17));
    }
}
