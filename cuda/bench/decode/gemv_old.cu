// out[T, N] = x[T, K] W^T for few rows T (decode): W [N, K] bf16 read once with 16-byte loads, fp32 accumulation.
// One warp per output row n; tokens in groups of 8 re-read the (L1-resident) weight row.
#include <cuda_bf16.h>

__device__ __forceinline__ float bf16lo(unsigned int v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16hi(unsigned int v) { return __uint_as_float(v & 0xffff0000u); }

extern "C" __global__ void gemv_bf16(const float* __restrict__ x, const unsigned short* __restrict__ w, float* __restrict__ out,
                                     int T, int N, int K, int vecOk) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= N) return;
    const unsigned short* wr = w + (long)warp * K;
    bool vec = vecOk && (K & 7) == 0;
    for (int t0 = 0; t0 < T; t0 += 8) {
        int tn = min(8, T - t0);
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = 0.0f;
        if (vec) {
            // four 16-byte weight loads in flight per lane before the first use (one row is a few KB: without this
            // each warp waits a full memory latency per 512 bytes); the sum order over k is unchanged
            for (int k0 = lane * 8; k0 < K; k0 += 1024) {
                uint4 wq[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int k = k0 + u * 256;
                    wq[u] = k < K ? __ldg(reinterpret_cast<const uint4*>(wr + k)) : make_uint4(0, 0, 0, 0);
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int k = k0 + u * 256;
                    if (k >= K) break;
                    uint4 wv = wq[u];
                    float wf[8] = {bf16lo(wv.x), bf16hi(wv.x), bf16lo(wv.y), bf16hi(wv.y),
                                   bf16lo(wv.z), bf16hi(wv.z), bf16lo(wv.w), bf16hi(wv.w)};
#pragma unroll
                    for (int j = 0; j < 8; j++) {
                        if (j < tn) {
                            const float4* xp = reinterpret_cast<const float4*>(x + (long)(t0 + j) * K + k);
                            float4 a = xp[0], b = xp[1];
                            acc[j] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w
                                    + wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
                        }
                    }
                }
            }
        } else {
            for (int k = lane; k < K; k += 32) {
                float wf = __uint_as_float(((unsigned int)wr[k]) << 16);
#pragma unroll
                for (int j = 0; j < 8; j++) if (j < tn) acc[j] += wf * x[(long)(t0 + j) * K + k];
            }
        }
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float v = acc[j];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
            if (lane == 0 && j < tn) out[(long)(t0 + j) * N + warp] = v;
        }
    }
}
