#include <cuda_bf16.h>

// Causal depthwise short convolution (kernel K <= 8) with carried tails, then SiLU. Segment s covers rows
// [start[s], start[s] + len[s]); tails[s] points at its [K-1, P] tail (oldest first). Segments of at most 64 rows
// (decode) take one launch: each thread owns channel c of its segment, so it can write the new tail after its own
// reads of the old one (withTail = 1). Longer segments take two: the convolution (its 64-row blocks all read the old
// tail), then short_conv_tail.

__device__ __forceinline__ void conv_tail_update(const float* x, float* tail, int row0, int L, int c, int P, int K) {
    float buf[8];
    for (int r = 0; r < K - 1; r++) {
        int src = L - (K - 1) + r;
        buf[r] = src >= 0 ? x[(long)(row0 + src) * P + c] : tail[(long)(K - 1 + src) * P + c];
    }
    for (int r = 0; r < K - 1; r++) tail[(long)r * P + c] = buf[r];
}

__device__ __forceinline__ void conv_segment(const float* x, const float* w, const long long* tails, const int* start,
                                             const int* len, float* out, int P, int K, int withTail, int s) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int t0 = blockIdx.z * 64;
    int L = len[s];
    if (c >= P || t0 >= L) return;
    const float* tail = (const float*)tails[s];
    int row0 = start[s];
    float wk[8];
    for (int j = 0; j < K; j++) wk[j] = w[c * K + j];
    int t1 = min(L, t0 + 64);
    for (int t = t0; t < t1; t++) {
        float acc = 0.0f;
        for (int j = 0; j < K; j++) {
            int src = t - (K - 1) + j;
            float v = src >= 0 ? x[(long)(row0 + src) * P + c] : tail[(long)(K - 1 + src) * P + c];
            acc += wk[j] * v;
        }
        out[(long)(row0 + t) * P + c] = acc / (1.0f + expf(-acc));
    }
    if (withTail) conv_tail_update(x, (float*)tails[s], row0, L, c, P, K);
}

extern "C" __global__ void short_conv_silu(const float* x, const float* w, const long long* tails, const int* start,
                                           const int* len, float* out, int P, int K, int withTail) {
    conv_segment(x, w, tails, start, len, out, P, K, withTail, blockIdx.y);
}

// KDA's q, k and v convolutions of one step in one launch (three short launches of a decode step were latency, not
// work): grid.y = 3 x segments, block row y is convolution y / S of segment y % S; tails holds the three
// convolutions' tail pointers, S each, then the shared starts and lengths follow as for short_conv_silu.
extern "C" __global__ void short_conv_silu3(const float* x0, const float* x1, const float* x2, const float* w0,
                                            const float* w1, const float* w2, float* o0, float* o1, float* o2,
                                            const long long* tails, const int* start, const int* len, int P, int K,
                                            int withTail, int S) {
    int which = blockIdx.y / S, s = blockIdx.y - which * S;
    const float* x = which == 0 ? x0 : which == 1 ? x1 : x2;
    const float* w = which == 0 ? w0 : which == 1 ? w1 : w2;
    float* o = which == 0 ? o0 : which == 1 ? o1 : o2;
    conv_segment(x, w, tails + (long) which * S, start, len, o, P, K, withTail, s);
}

extern "C" __global__ void short_conv_tail(const float* x, const long long* tails, const int* start, const int* len, int P, int K) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int s = blockIdx.y;
    if (c >= P) return;
    conv_tail_update(x, (float*)tails[s], start[s], len[s], c, P, K);
}

// ---- Prefill (segments over 64 rows): short_conv_silu with a register window ----
// short_conv_silu re-reads K input rows for every output row and has one load in flight a thread: at 32k tokens its
// three KDA convolutions a layer ran at about half the copy bandwidth. Here a thread owns 4 adjacent channels (16-byte
// loads) of a 64-row block, keeps the last KS - 1 input rows in registers (each row is read once, plus KS - 1 halo
// rows a block) and issues four rows' loads before their use. Same products in the same order as short_conv_silu, so
// the same bits. P % 4 == 0, x, out and the tails 16-byte aligned; the tails are updated by short_conv_tail after.

__device__ __forceinline__ float4 conv_ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// Four bf16 inputs widened (exact): the bf16-compute mode's q / k / v projections, written by cuBLAS in bf16.
__device__ __forceinline__ float4 conv_ld4(const __nv_bfloat16* p) {
    uint2 v = *reinterpret_cast<const uint2*>(p);
    float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&v.x));
    float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&v.y));
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ float conv_silu(float a) { return a / (1.0f + expf(-a)); }

template <int KS, typename TX>
__device__ __forceinline__ void conv4_segment(const TX* x, const float* w, const long long* tails, const int* start,
                                              const int* len, float* out, int P, int s) {
    int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    int t0 = blockIdx.z * 64;
    int L = len[s];
    if (c >= P || t0 >= L) return;
    const float* tail = (const float*)tails[s];
    int row0 = start[s];
    float wk[4][KS];
#pragma unroll
    for (int ch = 0; ch < 4; ch++)
#pragma unroll
        for (int j = 0; j < KS; j++) wk[ch][j] = w[(c + ch) * KS + j];
    float4 win[KS]; // win[KS - 1] is the row being convolved, win[0] the oldest
#pragma unroll
    for (int j = 0; j < KS - 1; j++) {
        int src = t0 - (KS - 1) + j;
        win[j] = src >= 0 ? conv_ld4(x + (long)(row0 + src) * P + c) : conv_ld4(tail + (long)(KS - 1 + src) * P + c);
    }
    int t1 = min(L, t0 + 64);
    for (int t = t0; t < t1; t += 4) {
        float4 nx[4];
#pragma unroll
        for (int u = 0; u < 4; u++) if (t + u < t1) nx[u] = conv_ld4(x + (long)(row0 + t + u) * P + c);
#pragma unroll
        for (int u = 0; u < 4; u++) {
            if (t + u < t1) {
                win[KS - 1] = nx[u];
                float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma unroll
                for (int j = 0; j < KS; j++) {
                    a0 += wk[0][j] * win[j].x;
                    a1 += wk[1][j] * win[j].y;
                    a2 += wk[2][j] * win[j].z;
                    a3 += wk[3][j] * win[j].w;
                }
                *reinterpret_cast<float4*>(out + (long)(row0 + t + u) * P + c) =
                        make_float4(conv_silu(a0), conv_silu(a1), conv_silu(a2), conv_silu(a3));
#pragma unroll
                for (int j = 0; j < KS - 1; j++) win[j] = win[j + 1];
            }
        }
    }
}

// grid: (ceil(P / 4 / 256), segments, ceil(longest / 64)), 256 threads. Kimi Linear's kernel size is 4.
extern "C" __global__ void __launch_bounds__(256) short_conv4_silu(const float* x, const float* w, const long long* tails,
                                                                   const int* start, const int* len, float* out, int P) {
    conv4_segment<4, float>(x, w, tails, start, len, out, P, blockIdx.y);
}

// ---- The bf16-compute mode's prefill with bf16 projections (-Dkimimesh.cuda.activations=bf16) ----
// short_conv4_silu reading x in bf16 (8 bytes a 4-channel load instead of 16): each value widened exactly, then the
// same products in the same order. The tails stay fp32 (recurrent state): the tail update widens the last K - 1
// input rows of each segment (short_conv_tail_bf16in). Same shapes and alignment as short_conv4_silu (x 8-byte).
extern "C" __global__ void __launch_bounds__(256) short_conv4_silu_bf16in(const __nv_bfloat16* x, const float* w,
                                                                          const long long* tails, const int* start,
                                                                          const int* len, float* out, int P) {
    conv4_segment<4, __nv_bfloat16>(x, w, tails, start, len, out, P, blockIdx.y);
}

extern "C" __global__ void short_conv_tail_bf16in(const __nv_bfloat16* x, const long long* tails, const int* start,
                                                  const int* len, int P, int K) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int s = blockIdx.y;
    if (c >= P) return;
    float* tail = (float*)tails[s];
    int row0 = start[s], L = len[s];
    float buf[8];
    for (int r = 0; r < K - 1; r++) {
        int src = L - (K - 1) + r;
        buf[r] = src >= 0 ? __bfloat162float(x[(long)(row0 + src) * P + c]) : tail[(long)(K - 1 + src) * P + c];
    }
    for (int r = 0; r < K - 1; r++) tail[(long)r * P + c] = buf[r];
}
