// The dot-product core shared by the decode GEMVs (gemv.cu) and the MoE expert GEMVs (moe.cu): R weight rows of
// K bf16 values against TB fp32 activation rows, fp32 accumulation. A warp walks the row in 16-byte chunks of 8
// values; lane l of warp slice s (of S slices splitting K) takes chunks s*32 + l + i*32*S, so a warp's loads are
// coalesced and the S warps of a row group read one contiguous 32*S-chunk stretch per step. Each lane issues its
// R*U weight loads before the first use: bandwidth needs many bytes in flight per SM, and one 16-byte load per
// lane and row left a warp waiting a full memory latency per 512 bytes. The activations (a few KB, L1-resident)
// are read once per chunk for all R rows.
#pragma once

__device__ __forceinline__ float tile_lo(unsigned int v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float tile_hi(unsigned int v) { return __uint_as_float(v & 0xffff0000u); }

// acc[r][j] += sum over this lane's chunks of w[r][8c..8c+8) . x[j][8c..8c+8); nothing past chunk C is read.
// Rows r >= rows and tokens j >= tn are not read (their accumulators stay as they were).
template <int R, int U, int TB>
__device__ __forceinline__ void tile_dot(const unsigned short* const (&w)[R], int rows, const float* const (&x)[TB], int tn,
                                         int C, int first, int stride, float (&acc)[R][TB]) {
    for (int c0 = first; c0 < C; c0 += stride * U) {
        uint4 wq[U][R];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int c = c0 + u * stride;
#pragma unroll
            for (int r = 0; r < R; r++)
                wq[u][r] = (c < C && r < rows) ? __ldg(reinterpret_cast<const uint4*>(w[r]) + c) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            int c = c0 + u * stride;
            if (c >= C) break;
#pragma unroll
            for (int j = 0; j < TB; j++) {
                if (j < tn) {
                    const float4* xp = reinterpret_cast<const float4*>(x[j]) + 2 * c;
                    float4 a = xp[0], b = xp[1];
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        uint4 v = wq[u][r];
                        acc[r][j] += tile_lo(v.x) * a.x + tile_hi(v.x) * a.y + tile_lo(v.y) * a.z + tile_hi(v.y) * a.w
                                   + tile_lo(v.z) * b.x + tile_hi(v.z) * b.y + tile_lo(v.w) * b.z + tile_hi(v.w) * b.w;
                    }
                }
            }
        }
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}

// One block of the tiled GEMV (gemv.cu: the comment there; also the plain matrices of decode_fused.cu's launches).
template <int R, int U, int TB, int S>
__device__ __forceinline__ void gemv_tile(const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ out,
                                          int T, int N, int K, int block) {
    constexpr int G = 8 / S;
    __shared__ float part[S > 1 ? 8 * R * TB : 1];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = warp / S, s = warp % S;
    int n0 = (block * G + g) * R;
    int rows = max(0, min(R, N - n0));
    int C = K >> 3;
    const unsigned short* wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = w + (long)min(n0 + r, N - 1) * K;
    for (int t0 = 0; t0 < T; t0 += TB) {
        int tn = min(TB, T - t0);
        const float* xr[TB];
        float acc[R][TB];
#pragma unroll
        for (int j = 0; j < TB; j++) {
            xr[j] = x + (long)(t0 + min(j, tn - 1)) * K;
#pragma unroll
            for (int r = 0; r < R; r++) acc[r][j] = 0.0f;
        }
        if (rows > 0) tile_dot<R, U, TB>(wr, rows, xr, tn, C, s * 32 + lane, 32 * S, acc);
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < TB; j++) acc[r][j] = warp_sum(acc[r][j]);
        if constexpr (S == 1) {
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < TB; j++)
                        if (r < rows && j < tn) out[(long)(t0 + j) * N + n0 + r] = acc[r][j];
        } else {
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < TB; j++) part[(warp * R + r) * TB + j] = acc[r][j];
            __syncthreads();
            // thread i of the block finishes output (group, row, token) i: the S slices in order
            for (int i = threadIdx.x; i < G * R * TB; i += blockDim.x) {
                int gg = i / (R * TB), r = (i / TB) % R, j = i % TB;
                int n = (block * G + gg) * R + r;
                if (n < N && j < tn) {
                    float v = 0.0f;
                    for (int ss = 0; ss < S; ss++) v += part[((gg * S + ss) * R + r) * TB + j];
                    out[(long)(t0 + j) * N + n] = v;
                }
            }
            __syncthreads();
        }
    }
}
