package dev.kimimesh.engine.tokenizer;

import java.util.regex.Pattern;

/**
 * Kimi's pre-tokenizer regex ({@code TikTokenTokenizer.pat_str}) in java.util.regex form.
 *
 * <p>tiktoken runs the pattern with Rust fancy-regex (backtracking, leftmost-first, Unicode classes, {@code &&}
 * intersection). java.util.regex has the same semantics once {@code \p{Han}} is spelled {@code \p{IsHan}},
 * {@code UNICODE_CHARACTER_CLASS} makes {@code \s} the Unicode White_Space property (NBSP, U+3000, U+0085 ...),
 * and the contraction group is case-insensitive with Unicode simple case folding ({@code 'ſ} matches {@code 's}).
 */
final class PreTokenizer {
    /** The original pattern, verbatim, as tiktoken sees it. */
    static final String KIMI_PAT_STR = String.join("|",
            "[\\p{Han}]+",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "\\p{N}{1,3}",
            " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*",
            "\\s*[\\r\\n]+",
            "\\s+(?!\\S)",
            "\\s+");

    static final Pattern PATTERN = Pattern.compile(toJava(KIMI_PAT_STR), Pattern.UNICODE_CHARACTER_CLASS);

    private PreTokenizer() {}

    /** Rewrites the two spellings where Rust regex and java.util.regex differ. */
    static String toJava(String rustPattern) {
        return rustPattern.replace("\\p{Han}", "\\p{IsHan}").replace("(?i:", "(?iu:");
    }
}
