package dev.kimimesh.cuda;

/** One block of device memory from the pool (or a slice of a recorded step's argument region), released at most once. */
final class DeviceBuffer {
    final long ptr;
    final long bytes;
    /** A slice of a {@link StepArena}'s region, which lives as long as its recording: releasing it returns nothing. */
    final boolean region;
    private boolean released;
    /** The bf16 copy of a region of this block that its producer wrote beside the fp32 values, or null ({@link Bf16Copies}). */
    Bf16Copies.Copy bf16;

    DeviceBuffer(long ptr, long bytes) {
        this(ptr, bytes, false);
    }

    DeviceBuffer(long ptr, long bytes, boolean region) {
        this.ptr = ptr;
        this.bytes = bytes;
        this.region = region;
    }

    boolean released() {
        return released;
    }

    /** Marks the block released; false if it already was. */
    boolean markReleased() {
        if (released) return false;
        released = true;
        return true;
    }
}
