// The split decode kernels' shared combine step (mla_decode_v2.cu, mla_decode_v3.cu): each sequence's cache is cut
// into ranges of `span` positions, a block of the split kernel writes one range's partial context [H][R] and its
// (max, sum) per head, and the combine weighs the ranges by exp(m_s - M).
#pragma once

// The ranges' maxima and weighted sums by the whole block (each thread its ranges, then a fixed-order reduction, so
// the result does not depend on timing) and each range's weight exp(m_s - M) once in wgt: returns 1 / total and sets
// *activeOut. Shared by every combine, so their weights (and results) are the same bits for one block size.
__device__ __forceinline__ float combine_weights(const float* __restrict__ ml, const int* __restrict__ positions, int H, int h, int b,
                                                 int span, int splits, float* wgt, float* redMax, float* redSum, int* activeOut) {
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    // every active range holds at least one visible position, so its max is finite
    int active = min(min(splits, 1024), (positions[b] + 1 + span - 1) / span);
    float mx = -INFINITY;
    for (int s = tid; s < active; s += blockDim.x) mx = fmaxf(mx, ml[2 * (((long) b * splits + s) * H + h)]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    if (lane == 0) redMax[warp] = mx;
    __syncthreads();
    mx = redMax[0];
    for (int w = 1; w < nw; w++) mx = fmaxf(mx, redMax[w]);
    float t = 0.0f;
    for (int s = tid; s < active; s += blockDim.x) {
        long row = ((long) b * splits + s) * H + h;
        float e = expf(ml[2 * row] - mx);
        wgt[s] = e;
        t += e * ml[2 * row + 1];
    }
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffff, t, o);
    if (lane == 0) redSum[warp] = t;
    __syncthreads();   // also publishes wgt
    float total = redSum[0];
    for (int w = 1; w < nw; w++) total += redSum[w];
    *activeOut = active;
    return 1.0f / total;
}

// The wide combine's column sums: one column a thread, 32 of its ranges' loads issued before the first product, every
// column's ranges in order (the same sums as a narrower combine with the same weights).
__device__ __forceinline__ void combine_column(const float* __restrict__ acc, const float* __restrict__ ml,
                                               const int* __restrict__ positions, float* __restrict__ ctx, int H, int R, int span,
                                               int splits) {
    __shared__ float wgt[1024];
    __shared__ float redMax[32], redSum[32];
    int h = blockIdx.x, b = blockIdx.y, active;
    float inv = combine_weights(ml, positions, H, h, b, span, splits, wgt, redMax, redSum, &active);
    int r = blockIdx.z * blockDim.x + threadIdx.x;
    if (r >= R) return;
    const float* a = acc + ((long) b * splits * H + h) * R + r;
    long stride = (long) H * R;
    float v = 0.0f;
    for (int s0 = 0; s0 < active; s0 += 32) {
        float av[32];
#pragma unroll
        for (int j = 0; j < 32; j++) av[j] = s0 + j < active ? a[(s0 + j) * stride] : 0.0f;
#pragma unroll
        for (int j = 0; j < 32; j++)
            if (s0 + j < active) v = fmaf(wgt[s0 + j], av[j], v);
    }
    ctx[((long) b * H + h) * R + r] = v * inv;
}
