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
