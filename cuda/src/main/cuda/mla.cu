// Multi-head latent attention helpers; the products run in cuBLAS (fp32, or bf16 in the bf16-compute mode), or, for
// prefill in the bf16-compute mode, in the fused flash kernel of mla_flash.cuh.
#include <cuda_bf16.h>
#include "mla_flash.cuh"

// One block's scaled softmax over row[0, visible), in place; columns [visible, width) are written as exact zeros.
__device__ void softmax_row(float* row, int visible, int width, float scale) {
    __shared__ float red[32];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        float e = expf(row[j] * scale - mx);
        row[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (blockDim.x >> 5); w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < width; j += blockDim.x) row[j] = j < visible ? row[j] * inv : 0.0f;
}

// scores holds, per (head, query t), `total` raw dot products (the keys the query tile can see); this applies the scale, the causal mask (query t sees
// keys [0, pos + t]) and the softmax in place, writing exact zeros past the visible keys.
extern "C" __global__ void mla_softmax(float* scores, int T, int total, int pos, int rowOffset, float scale) {
    int t = blockIdx.x, h = blockIdx.y;
    float* row = scores + ((long)h * T + t) * total;
    softmax_row(row, min(total, pos + rowOffset + t + 1), total, scale);
}

// Exact-mode prefill: each head's full key rows [k_nope_h | k_rot] side by side, so that the score product is one
// GEMM over qk = nope + rope instead of a nope product and a rope product that re-reads and re-writes every score.
// kv [total, heads * per] (k_nope first in each head's per columns), rot [total, rope] -> kcat [heads, total, nope + rope].
// grid (total, heads)
extern "C" __global__ void mla_k_concat(const float* kv, const float* rot, float* kcat, int total, int heads, int nope, int rope, int per) {
    int t = blockIdx.x, h = blockIdx.y, w = nope + rope;
    const float* src = kv + (long)t * heads * per + (long)h * per;
    float* dst = kcat + ((long)h * total + t) * w;
    for (int c = threadIdx.x; c < w; c += blockDim.x) dst[c] = c < nope ? src[c] : rot[(long)t * rope + c - nope];
}

// ---- absorbed MLA decode for a batch of single-token sequences, each over its own latent cache ----
// table: per sequence b, three 8-byte slots (latent cache address, k_rot cache address, visible positions);
// scores [B * heads, maxTotal], row (b, h) holding the sequence's raw q.k products in its first `total` columns.
// grid (heads, B): scale and softmax over the sequence's visible positions, in place.
extern "C" __global__ void mla_decode_softmax(float* scores, const long long* table, int heads, int maxTotal, float scale) {
    int h = blockIdx.x, b = blockIdx.y;
    float* row = scores + ((long) b * heads + h) * maxTotal;
    int visible = (int) table[3 * b + 2];
    softmax_row(row, visible, visible, scale);   // columns past a sequence's own cache are never read
}

// ---- bf16-compute prefill (kimimesh.cuda.gemm=bf16): the score rows stay fp32, the probabilities go to bf16 ----
// scores / probs: per (head, query t) a row of `ld` elements whose first `width` hold the raw q.k products of the
// keys the query tile can see. grid (T, heads): query t sees keys [0, pos + rowOffset + t]; the probabilities of
// that prefix are written as bf16 (max and sum in fp32 over the fp32 scores), later keys as exact zeros.
extern "C" __global__ void mla_softmax_bf16(const float* scores, __nv_bfloat16* probs, int T, int width, int ld, int pos,
                                            int rowOffset, float scale) {
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y;
    const float* row = scores + ((long)h * T + t) * ld;
    __nv_bfloat16* out = probs + ((long)h * T + t) * ld;
    int visible = min(width, pos + rowOffset + t + 1);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < nw; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) sum += expf(row[j] * scale - mx);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < nw; w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < width; j += blockDim.x)
        out[j] = __float2bfloat16_rn(j < visible ? expf(row[j] * scale - mx) * inv : 0.0f);
}

// ---- one-read prefill softmax: a score row held in registers (up to SOFTMAX_RPT values per thread) ----
// The loops above read a row three times (max, exp-sum, normalise) and write it once; these read it once and write it
// once, for rows up to SOFTMAX_RPT x 1024 keys (32,768); MlaKernels keeps the looping kernels for longer rows.
// Any block size that is a multiple of 32, up to 1024, that covers the row: MlaKernels picks the smallest.
constexpr int SOFTMAX_RPT = 32;

__device__ __forceinline__ float block_reduce(float v, bool isMax, float* red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffff, v, o);
        v = isMax ? fmaxf(v, w) : v + w;
    }
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = isMax ? -INFINITY : 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) r = isMax ? fmaxf(r, red[w]) : r + red[w];
    __syncthreads();
    return r;
}

// Loads the row's visible prefix once into v (column threadIdx.x + i * blockDim.x), leaves exp(x * scale - max)
// there (0 past the prefix) and returns 1 / sum: the one read both kernels share. Same operations as softmax_row.
__device__ __forceinline__ float row_exp(const float* row, int visible, float scale, float (&v)[SOFTMAX_RPT], float* red) {
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < SOFTMAX_RPT; i++) {
        int j = threadIdx.x + i * blockDim.x;
        v[i] = j < visible ? row[j] * scale : -INFINITY;
        mx = fmaxf(mx, v[i]);
    }
    mx = block_reduce(mx, true, red);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < SOFTMAX_RPT; i++) {
        int j = threadIdx.x + i * blockDim.x;
        v[i] = j < visible ? expf(v[i] - mx) : 0.0f;
        sum += v[i];
    }
    return 1.0f / block_reduce(sum, false, red);
}

// mla_softmax with one read: in place, fp32 (the exact mode); grid (T, heads); total <= blockDim.x * SOFTMAX_RPT
extern "C" __global__ void __launch_bounds__(1024) mla_softmax_1r(float* scores, int T, int total, int pos, int rowOffset, float scale) {
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y;
    float* row = scores + ((long)h * T + t) * total;
    float v[SOFTMAX_RPT];
    float inv = row_exp(row, min(total, pos + rowOffset + t + 1), scale, v, red);
#pragma unroll
    for (int i = 0; i < SOFTMAX_RPT; i++) {
        int j = threadIdx.x + i * blockDim.x;
        if (j < total) row[j] = v[i] * inv;
    }
}

// mla_softmax_bf16 with one read: fp32 scores in, bf16 probabilities out, rows `ld` apart; width <= blockDim.x * SOFTMAX_RPT
extern "C" __global__ void __launch_bounds__(1024) mla_softmax_bf16_1r(const float* scores, __nv_bfloat16* probs, int T, int width, int ld,
                                                                      int pos, int rowOffset, float scale) {
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y;
    const float* row = scores + ((long)h * T + t) * ld;
    __nv_bfloat16* out = probs + ((long)h * T + t) * ld;
    float v[SOFTMAX_RPT];
    float inv = row_exp(row, min(width, pos + rowOffset + t + 1), scale, v, red);
#pragma unroll
    for (int i = 0; i < SOFTMAX_RPT; i++) {
        int j = threadIdx.x + i * blockDim.x;
        if (j < width) out[j] = __float2bfloat16_rn(v[i] * inv);
    }
}
