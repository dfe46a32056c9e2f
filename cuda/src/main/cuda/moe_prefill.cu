// Routed experts of a prefill grouped on the device: a stable counting sort of the (row, choice) pairs by expert,
// so the host reads back only the per-expert counts (E ints) instead of the whole routing, and no host loop touches
// the T x k pairs. The layout is the host grouping's (experts in index order, each expert's rows ascending), so the
// expert GEMMs see the same operands in the same places and the result is the host-grouped path's, bit for bit.
//
// Rows are taken in chunks of MP_ROWS (one block of MP_ROWS threads, one row a thread). Within a chunk, a row's rank
// among the chunk's rows that chose expert e is a popcount over a bit mask per expert (no atomics on positions, so
// the order is fixed). A row that names an expert twice sets one bit: both of its pairs then share one grouped row,
// which the combine adds twice, as the host path adds two equal rows.
// table: per expert {gate, up, down} weight pointers, gate 0 = served elsewhere (MoeKernels.ExpertTable).

#include <cuda_bf16.h>

#define MP_ROWS 128
#define MP_WORDS (MP_ROWS / 32)

__device__ __forceinline__ bool mp_here(int ex, int E, const long long* table) {
    return ex >= 0 && ex < E && table[3 * ex] != 0;
}

// The chunk's masks: mask[e * MP_WORDS + w] bit b = row (w * 32 + b) of the chunk chose expert e (served here).
__device__ void mp_masks(const int* experts, int T, int k, int E, const long long* table, unsigned* mask) {
    for (int i = threadIdx.x; i < E * MP_WORDS; i += blockDim.x) mask[i] = 0u;
    __syncthreads();
    int r = blockIdx.x * MP_ROWS + threadIdx.x;
    if (r < T) {
        for (int j = 0; j < k; j++) {
            int ex = experts[(long)r * k + j];
            if (mp_here(ex, E, table)) atomicOr(&mask[ex * MP_WORDS + (threadIdx.x >> 5)], 1u << (threadIdx.x & 31));
        }
    }
    __syncthreads();
}

// chunkCount[c * E + e] = rows of chunk c that chose expert e. Grid: ceil(T / MP_ROWS) blocks of MP_ROWS threads,
// dynamic shared memory 4 * E * MP_WORDS bytes.
extern "C" __global__ void __launch_bounds__(MP_ROWS) moe_pair_count(const int* experts, int T, int k, int E,
                                                                     const long long* table, int* chunkCount) {
    extern __shared__ unsigned mp_mask[];
    mp_masks(experts, T, k, E, table, mp_mask);
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = 0;
#pragma unroll
        for (int w = 0; w < MP_WORDS; w++) c += __popc(mp_mask[e * MP_WORDS + w]);
        chunkCount[(long)blockIdx.x * E + e] = c;
    }
}

// Per expert (one thread each, one block): chunkCount becomes each chunk's first rank within the expert (an exclusive
// scan over the chunks), count[e] the expert's rows.
extern "C" __global__ void moe_pair_scan(int* chunkCount, int chunks, int E, int* count) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int s = 0;
#pragma unroll 8
        for (int c = 0; c < chunks; c++) {
            int v = chunkCount[(long)c * E + e];
            chunkCount[(long)c * E + e] = s;
            s += v;
        }
        count[e] = s;
    }
}

// Places every pair: pos = start[e] + chunk base + rank in the chunk; pairRow[pos] = its row, pairPos[r * k + j] = pos
// (-1 for an expert served elsewhere). start[] comes from the host (packed, or the padded buckets of the batched
// GEMMs), so padding rows are not written here: the caller fills pairRow with a valid row first.
extern "C" __global__ void __launch_bounds__(MP_ROWS) moe_pair_fill(const int* experts, int T, int k, int E,
                                                                    const long long* table, const int* chunkBase,
                                                                    const int* start, int* pairRow, int* pairPos) {
    extern __shared__ unsigned mp_mask[];
    mp_masks(experts, T, k, E, table, mp_mask);
    int r = blockIdx.x * MP_ROWS + threadIdx.x;
    if (r >= T) return;
    int w = threadIdx.x >> 5;
    unsigned below = (1u << (threadIdx.x & 31)) - 1u;
    for (int j = 0; j < k; j++) {
        int ex = experts[(long)r * k + j];
        if (!mp_here(ex, E, table)) {
            pairPos[(long)r * k + j] = -1;
            continue;
        }
        const unsigned* m = mp_mask + ex * MP_WORDS;
        int rank = __popc(m[w] & below);
        for (int q = 0; q < w; q++) rank += __popc(m[q]);
        int pos = start[ex] + chunkBase[(long)blockIdx.x * E + ex] + rank;
        pairRow[pos] = r;
        pairPos[(long)r * k + j] = pos;
    }
}

// ---- bf16 intermediates (-Dkimimesh.cuda.moeIntermediate=bf16, opt-in) ----
// The expert GEMMs write gate, up and down in bf16 (their fp32 sums rounded once) instead of fp32: half the bytes of
// the SwiGLU's reads and the combine's reads, and of the GEMMs' writes. Two more roundings than the fp32 form (gate and
// up before the SwiGLU, each expert's output before the weighted sum): not the same bits, about 1e-3 relative.

__device__ __forceinline__ float4 mp_bf16x4_in(uint2 v) {
    __nv_bfloat162 lo = *reinterpret_cast<__nv_bfloat162*>(&v.x), hi = *reinterpret_cast<__nv_bfloat162*>(&v.y);
    float2 a = __bfloat1622float2(lo), b = __bfloat1622float2(hi);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ uint2 mp_bf16x4_out(float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    return make_uint2(*reinterpret_cast<unsigned*>(&lo), *reinterpret_cast<unsigned*>(&hi));
}

__device__ __forceinline__ float mp_silu_mul(float z, float u) { return z * (1.0f / (1.0f + expf(-z))) * u; }

// out = bf16(silu(g) * u) from bf16 g and u (moe_swiglu_bf16's arithmetic on the rounded inputs). n % 4 == 0, 8-byte
// aligned. Grid-stride over groups of 4.
extern "C" __global__ void moe_swiglu_bf16in(const __nv_bfloat16* __restrict__ g, const __nv_bfloat16* __restrict__ u,
                                             __nv_bfloat16* __restrict__ out, long n) {
    const uint2* g4 = reinterpret_cast<const uint2*>(g);
    const uint2* u4 = reinterpret_cast<const uint2*>(u);
    uint2* o = reinterpret_cast<uint2*>(out);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n / 4; i += (long)gridDim.x * blockDim.x) {
        float4 a = mp_bf16x4_in(g4[i]), b = mp_bf16x4_in(u4[i]);
        o[i] = mp_bf16x4_out(make_float4(mp_silu_mul(a.x, b.x), mp_silu_mul(a.y, b.y), mp_silu_mul(a.z, b.z), mp_silu_mul(a.w, b.w)));
    }
}

// out[r] += sum of weights[r, j] * down[pairPos[r, j] - base] over the row's pairs whose expert lies in [e0, e1), in
// ascending expert order (a row's equal experts in choice order): scatter_add_pairs' sum, the same operations in the
// same order, so the same bits. One block a row; cols % 4 == 0, down and out 16-byte aligned. k <= 64. The expert
// outputs are fp32 (moe_combine_pairs) or bf16 (moe_combine_pairs_bf16: the same order of additions, in fp32).
__device__ __forceinline__ float4 mp_load4(const float* down, long row, int cols, int c) {
    return reinterpret_cast<const float4*>(down + row * cols)[c];
}

__device__ __forceinline__ float4 mp_load4(const __nv_bfloat16* down, long row, int cols, int c) {
    return mp_bf16x4_in(reinterpret_cast<const uint2*>(down + row * cols)[c]);
}

template <typename T>
__device__ __forceinline__ void mp_combine_pairs(const T* __restrict__ down, const int* __restrict__ experts,
                                                 const float* __restrict__ weights, const int* __restrict__ pairPos,
                                                 float* __restrict__ out, int k, int cols, int e0, int e1, int base) {
    __shared__ int se[64], sp[64];
    __shared__ float sw[64];
    __shared__ int n;
    long r = blockIdx.x;
    if (threadIdx.x == 0) {
        int cnt = 0;
        for (int j = 0; j < k; j++) {
            int p = pairPos[r * k + j], ex = experts[r * k + j];
            if (p < 0 || ex < e0 || ex >= e1) continue;
            int i = cnt++;
            while (i > 0 && se[i - 1] > ex) {
                se[i] = se[i - 1];
                sp[i] = sp[i - 1];
                sw[i] = sw[i - 1];
                i--;
            }
            se[i] = ex;
            sp[i] = p - base;
            sw[i] = weights[r * k + j];
        }
        n = cnt;
    }
    __syncthreads();
    int cnt = n;
    if (cnt == 0) return;
    float4* dst = reinterpret_cast<float4*>(out + r * cols);
    for (int c = threadIdx.x; c < cols / 4; c += blockDim.x) {
        float4 acc = dst[c];
        for (int i = 0; i < cnt; i++) {
            float wgt = sw[i];
            float4 s = mp_load4(down, (long)sp[i], cols, c);
            acc.x += wgt * s.x;
            acc.y += wgt * s.y;
            acc.z += wgt * s.z;
            acc.w += wgt * s.w;
        }
        dst[c] = acc;
    }
}

extern "C" __global__ void moe_combine_pairs(const float* __restrict__ down, const int* __restrict__ experts,
                                             const float* __restrict__ weights, const int* __restrict__ pairPos,
                                             float* __restrict__ out, int k, int cols, int e0, int e1, int base) {
    mp_combine_pairs(down, experts, weights, pairPos, out, k, cols, e0, e1, base);
}

extern "C" __global__ void moe_combine_pairs_bf16(const __nv_bfloat16* __restrict__ down, const int* __restrict__ experts,
                                                  const float* __restrict__ weights, const int* __restrict__ pairPos,
                                                  float* __restrict__ out, int k, int cols, int e0, int e1, int base) {
    mp_combine_pairs(down, experts, weights, pairPos, out, k, cols, e0, e1, base);
}

// ---- Prefill routing: one warp a row ----
// moe_route gives a row a block of 256 threads and runs each top-k round through shared memory, two barriers and a
// serial pass of thread 0 over the warps' candidates: at 32k rows it took 0.35 ms a layer for 33 MB of logits. Here a
// warp routes a row, each lane holding EPL experts (expert lane + 32 q) in registers; a round is a warp argmax. The
// order (choice descending, lower index first) is a total order, so the winner does not depend on the reduction tree:
// the same experts as moe_route, and the same weights (the same float and double operations in the same order).
// Sigmoid scores, no group limit (moe_route serves the rest). Grid: ceil(T / 8) blocks of 256 threads.
template <int EPL>
__device__ __forceinline__ void route_row(const float* __restrict__ logits, const float* __restrict__ bias, int T, int E, int k,
                                          int renorm, int biasCorrected, float scaling, int* experts, float* weights) {
    int lane = threadIdx.x & 31;
    long r = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= T) return;
    const float* lg = logits + r * E;
    float sc[EPL], ch[EPL];
#pragma unroll
    for (int q = 0; q < EPL; q++) {
        int i = lane + 32 * q;
        float s = i < E ? (float)(1.0 / (1.0 + exp(-(double)lg[i]))) : 0.0f;
        sc[q] = s;
        ch[q] = i < E ? s + (bias ? bias[i] : 0.0f) : -INFINITY;
    }
    double wsum = 0.0;
    float mine = 0.0f; // lane j keeps round j's weight
    for (int j = 0; j < k; j++) {
        float best = -INFINITY;
        int bidx = 0x7fffffff;
#pragma unroll
        for (int q = 0; q < EPL; q++) {
            int i = lane + 32 * q;
            if (i < E && (ch[q] > best || (ch[q] == best && i < bidx))) { best = ch[q]; bidx = i; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffff, best, o);
            int oi = __shfl_xor_sync(0xffffffff, bidx, o);
            if (ob > best || (ob == best && oi < bidx)) { best = ob; bidx = oi; }
        }
        // the owner lane takes the winner out and forms its weight (the unmasked score, biased when bias-corrected)
        float wt = 0.0f;
        if (bidx != 0x7fffffff && (bidx & 31) == lane) {
#pragma unroll
            for (int q = 0; q < EPL; q++) {
                if (lane + 32 * q == bidx) {
                    wt = biasCorrected ? sc[q] + (bias ? bias[bidx] : 0.0f) : sc[q];
                    ch[q] = -INFINITY;
                }
            }
        }
        wt = __shfl_sync(0xffffffff, wt, bidx == 0x7fffffff ? 0 : (bidx & 31));
        wsum += wt;
        if (lane == j) mine = wt;
        if (lane == 0) experts[r * k + j] = bidx;
    }
    if (lane < k) {
        float w = mine;
        if (renorm) w = (float)(w / (wsum + 1e-20));
        weights[r * k + lane] = w * scaling;
    }
}

extern "C" __global__ void __launch_bounds__(256) moe_route_rows8(const float* logits, const float* bias, int T, int E, int k,
                                                                  int renorm, int biasCorrected, float scaling, int* experts,
                                                                  float* weights) {
    route_row<8>(logits, bias, T, E, k, renorm, biasCorrected, scaling, experts, weights);
}

extern "C" __global__ void __launch_bounds__(256) moe_route_rows32(const float* logits, const float* bias, int T, int E, int k,
                                                                   int renorm, int biasCorrected, float scaling, int* experts,
                                                                   float* weights) {
    route_row<32>(logits, bias, T, E, k, renorm, biasCorrected, scaling, experts, weights);
}
