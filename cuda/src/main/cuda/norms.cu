// RMSNorm and sigmoid-gated RMSNorm over groups of `group` consecutive columns: out = w * x / sqrt(mean(x^2) + eps)
// (* sigmoid(gate)). One block per (row, group); out may alias x (each element is read before it is written).

__device__ __forceinline__ float blockSum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = 0.0f;
    if (threadIdx.x < 32) {
        s = lane < (blockDim.x >> 5) ? red[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
        if (lane == 0) red[0] = s;
    }
    __syncthreads();
    return red[0];
}

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
