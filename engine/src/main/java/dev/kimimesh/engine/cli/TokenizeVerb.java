package dev.kimimesh.engine.cli;

import dev.kimimesh.engine.tokenizer.KimiTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/** {@code kimi-mesh tokenize <model-dir> "text"}: prints the ids of a text, comma separated on one line. */
public final class TokenizeVerb implements Verb {
    @Override
    public String name() {
        return "tokenize";
    }

    @Override
    public String usage() {
        return "<model-dir> <text|-> [--no-special]  token ids of a text ('-': stdin)";
    }

    @Override
    public int run(List<String> args) throws UsageException, IOException {
        Args a = Args.parse(args, Set.of(), Set.of("--no-special"));
        Path dir = Path.of(a.positional(0, "model-dir"));
        String text = a.positional(1, "text");
        if (a.positional().size() > 2) throw new UsageException("quote the text: one argument expected after the model dir");
        if (text.equals("-")) text = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        int[] ids = KimiTokenizer.load(dir).encode(text, !a.has("--no-special"));
        System.out.println(join(ids));
        return 0;
    }

    static String join(int[] ids) {
        return IntStream.of(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }
}
