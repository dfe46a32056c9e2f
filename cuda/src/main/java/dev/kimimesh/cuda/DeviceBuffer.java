package dev.kimimesh.cuda;

/** One block of device memory from the pool, released at most once. */
final class DeviceBuffer {
    final long ptr;
    final long bytes;
    private boolean released;

    DeviceBuffer(long ptr, long bytes) {
        this.ptr = ptr;
        this.bytes = bytes;
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
