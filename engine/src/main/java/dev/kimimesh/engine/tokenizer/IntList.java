package dev.kimimesh.engine.tokenizer;

import java.util.Arrays;

/** Growable int array, so that encoding a megabyte does not box a million Integers. */
final class IntList {
    private int[] a;
    private int n;

    IntList(int capacity) {
        a = new int[Math.max(8, capacity)];
    }

    void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, n + (n >> 1) + 8);
        a[n++] = v;
    }

    int size() {
        return n;
    }

    int[] toArray() {
        return Arrays.copyOf(a, n);
    }
}
