package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** Driver.tensorMap2dBf16Swizzle128 refuses what the copy engine cannot take before it calls the driver (no GPU needed). */
class TensorMapArgsTest {
    @Test
    void refusesMisalignedOrOversizedMaps() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment map = a.allocate(Driver.TENSOR_MAP_BYTES, Driver.TENSOR_MAP_ALIGN);
            MemorySegment small = a.allocate(64, 64);
            MemorySegment skewed = a.allocate(Driver.TENSOR_MAP_BYTES + 64, 64).asSlice(8, Driver.TENSOR_MAP_BYTES);
            // the map itself: 128 bytes, 64-byte aligned
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(small, 4096, 10, 64, 128, 64, 64));
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(skewed, 4096, 10, 64, 128, 64, 64));
            // a global address or row pitch off 16 bytes, a row wider than its pitch, a box past 64 x 256
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(map, 4104, 10, 64, 128, 64, 64));
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(map, 4096, 10, 64, 136, 64, 64));
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(map, 4096, 10, 128, 128, 64, 64));
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(map, 4096, 10, 128, 256, 128, 64));
            assertThrows(IllegalArgumentException.class, () -> Driver.tensorMap2dBf16Swizzle128(map, 4096, 10, 64, 128, 64, 512));
        }
    }
}
