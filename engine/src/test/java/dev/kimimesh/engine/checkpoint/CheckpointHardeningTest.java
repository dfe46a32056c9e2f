package dev.kimimesh.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corrupted copies of the fixture checkpoint: every defect is refused with a {@link CheckpointException} that names
 * the file and the tensor. Untouched files are linked, not copied; a test replaces the file it corrupts.
 */
class CheckpointHardeningTest {
    static final Path TINY = Path.of(System.getProperty("kimimesh.shared", "../../shared")).resolve("fixtures/tiny");
    static final String SHARD1 = "model-00001-of-00002.safetensors", SHARD2 = "model-00002-of-00002.safetensors";
    static final String INDEX = "model.safetensors.index.json";
    static final String NORM = "model.norm.weight"; // bf16 [256], in shard 2

    @TempDir
    Path dir;

    @BeforeEach
    void linkFixture() throws IOException {
        for (String f : new String[] {"config.json", INDEX, SHARD1, SHARD2}) {
            try {
                Files.createSymbolicLink(dir.resolve(f), TINY.toAbsolutePath().resolve(f));
            } catch (UnsupportedOperationException | IOException e) {
                Files.copy(TINY.resolve(f), dir.resolve(f));
            }
        }
    }

    String refused() {
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir).close());
        return e.getMessage();
    }

    static void assertNames(String message, String... parts) {
        for (String p : parts) assertTrue(message.contains(p), "'" + p + "' not in: " + message);
    }

    SafetensorsSurgery shard2() throws IOException {
        return SafetensorsSurgery.read(TINY.resolve(SHARD2));
    }

    ObjectNode index() throws IOException {
        return (ObjectNode) SafetensorsSurgery.JSON.readTree(TINY.resolve(INDEX).toFile());
    }

    void writeIndex(ObjectNode index) throws IOException {
        Files.delete(dir.resolve(INDEX));
        SafetensorsSurgery.JSON.writeValue(dir.resolve(INDEX).toFile(), index);
    }

    @Test
    void theUntouchedCopyOpens() {
        Checkpoint.open(dir).close();
    }

    /** With tie_word_embeddings the stored lm_head.weight is not read (transformers ties it to the embedding). */
    @Test
    void tiedEmbeddingsIgnoreAStoredLmHead() throws IOException {
        ObjectNode cfg = (ObjectNode) SafetensorsSurgery.JSON.readTree(TINY.resolve("config.json").toFile());
        cfg.put("tie_word_embeddings", true);
        Files.delete(dir.resolve("config.json"));
        SafetensorsSurgery.JSON.writeValue(dir.resolve("config.json").toFile(), cfg);
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertTrue(c.config().tieWordEmbeddings());
        }
    }

    @Test
    void truncatedFile() throws IOException {
        byte[] all = Files.readAllBytes(TINY.resolve(SHARD2));
        Files.delete(dir.resolve(SHARD2));
        Files.write(dir.resolve(SHARD2), Arrays.copyOf(all, all.length / 2));
        assertNames(refused(), SHARD2, "tensor '", "past the end", "truncated");
        Files.delete(dir.resolve(SHARD2));
        Files.write(dir.resolve(SHARD2), Arrays.copyOf(all, 5));
        assertNames(refused(), SHARD2, "truncated");
    }

    @Test
    void headerLengthPastTheEnd() throws IOException {
        byte[] all = Files.readAllBytes(TINY.resolve(SHARD2));
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putLong(0, all.length + 1000L);
        Files.delete(dir.resolve(SHARD2));
        Files.write(dir.resolve(SHARD2), all);
        assertNames(refused(), SHARD2, "header of " + (all.length + 1000L));
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -7);
        Files.delete(dir.resolve(SHARD2));
        Files.write(dir.resolve(SHARD2), all);
        assertNames(refused(), SHARD2, "header length -7");
    }

    @Test
    void headerThatIsNotJson() throws IOException {
        SafetensorsSurgery s = shard2();
        byte[] header = SafetensorsSurgery.JSON.writeValueAsBytes(s.header);
        Arrays.fill(header, 0, 10, (byte) '#');
        SafetensorsSurgery.writeRaw(dir.resolve(SHARD2), header, s.data);
        assertNames(refused(), SHARD2, "not valid JSON");
    }

    @Test
    void offsetsPastTheEnd() throws IOException {
        SafetensorsSurgery s = shard2();
        s.tensor(NORM).putArray("data_offsets").add(s.data.length - 2).add(s.data.length + 510);
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "past the end");
    }

    @Test
    void shapeTimesDtypeDiffersFromTheByteLength() throws IOException {
        SafetensorsSurgery s = shard2();
        s.tensor(NORM).put("dtype", "F32");
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "needs 1024 bytes", "span 512");
    }

    @Test
    void unknownDtype() throws IOException {
        SafetensorsSurgery s = shard2();
        s.tensor(NORM).put("dtype", "Q4_K");
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "Q4_K");
    }

    @Test
    void missingTensor() throws IOException {
        SafetensorsSurgery s = shard2();
        s.header.remove(NORM);
        s.write(dir.resolve(SHARD2));
        ObjectNode index = index();
        ((ObjectNode) index.get("weight_map")).remove(NORM);
        writeIndex(index);
        assertNames(refused(), "missing tensor '" + NORM + "'", "[256]");
    }

    @Test
    void unexpectedTensor() throws IOException {
        String extra = "model.layers.5.self_attn.extra_proj.weight";
        SafetensorsSurgery s = shard2();
        long[] span = s.append(new byte[32]);
        ObjectNode t = s.header.putObject(extra);
        t.put("dtype", "BF16");
        t.putArray("shape").add(4).add(4);
        t.putArray("data_offsets").add(span[0]).add(span[1]);
        s.write(dir.resolve(SHARD2));
        ObjectNode index = index();
        ((ObjectNode) index.get("weight_map")).put(extra, SHARD2);
        writeIndex(index);
        assertNames(refused(), "tensor '" + extra + "' in " + SHARD2, "unexpected");
    }

    @Test
    void shapeThatDoesNotMatchTheConfig() throws IOException {
        SafetensorsSurgery s = shard2();
        s.tensor(NORM).putArray("shape").add(128).add(2); // same bytes, wrong shape
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), "tensor '" + NORM + "' in " + SHARD2, "[128, 2]", "[256]", "config.json");
    }

    @Test
    void shardListedInTheIndexButMissing() throws IOException {
        Files.delete(dir.resolve(SHARD2));
        assertNames(refused(), INDEX, SHARD2, "missing");
    }

    @Test
    void tensorListedUnderTheWrongFile() throws IOException {
        ObjectNode index = index();
        ((ObjectNode) index.get("weight_map")).put(NORM, SHARD1);
        writeIndex(index);
        assertNames(refused(), "tensor '" + NORM + "'", SHARD1, "does not contain it");
    }

    @Test
    void aSecondCopyOfATensorInAnotherShard() throws IOException {
        SafetensorsSurgery s = SafetensorsSurgery.read(TINY.resolve(SHARD1));
        long[] span = s.append(new byte[512]);
        ObjectNode t = s.header.putObject(NORM);
        t.put("dtype", "BF16");
        t.putArray("shape").add(256);
        t.putArray("data_offsets").add(span[0]).add(span[1]);
        s.write(dir.resolve(SHARD1));
        assertNames(refused(), "tensor '" + NORM + "'", SHARD1, "lists it under " + SHARD2);
    }

    @Test
    void tensorNotListedInTheIndex() throws IOException {
        ObjectNode index = index();
        ((ObjectNode) index.get("weight_map")).remove(NORM);
        writeIndex(index);
        assertNames(refused(), "tensor '" + NORM + "' in " + SHARD2, "not listed in " + INDEX);
    }

    @Test
    void overlappingDataOffsets() throws IOException {
        SafetensorsSurgery s = shard2();
        ObjectNode other = s.tensor("model.layers.7.input_layernorm.weight"); // also bf16 [256]
        s.tensor(NORM).set("data_offsets", other.get("data_offsets").deepCopy());
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "overlaps", NORM, "model.layers.7.input_layernorm.weight");
    }

    @Test
    void numbersTooLargeForTheHeader() throws IOException {
        SafetensorsSurgery s = shard2();
        s.tensor(NORM).putArray("shape").add(new java.math.BigInteger("123456789012345678901234567890"));
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "shape");
        s = shard2();
        s.tensor(NORM).putArray("shape").add(1L << 40).add(1L << 40);
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "more elements");
        s = shard2();
        s.tensor(NORM).putArray("data_offsets").add(0).add(new java.math.BigInteger("99999999999999999999999"));
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "data_offsets");
        s = shard2();
        s.tensor(NORM).putArray("shape").add(256.0);
        s.write(dir.resolve(SHARD2));
        assertNames(refused(), SHARD2, "tensor '" + NORM + "'", "shape");
    }

    @Test
    void duplicateKeysAndTrailingBytesInTheHeader() throws IOException {
        SafetensorsSurgery s = shard2();
        String json = SafetensorsSurgery.JSON.writeValueAsString(s.header);
        String entry = "\"" + NORM + "\":" + SafetensorsSurgery.JSON.writeValueAsString(s.tensor(NORM));
        SafetensorsSurgery.writeRaw(dir.resolve(SHARD2),
                ("{" + entry + "," + json.substring(1)).getBytes(StandardCharsets.UTF_8), s.data);
        assertNames(refused(), SHARD2, NORM);
        SafetensorsSurgery.writeRaw(dir.resolve(SHARD2), (json + "{}").getBytes(StandardCharsets.UTF_8), s.data);
        assertNames(refused(), SHARD2, "not valid JSON");
        // trailing spaces are the format's own padding
        SafetensorsSurgery.writeRaw(dir.resolve(SHARD2), (json + "    ").getBytes(StandardCharsets.UTF_8), s.data);
        Checkpoint.open(dir).close();
    }

    @Test
    void indexThatIsNotJson() throws IOException {
        Files.delete(dir.resolve(INDEX));
        Files.writeString(dir.resolve(INDEX), "{\"weight_map\": ");
        assertNames(refused(), INDEX, "not valid JSON");
        Files.delete(dir.resolve(INDEX));
        Files.writeString(dir.resolve(INDEX), "{\"metadata\": {}}");
        assertNames(refused(), INDEX, "weight_map");
    }
}
