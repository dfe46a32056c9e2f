package dev.kimimesh.engine.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Entry point of the `kimi-mesh` launcher: dispatches to a {@link Verb}. */
public final class Main {
    private Main() {}

    static Map<String, Verb> verbs() {
        Map<String, Verb> verbs = new LinkedHashMap<>();
        for (Verb v : List.<Verb>of(
                // one line per verb; keep the list sorted by workflow, not alphabetically
                new DescribeVerb(),
                new TokenizeVerb(),
                new ChatTemplateVerb(),
                new GenerateVerb(),
                new VerifyVerb(),
                new InitRandom(),
                new Bench(),
                new MeshPlanVerb()
        )) {
            verbs.put(v.name(), v);
        }
        return verbs;
    }

    public static void main(String[] args) {
        Map<String, Verb> verbs = verbs();
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            System.out.println("usage: kimi-mesh <verb> [args]\n\nverbs:");
            System.out.println("  test                      run the whole test suite (Maven verify)");
            verbs.values().forEach(v -> System.out.printf("  %-25s %s%n", v.name(), v.usage()));
            return;
        }
        Verb verb = verbs.get(args[0]);
        if (verb == null) {
            System.err.println("kimi-mesh: unknown verb '" + args[0] + "' (see kimi-mesh --help)");
            System.exit(2);
        }
        try {
            System.exit(verb.run(List.of(args).subList(1, args.length)));
        } catch (UsageException e) {
            System.err.println("kimi-mesh " + verb.name() + ": " + e.getMessage());
            System.err.println("usage: kimi-mesh " + verb.name() + " " + verb.usage());
            System.exit(2);
        } catch (Exception e) {
            System.err.println("kimi-mesh " + verb.name() + ": " + e.getMessage());
            if (System.getenv("KIMI_DEBUG") != null) e.printStackTrace();
            System.exit(1);
        }
    }
}
