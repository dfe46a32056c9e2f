package dev.kimimesh.gateway.schedule;

import java.util.List;

/** Prefill chunks and decode tokens of several sequences, sent through the pipeline together. */
public record MicroBatch(long id, List<BatchEntry> entries) {
    public int tokens() {
        int n = 0;
        for (BatchEntry e : entries) n += e.tokens().length;
        return n;
    }

    public int[] lengths() {
        int[] l = new int[entries.size()];
        for (int i = 0; i < l.length; i++) l[i] = entries.get(i).tokens().length;
        return l;
    }

    /** All tokens, concatenated in entry order. */
    public int[] concatenatedTokens() {
        int[] ids = new int[tokens()];
        int at = 0;
        for (BatchEntry e : entries) {
            System.arraycopy(e.tokens(), 0, ids, at, e.tokens().length);
            at += e.tokens().length;
        }
        return ids;
    }
}
