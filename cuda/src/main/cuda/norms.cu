// RMSNorm and sigmoid-gated RMSNorm over groups of `group` consecutive columns: out = w * x / sqrt(mean(x^2) + eps)
// (* sigmoid(gate)). One block per (row, group); out may alias x (each element is read before it is written, and
// only by the thread that writes it).

#include "bf16x4.cuh"
#include "block_sum.cuh"

extern "C" __global__ void rms_norm(const float* x, const float* w, const float* gate, float* out, int cols, int group, float eps) {
    __shared__ float red[32];
    long base = (long)blockIdx.x * cols + (long)blockIdx.y * group;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < group; i += blockDim.x) {
        float v = x[base + i];
        ss += v * v;
    }
    ss = blockSum(ss, red);
    float inv = 1.0f / sqrtf(ss / group + eps);
    for (int i = threadIdx.x; i < group; i += blockDim.x) {
        float v = w[i] * (x[base + i] * inv);
        if (gate != nullptr) v *= 1.0f / (1.0f + expf(-gate[base + i]));
        out[base + i] = v;
    }
}

// The same norm with each thread holding its (up to 4) float4 chunks of the group in registers: one memory latency
// for the loads instead of one per loop step of the plain kernel (a decode row of 2304 took 8 us there), and x is
// read once. Needs group % 4 == 0, group <= 4 * 4 * blockDim.x, cols % 4 == 0 and 16-byte aligned pointers.
// BF16: the output is also written rounded to bf16 at outb (the bf16-compute prefill's GEMM operand, which
// f32_to_bf16 made in a pass of its own before); the fp32 arithmetic is the same either way.
// The gate's rows as 4-value groups: fp32 (float4), or bf16 (uint2: the bf16-compute mode's g_b projection written by
// cuBLAS in bf16), widened exactly by norm_gate4.
__device__ __forceinline__ const float4* norm_gate_rows(const float* gate, long base) {
    return gate != nullptr ? reinterpret_cast<const float4*>(gate + base) : nullptr;
}

__device__ __forceinline__ const uint2* norm_gate_rows(const __nv_bfloat16* gate, long base) {
    return gate != nullptr ? reinterpret_cast<const uint2*>(gate + base) : nullptr;
}

__device__ __forceinline__ float4 norm_gate4(float4 g) { return g; }

__device__ __forceinline__ float4 norm_gate4(uint2 g) { return bf16x4_in(g); }

template <bool BF16, typename TG = float>
__device__ __forceinline__ void rms_norm_v4_body(const float* x, const float* w, const TG* gate, float* out,
                                                 __nv_bfloat16* outb, int cols, int group, float eps) {
    __shared__ float red[32];
    long base = (long)blockIdx.x * cols + (long)blockIdx.y * group;
    int n4 = group >> 2;
    const float4* xv = reinterpret_cast<const float4*>(x + base);
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        v[j] = i < n4 ? xv[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    ss = blockSum(ss, red);
    float inv = 1.0f / sqrtf(ss / group + eps);
    const float4* wv = reinterpret_cast<const float4*>(w);
    const auto* gv = norm_gate_rows(gate, base);
    float4* ov = reinterpret_cast<float4*>(out + base);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < n4) {
            float4 a = v[j], s = wv[i];
            float4 o = make_float4(s.x * (a.x * inv), s.y * (a.y * inv), s.z * (a.z * inv), s.w * (a.w * inv));
            if (gate != nullptr) {
                float4 g = norm_gate4(gv[i]);
                o.x *= 1.0f / (1.0f + expf(-g.x));
                o.y *= 1.0f / (1.0f + expf(-g.y));
                o.z *= 1.0f / (1.0f + expf(-g.z));
                o.w *= 1.0f / (1.0f + expf(-g.w));
            }
            ov[i] = o;
            if (BF16) reinterpret_cast<uint2*>(outb + base)[i] = bf16x4(o);
        }
    }
}

extern "C" __global__ void rms_norm_v4(const float* x, const float* w, const float* gate, float* out, int cols, int group, float eps) {
    rms_norm_v4_body<false>(x, w, gate, out, nullptr, cols, group, eps);
}

// rms_norm_v4 that also writes bf16(out) at outb (8-byte aligned rows: cols % 4 == 0 and outb 16-byte aligned)
extern "C" __global__ void rms_norm_v4_bf16(const float* x, const float* w, const float* gate, float* out, __nv_bfloat16* outb,
                                            int cols, int group, float eps) {
    rms_norm_v4_body<true>(x, w, gate, out, outb, cols, group, eps);
}

// rms_norm_v4_bf16 with a bf16 gate (the KDA output's gated norm, -Dkimimesh.cuda.activations=bf16): the gate's values
// widened exactly, then the same arithmetic. gate 8-byte aligned rows.
extern "C" __global__ void rms_norm_v4_gbf16_bf16(const float* x, const float* w, const __nv_bfloat16* gate, float* out,
                                                  __nv_bfloat16* outb, int cols, int group, float eps) {
    rms_norm_v4_body<true, __nv_bfloat16>(x, w, gate, out, outb, cols, group, eps);
}

// The residual add and the next RMSNorm in one pass (a decoder layer's x += attn; normed = rmsnorm(x)): x += d is
// written back and normed into out, with the arithmetic of add_f32 then rms_norm_v4 (the same bits). One block per
// row (group = cols); the conditions of rms_norm_v4. BF16: as rms_norm_v4_body.
template <bool BF16>
__device__ __forceinline__ void add_rms_norm_v4_body(float* x, const float* d, const float* w, float* out, __nv_bfloat16* outb,
                                                     int cols, float eps) {
    __shared__ float red[32];
    long base = (long)blockIdx.x * cols;
    int n4 = cols >> 2;
    float4* xv = reinterpret_cast<float4*>(x + base);
    const float4* dv = reinterpret_cast<const float4*>(d + base);
    float4 v[4];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < n4) {
            float4 a = xv[i], b = dv[i];
            v[j] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
            xv[i] = v[j];
        } else {
            v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    ss = blockSum(ss, red);
    float inv = 1.0f / sqrtf(ss / cols + eps);
    const float4* wv = reinterpret_cast<const float4*>(w);
    float4* ov = reinterpret_cast<float4*>(out + base);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int i = threadIdx.x + j * blockDim.x;
        if (i < n4) {
            float4 a = v[j], s = wv[i];
            float4 o = make_float4(s.x * (a.x * inv), s.y * (a.y * inv), s.z * (a.z * inv), s.w * (a.w * inv));
            ov[i] = o;
            if (BF16) reinterpret_cast<uint2*>(outb + base)[i] = bf16x4(o);
        }
    }
}

extern "C" __global__ void add_rms_norm_v4(float* x, const float* d, const float* w, float* out, int cols, float eps) {
    add_rms_norm_v4_body<false>(x, d, w, out, nullptr, cols, eps);
}

// add_rms_norm_v4 that also writes bf16(out) at outb
extern "C" __global__ void add_rms_norm_v4_bf16(float* x, const float* d, const float* w, float* out, __nv_bfloat16* outb,
                                                int cols, float eps) {
    add_rms_norm_v4_body<true>(x, d, w, out, outb, cols, eps);
}
