package dev.kimimesh.engine.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Base64;

/** Reader of {@code tiktoken.model}: one {@code base64(token bytes) SP rank} per line, ranks 0..n-1. */
final class TiktokenModelFile {
    static final String NAME = "tiktoken.model";

    private TiktokenModelFile() {}

    static RankTable read(Path file) {
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": missing (a Kimi model directory carries " + NAME + ")");
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
        String text = new String(content, StandardCharsets.ISO_8859_1); // base64 and digits are ASCII
        String[] lines = text.split("\n", -1);
        byte[][] byRank = new byte[lines.length][];
        int count = 0;
        int maxRank = -1;
        Base64.Decoder base64 = Base64.getDecoder();
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            if (line.endsWith("\r")) line = line.substring(0, line.length() - 1);
            if (line.isEmpty()) continue; // load_tiktoken_bpe skips empty lines
            int lineNo = i + 1;
            int sp = line.indexOf(' ');
            if (sp <= 0 || sp != line.lastIndexOf(' ')) {
                throw error(file, lineNo, "expected '<base64 token> <rank>', got '" + abbreviate(line) + "'");
            }
            byte[] token;
            try {
                token = base64.decode(line.substring(0, sp));
            } catch (IllegalArgumentException e) {
                throw error(file, lineNo, "invalid base64 '" + abbreviate(line.substring(0, sp)) + "': " + e.getMessage());
            }
            if (token.length == 0) throw error(file, lineNo, "empty token");
            int rank;
            try {
                rank = Integer.parseInt(line.substring(sp + 1));
            } catch (NumberFormatException e) {
                throw error(file, lineNo, "rank is not a non-negative integer: '" + abbreviate(line.substring(sp + 1)) + "'");
            }
            if (rank < 0 || rank >= lines.length) {
                throw error(file, lineNo, "rank " + rank + " out of range (ranks must be 0..number of tokens - 1)");
            }
            if (byRank[rank] != null) throw error(file, lineNo, "rank " + rank + " appears twice");
            byRank[rank] = token;
            count++;
            maxRank = Math.max(maxRank, rank);
        }
        if (count == 0) throw new TokenizerException(file + ": no tokens");
        if (maxRank != count - 1) {
            throw new TokenizerException(file + ": ranks are not contiguous: " + count + " tokens but the largest rank is " + maxRank);
        }
        byte[][] ranks = new byte[count][];
        System.arraycopy(byRank, 0, ranks, 0, count);
        RankTable table;
        try {
            table = new RankTable(ranks);
        } catch (IllegalArgumentException e) {
            throw new TokenizerException(file + ": " + e.getMessage());
        }
        // byte-level BPE needs every single byte as a token, or some text has no encoding at all
        byte[] one = new byte[1];
        for (int b = 0; b < 256; b++) {
            one[0] = (byte) b;
            if (table.rank(one, 0, 1) == RankTable.NONE) {
                throw new TokenizerException(file + ": the single byte 0x" + String.format("%02x", b) + " is not a token");
            }
        }
        return table;
    }

    private static TokenizerException error(Path file, int line, String what) {
        return new TokenizerException(file + " line " + line + ": " + what);
    }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }
}
