// The block-wide sum of the norm kernels, shared so that every kernel normalising a row gets rms_norm_v4's bits:
// a warp shuffle tree, then the warps' partial sums added by warp 0 in warp order. Needs blockDim a multiple of 32,
// at most 1024, and red[] of 32 floats; every thread of the block must call it.
#pragma once

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
