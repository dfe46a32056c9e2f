package dev.kimimesh.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes one safetensors file whose tensor list is known up front: the header goes first (padded with spaces so the
 * data starts 8-byte aligned, as the format recommends), then tensor bytes are written in place at their offsets, from
 * any thread and in any order, so a large file is streamed without ever being held in memory.
 */
public final class SafetensorsWriter implements AutoCloseable {
    /** A tensor to be written: its name, element type and shape. */
    public record Entry(String name, DType dtype, long[] shape) {
        public long numel() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return n;
        }

        public long bytes() {
            return Math.multiplyExact(numel(), dtype.bytes());
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final FileChannel channel;
    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final Map<String, Long> begin = new LinkedHashMap<>();
    private final Map<String, AtomicLong> written = new LinkedHashMap<>();
    private final long dataStart;

    private SafetensorsWriter(Path path, FileChannel channel, List<Entry> list, Map<String, String> metadata) throws IOException {
        this.path = path;
        this.channel = channel;
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long off = 0;
        for (Entry e : list) {
            if (entries.put(e.name(), e) != null) throw new IllegalArgumentException(path.getFileName() + ": tensor '" + e.name() + "' twice");
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", e.dtype().safetensorsName());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.shape()) shape.add(d);
            ArrayNode offsets = t.putArray("data_offsets");
            offsets.add(off);
            offsets.add(off + e.bytes());
            begin.put(e.name(), off);
            written.put(e.name(), new AtomicLong());
            off += e.bytes();
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int pad = (int) ((8 - (8 + json.length) % 8) % 8);
        byte[] padded = Arrays.copyOf(json, json.length + pad);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        ByteBuffer head = ByteBuffer.allocate(8 + padded.length).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded.length).put(padded).flip();
        while (head.hasRemaining()) channel.write(head, head.position());
        this.dataStart = 8 + padded.length;
        // sizing the file now keeps positional writes from different threads independent of each other
        if (off > 0) channel.write(ByteBuffer.wrap(new byte[1]), dataStart + off - 1);
    }

    /** Creates (or truncates) {@code file} and writes its header for the given tensors, in this order. */
    public static SafetensorsWriter create(Path file, List<Entry> tensors, Map<String, String> metadata) {
        FileChannel ch = null;
        try {
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new SafetensorsWriter(file, ch, tensors, metadata);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new CheckpointException(file + ": cannot write: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException(path.getFileName() + ": no tensor '" + name + "' in this file's header");
        return e;
    }

    /** Writes {@code bytes} (little-endian tensor data) at {@code byteOffset} within tensor {@code name}; thread-safe. */
    public void write(String name, long byteOffset, ByteBuffer bytes) {
        Entry e = entry(name);
        int n = bytes.remaining();
        if (byteOffset < 0 || byteOffset + n > e.bytes()) {
            throw new IllegalArgumentException(path.getFileName() + ": bytes [" + byteOffset + ", " + (byteOffset + n)
                    + ") are outside tensor '" + name + "' of " + e.bytes() + " bytes");
        }
        long pos = dataStart + begin.get(name) + byteOffset;
        try {
            while (bytes.hasRemaining()) pos += channel.write(bytes, pos);
        } catch (IOException ex) {
            throw new UncheckedIOException(path.getFileName() + ": write of '" + name + "' failed", ex);
        }
        written.get(name).addAndGet(n);
    }

    /** Writes a whole tensor from floats, rounded to its dtype (bf16 and f16 round to nearest even). */
    public void write(String name, float[] values) {
        Entry e = entry(name);
        if (values.length != e.numel()) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + e.numel() + " elements, got " + values.length);
        }
        ByteBuffer b = ByteBuffer.allocate((int) e.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            switch (e.dtype()) {
                case BF16 -> b.putShort(bf16(v));
                case F16 -> b.putShort(Float.floatToFloat16(v));
                case F32 -> b.putFloat(v);
                default -> throw new IllegalArgumentException("tensor '" + name + "': cannot write floats as " + e.dtype());
            }
        }
        write(name, 0, b.flip());
    }

    /** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
    public static short bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x40);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Closes the file; fails naming the first tensor whose bytes were not all written. */
    @Override
    public void close() {
        try {
            for (Map.Entry<String, AtomicLong> w : written.entrySet()) {
                long need = entries.get(w.getKey()).bytes();
                if (w.getValue().get() != need) {
                    throw new CheckpointException(path.getFileName() + ": tensor '" + w.getKey() + "' got "
                            + w.getValue().get() + " of " + need + " bytes");
                }
            }
        } finally {
            closeQuietly(channel);
        }
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch == null) return;
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing useful to do: the data writes already succeeded or failed loudly
        }
    }

    /** Bytes of data (without header) the given tensors take. */
    public static long dataBytes(List<Entry> tensors) {
        long n = 0;
        for (Entry e : tensors) n += e.bytes();
        return n;
    }
}
