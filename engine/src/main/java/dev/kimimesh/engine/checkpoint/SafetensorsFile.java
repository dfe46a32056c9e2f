package dev.kimimesh.engine.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file mapped into memory: 8-byte little-endian header length, a JSON header, then the tensor bytes.
 * Every header entry is validated against the file before it is used; tensors are slices of the mapping.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Headers beyond this are refused (the format's reference implementation uses 100 MB). */
    static final long MAX_HEADER_BYTES = 100L << 20;

    // A header with a key twice or bytes after the JSON object is corrupt, not something to guess about.
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path path;
    private final Arena arena;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment map;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            }
            // before anything is read: pages faulted in from now on come in 2 MiB folios (see MappedPages)
            MappedPages.adviseHugePages(map);
            SafetensorsFile f = parse(path, arena, map);
            return f;
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(path + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment map) {
        String file = path.getFileName().toString();
        long size = map.byteSize();
        if (size < 8) throw new CheckpointException(file + ": truncated: " + size + " bytes, no header length");
        long headerLen = map.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
            throw new CheckpointException(file + ": header length " + headerLen + " is not plausible (file corrupt or not safetensors)");
        }
        if (8 + headerLen > size) {
            throw new CheckpointException(file + ": truncated: header of " + headerLen + " bytes but the file has only "
                    + (size - 8) + " after the length");
        }
        byte[] header = map.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode root;
        try {
            root = JSON.readTree(new String(header, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new CheckpointException(file + ": header is not valid JSON: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new CheckpointException(file + ": header is not a JSON object");
        long dataStart = 8 + headerLen;
        long dataLen = size - dataStart;
        MemorySegment data = map.asSlice(dataStart, dataLen);

        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Span> spans = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw new CheckpointException(file + ": __metadata__ is not an object");
                v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = "tensor '" + name + "' in " + file;
            if (!v.isObject()) throw new CheckpointException(where + ": header entry is not an object");
            JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
            if (dt == null || !dt.isTextual()) throw new CheckpointException(where + ": missing dtype");
            DType dtype;
            try {
                dtype = DType.fromSafetensors(dt.asText());
            } catch (IllegalArgumentException ex) {
                throw new CheckpointException(where + ": " + ex.getMessage());
            }
            if (sh == null || !sh.isArray()) throw new CheckpointException(where + ": missing shape");
            long[] shape = new long[sh.size()];
            long numel = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = sh.get(i);
                if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                    throw new CheckpointException(where + ": bad shape " + sh + " (dimensions must be integers >= 0)");
                }
                shape[i] = d.asLong();
                try {
                    numel = Math.multiplyExact(numel, shape[i]);
                } catch (ArithmeticException ex) {
                    throw new CheckpointException(where + ": shape " + sh + " has more elements than a file can hold");
                }
            }
            if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                    || !off.get(1).isIntegralNumber() || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()) {
                throw new CheckpointException(where + ": data_offsets must be [begin, end], got " + off);
            }
            long begin = off.get(0).asLong(), end = off.get(1).asLong();
            if (begin < 0 || end < begin) throw new CheckpointException(where + ": bad data_offsets " + off);
            if (end > dataLen) {
                throw new CheckpointException(where + ": data_offsets " + off + " run past the end of the file ("
                        + dataLen + " data bytes; file truncated?)");
            }
            long expect;
            try {
                expect = Math.multiplyExact(numel, dtype.bytes());
            } catch (ArithmeticException ex) {
                throw new CheckpointException(where + ": shape " + sh + " has more bytes than a file can hold");
            }
            if (end - begin != expect) {
                throw new CheckpointException(where + ": " + dtype + " shape " + sh + " needs " + expect
                        + " bytes but data_offsets span " + (end - begin));
            }
            tensors.put(name, new TensorInfo(name, dtype, shape, data.asSlice(begin, end - begin), path));
            spans.add(new Span(name, begin, end));
        }
        checkNoOverlap(file, spans);
        return new SafetensorsFile(path, arena, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    private record Span(String name, long begin, long end) {}

    /** Two tensors sharing bytes means a corrupt header (writing one would change the other). */
    private static void checkNoOverlap(String file, List<Span> spans) {
        List<Span> sorted = new ArrayList<>();
        for (Span sp : spans) if (sp.end() > sp.begin()) sorted.add(sp);
        sorted.sort(Comparator.comparingLong(Span::begin));
        for (int i = 1; i < sorted.size(); i++) {
            Span prev = sorted.get(i - 1), t = sorted.get(i);
            if (t.begin() < prev.end()) {
                throw new CheckpointException(file + ": data of tensor '" + t.name() + "' (data_offsets from " + t.begin()
                        + ") overlaps tensor '" + prev.name() + "' (up to " + prev.end() + ")");
            }
        }
    }

    public Path path() {
        return path;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo tensor(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new CheckpointException(path.getFileName() + ": no tensor '" + name + "'");
        return t;
    }

    @Override
    public void close() {
        arena.close();
    }
}
