// Element-wise kernels of the CUDA backend: fp32 activations, IEEE math (no fast-math), one thread per element.
#include <cuda_bf16.h>

__device__ __forceinline__ float sigmoidf_(float z) { return 1.0f / (1.0f + expf(-z)); }
__device__ __forceinline__ float bf16f(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }

extern "C" __global__ void add_f32(float* acc, const float* x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) acc[i] += x[i];
}

extern "C" __global__ void swiglu_f32(const float* g, const float* u, float* o, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float z = g[i];
        o[i] = z * sigmoidf_(z) * u[i];
    }
}

extern "C" __global__ void sigmoid_f32(const float* x, float* o, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) o[i] = sigmoidf_(x[i]);
}

// g = -exp(A_log[head]) * softplus(f + dt_bias); softplus(z) = z above 20 (torch's threshold).
extern "C" __global__ void kda_gate(const float* f, const float* aLog, const float* dtBias, float* g, long n, int cols, int headDim) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int c = (int)(i % cols);
        float z = f[i] + dtBias[c];
        float sp = z > 20.0f ? z : log1pf(expf(z));
        g[i] = -expf(aLog[c / headDim]) * sp;
    }
}

extern "C" __global__ void bf16_to_f32(const unsigned short* src, float* dst, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) dst[i] = bf16f(src[i]);
}

extern "C" __global__ void f32_to_bf16(const float* src, __nv_bfloat16* dst, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) dst[i] = __float2bfloat16_rn(src[i]);
}

// out[r] = table[ids[r]] widened to fp32; table is bf16 (isBf16) or fp32.
extern "C" __global__ void embed_rows(const void* table, int isBf16, const int* ids, float* out, int rows, int cols) {
    int r = blockIdx.x;
    long base = (long)ids[r] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        out[(long)r * cols + c] = isBf16 ? bf16f(((const unsigned short*)table)[base + c]) : ((const float*)table)[base + c];
    }
}

// out[i] = x[rows[i]]
extern "C" __global__ void gather_rows(const float* x, const int* rows, float* out, int cols) {
    int i = blockIdx.x;
    const float* src = x + (long)rows[i] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(long)i * cols + c] = src[c];
}

// out[rows[i]] += weights[i] * src[i]; rows are distinct within one launch (one expert's rows).
extern "C" __global__ void scatter_add_rows(const float* src, const int* rows, const float* weights, float* out, int cols) {
    int i = blockIdx.x;
    float w = weights[i];
    float* dst = out + (long)rows[i] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) dst[c] += w * src[(long)i * cols + c];
}

// The batched form of scatter_add_rows over a group of experts: table holds, per touched row i, (k + 1) ints: the row,
// then up to k pair indices into src / weights in ascending expert order, -1 past the last. The row's contributions
// are added in that order, each as `dst += w * src` like one scatter_add_rows launch per expert. grid: touched rows
extern "C" __global__ void scatter_add_pairs(const float* src, const int* table, const float* weights, float* out, int k, int cols) {
    const int* t = table + (long)blockIdx.x * (k + 1);
    float* dst = out + (long)t[0] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float acc = dst[c];
        for (int j = 1; j <= k && t[j] >= 0; j++) acc += weights[t[j]] * src[(long)t[j] * cols + c];
        dst[c] = acc;
    }
}

// x = hi + mid + lo exactly (each bf16, 8 significant bits; the two remainders are exact in fp32), written as three
// consecutive [n] blocks: a bf16 x bf16 tensor-core GEMM of the stacked [3T, K] matrix against a bf16 weight then
// gives three fp32 products whose sum is x W^T to fp32 accuracy (the products of bf16 pairs are exact in fp32).
extern "C" __global__ void f32_split_bf16x3(const float* src, __nv_bfloat16* dst, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float x = src[i];
        __nv_bfloat16 hi = __float2bfloat16_rn(x);
        float r1 = x - __bfloat162float(hi);
        __nv_bfloat16 mid = __float2bfloat16_rn(r1);
        float r2 = r1 - __bfloat162float(mid);
        dst[i] = hi;
        dst[n + i] = mid;
        dst[2 * n + i] = __float2bfloat16_rn(r2);
    }
}

// out = (part[2] + part[1]) + part[0] over three consecutive [n] blocks (smallest terms first).
extern "C" __global__ void sum3_f32(const float* part, float* out, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        out[i] = (part[2 * n + i] + part[n + i]) + part[i];
    }
}

// Random bf16 weights written on the device (benchmarks of models too large to write to disk): the distribution of
// the bench's RandomCheckpoint (random sign, exponent 2^-8..2^-5, 7 random mantissa bits), from a splitmix64 hash
// of (seed, index) so the values do not depend on the launch shape.
extern "C" __global__ void fill_random_bf16(unsigned short* dst, long n, unsigned long long seed) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned long long z = seed + 0x9E3779B97F4A7C15ull * (unsigned long long)(i + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        unsigned b = (unsigned)z & 0xFFFFu;
        dst[i] = (unsigned short)((b & 0x8000u) | ((0x77u + ((b >> 7) & 3u)) << 7) | (b & 0x7Fu));
    }
}

// ---- The bf16-compute prefill's operands made by their producer (CudaBackend's bf16 operand copies) ----

#include "bf16x4.cuh"

// swiglu_f32 (the same operations in the same order) 4 values a thread, writing o and bf16(o) at ob: the down
// projection's operand without a conversion pass after. n % 4 == 0, every pointer 16-byte aligned (ob 8).
extern "C" __global__ void swiglu_f32_bf16(const float* __restrict__ g, const float* __restrict__ u, float* o,
                                           __nv_bfloat16* __restrict__ ob, long n) {
    const float4* g4 = reinterpret_cast<const float4*>(g);
    const float4* u4 = reinterpret_cast<const float4*>(u);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n / 4; i += (long)gridDim.x * blockDim.x) {
        float4 a = g4[i], b = u4[i];
        float4 r = make_float4(a.x * sigmoidf_(a.x) * b.x, a.y * sigmoidf_(a.y) * b.y, a.z * sigmoidf_(a.z) * b.z,
                               a.w * sigmoidf_(a.w) * b.w);
        reinterpret_cast<float4*>(o)[i] = r;
        reinterpret_cast<uint2*>(ob)[i] = bf16x4(r);
    }
}

// swiglu_f32_bf16 on bf16 g and u (the bf16-compute mode's gate / up projections written by cuBLAS in bf16,
// -Dkimimesh.cuda.activations=bf16): each value widened exactly, then the same operations in the same order; writes
// o (skipped when o is null) and bf16(o) at ob. n % 4 == 0, g, u, ob 8-byte and o 16-byte aligned.
extern "C" __global__ void swiglu_bf16in_f32_bf16(const __nv_bfloat16* __restrict__ g, const __nv_bfloat16* __restrict__ u,
                                                  float* o, __nv_bfloat16* __restrict__ ob, long n) {
    const uint2* g4 = reinterpret_cast<const uint2*>(g);
    const uint2* u4 = reinterpret_cast<const uint2*>(u);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n / 4; i += (long)gridDim.x * blockDim.x) {
        float4 a = bf16x4_in(g4[i]), b = bf16x4_in(u4[i]);
        float4 r = make_float4(a.x * sigmoidf_(a.x) * b.x, a.y * sigmoidf_(a.y) * b.y, a.z * sigmoidf_(a.z) * b.z,
                               a.w * sigmoidf_(a.w) * b.w);
        if (o != nullptr) reinterpret_cast<float4*>(o)[i] = r;
        reinterpret_cast<uint2*>(ob)[i] = bf16x4(r);
    }
}

// out[i, :] = xb[rows[i], :] for bf16 rows (the MoE gather from the norm's bf16 copy: half the bytes read of
// moe_gather_bf16, which converts fp32 rows, and the same values). cols % 4 == 0, 8-byte aligned rows. grid: rows
extern "C" __global__ void gather_rows_bf16(const __nv_bfloat16* __restrict__ xb, const int* __restrict__ rows,
                                            __nv_bfloat16* __restrict__ out, int cols) {
    const uint2* src = reinterpret_cast<const uint2*>(xb + (long)rows[blockIdx.x] * cols);
    uint2* dst = reinterpret_cast<uint2*>(out + (long)blockIdx.x * cols);
    for (int c = threadIdx.x; c < cols / 4; c += blockDim.x) dst[c] = src[c];
}

// kda_gate 4 columns a thread over a (row, column block) grid: no 64-bit division per element (kda_gate ran a 32k
// prefill's [T, 4096] at about 60% of the copy bandwidth), the same expressions, so the same bits. cols % 4 == 0,
// headDim % 4 == 0, f and g 16-byte aligned; g may be f. grid: (ceil(cols / 4 / 256), rows), block 256
__device__ __forceinline__ float4 gate_ld4(const float* f) { return *reinterpret_cast<const float4*>(f); }

__device__ __forceinline__ float4 gate_ld4(const __nv_bfloat16* f) { return bf16x4_in(*reinterpret_cast<const uint2*>(f)); }

template <typename TF>
__device__ __forceinline__ void kda_gate_v4_body(const TF* f, const float* aLog, const float* dtBias, float* g, int cols, int headDim) {
    int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols) return;
    long at = (long)blockIdx.y * cols + c;
    float4 x = gate_ld4(f + at);
    float a = -expf(aLog[c / headDim]); // the 4 columns share a head (headDim % 4 == 0)
    float z[4] = {x.x + dtBias[c], x.y + dtBias[c + 1], x.z + dtBias[c + 2], x.w + dtBias[c + 3]};
    float r[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float sp = z[j] > 20.0f ? z[j] : log1pf(expf(z[j]));
        r[j] = a * sp;
    }
    *reinterpret_cast<float4*>(g + at) = make_float4(r[0], r[1], r[2], r[3]);
}

extern "C" __global__ void kda_gate_v4(const float* f, const float* aLog, const float* dtBias, float* g, int cols, int headDim) {
    kda_gate_v4_body<float>(f, aLog, dtBias, g, cols, headDim);
}

// kda_gate_v4 reading f in bf16 (the f_b projection written by cuBLAS in bf16, -Dkimimesh.cuda.activations=bf16):
// each value widened exactly, then the same expressions. g fp32 (it feeds the KDA recurrence); f 8-byte aligned rows.
extern "C" __global__ void kda_gate_v4_bf16in(const __nv_bfloat16* f, const float* aLog, const float* dtBias, float* g, int cols,
                                              int headDim) {
    kda_gate_v4_body<__nv_bfloat16>(f, aLog, dtBias, g, cols, headDim);
}
