package dev.kimimesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Which tensors a bf16 copy serves, and where their values start in it (host arithmetic only: runs without a GPU). */
class Bf16CopiesTest {
    private static final long BLOCK = 1L << 20, COPY = 1L << 30;

    /** A [rows, cols] tensor at `offset` floats into a block whose copy covers [copyOffset, + copyRows x cols). */
    private static DeviceBuffer block(long copyOffset, int copyRows, int cols) {
        DeviceBuffer b = new DeviceBuffer(BLOCK, 1L << 28);
        b.bf16 = new Bf16Copies.Copy(new DeviceBuffer(COPY, 2L * copyRows * cols), copyOffset, copyRows, cols);
        return b;
    }

    @Test
    void theWholeTensorReadsTheCopyFromItsStart() {
        DeviceBuffer b = block(0, 100, 2304);
        assertEquals(COPY, Bf16Copies.of(new CudaTensor(b, 0, 100, 2304, false)));
    }

    @Test
    void aRowRangeReadsItsRows() {
        DeviceBuffer b = block(0, 100, 2304);
        CudaTensor whole = new CudaTensor(b, 0, 100, 2304, false);
        // 2304 bf16 a row: 4608 bytes, a multiple of 256
        assertEquals(COPY + 2L * 64 * 2304, Bf16Copies.of(whole.rowSlice(64, 36)));
        assertEquals(COPY + 2L * 2304, Bf16Copies.of(whole.rowSlice(1, 10)));
    }

    @Test
    void noCopyServesWhatItDoesNotCover() {
        DeviceBuffer b = block(2304, 50, 2304);
        // rows before the copy, past its end, another width, a start inside a row
        assertEquals(0, Bf16Copies.of(new CudaTensor(b, 0, 10, 2304, false)));
        assertEquals(0, Bf16Copies.of(new CudaTensor(b, 2304 + 45L * 2304, 10, 2304, true)));
        assertEquals(0, Bf16Copies.of(new CudaTensor(b, 2304, 10, 1152, true)));
        assertEquals(0, Bf16Copies.of(new CudaTensor(b, 2304 + 4, 10, 2304, true)));
        assertEquals(0, Bf16Copies.of(new CudaTensor(new DeviceBuffer(BLOCK, 1L << 20), 0, 10, 2304, false)));
    }

    @Test
    void aRowRangeOffTheConversionsAlignmentConverts() {
        // 1000 bf16 a row: row 1 starts 2000 bytes in, off the 256-byte alignment of a fresh conversion buffer
        DeviceBuffer b = block(0, 100, 1000);
        CudaTensor whole = new CudaTensor(b, 0, 100, 1000, false);
        assertEquals(0, Bf16Copies.of(whole.rowSlice(1, 10)));
        assertEquals(COPY + 2L * 32 * 1000, Bf16Copies.of(whole.rowSlice(32, 10)));
    }
}
