// out[T, N] = x[T, K] W^T for few rows T (decode): W [N, K] bf16 read once, fp32 accumulation.
// gemv_bf16: one warp per output row n, any K and alignment (the fallback when K % 8 != 0 or a pointer is not
// 16-byte aligned); tokens in groups of 8 re-read the (L1-resident) weight row. The tiled kernels below serve the rest.

extern "C" __global__ void gemv_bf16(const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ out,
                                     int T, int N, int K) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= N) return;
    const unsigned short* wr = w + (long)warp * K;
    for (int t0 = 0; t0 < T; t0 += 8) {
        int tn = min(8, T - t0);
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = 0.0f;
        for (int k = lane; k < K; k += 32) {
            float wf = __uint_as_float(((unsigned int)wr[k]) << 16);
#pragma unroll
            for (int j = 0; j < 8; j++) if (j < tn) acc[j] += wf * x[(long)(t0 + j) * K + k];
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float v = acc[j];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
            if (lane == 0 && j < tn) out[(long)(t0 + j) * N + warp] = v;
        }
    }
}

// The tiled GEMV (gemv_tile.cuh): a block of 8 warps covers 8 / S row groups of R rows; the S warps of a group split
// K and their partial sums meet in shared memory, added in slice order (deterministic). Split-K gives the short
// matrices (a few hundred rows) enough warps to keep every SM loading; R rows per warp give long ones more loads in
// flight per warp and reuse each activation load R times. T > TB tokens loop over groups of TB (the weight rows are
// then re-read from L1/L2). Needs K % 8 == 0 and 16-byte aligned x and w.
#include "gemv_tile.cuh"

// Up to 8 matrices of one K against the same x in one launch (Backend.matmuls: a layer's projections of its input):
// the blocks of matrix m follow those of matrix m - 1, each block finds its matrix by a scan of the row counts.
// One launch instead of up to six saves their host issue (a decode step is host-bound at batch 1) and lets the
// short matrices (KDA f_a, g_a, b) share the SMs with the long ones instead of running alone.
#define GEMV_MULTI_MAX 8
template <int R, int U, int TB, int S>
__device__ __forceinline__ void gemv_multi(const float* __restrict__ x, const unsigned short* const (&w)[GEMV_MULTI_MAX],
                                           float* const (&out)[GEMV_MULTI_MAX], const int (&n)[GEMV_MULTI_MAX], int count, int T, int K) {
    constexpr int rowsPerBlock = 8 / S * R;
    int b = blockIdx.x;
#pragma unroll
    for (int m = 0; m < GEMV_MULTI_MAX; m++) {
        if (m >= count) return;
        int blocks = (n[m] + rowsPerBlock - 1) / rowsPerBlock;
        if (b < blocks) {
            gemv_tile<R, U, TB, S>(x, w[m], out[m], T, n[m], K, b);
            return;
        }
        b -= blocks;
    }
}

// extern "C" entry points gemv_r{R}u{U}t{TB}s{S} and gemv_multi_r{R}u{U}t{TB}s{S}: the host picks one by shape
// (GemvTiles.java)
#define GEMV_TILE(R, U, TB, S)                                                                                        \
    extern "C" __global__ void __launch_bounds__(256) gemv_r##R##u##U##t##TB##s##S(                                  \
        const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ out, int T, int N, int K) { \
        gemv_tile<R, U, TB, S>(x, w, out, T, N, K, blockIdx.x);                                                       \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(256) gemv_multi_r##R##u##U##t##TB##s##S(                            \
        const float* __restrict__ x, int T, int K, int count,                                                         \
        const unsigned short* w0, const unsigned short* w1, const unsigned short* w2, const unsigned short* w3,       \
        const unsigned short* w4, const unsigned short* w5, const unsigned short* w6, const unsigned short* w7,       \
        float* o0, float* o1, float* o2, float* o3, float* o4, float* o5, float* o6, float* o7,                       \
        int n0, int n1, int n2, int n3, int n4, int n5, int n6, int n7) {                                             \
        const unsigned short* const w[GEMV_MULTI_MAX] = {w0, w1, w2, w3, w4, w5, w6, w7};                           \
        float* const o[GEMV_MULTI_MAX] = {o0, o1, o2, o3, o4, o5, o6, o7};                                            \
        const int n[GEMV_MULTI_MAX] = {n0, n1, n2, n3, n4, n5, n6, n7};                                               \
        gemv_multi<R, U, TB, S>(x, w, o, n, count, T, K);                                                             \
    }
#define GEMV_TILES(R, U, S) GEMV_TILE(R, U, 1, S) GEMV_TILE(R, U, 2, S) GEMV_TILE(R, U, 4, S) GEMV_TILE(R, U, 8, S)
// the six tilings GemvTiles.java picks from (cuda/bench/decode swept 14 on an H100, docs/benchmarks-gpu.md)
GEMV_TILES(2, 2, 8) GEMV_TILES(2, 2, 4) GEMV_TILES(1, 4, 8) GEMV_TILES(2, 4, 1) GEMV_TILES(4, 4, 1) GEMV_TILES(4, 2, 1)
