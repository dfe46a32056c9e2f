// Decode-step kernels that take the op after them into their own launch (mostly GEMVs with an epilogue), so a batch-1 step
// (host-free as a CUDA graph, but a chain of dependent launches) loses a launch and its round trip each:
//  - gemv_glu_*: a SwiGLU MLP's gate and up projections and the SwiGLU itself (the shared expert, the dense layer),
//    plus optionally one more projection of the same input with the same tiling (the MoE router);
//  - gemv_kda_gate_*: KDA's f_b projection with the decay gate (kda_gate) in its epilogue, and beta's sigmoid;
//  - kda_output_norm_*: KDA's g_b projection (the output gate) and the gated RMSNorm per head;
//  - moe_down_combine_t1: the routed experts' down projection and weighted sum for one row;
//  - mla_norm_append: MLA's kv_a_layernorm and the append of the latent and k_rot rows to the caches.
// Each output is bit-identical to the unfused launches (gemv.cu with the same tiling, elementwise.cu, norms.cu,
// moe.cu): the dot products are tile_dot's with the same chunk order and split-K order, and the epilogues repeat the
// unfused arithmetic operation for operation. GEMVs need K % 8 == 0 and 16-byte aligned x and weights.
#include "gemv_tile.cuh"
#include "moe_order.cuh"

__device__ __forceinline__ float fused_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// swiglu_f32's arithmetic: silu(g) * u
__device__ __forceinline__ float fused_swiglu(float g, float u) { return g * fused_sigmoid(g) * u; }

// Output n of the SwiGLU: a warp group's R = 2 rows are gate row n and up row n, so its two accumulators are exactly
// what gemv_tile<2, U, TB, S> computes for those rows (each row's sum depends only on the row, the chunk order and
// the slice order); the group's result is written once, as silu(g) * u. A block covers 8 / S outputs.
template <int U, int TB, int S>
__device__ __forceinline__ void glu_tile(const float* __restrict__ x, const unsigned short* __restrict__ gate,
                                         const unsigned short* __restrict__ up, float* __restrict__ out, int T, int N, int K,
                                         int block) {
    constexpr int G = 8 / S;
    __shared__ float part[S > 1 ? 8 * 2 * TB : 1];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = warp / S, s = warp % S;
    int n = block * G + g;
    int rows = n < N ? 2 : 0;
    int C = K >> 3;
    const unsigned short* wr[2] = {gate + (long)min(n, N - 1) * K, up + (long)min(n, N - 1) * K};
    for (int t0 = 0; t0 < T; t0 += TB) {
        int tn = min(TB, T - t0);
        const float* xr[TB];
        float acc[2][TB];
#pragma unroll
        for (int j = 0; j < TB; j++) {
            xr[j] = x + (long)(t0 + min(j, tn - 1)) * K;
            acc[0][j] = 0.0f;
            acc[1][j] = 0.0f;
        }
        if (rows > 0) tile_dot<2, U, TB>(wr, rows, xr, tn, C, s * 32 + lane, 32 * S, acc);
#pragma unroll
        for (int r = 0; r < 2; r++)
#pragma unroll
            for (int j = 0; j < TB; j++) acc[r][j] = warp_sum(acc[r][j]);
        if constexpr (S == 1) {
            if (lane == 0 && n < N)
#pragma unroll
                for (int j = 0; j < TB; j++)
                    if (j < tn) out[(long)(t0 + j) * N + n] = fused_swiglu(acc[0][j], acc[1][j]);
        } else {
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < 2; r++)
#pragma unroll
                    for (int j = 0; j < TB; j++) part[(warp * 2 + r) * TB + j] = acc[r][j];
            __syncthreads();
            // thread i finishes (group, token) i: each of the pair's S slices in order, as gemv_tile adds them
            for (int i = threadIdx.x; i < G * TB; i += blockDim.x) {
                int gg = i / TB, j = i % TB;
                int nn = block * G + gg;
                if (nn < N && j < tn) {
                    float gs = 0.0f, us = 0.0f;
                    for (int ss = 0; ss < S; ss++) gs += part[((gg * S + ss) * 2 + 0) * TB + j];
                    for (int ss = 0; ss < S; ss++) us += part[((gg * S + ss) * 2 + 1) * TB + j];
                    out[(long)(t0 + j) * N + nn] = fused_swiglu(gs, us);
                }
            }
            __syncthreads();
        }
    }
}

// act[T, N] = silu(x gate^T) * (x up^T); the first blocks also compute out2[T, N2] = x w2^T (N2 = 0: none) with the
// same tiling (R = 2). Grid: ceil(N2 / (16 / S)) + ceil(N / (8 / S)) blocks of 256 threads.
#define GEMV_GLU(U, TB, S)                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) gemv_glu_r2u##U##t##TB##s##S(                                  \
        const float* __restrict__ x, int T, int K, const unsigned short* __restrict__ gate,                           \
        const unsigned short* __restrict__ up, float* __restrict__ act, int N, const unsigned short* __restrict__ w2, \
        float* __restrict__ out2, int N2) {                                                                           \
        constexpr int rowsPerBlock = 8 / S * 2;                                                                       \
        int plain = (N2 + rowsPerBlock - 1) / rowsPerBlock;                                                           \
        if ((int)blockIdx.x < plain) {                                                                                \
            gemv_tile<2, U, TB, S>(x, w2, out2, T, N2, K, blockIdx.x);                                               \
            return;                                                                                                   \
        }                                                                                                             \
        glu_tile<U, TB, S>(x, gate, up, act, T, N, K, blockIdx.x - plain);                                            \
    }
#define GEMV_GLUS(U, S) GEMV_GLU(U, 1, S) GEMV_GLU(U, 2, S) GEMV_GLU(U, 4, S) GEMV_GLU(U, 8, S)
// the R = 2 tilings GemvTiles picks for a SwiGLU's projections (K >= 1024: u2 s8 / s4; shorter K: u4 s1)
GEMV_GLUS(2, 8) GEMV_GLUS(2, 4) GEMV_GLUS(4, 1)

// g[T, N] = kda_gate(x fB^T) (elementwise.cu's kda_gate on the fp32 product: softplus above 20 is the identity, as
// torch's), whole-row warps (S = 1, the tiling GemvTiles picks for KDA's K = head dim <= 128); the last block
// instead applies beta = sigmoid(beta) to the step's [T, heads] betas in place. Grid: ceil(N / (8 R)) + 1 blocks.
template <int R, int U, int TB>
__device__ __forceinline__ void kda_gate_tile(const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ g,
                                              const float* __restrict__ aLog, const float* __restrict__ dtBias, int headDim,
                                              int T, int N, int K, int block) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int n0 = (block * 8 + warp) * R;
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
        if (rows > 0) tile_dot<R, U, TB>(wr, rows, xr, tn, C, lane, 32, acc);
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < TB; j++) acc[r][j] = warp_sum(acc[r][j]);
        if (lane == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int j = 0; j < TB; j++)
                    if (r < rows && j < tn) {
                        int c = n0 + r;
                        float z = acc[r][j] + dtBias[c];
                        float sp = z > 20.0f ? z : log1pf(expf(z));
                        g[(long)(t0 + j) * N + c] = -expf(aLog[c / headDim]) * sp;
                    }
    }
}

#define GEMV_KDA_GATE(R, U, TB)                                                                                       \
    extern "C" __global__ void __launch_bounds__(256) gemv_kda_gate_r##R##u##U##t##TB##s1(                           \
        const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ g,                    \
        const float* __restrict__ aLog, const float* __restrict__ dtBias, int headDim, int T, int N, int K,           \
        float* __restrict__ beta, int nBeta) {                                                                        \
        if (blockIdx.x == gridDim.x - 1) {                                                                            \
            for (int i = threadIdx.x; i < nBeta; i += blockDim.x) beta[i] = fused_sigmoid(beta[i]);                  \
            return;                                                                                                   \
        }                                                                                                             \
        kda_gate_tile<R, U, TB>(x, w, g, aLog, dtBias, headDim, T, N, K, blockIdx.x);                                 \
    }
// the S = 1 tilings GemvTiles picks for K < 1024: r2u4 at one token, r4u4 above
GEMV_KDA_GATE(2, 4, 1) GEMV_KDA_GATE(4, 4, 1) GEMV_KDA_GATE(4, 4, 2) GEMV_KDA_GATE(4, 4, 4) GEMV_KDA_GATE(4, 4, 8)

// KDA's output gate and norm: out = rms_norm_v4(o, w, gate = gLow gB^T) per head, one block of 16 warps per head
// (grid: heads). The block first computes its head's d <= 128 gate rows for the tokens of a pass into shared memory
// (R = 8 rows a warp: one pass of 16 warps covers 128 rows; each row's sum is gemv_tile's, whatever R and U, since a
// row's accumulator sees the same chunks in the same order), then warp j normalises token j of the pass with
// rms_norm_v4's arithmetic for a group of d <= 128 (one float4 a lane, one warp: its block of 32 threads). out may
// be o (each warp reads its token's values before writing them). Needs d % 4 == 0 and 16-byte aligned o, w, out.
template <int TB>
__device__ __forceinline__ void kda_output_norm(const float* o, const float* __restrict__ gLow, const unsigned short* __restrict__ gB,
                                                const float* __restrict__ w, float* out, int T, int width, int d, int K, float eps) {
    constexpr int R = 8;
    __shared__ float gs[TB][128];
    int h = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    int C = K >> 3;
    for (int t0 = 0; t0 < T; t0 += TB) {
        int tn = min(TB, T - t0);
        const float* xr[TB];
#pragma unroll
        for (int j = 0; j < TB; j++) xr[j] = gLow + (long)(t0 + min(j, tn - 1)) * K;
        for (int r0 = warp * R; r0 < d; r0 += warps * R) {
            int rows = min(R, d - r0);
            const unsigned short* wr[R];
            float acc[R][TB];
#pragma unroll
            for (int r = 0; r < R; r++) {
                wr[r] = gB + (long)(h * d + min(r0 + r, d - 1)) * K;
#pragma unroll
                for (int j = 0; j < TB; j++) acc[r][j] = 0.0f;
            }
            tile_dot<R, 1, TB>(wr, rows, xr, tn, C, lane, 32, acc);
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int j = 0; j < TB; j++) acc[r][j] = warp_sum(acc[r][j]);
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < TB; j++)
                        if (r < rows && j < tn) gs[j][r0 + r] = acc[r][j];
        }
        __syncthreads();
        int n4 = d >> 2;
        for (int j = warp; j < tn; j += warps) {
            long base = (long)(t0 + j) * width + (long)h * d;
            float4 v = lane < n4 ? reinterpret_cast<const float4*>(o + base)[lane] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            float ss = 0.0f;
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            ss = warp_sum(ss); // rms_norm_v4's blockSum for one warp: the other lanes' zeros add nothing
            float inv = 1.0f / sqrtf(ss / d + eps);
            if (lane < n4) {
                float4 s = reinterpret_cast<const float4*>(w)[lane];
                float4 r = make_float4(s.x * (v.x * inv), s.y * (v.y * inv), s.z * (v.z * inv), s.w * (v.w * inv));
                const float* g = gs[j] + 4 * lane;
                r.x *= 1.0f / (1.0f + expf(-g[0]));
                r.y *= 1.0f / (1.0f + expf(-g[1]));
                r.z *= 1.0f / (1.0f + expf(-g[2]));
                r.w *= 1.0f / (1.0f + expf(-g[3]));
                reinterpret_cast<float4*>(out + base)[lane] = r;
            }
        }
        __syncthreads();
    }
}

#define KDA_OUTPUT_NORM(TB)                                                                                           \
    extern "C" __global__ void __launch_bounds__(512) kda_output_norm_t##TB(                                         \
        const float* o, const float* __restrict__ gLow, const unsigned short* __restrict__ gB, const float* __restrict__ w, \
        float* out, int T, int width, int d, int K, float eps) {                                                      \
        kda_output_norm<TB>(o, gLow, gB, w, out, T, width, d, K, eps);                                                \
    }
// only one token is taken (DecodeFusions.kdaOutputNorm says why)
KDA_OUTPUT_NORM(1)

// The routed experts' down projection and their weighted sum (moe.cu's moe_down then moe_combine) for one row
// (batch-1 decode): block x covers output columns Rx .. Rx + R - 1; warp w computes them for active experts w, w + 8,
// .. (R weight rows a warp, U = 2 as moe_down_n4u2: each row's dot is moe_down's, whatever R) into shared memory,
// then a thread per column adds the row's choices into out in expert index order with moe_combine's separately
// rounded multiply and add. One launch instead of two, and no [k, H] buffer between them. At one row, pair position
// = active slot (each expert has one pair). Grid: ceil(H / R), block 256; k <= 64.
// moe_down_combine_t1 (R = 8, the default: checked on an H100, 2026-12-06) took 23.4 us a layer there, no faster than
// moe_down + moe_combine: 288 blocks make a second wave. moe_down_combine_t1_r4 (R = 4: moe_down's 576-block grid,
// -Dkimimesh.cuda.downCombineColumns=4) became the default after its H100 check in the merged tree of 2026-12-06.
template <int R>
__device__ __forceinline__ void moe_down_combine(const float* __restrict__ act, const long long* table, const int* info,
                                                 const int* activeExp, const int* activeStart, const int* posOf, const int* experts,
                                                 const float* weights, float* out, int k, int H, int I) {
    __shared__ float part[64][R];
    __shared__ int ex[64], pos[64], order[64];
    __shared__ float wt[64];
    __shared__ int count;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int n0 = blockIdx.x * R;
    int rows = min(R, H - n0);
    int active = info[0];
    for (int s = warp; s < active; s += 8) {
        int e = activeExp[s], p = activeStart[s];
        const unsigned short* w[R];
#pragma unroll
        for (int r = 0; r < R; r++) w[r] = (const unsigned short*)table[3 * e + 2] + (long)min(n0 + r, H - 1) * I;
        const float* xr[1] = {act + (long)p * I};
        float acc[R][1];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r][0] = 0.0f;
        tile_dot<R, 2, 1>(w, rows, xr, 1, I >> 3, lane, 32, acc);
#pragma unroll
        for (int r = 0; r < R; r++) {
            float v = warp_sum(acc[r][0]);
            if (lane == 0) part[p][r] = v;
        }
    }
    // moe_combine's choice order: the row's served choices sorted by expert index
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        ex[j] = experts[j];
        pos[j] = posOf[j];
        wt[j] = weights[j];
    }
    __syncthreads();
    if (threadIdx.x == 0) count = moe_choice_order(ex, pos, k, order);
    __syncthreads();
    if (threadIdx.x < rows) {
        int c = n0 + threadIdx.x;
        float a = out[c];
        for (int i = 0; i < count; i++) {
            int j = order[i];
            a = __fadd_rn(a, __fmul_rn(wt[j], part[pos[j]][threadIdx.x]));
        }
        out[c] = a;
    }
}

#define MOE_DOWN_COMBINE(NAME, R)                                                                                      \
    extern "C" __global__ void __launch_bounds__(256) NAME(const float* __restrict__ act, const long long* table, const int* info, \
                                                           const int* activeExp, const int* activeStart, const int* posOf,      \
                                                           const int* experts, const float* weights, float* out, int k, int H,  \
                                                           int I) {                                                             \
        moe_down_combine<R>(act, table, info, activeExp, activeStart, posOf, experts, weights, out, k, H, I);                  \
    }
MOE_DOWN_COMBINE(moe_down_combine_t1, 8) MOE_DOWN_COMBINE(moe_down_combine_t1_r4, 4)

#include "block_sum.cuh"   // norms.cu's blockSum: the same reduction order, so the norm below has rms_norm_v4's bits

// MLA's new cache rows for single-token segments: latent[b] = rms_norm_v4(latent[b]) (in place, the same arithmetic
// and block size), written also to row positions[b] of latent cache b, and kRot[b] copied to row positions[b] of
// k_rot cache b (kRot null: none): one launch for rms_norm_v4 and two mla_append_rows. Grid: segments; block:
// rms_norm_v4's for R (R / 4 rounded up to warps). Needs R % 4 == 0, R <= 16 * blockDim, 16-byte aligned rows.
extern "C" __global__ void mla_norm_append(float* latent, const float* __restrict__ w, float eps, int R, const float* __restrict__ kRot,
                                           int rope, const long long* __restrict__ latTable, const long long* __restrict__ rotTable,
                                           const int* __restrict__ positions) {
    __shared__ float red[32];
    int b = blockIdx.x;
    long base = (long)b * R;
    int n4 = R >> 2;
    float4* xv = reinterpret_cast<float4*>(latent + base);
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        v[j] = i < n4 ? xv[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    ss = blockSum(ss, red);
    float inv = 1.0f / sqrtf(ss / R + eps);
    long pos = positions[b];
    const float4* wv = reinterpret_cast<const float4*>(w);
    float4* cv = reinterpret_cast<float4*>((float*)latTable[b] + pos * R);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < n4) {
            float4 a = v[j], s = wv[i];
            float4 o = make_float4(s.x * (a.x * inv), s.y * (a.y * inv), s.z * (a.z * inv), s.w * (a.w * inv));
            xv[i] = o;
            cv[i] = o;
        }
    }
    if (kRot != nullptr) {
        float* rc = (float*)rotTable[b] + pos * rope;
        for (int c = threadIdx.x; c < rope; c += blockDim.x) rc[c] = kRot[(long)b * rope + c];
    }
}
