// Absorbed MLA decode with every head of a sequence in one block (-Dkimimesh.cuda.mlaDecode=v3, MlaKernels): v2 takes
// at most 8 heads a block, so with Kimi Linear's 32 heads each cached latent row is read by 4 blocks (4 x 75 MB a
// sequence at context 32k, more than L2 holds). Here a block holds q for up to 32 heads in shared memory, stages
// 16 cached rows at a time (cp.async, two buffers: the next tile loads while this one is used) and computes the
// [16 rows x 32 heads] scores and the [32 heads x R] context update as register-tiled fp32 SIMT products from shared
// memory, so each row is read from memory once. The partials keep v2's layout ([B][splits][H][R] context, (max, sum)
// per head), ranges of `span` positions (a multiple of 16); mla_decode_combine_v3 combines them.
// Limits (checked by MlaKernels): R <= 512 and rope <= 64, both multiples of 4; ranges <= 1024.

#include "mla_combine.cuh"

#define V3_THREADS 256   // 8 warps
#define V3_TILE 16       // cached rows a stage
#define V3_HEADS 32      // heads a block holds (hg <= 32; fewer are zero-padded)

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    unsigned s = (unsigned) __cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Shared floats for a row width W = R + rope: the float4 stride ld4 = (W / 4) | 1 is odd, so consecutive rows (and
// heads) start on distinct 16-byte bank groups and the products' loads are conflict-free.
// q [32][ld4] float4, two tiles [2][16][ld4] float4, the k-quarters' partial scores [4][16][32], the probabilities
// [16][32] and the running max, sum and rescale factor per head [3][32].

// grid (splits, groups, B), block V3_THREADS, dynamic shared 16 * 64 * ld4 + 4 * (4 * 16 * 32 + 16 * 32 + 3 * 32) bytes.
// hg heads a block (group g holds heads g * hg .. min(H, g * hg + hg) - 1), span positions a range.
extern "C" __global__ void __launch_bounds__(V3_THREADS, 1) mla_decode_split_v3(
        const float* __restrict__ qLat, const float* __restrict__ q, const long long* __restrict__ table,
        const int* __restrict__ positions, float* __restrict__ acc, float* __restrict__ ml, int H, int R, int rope,
        int qw, int nope, int hg, int span, float scale) {
    extern __shared__ float4 smem4[];
    int R4 = R >> 2, W4 = R4 + (rope >> 2), ld4 = W4 | 1;
    float4* sq = smem4;                                        // [V3_HEADS][ld4]
    float4* sk = sq + V3_HEADS * ld4;                          // [2][V3_TILE][ld4]
    float* red = (float*) (sk + 2 * V3_TILE * ld4);            // [4][V3_TILE][V3_HEADS]
    float* sp = red + 4 * V3_TILE * V3_HEADS;                  // [V3_TILE][V3_HEADS]
    float* sm = sp + V3_TILE * V3_HEADS;                       // [V3_HEADS] running max of the scaled scores
    float* sl = sm + V3_HEADS;                                 // [V3_HEADS] running sum of exp(s - max)
    float* sf = sl + V3_HEADS;                                 // [V3_HEADS] this tile's rescale factor
    int split = blockIdx.x, group = blockIdx.y, b = blockIdx.z, splits = gridDim.x;
    int visible = positions[b] + 1;
    int first = split * span;
    if (first >= visible) return;
    int last = min(visible, first + span);
    const float* lat = (const float*) table[2 * b];
    const float* rot = (const float*) table[2 * b + 1];
    int h0 = group * hg, hn = min(hg, H - h0), tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    // one tile of cached rows [lat | rot] into buffer buf; rows past the range repeat its last row (never used)
    auto stage = [&](int t0, int buf) {
        int n = min(V3_TILE, last - t0);
        float4* dst = sk + buf * V3_TILE * ld4;
        for (int i = tid; i < V3_TILE * W4; i += V3_THREADS) {
            int t = i / W4, c = i - t * W4;
            long r = t0 + min(t, n - 1);
            const float4* src = c < R4 ? (const float4*) (lat + r * R) + c : (const float4*) (rot + r * rope) + (c - R4);
            cp_async16(dst + t * ld4 + c, src);
        }
        cp_async_commit();
    };
    // q of this block's heads, [q_lat | q_rope] per head, by cp.async like the tiles (all of a thread's 16-byte loads in
    // flight at once, in the first tile's group); heads past hn are zeros (their scores are never used). The rope part
    // goes through registers where q's rows are not 16-byte aligned.
    bool ropeAsync = ((nope | qw) & 3) == 0 && ((unsigned long long) q & 15) == 0;
    for (int i = tid; i < V3_HEADS * W4; i += V3_THREADS) {
        int g = i / W4, c = i - g * W4;
        float4* dst = sq + g * ld4 + c;
        if (g >= hn) {
            *dst = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        } else if (c < R4) {
            cp_async16(dst, (const float4*) (qLat + ((long) b * H + h0 + g) * R) + c);
        } else {
            const float* qr = q + (long) b * H * qw + (long) (h0 + g) * qw + nope + 4 * (c - R4);
            if (ropeAsync) cp_async16(dst, qr);
            else *dst = make_float4(qr[0], qr[1], qr[2], qr[3]);
        }
    }
    stage(first, 0);
    if (tid < V3_HEADS) {
        sm[tid] = -INFINITY;
        sl[tid] = 0.0f;
    }
    // scores: warp = (k quarter kq, row half rh); a lane 2 rows (rh * 8 + rg + 4i) x 4 heads (hq + 8j) over its quarter
    int kq = warp & 3, rh = warp >> 2, rg = lane & 3, hq = lane >> 2;
    int kPer = (W4 + 3) >> 2, kb = kq * kPer, ke = min(W4, kb + kPer);
    // context: a thread 8 heads (ch * 8 + j) x 2 float4 columns (cg, cg + 64); a warp's columns are consecutive
    int ch = tid >> 6, cg = tid & 63;
    bool c0 = cg < R4, c1 = cg + 64 < R4;
    float4 a[8][2];
#pragma unroll
    for (int j = 0; j < 8; j++) a[j][0] = a[j][1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    int tiles = (last - first + V3_TILE - 1) / V3_TILE;
    for (int it = 0; it < tiles; it++) {
        int t0 = first + it * V3_TILE, n = min(V3_TILE, last - t0);
        if (it + 1 < tiles) {
            stage(t0 + V3_TILE, (it + 1) & 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();   // this tile (and, the first time, q and the running max / sum) visible to all
        const float4* kt = sk + (it & 1) * V3_TILE * ld4;
        {
            float d[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) d[i][j] = 0.0f;
            const float4* k0 = kt + (rh * 8 + rg) * ld4;
            const float4* k1 = k0 + 4 * ld4;
            const float4* qh = sq + hq * ld4;
#pragma unroll 4
            for (int c = kb; c < ke; c++) {
                float4 x0 = k0[c], x1 = k1[c];
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    float4 y = qh[j * 8 * ld4 + c];
                    d[0][j] = fmaf(x0.x, y.x, d[0][j]);
                    d[0][j] = fmaf(x0.y, y.y, d[0][j]);
                    d[0][j] = fmaf(x0.z, y.z, d[0][j]);
                    d[0][j] = fmaf(x0.w, y.w, d[0][j]);
                    d[1][j] = fmaf(x1.x, y.x, d[1][j]);
                    d[1][j] = fmaf(x1.y, y.y, d[1][j]);
                    d[1][j] = fmaf(x1.z, y.z, d[1][j]);
                    d[1][j] = fmaf(x1.w, y.w, d[1][j]);
                }
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) red[(kq * V3_TILE + rh * 8 + rg + 4 * i) * V3_HEADS + hq + 8 * j] = d[i][j];
        }
        __syncthreads();
        {
            // online softmax: eight lanes a head, rows part and part + 8; the quarters summed in a fixed order
            int h = tid >> 3, part = tid & 7;
            float s[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                int t = part + 8 * i;
                const float* rs = red + t * V3_HEADS + h;
                float v = ((rs[0] + rs[V3_TILE * V3_HEADS]) + rs[2 * V3_TILE * V3_HEADS]) + rs[3 * V3_TILE * V3_HEADS];
                s[i] = t < n ? v * scale : -INFINITY;
            }
            float mx = fmaxf(s[0], s[1]);
            for (int o = 4; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
            float mOld = sm[h], mNew = fmaxf(mOld, mx);
            float f = mOld == -INFINITY ? 0.0f : expf(mOld - mNew);
            float p0 = part < n ? expf(s[0] - mNew) : 0.0f, p1 = part + 8 < n ? expf(s[1] - mNew) : 0.0f;
            sp[part * V3_HEADS + h] = p0;
            sp[(part + 8) * V3_HEADS + h] = p1;
            float sum = p0 + p1;
            for (int o = 4; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
            __syncwarp();   // every lane of the head has read sm[h] before it is overwritten
            if (part == 0) {
                sm[h] = mNew;
                sl[h] = sl[h] * f + sum;
                sf[h] = f;
            }
        }
        __syncthreads();
        {
            const float4* sp4 = (const float4*) sp;
            float4 f0 = ((const float4*) sf)[ch * 2], f1 = ((const float4*) sf)[ch * 2 + 1];
            float f[8] = {f0.x, f0.y, f0.z, f0.w, f1.x, f1.y, f1.z, f1.w};
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    a[j][u].x *= f[j];
                    a[j][u].y *= f[j];
                    a[j][u].z *= f[j];
                    a[j][u].w *= f[j];
                }
#pragma unroll 2
            for (int t = 0; t < n; t++) {
                float4 p0 = sp4[t * (V3_HEADS / 4) + ch * 2], p1 = sp4[t * (V3_HEADS / 4) + ch * 2 + 1];
                float p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
                float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                float4 x[2] = {c0 ? kt[t * ld4 + cg] : zero, c1 ? kt[t * ld4 + cg + 64] : zero};
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int u = 0; u < 2; u++) {
                        a[j][u].x = fmaf(p[j], x[u].x, a[j][u].x);
                        a[j][u].y = fmaf(p[j], x[u].y, a[j][u].y);
                        a[j][u].z = fmaf(p[j], x[u].z, a[j][u].z);
                        a[j][u].w = fmaf(p[j], x[u].w, a[j][u].w);
                    }
            }
        }
        __syncthreads();   // the next iteration restages this buffer and rewrites red, sp and sf
    }
    long row0 = ((long) b * splits + split) * H + h0;
    if (tid < hn) {
        ml[2 * (row0 + tid)] = sm[tid];
        ml[2 * (row0 + tid) + 1] = sl[tid];
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        int g = ch * 8 + j;
        if (g >= hn) continue;
        float4* dst = (float4*) (acc + (row0 + g) * R);
        if (c0) dst[cg] = a[j][0];
        if (c1) dst[cg + 64] = a[j][1];
    }
}

// grid (H, B, ceil(R / blockDim)), block 128: the wide combine (combine_column) over ranges of span positions.
extern "C" __global__ void mla_decode_combine_v3(const float* __restrict__ acc, const float* __restrict__ ml,
                                                 const int* __restrict__ positions, float* __restrict__ ctx, int H, int R, int span,
                                                 int splits) {
    combine_column(acc, ml, positions, ctx, H, R, span, splits);
}
