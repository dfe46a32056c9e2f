// The two per-head products of the absorbed MLA decode for one sequence (batch 1), on the bf16 kv_b_proj as stored
// (the cuBLAS path read its fp32 copy: twice the bytes, 13 us for both on an H100 where the reads take about 3):
//   q_lat[h] = W_kb_h^T q_nope[h]  (W_kb_h: rows h * per .. h * per + nope - 1 of kv_b_proj, each R wide)
//   o[h]     = W_vb_h ctx[h]       (W_vb_h: the vDim rows after them)
// fp32 accumulation; the sums run in another order than cuBLAS's, so the results agree to fp32 rounding.
#include "gemv_tile.cuh"

// grid (heads, ceil(R / 128)), block 256 = 16 column groups (8 columns: one 16-byte load a row) x 16 slices of
// ceil(nope / 16) rows; each thread issues all of its slice's loads before the first product, the slices' partial
// sums meet in shared memory and are added in slice order. Needs R % 8 == 0 and a 16-byte aligned kv_b_proj.
extern "C" __global__ void __launch_bounds__(256) mla_q_lat_b1(const float* __restrict__ q, const unsigned short* __restrict__ wkv,
                                                               float* __restrict__ qLat, int R, int nope, int qw, int per) {
    constexpr int ROWS = 16; // rows a slice holds in flight (nope <= 256)
    __shared__ float part[16][128];
    int h = blockIdx.x, cg = threadIdx.x & 15, sl = threadIdx.x >> 4;
    int c0 = blockIdx.y * 128 + cg * 8;
    int per_slice = (nope + 15) / 16, d0 = sl * per_slice, n = max(0, min(per_slice, nope - d0));
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; i++) acc[i] = 0.0f;
    if (c0 < R) {
        uint4 w[ROWS];
        float qd[ROWS];
#pragma unroll
        for (int j = 0; j < ROWS; j++) {
            bool on = j < n;
            w[j] = on ? __ldg(reinterpret_cast<const uint4*>(wkv + (long)(h * per + d0 + j) * R + c0)) : make_uint4(0, 0, 0, 0);
            qd[j] = on ? q[(long)h * qw + d0 + j] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < ROWS; j++) {
            if (j < n) {
                float a = qd[j];
                acc[0] += a * tile_lo(w[j].x);
                acc[1] += a * tile_hi(w[j].x);
                acc[2] += a * tile_lo(w[j].y);
                acc[3] += a * tile_hi(w[j].y);
                acc[4] += a * tile_lo(w[j].z);
                acc[5] += a * tile_hi(w[j].z);
                acc[6] += a * tile_lo(w[j].w);
                acc[7] += a * tile_hi(w[j].w);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 8; i++) part[sl][cg * 8 + i] = acc[i];
    __syncthreads();
    if (threadIdx.x < 128) {
        int c = blockIdx.y * 128 + threadIdx.x;
        if (c < R) {
            float s = 0.0f;
            for (int i = 0; i < 16; i++) s += part[i][threadIdx.x];
            qLat[(long)h * R + c] = s;
        }
    }
}

// grid (ceil(vDim / 16), heads), block 256: the tiled GEMV (gemv_tile.cuh, two rows a warp, whole-row warps) of head
// h's W_vb rows against its context row. Needs R % 8 == 0 and 16-byte aligned ctx and kv_b_proj rows.
extern "C" __global__ void __launch_bounds__(256) mla_out_b1(const float* __restrict__ ctx, const unsigned short* __restrict__ wkv,
                                                             float* __restrict__ out, int R, int nope, int vDim, int per) {
    int h = blockIdx.y;
    gemv_tile<2, 4, 1, 1>(ctx + (long)h * R, wkv + (long)(h * per + nope) * R, out + (long)h * vDim, 1, vDim, R, blockIdx.x);
}
