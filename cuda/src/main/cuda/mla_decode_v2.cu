// Replacement of mla_decode.cu's split and combine (same arguments, same partial layout), used by the backend with
// -Dkimimesh.cuda.mlaDecode=v2 (MlaKernels): the Nsight profile of the graph run (docs/gpu-logs/profile-decode-b1-graph.txt)
// put the current pair at 63.6 + 23.1 us for one MLA layer at batch 1 and context 4k, latency-bound: about 140 blocks of
// 4 warps, one per SM, with at most four 16-byte loads in flight per lane (about 8 KB per SM). Here a block has 8 warps,
// a lane issues all of its row's loads before the first product (up to 16 x 16 bytes), the context pass splits the
// positions over two thread halves, and the combine computes each range's weight once. Limits (checked by MlaKernels):
// R <= 512 and rope <= 64, both multiples of 4, at most 8 heads a block, at most 1024 ranges. Standalone check and
// timing against mla_decode.cu: cuda/bench/mla-decode/run.sh.

#include "mla_combine.cuh"

#define V2_CHUNK 128     // positions per sub-chunk
#define V2_THREADS 256   // 8 warps
#define V2_HG 8          // most heads per block

// grid (splits, H / hg, B), block V2_THREADS; dynamic shared (hg * (R + rope) + V2_CHUNK * V2_HG + 128 * 32) floats.
extern "C" __global__ void __launch_bounds__(V2_THREADS) mla_decode_split_v2(
        const float* __restrict__ qLat, const float* __restrict__ q, const long long* __restrict__ table,
        const int* __restrict__ positions, float* __restrict__ acc, float* __restrict__ ml, int H, int R, int rope,
        int qw, int nope, int hg, int perSplit, float scale) {
    extern __shared__ float4 smem4[];
    float* sq = (float*) smem4;                       // [hg][R + rope]
    float* sp = sq + hg * (R + rope);                 // [V2_CHUNK][V2_HG]: scores, then probabilities
    float* sh = sp + V2_CHUNK * V2_HG;                // [128][32]: the second half's context columns, summed at the end
    __shared__ float red[V2_THREADS / 32][V2_HG];
    int split = blockIdx.x, group = blockIdx.y, b = blockIdx.z, splits = gridDim.x;
    int visible = positions[b] + 1;
    int first = split * perSplit * V2_CHUNK;
    if (first >= visible) return;
    int last = min(visible, first + perSplit * V2_CHUNK);
    const float* lat = (const float*) table[2 * b];
    const float* rot = (const float*) table[2 * b + 1];
    int h0 = group * hg, w = R + rope, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int i = tid; i < hg * w; i += V2_THREADS) {
        int g = i / w, c = i - g * w;
        sq[i] = c < R ? qLat[((long) b * H + h0 + g) * R + c] : q[(long) b * H * qw + (long) (h0 + g) * qw + nope + (c - R)];
    }
    __syncthreads();
    int R4 = R >> 2, rope4 = rope >> 2;
    int col = tid & 127, half = tid >> 7;            // context pass: column col, positions of parity `half`
    float m[V2_HG], l[V2_HG], a[V2_HG][4];
#pragma unroll
    for (int g = 0; g < V2_HG; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        a[g][0] = a[g][1] = a[g][2] = a[g][3] = 0.0f;
    }
    for (int c0 = first; c0 < last; c0 += V2_CHUNK) {
        int n = min(V2_CHUNK, last - c0);
        // scores: eight lanes per row (4 rows per warp, 32 per sweep), every load of the row issued first
        for (int base = warp * 4; base < n; base += V2_THREADS / 8) {
            int row = base + (lane >> 3), part = lane & 7;
            long r = c0 + min(row, n - 1);
            const float4* k4 = (const float4*) (lat + r * R);
            const float4* kr = (const float4*) (rot + r * rope);
            float4 kk[16], rr[2];
#pragma unroll
            for (int u = 0; u < 16; u++) kk[u] = part + 8 * u < R4 ? k4[part + 8 * u] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int u = 0; u < 2; u++) rr[u] = part + 8 * u < rope4 ? kr[part + 8 * u] : make_float4(0.f, 0.f, 0.f, 0.f);
            float d[V2_HG];
#pragma unroll
            for (int g = 0; g < V2_HG; g++) {
                d[g] = 0.0f;
                if (g < hg) {
                    const float4* qg = (const float4*) (sq + g * w);
#pragma unroll
                    for (int u = 0; u < 16; u++) {
                        if (part + 8 * u < R4) {
                            float4 qq = qg[part + 8 * u], k = kk[u];
                            d[g] = fmaf(qq.x, k.x, d[g]);
                            d[g] = fmaf(qq.y, k.y, d[g]);
                            d[g] = fmaf(qq.z, k.z, d[g]);
                            d[g] = fmaf(qq.w, k.w, d[g]);
                        }
                    }
                    const float4* qr = (const float4*) (sq + g * w + R);
#pragma unroll
                    for (int u = 0; u < 2; u++) {
                        if (part + 8 * u < rope4) {
                            float4 qq = qr[part + 8 * u], k = rr[u];
                            d[g] = fmaf(qq.x, k.x, d[g]);
                            d[g] = fmaf(qq.y, k.y, d[g]);
                            d[g] = fmaf(qq.z, k.z, d[g]);
                            d[g] = fmaf(qq.w, k.w, d[g]);
                        }
                    }
                }
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 4);
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 2);
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 1);
            }
            if (part == 0 && row < n) {
#pragma unroll
                for (int g = 0; g < V2_HG; g++) sp[row * V2_HG + g] = d[g] * scale;
            }
        }
        __syncthreads();
        // running max and sum per head: warp g (of the first hg) reduces head g's column of sp
        if (warp < hg) {
            int g = warp;
            float v = -INFINITY;
            for (int t = lane; t < n; t += 32) v = fmaxf(v, sp[t * V2_HG + g]);
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
            float mx = fmaxf(m[g], v);
            float sum = 0.0f;
            for (int t = lane; t < n; t += 32) {
                float p = expf(sp[t * V2_HG + g] - mx);
                sp[t * V2_HG + g] = p;
                sum += p;
            }
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
            if (lane == 0) {
                red[0][g] = mx;
                red[1][g] = sum;
            }
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < V2_HG; g++) {
            float mx = g < hg ? red[0][g] : 0.0f, sum = g < hg ? red[1][g] : 0.0f;
            float f = m[g] == -INFINITY ? 0.0f : expf(m[g] - mx);
            l[g] = l[g] * f + sum;
            m[g] = mx;
            a[g][0] *= f;
            a[g][1] *= f;
            a[g][2] *= f;
            a[g][3] *= f;
        }
        // context: this half's positions (i = half, half + 2, ...), eight rows' loads in flight
        if (col < R4) {
            const float4* cp = (const float4*) (lat + (long) c0 * R) + col;
#pragma unroll 8
            for (int i = half; i < n; i += 2) {
                float4 k = cp[(long) i * R4];
                float4 p0 = ((const float4*) sp)[i * 2], p1 = ((const float4*) sp)[i * 2 + 1];
                float p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
#pragma unroll
                for (int g = 0; g < V2_HG; g++) {
                    a[g][0] = fmaf(p[g], k.x, a[g][0]);
                    a[g][1] = fmaf(p[g], k.y, a[g][1]);
                    a[g][2] = fmaf(p[g], k.z, a[g][2]);
                    a[g][3] = fmaf(p[g], k.w, a[g][3]);
                }
            }
        }
        __syncthreads();   // sp and red are rewritten by the next sub-chunk
    }
    // the second half's context goes through shared memory and is added to the first half's (a fixed order)
    if (half == 1 && col < R4) {
#pragma unroll
        for (int g = 0; g < V2_HG; g++) {
            sh[col * 32 + g * 4 + 0] = a[g][0];
            sh[col * 32 + g * 4 + 1] = a[g][1];
            sh[col * 32 + g * 4 + 2] = a[g][2];
            sh[col * 32 + g * 4 + 3] = a[g][3];
        }
    }
    __syncthreads();
    if (half == 0) {
#pragma unroll
        for (int g = 0; g < V2_HG; g++) {
            if (g >= hg) continue;
            long row = ((long) b * splits + split) * H + h0 + g;
            if (col < R4) {
                ((float4*) (acc + row * R))[col] = make_float4(a[g][0] + sh[col * 32 + g * 4 + 0], a[g][1] + sh[col * 32 + g * 4 + 1],
                                                               a[g][2] + sh[col * 32 + g * 4 + 2], a[g][3] + sh[col * 32 + g * 4 + 3]);
            }
            if (tid == 0) {
                ml[2 * row] = m[g];
                ml[2 * row + 1] = l[g];
            }
        }
    }
}

// grid (H, B), block 128 (any multiple of 32 up to 1024): the weights (combine_weights), then the columns, each
// thread R / blockDim of them, each column's ranges in order.
extern "C" __global__ void mla_decode_combine_v2(const float* __restrict__ acc, const float* __restrict__ ml,
                                                 const int* __restrict__ positions, float* __restrict__ ctx, int H, int R,
                                                 int perSplit, int splits) {
    __shared__ float wgt[1024];
    __shared__ float redMax[32], redSum[32];
    int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, active;
    float inv = combine_weights(ml, positions, H, h, b, perSplit * V2_CHUNK, splits, wgt, redMax, redSum, &active);
    for (int r = tid; r < R; r += blockDim.x) {
        float v = 0.0f;
#pragma unroll 8
        for (int s = 0; s < active; s++) v = fmaf(wgt[s], acc[(((long) b * splits + s) * H + h) * R + r], v);
        ctx[((long) b * H + h) * R + r] = v * inv;
    }
}

// The same combine with a block per (head, sequence, blockDim columns): grid (H, B, ceil(R / blockDim)), one column a
// thread and 32 of its ranges' loads issued before the first product. mla_decode_combine_v2's 32 blocks (a block a
// head at batch 1) kept about 4,000 threads each walking 4 columns x ~35 ranges of 4-byte loads, 8 in flight: 37.6 us
// in the batch-1 profile of 2026-12-06 for about 2 MB. Every column's sum runs in the same order with the same weights, so
// the result is bit-identical to mla_decode_combine_v2 at the same block size. The default since its H100 check
// (-Dkimimesh.cuda.mlaCombine=v2 for the narrow one). The sums are combine_column in mla_combine.cuh (shared with v3).
extern "C" __global__ void mla_decode_combine_v2w(const float* __restrict__ acc, const float* __restrict__ ml,
                                                  const int* __restrict__ positions, float* __restrict__ ctx, int H, int R,
                                                  int perSplit, int splits) {
    combine_column(acc, ml, positions, ctx, H, R, perSplit * V2_CHUNK, splits);
}
