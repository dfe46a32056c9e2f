package dev.kimimesh.engine.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** config.json parsing: the real 48B config, and bad configs rejected with the field named. */
class KimiLinearConfigTest {
    static final Path SHARED = Path.of(System.getProperty("kimimesh.shared", "../../shared"));
    static final Path REAL = SHARED.resolve("reference/kimi-linear-48b-a3b-instruct.config.json");
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void real48bConfigParsesAndDescribes() {
        KimiLinearConfig c = KimiLinearConfig.load(REAL);
        assertEquals(27, c.numHiddenLayers());
        List<Integer> mla = new ArrayList<>();
        for (int l = 0; l < 27; l++) if (c.layerKind(l) == LayerKind.MLA) mla.add(l);
        assertEquals(List.of(3, 7, 11, 15, 19, 23, 26), mla);
        assertEquals(20, c.countLayers(LayerKind.KDA));
        assertFalse(c.isMoeLayer(0));
        for (int l = 1; l < 27; l++) assertTrue(c.isMoeLayer(l));
        assertEquals(2304, c.hiddenSize());
        assertEquals(163840, c.vocabSize());
        assertEquals(163586, c.eosTokenId());
        assertEquals(256, c.numExperts());
        assertEquals(8, c.numExpertsPerToken());
        assertEquals(4096, c.kdaProjectionSize());
        assertEquals(0, c.qLoraRank());
        assertEquals(1048576, c.maxPositionEmbeddings());
        String d = c.describe();
        assertTrue(d.contains("27 layers") && d.contains("KKKMKKKMKKKMKKKMKKKMKKKMKKM") && d.contains("256 experts, top-8"), d);
    }

    static ObjectNode real() throws Exception {
        return (ObjectNode) JSON.readTree(REAL.toFile());
    }

    /** Parses the real config after {@code edit} from a file in {@code dir}; returns the ConfigException message. */
    static String rejected(Path dir, Consumer<ObjectNode> edit) throws Exception {
        ObjectNode c = real();
        edit.accept(c);
        Path f = dir.resolve("config.json");
        JSON.writeValue(f.toFile(), c);
        ConfigException e = assertThrows(ConfigException.class, () -> KimiLinearConfig.load(f));
        assertTrue(e.getMessage().contains("config.json"), "names the file: " + e.getMessage());
        return e.getMessage();
    }

    static void assertNames(String message, String... parts) {
        for (String p : parts) assertTrue(message.contains(p), "'" + p + "' not in: " + message);
    }

    @Test
    void missingHiddenSize(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.remove("hidden_size")), "missing field hidden_size");
    }

    @Test
    void layerInBothLists(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> ((ArrayNode) c.get("linear_attn_config").get("kda_layers")).add(4)),
                "layer 4", "both kda_layers and full_attn_layers");
    }

    /** The original's is_kda_layer reads kda_layers only: a layer listed nowhere is full attention (MLA). */
    @Test
    void layerInNeitherListIsFullAttention() throws Exception {
        ObjectNode c = real();
        ((ArrayNode) c.get("linear_attn_config").get("full_attn_layers")).remove(6);
        ((ObjectNode) c.get("linear_attn_config")).remove("full_attn_layers");
        KimiLinearConfig k = KimiLinearConfig.parse(c);
        assertEquals(LayerKind.MLA, k.layerKind(26));
        assertEquals(LayerKind.MLA, k.layerKind(3));
        assertEquals(LayerKind.KDA, k.layerKind(25));
        assertEquals(7, k.countLayers(LayerKind.MLA));
    }

    @Test
    void missingSharedExpertCountMeansNone() throws Exception {
        ObjectNode c = real();
        c.remove("num_shared_experts");
        assertEquals(0, KimiLinearConfig.parse(c).numSharedExperts());
    }

    /** transformers' KimiLinearConfig names (attribute_map) read as the original keys. */
    @Test
    void transformersMoeKeyNames() throws Exception {
        ObjectNode c = real();
        for (String k : new String[] {"num_experts", "num_experts_per_token", "num_shared_experts", "num_expert_group", "moe_renormalize"}) {
            c.remove(k);
        }
        c.put("num_local_experts", 64).put("num_experts_per_tok", 6).put("n_shared_experts", 2).put("n_group", 8)
                .put("topk_group", 2).put("norm_topk_prob", false);
        KimiLinearConfig k = KimiLinearConfig.parse(c);
        assertEquals(64, k.numExperts());
        assertEquals(6, k.numExpertsPerToken());
        assertEquals(2, k.numSharedExperts());
        assertEquals(8, k.numExpertGroup());
        assertFalse(k.moeRenormalize());
    }

    @Test
    void layerNumberOutOfRange(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> ((ArrayNode) c.get("linear_attn_config").get("full_attn_layers")).set(6, 28)),
                "full_attn_layers", "28", "1..27");
        assertNames(rejected(dir, c -> ((ArrayNode) c.get("linear_attn_config").get("kda_layers")).set(0, 0)),
                "kda_layers", "layer 0");
    }

    @Test
    void unsupportedHiddenAct(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.put("hidden_act", "gelu")), "hidden_act", "gelu");
    }

    @Test
    void mlaWithRotaryIsRefused(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.put("mla_use_nope", false)), "mla_use_nope");
    }

    @Test
    void moreExpertsPerTokenThanExperts(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.put("num_experts_per_token", 300)), "num_experts_per_token", "300", "num_experts");
    }

    @Test
    void wrongModelType(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.put("model_type", "deepseek_v3")), "model_type", "deepseek_v3");
    }

    @Test
    void wrongTypesNameTheField(@TempDir Path dir) throws Exception {
        assertNames(rejected(dir, c -> c.put("hidden_size", "2304")), "hidden_size");
        assertNames(rejected(dir, c -> c.put("num_hidden_layers", -1)), "num_hidden_layers");
        assertNames(rejected(dir, c -> c.put("rms_norm_eps", 0)), "rms_norm_eps");
        assertNames(rejected(dir, c -> c.put("q_lora_rank", -3)), "q_lora_rank");
    }

    @Test
    void notJson(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("config.json");
        Files.writeString(f, "{\"model_type\": \"kimi_linear\", \"hidden_size\": ");
        ConfigException e = assertThrows(ConfigException.class, () -> KimiLinearConfig.load(f));
        assertNames(e.getMessage(), "config.json", "not valid JSON");
        assertThrows(ConfigException.class, () -> KimiLinearConfig.parse("not json at all"));
        Files.writeString(f, "[1, 2, 3]");
        assertNames(assertThrows(ConfigException.class, () -> KimiLinearConfig.load(f)).getMessage(), "not a JSON object");
        assertNames(assertThrows(ConfigException.class, () -> KimiLinearConfig.load(dir.resolve("absent"))).getMessage(),
                "cannot read");
    }
}
