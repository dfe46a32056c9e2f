package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.config.KimiLinearConfig;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.Set;

/**
 * `mesh-plan`: the validated topology of a local mesh for the launcher's `up`: one line per shard and per expert
 * service, from flags or a properties file ({@code shards=0-4,4-8}, {@code experts=0-7;8-15}).
 */
public final class MeshPlanVerb implements Verb {
    @Override
    public String name() {
        return "mesh-plan";
    }

    @Override
    public String usage() {
        return "--model DIR [--shards N | --layers 0-4,4-8] [--experts N | --expert-sets '0-7;8-15'] [--topology FILE]   "
                + "print and check a mesh topology (used by `up`)";
    }

    @Override
    public int run(List<String> argv) throws Exception {
        Args a = Args.parse(argv, Set.of("--model", "--shards", "--layers", "--experts", "--expert-sets", "--topology"), Set.of());
        if (!a.has("--model")) throw new UsageException("--model DIR is required");
        Path config = Path.of(a.get("--model", null)).resolve("config.json");
        if (!Files.isRegularFile(config)) throw new UsageException("--model: no config.json in " + config.getParent());
        KimiLinearConfig c = KimiLinearConfig.load(config);
        String layers = a.get("--layers", null), experts = a.get("--expert-sets", null);
        if (a.has("--topology")) {
            Properties p = new Properties();
            Path file = Path.of(a.get("--topology", null));
            try (Reader r = Files.newBufferedReader(file)) {
                p.load(r);
            } catch (IOException e) {
                throw new UsageException("--topology: cannot read " + file + ": " + e.getMessage());
            }
            for (String key : p.stringPropertyNames()) {
                if (!key.equals("shards") && !key.equals("experts")) {
                    throw new UsageException(file + ": unknown key '" + key + "' (expected shards=FROM-TO,... and experts=SET;SET...)");
                }
            }
            if (p.getProperty("shards") == null) throw new UsageException(file + ": 'shards' (layer ranges, e.g. 0-4,4-8) is missing");
            layers = p.getProperty("shards");
            experts = p.getProperty("experts", "");
        }
        MeshTopology t = layers != null
                ? MeshTopology.parse(layers, experts == null ? "" : experts)
                : MeshTopology.even(c.numHiddenLayers(), a.getInt("--shards", 2), c.numExperts(), a.getInt("--experts", c.numExperts() > 0 ? 2 : 0));
        if (layers != null && experts == null && a.has("--experts")) {
            t = new MeshTopology(t.layerRanges(), MeshTopology.even(c.numHiddenLayers(), 1, c.numExperts(), a.getInt("--experts", 0)).expertSets());
        }
        t.validate(c.numHiddenLayers(), c.numExperts());
        System.out.println("layers " + c.numHiddenLayers());
        System.out.println("experts " + c.numExperts());
        for (int[] r : t.layerRanges()) System.out.println("shard " + r[0] + " " + r[1]);
        for (String s : t.expertSets()) System.out.println("expert-service " + s);
        return 0;
    }
}
