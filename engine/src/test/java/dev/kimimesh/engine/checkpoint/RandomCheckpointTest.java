package dev.kimimesh.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kimimesh.engine.backend.Tensor;
import dev.kimimesh.engine.cli.InitRandom;
import dev.kimimesh.engine.config.ConfigOverrides;
import dev.kimimesh.engine.config.KimiLinearConfig;
import dev.kimimesh.engine.config.LayerKind;
import dev.kimimesh.engine.cpu.CpuBackend;
import dev.kimimesh.engine.model.KimiLinearModel;
import dev.kimimesh.engine.model.ModelOptions;
import dev.kimimesh.engine.state.SequenceState;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path SHARED = Path.of(System.getProperty("kimimesh.shared", "../shared"));
    private static final Path TINY = SHARED.resolve("fixtures/tiny");
    private static final Path TOKENIZER = SHARED.resolve("fixtures/tokenizer");

    private static ObjectNode tinyConfig() throws Exception {
        return (ObjectNode) JSON.readTree(TINY.resolve("config.json").toFile());
    }

    @Test
    void cutToFourLayersKeepsTheOneBasedListsAndEndsWithMla() throws Exception {
        ObjectNode c = tinyConfig();
        ConfigOverrides.layers(c, 4);
        assertEquals("[1,2,3]", c.get("linear_attn_config").get("kda_layers").toString());
        assertEquals("[4]", c.get("linear_attn_config").get("full_attn_layers").toString());
        KimiLinearConfig k = KimiLinearConfig.parse(c);
        assertArrayEquals(new LayerKind[] {LayerKind.KDA, LayerKind.KDA, LayerKind.KDA, LayerKind.MLA}, kinds(k));
    }

    @Test
    void fiveLayersMakeTheLastOneMla() throws Exception {
        ObjectNode c = tinyConfig();
        ConfigOverrides.layers(c, 5);
        assertEquals("[4,5]", c.get("linear_attn_config").get("full_attn_layers").toString());
        assertArrayEquals(new LayerKind[] {LayerKind.KDA, LayerKind.KDA, LayerKind.KDA, LayerKind.MLA, LayerKind.MLA},
                kinds(KimiLinearConfig.parse(c)));
        c = tinyConfig();
        ConfigOverrides.layers(c, 10); // grown past the original 8: every fourth and the last
        assertEquals("[4,8,10]", c.get("linear_attn_config").get("full_attn_layers").toString());
    }

    private static LayerKind[] kinds(KimiLinearConfig k) {
        LayerKind[] out = new LayerKind[k.numHiddenLayers()];
        for (int l = 0; l < out.length; l++) out[l] = k.layerKind(l);
        return out;
    }

    @Test
    void writerRoundTripsThroughTheReader(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("x.safetensors");
        float[] a = {1f, -2.5f, 0.1f, 3.0e-3f, 65504f, -0f};
        float[] b = {0.1f, 1e-7f, -7.25f};
        float[] h = {0.5f, -1.25f};
        try (SafetensorsWriter w = SafetensorsWriter.create(f, List.of(
                new SafetensorsWriter.Entry("a", DType.BF16, new long[] {2, 3}),
                new SafetensorsWriter.Entry("b", DType.F32, new long[] {3}),
                new SafetensorsWriter.Entry("h", DType.F16, new long[] {1, 2})), Map.of("format", "pt"))) {
            w.write("b", b);
            w.write("a", a);
            w.write("h", h);
        }
        long headerLen = java.nio.ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLen) % 8, "data must start 8-byte aligned");
        try (SafetensorsFile r = SafetensorsFile.open(f)) {
            assertEquals("pt", r.metadata().get("format"));
            assertArrayEquals(new long[] {2, 3}, r.tensor("a").shape());
            float[] got = r.tensor("a").toFloatArray();
            for (int i = 0; i < a.length; i++) {
                // bf16 keeps the top 16 bits of the float, rounded to nearest even
                int bits = Float.floatToRawIntBits(a[i]);
                int rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
                assertEquals(Float.intBitsToFloat(rounded), got[i], "a[" + i + "]");
                assertEquals(a[i], got[i], Math.abs(a[i]) / 128);
            }
            assertArrayEquals(b, r.tensor("b").toFloatArray());
            assertArrayEquals(h, r.tensor("h").toFloatArray());
            assertEquals(Float.floatToRawIntBits(0.1f),
                    r.tensor("b").data().get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0));
        }
    }

    @Test
    void writerRefusesAnIncompleteTensor(@TempDir Path dir) {
        SafetensorsWriter w = SafetensorsWriter.create(dir.resolve("y.safetensors"),
                List.of(new SafetensorsWriter.Entry("t", DType.F32, new long[] {4})), Map.of());
        w.write("t", 0, java.nio.ByteBuffer.allocate(8));
        CheckpointException e = assertThrows(CheckpointException.class, w::close);
        assertTrue(e.getMessage().contains("'t'"), e.getMessage());
    }

    @Test
    void initRandomWritesACheckpointTheModelRuns(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("m");
        int rc = new InitRandom().run(List.of(out.toString(), "--config", TINY.resolve("config.json").toString(),
                "--layers", "4", "--experts", "8", "--seed", "7", "--shard-size-mb", "4",
                "--vocab-from-tokenizer", TOKENIZER.toString()));
        assertEquals(0, rc);
        assertTrue(Files.exists(out.resolve("tiktoken.model")) && Files.exists(out.resolve("chat_template.jinja")));
        var index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
        try (Checkpoint ck = Checkpoint.open(out)) {
            KimiLinearConfig c = ck.config();
            assertEquals(4, c.numHiddenLayers());
            assertEquals(8, c.numExperts());
            assertEquals(4, c.numExpertsPerToken());
            // the fixture tokenizer: 6000 base ranks, model vocabulary + 256 as the real model; [BOS], <|im_end|>, [PAD]
            assertEquals(6256, c.vocabSize());
            assertEquals(6000, c.bosTokenId());
            assertEquals(6002, c.eosTokenId());
            assertEquals(6255, c.padTokenId());
            assertEquals(ck.totalBytes(), index.get("metadata").get("total_size").asLong());
            assertTrue(index.get("weight_map").get("lm_head.weight").asText().matches("model-0000\\d-of-0000[2-9]\\.safetensors"));
            assertEquals(DType.F32, ck.tensor("model.layers.0.self_attn.A_log").dtype());
            assertEquals(DType.BF16, ck.tensor("model.layers.1.block_sparse_moe.gate.e_score_correction_bias").dtype());
            for (float a : ck.tensor("model.layers.0.self_attn.A_log").toFloatArray()) {
                assertTrue(a >= 0 && a <= Math.log(16) + 1e-6, "A_log " + a);
            }
            float[] w = ck.tensor("model.layers.1.self_attn.q_proj.weight").toFloatArray();
            double ss = 0;
            for (float v : w) ss += v * v;
            assertEquals(0.02, Math.sqrt(ss / w.length), 0.001);

            CpuBackend be = new CpuBackend();
            KimiLinearModel m = KimiLinearModel.load(ck, be, ModelOptions.defaults());
            int[] ids = {6000, 17, 300, 5999, 42, 6002, 1, 2};
            SequenceState st = m.newState();
            Tensor x = m.embed(ids);
            m.forward(x, new int[] {ids.length}, new SequenceState[] {st});
            float[] logits = be.download(m.logits(x, new int[] {0, ids.length - 1}));
            double maxAbs = 0;
            for (float v : logits) {
                assertTrue(Float.isFinite(v), "logit not finite");
                maxAbs = Math.max(maxAbs, Math.abs(v));
            }
            assertTrue(maxAbs > 1e-3, "logits are all ~0");
        }
    }
}
