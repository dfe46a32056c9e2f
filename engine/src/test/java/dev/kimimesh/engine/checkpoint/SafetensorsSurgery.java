package dev.kimimesh.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Test-side reader and writer of safetensors files, independent of the engine's parser: splits a file into its JSON
 * header and data bytes, and writes them back (after a test has corrupted one).
 */
final class SafetensorsSurgery {
    static final ObjectMapper JSON = new ObjectMapper();

    ObjectNode header;
    byte[] data;

    static SafetensorsSurgery read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        SafetensorsSurgery s = new SafetensorsSurgery();
        s.header = (ObjectNode) JSON.readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        s.data = Arrays.copyOfRange(all, 8 + (int) n, all.length);
        return s;
    }

    void write(Path file) throws IOException {
        writeRaw(file, JSON.writeValueAsBytes(header), data);
    }

    static void writeRaw(Path file, byte[] header, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).put(data);
        Files.deleteIfExists(file);
        Files.write(file, b.array());
    }

    ObjectNode tensor(String name) {
        return (ObjectNode) header.get(name);
    }

    /** Appends bytes to the data section and returns their [begin, end]. */
    long[] append(byte[] bytes) {
        long begin = data.length;
        data = Arrays.copyOf(data, data.length + bytes.length);
        System.arraycopy(bytes, 0, data, (int) begin, bytes.length);
        return new long[] {begin, data.length};
    }
}
