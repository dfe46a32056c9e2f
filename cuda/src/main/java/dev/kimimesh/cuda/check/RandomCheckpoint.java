package dev.kimimesh.cuda.check;

import dev.kimimesh.engine.checkpoint.CheckpointLayout;
import dev.kimimesh.engine.checkpoint.DType;
import dev.kimimesh.engine.config.KimiLinearConfig;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a checkpoint of random weights for a config (for timing only): one model.safetensors with every tensor the
 * layout expects, bf16 values of magnitude 2^-8..2^-4 with random signs, norm weights 1, small gate parameters.
 */
final class RandomCheckpoint {
    private RandomCheckpoint() {}

    /** Marks a checkpoint whose routed-expert tensors are holes, to be filled on the device after loading. */
    static final String EXPERTS_ON_DEVICE = "EXPERTS_ON_DEVICE";

    /** Whether a tensor is a routed expert's weight (the bulk of an MoE checkpoint). */
    static boolean routedExpert(String name) {
        return name.contains(".experts.");
    }

    static Path write(Path config, Path dir) throws IOException {
        return write(config, dir, false);
    }

    /**
     * As {@link #write(Path, Path)}; with {@code expertsOnDevice} the routed experts' bytes are left as holes of a sparse
     * file (written in seconds, no disk used: the 27-layer model is 98 GB) and the file {@link #EXPERTS_ON_DEVICE}
     * tells the bench to fill them on the device after loading.
     */
    static Path write(Path config, Path dir, boolean expertsOnDevice) throws IOException {
        Files.createDirectories(dir);
        Files.copy(config, dir.resolve("config.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        KimiLinearConfig c = KimiLinearConfig.load(dir.resolve("config.json"));
        Map<String, long[]> expected = CheckpointLayout.expected(c);
        StringBuilder h = new StringBuilder("{");
        List<Object[]> entries = new ArrayList<>();
        long off = 0;
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            DType dt = CheckpointLayout.storedDType(e.getKey());
            long n = 1;
            for (long d : e.getValue()) n *= d;
            long bytes = n * dt.bytes();
            if (h.length() > 1) h.append(',');
            h.append('"').append(e.getKey()).append("\":{\"dtype\":\"").append(dt.safetensorsName()).append("\",\"shape\":")
                    .append(java.util.Arrays.toString(e.getValue()).replace(" ", "")).append(",\"data_offsets\":[")
                    .append(off).append(',').append(off + bytes).append("]}");
            entries.add(new Object[] {e.getKey(), dt, off, n});
            off += bytes;
        }
        h.append('}');
        while ((h.length() + 8) % 8 != 0) h.append(' ');
        byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
        long base = 8 + header.length;
        Path file = dir.resolve("model.safetensors");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ, StandardOpenOption.WRITE); Arena arena = Arena.ofShared()) {
            MemorySegment all = ch.map(FileChannel.MapMode.READ_WRITE, 0, base + off, arena);
            all.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, header.length);
            MemorySegment.copy(header, 0, all, ValueLayout.JAVA_BYTE, 8, header.length);
            entries.parallelStream().filter(en -> !expertsOnDevice || !routedExpert((String) en[0]))
                    .forEach(en -> fill(all, base + (long) en[2], (String) en[0], (DType) en[1], (long) en[3]));
            all.force();
        }
        if (expertsOnDevice) Files.writeString(dir.resolve(EXPERTS_ON_DEVICE), "routed experts are holes: fill on the device\n");
        return dir;
    }

    private static void fill(MemorySegment all, long at, String name, DType dt, long n) {
        SplittableRandom r = new SplittableRandom(name.hashCode());
        var sh = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        var fl = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        boolean norm = name.endsWith("norm.weight");
        if (dt == DType.F32) {
            for (long i = 0; i < n; i++) all.set(fl, at + 4 * i, (float) (name.endsWith("A_log") ? r.nextDouble(-1, 1) : r.nextDouble(-0.5, 0.5)));
            return;
        }
        for (long i = 0; i < n; i += 4) {
            long bits = r.nextLong();
            for (int j = 0; j < 4 && i + j < n; j++) {
                int b = (int) (bits >>> (16 * j)) & 0xFFFF;
                // sign | exponent 0x77..0x7A (2^-8..2^-5) | 7 random mantissa bits
                short v = norm ? (short) 0x3F80 : (short) ((b & 0x8000) | ((0x77 + ((b >>> 7) & 3)) << 7) | (b & 0x7F));
                all.set(sh, at + 2 * (i + j), v);
            }
        }
    }
}
