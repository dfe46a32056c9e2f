package dev.kimimesh.cuda;

/**
 * Which tiled GEMV kernel of {@code gemv.cu} serves a shape: R weight rows per warp, U 16-byte loads per row in flight
 * per lane, TB tokens per pass, S warps splitting K (kernel {@code gemv_r{R}u{U}t{TB}s{S}}, block 256 = 8 warps =
 * 8 / S row groups of R rows). The rules come from the decode harness (cuda/bench/decode) on an H100, every weight
 * shape of a decode step at T = 1 and 8: split-K (S = 8, 4) for the short and medium matrices, which otherwise leave
 * SMs idle; four rows per warp and no split for the lm_head (163,840 rows) at T > 1, where reusing each activation
 * load four times matters; whole-row warps for K below 1024 (a split would leave lanes without chunks).
 */
record GemvTiles(int rows, int loads, int tokens, int split) {

    static GemvTiles pick(int t, int n, int k) {
        if (t < 1 || n < 1 || k < 1) throw new IllegalArgumentException("gemv: no tiling for T=" + t + ", N=" + n + ", K=" + k);
        int tb = t == 1 ? 1 : t == 2 ? 2 : t <= 4 ? 4 : 8;
        if (k < 1024) return t == 1 ? new GemvTiles(2, 4, tb, 1) : new GemvTiles(4, 4, tb, 1);
        if (t == 1) return k == 1024 ? new GemvTiles(2, 2, tb, 4) : new GemvTiles(2, 2, tb, 8);
        if (n >= 32768) return new GemvTiles(4, 2, tb, 1);
        if (n <= 512) return new GemvTiles(1, 4, tb, 8);
        return k >= 4096 ? new GemvTiles(2, 2, tb, 8) : new GemvTiles(2, 2, tb, 4);
    }

    String kernel() {
        return "gemv_r" + rows + "u" + loads + "t" + tokens + "s" + split;
    }

    /** The same tiling over up to 8 matrices of one K in one launch (Backend.matmuls). */
    String multiKernel() {
        return "gemv_multi_r" + rows + "u" + loads + "t" + tokens + "s" + split;
    }

    /** Output rows one block of 256 threads covers. */
    int rowsPerBlock() {
        return 8 / split * rows;
    }

    int blocks(int n) {
        return (n + rowsPerBlock() - 1) / rowsPerBlock();
    }
}
