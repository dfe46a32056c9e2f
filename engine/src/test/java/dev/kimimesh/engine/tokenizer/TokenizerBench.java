package dev.kimimesh.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;

/**
 * Encode/decode throughput on 1 MB of mixed text (English, code, Chinese, Japanese, Russian, emoji, digits,
 * whitespace runs, special literals). Not a test: run it by hand, see docs/benchmarks-tokenizer.md.
 *
 * <pre>java -cp engine/target/classes:engine/target/test-classes:$(cat cp.txt) \
 *   dev.kimimesh.engine.tokenizer.TokenizerBench [model-dir] [megabytes]</pre>
 */
public final class TokenizerBench {
    private static final String[] SAMPLES = {
        "The quick brown fox jumps over the lazy dog. It's what they'll say, isn't it? ",
        "def encode(self, text: str) -> list[int]:\n    return [self.ranks[b] for b in text.encode()]\n\n",
        "线性注意力模型在长上下文中的效率更高，而且表达能力没有下降。",
        "東京の天気は晴れです。カタカナとひらがな、ﾊﾝｶｸも。",
        "Привет, мир! Это проверка токенизатора. ",
        "👨‍👩‍👧‍👦 🇨🇳 👍🏽 ❤️ ",
        "Order #12345678 costs $1,299.99 on 2025-11-22 at 13:45:07. ",
        "        \n\n\t\t  \u3000\u00a0 ",
        "<|im_end|><|im_user|>user<|im_middle|>[BOS] ",
        "{\"city\": \"Beijing\", \"temp\": 23, \"unit\": \"c\"}\n",
    };

    private TokenizerBench() {}

    public static void main(String[] args) {
        Path dir = Path.of(args.length > 0 ? args[0] : "../shared/fixtures/tokenizer");
        int megabytes = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        KimiTokenizer t = KimiTokenizer.load(dir);
        String text = mixedText(megabytes * 1_000_000, new Random(42));
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        for (int i = 0; i < 5; i++) t.decode(t.encode(text)); // warm-up: JIT
        int runs = 10;
        long best = Long.MAX_VALUE, total = 0;
        int[] ids = null;
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            ids = t.encode(text);
            long dt = System.nanoTime() - t0;
            best = Math.min(best, dt);
            total += dt;
        }
        long bestDecode = Long.MAX_VALUE;
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            String back = t.decode(ids);
            bestDecode = Math.min(bestDecode, System.nanoTime() - t0);
            if (!back.equals(text)) throw new AssertionError("round trip failed");
        }
        long t0 = System.nanoTime();
        StreamingDetokenizer d = t.newStreamingDetokenizer();
        for (int id : ids) d.push(id);
        d.flush();
        long stream = System.nanoTime() - t0;
        System.out.printf("text: %,d UTF-8 bytes, %,d chars -> %,d tokens (vocab %d ranks)%n",
                bytes, text.length(), ids.length, t.numBaseTokens());
        System.out.printf("encode: best %.1f ms, mean %.1f ms over %d runs (%.1f MB/s)%n",
                best / 1e6, total / 1e6 / runs, runs, bytes / (best / 1e9) / 1e6);
        System.out.printf("decode: best %.1f ms; streaming decode of all ids: %.1f ms%n", bestDecode / 1e6, stream / 1e6);
        System.out.printf("java %s, %d cores%n", System.getProperty("java.version"), Runtime.getRuntime().availableProcessors());
    }

    private static String mixedText(int utf8Bytes, Random rnd) {
        StringBuilder sb = new StringBuilder();
        int size = 0;
        while (size < utf8Bytes) {
            String s = SAMPLES[rnd.nextInt(SAMPLES.length)];
            sb.append(s);
            size += s.getBytes(StandardCharsets.UTF_8).length;
        }
        return sb.toString();
    }
}
