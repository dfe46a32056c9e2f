// Absorbed MLA decode as one split-K pass over each sequence's latent cache plus a combine, for single-token
// segments. Every per-step value (how many positions a sequence sees, where its new row goes) is read from device
// memory, never from launch arguments, so the launches of a decode step can be captured once and replayed as a CUDA
// graph while the caches grow. The grid depends only on the batch, the heads and the caches' capacity.
//
// Layouts (fp32): q_lat [B, H, R] (q_nope absorbed through W_kb), q [B, H * qw] with the rope slice at `nope` inside
// each head's qw, caches: table[2b] = latent cache [cap, R], table[2b + 1] = k_rot cache [cap, rope] of sequence b,
// positions[b] = the position of b's new token (it sees positions [0, positions[b]]).

#define MLA_CHUNK 128   // positions per sub-chunk = threads per block
#define MLA_HG 8        // most heads a block scores together (each latent row read once for them)

// Partial attention of one (split, head group, sequence): sub-chunks of MLA_CHUNK positions in order with an online
// softmax; writes the unnormalised context acc [R] and (max, sum) per head of its group. Splits past the sequence's
// visible positions exit at once (the combine never reads them).
// grid (splits, H / hg, B), block MLA_CHUNK; dynamic shared: (hg * (R + rope) + MLA_CHUNK * MLA_HG) floats.
extern "C" __global__ void __launch_bounds__(MLA_CHUNK) mla_decode_split(
        const float* __restrict__ qLat, const float* __restrict__ q, const long long* __restrict__ table,
        const int* __restrict__ positions, float* __restrict__ acc, float* __restrict__ ml, int H, int R, int rope,
        int qw, int nope, int hg, int perSplit, float scale) {
    extern __shared__ float4 smem4[];
    float* sq = (float*) smem4;                       // [hg][R + rope]: q_lat | q_rope of the group's heads
    float* sp = sq + hg * (R + rope);                 // [MLA_CHUNK][MLA_HG]: probabilities of the sub-chunk
    __shared__ float red[MLA_CHUNK / 32][MLA_HG];
    int split = blockIdx.x, group = blockIdx.y, b = blockIdx.z, splits = gridDim.x;
    int visible = positions[b] + 1;
    int first = split * perSplit * MLA_CHUNK;
    if (first >= visible) return;
    int last = min(visible, first + perSplit * MLA_CHUNK);
    const float* lat = (const float*) table[2 * b];
    const float* rot = (const float*) table[2 * b + 1];
    int h0 = group * hg, w = R + rope, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int i = tid; i < hg * w; i += MLA_CHUNK) {
        int g = i / w, c = i - g * w;
        sq[i] = c < R ? qLat[((long) b * H + h0 + g) * R + c] : q[(long) b * H * qw + (long) (h0 + g) * qw + nope + (c - R)];
    }
    __syncthreads();
    float m[MLA_HG], l[MLA_HG], a[MLA_HG][4];
#pragma unroll
    for (int g = 0; g < MLA_HG; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
        a[g][0] = a[g][1] = a[g][2] = a[g][3] = 0.0f;
    }
    int r4 = tid, R4 = R >> 2;   // this thread's four context columns (R <= 4 * MLA_CHUNK)
    for (int c0 = first; c0 < last; c0 += MLA_CHUNK) {
        int n = min(MLA_CHUNK, last - c0);
        // scores: eight lanes per position, each a 16-byte column slice of its row, so a warp's load takes four
        // whole 128-byte lines (a row per lane took 32); partial dots added over the eight lanes, then kept in sp
        for (int base = warp * 4; base < n; base += MLA_CHUNK / 8) {
            int row = base + (lane >> 3), part = lane & 7;
            const float4* k4 = (const float4*) (lat + (long) (c0 + min(row, n - 1)) * R);
            const float4* kr = (const float4*) (rot + (long) (c0 + min(row, n - 1)) * rope);
            float d[MLA_HG];
#pragma unroll
            for (int g = 0; g < MLA_HG; g++) d[g] = 0.0f;
#pragma unroll 4
            for (int j = part; j < R4; j += 8) {
                float4 k = k4[j];
#pragma unroll
                for (int g = 0; g < MLA_HG; g++) {
                    if (g < hg) {
                        float4 qq = ((const float4*) (sq + g * w))[j];
                        d[g] = fmaf(qq.x, k.x, d[g]);
                        d[g] = fmaf(qq.y, k.y, d[g]);
                        d[g] = fmaf(qq.z, k.z, d[g]);
                        d[g] = fmaf(qq.w, k.w, d[g]);
                    }
                }
            }
            for (int j = part; j < (rope >> 2); j += 8) {
                float4 k = kr[j];
#pragma unroll
                for (int g = 0; g < MLA_HG; g++) {
                    if (g < hg) {
                        float4 qq = ((const float4*) (sq + g * w + R))[j];
                        d[g] = fmaf(qq.x, k.x, d[g]);
                        d[g] = fmaf(qq.y, k.y, d[g]);
                        d[g] = fmaf(qq.z, k.z, d[g]);
                        d[g] = fmaf(qq.w, k.w, d[g]);
                    }
                }
            }
#pragma unroll
            for (int g = 0; g < MLA_HG; g++) {
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 4);
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 2);
                d[g] += __shfl_xor_sync(0xffffffff, d[g], 1);
            }
            if (part == 0 && row < n) {
#pragma unroll
                for (int g = 0; g < MLA_HG; g++) sp[row * MLA_HG + g] = d[g];
            }
        }
        __syncthreads();
        float s[MLA_HG];
#pragma unroll
        for (int g = 0; g < MLA_HG; g++) s[g] = tid < n ? sp[tid * MLA_HG + g] : 0.0f;
        __syncthreads();   // sp is overwritten with the probabilities below
        // the sub-chunk's max per head, then the running max
        float mx[MLA_HG];
#pragma unroll
        for (int g = 0; g < MLA_HG; g++) {
            s[g] *= scale;
            float v = tid < n ? s[g] : -INFINITY;
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
            if (lane == 0) red[warp][g] = v;
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < MLA_HG; g++) {
            float v = red[0][g];
            for (int i = 1; i < MLA_CHUNK / 32; i++) v = fmaxf(v, red[i][g]);
            mx[g] = fmaxf(m[g], v);
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < MLA_HG; g++) {
            float p = tid < n && g < hg ? expf(s[g] - mx[g]) : 0.0f;
            sp[tid * MLA_HG + g] = p;
            for (int o = 16; o > 0; o >>= 1) p += __shfl_xor_sync(0xffffffff, p, o);
            if (lane == 0) red[warp][g] = p;
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < MLA_HG; g++) {
            float sum = 0.0f;
            for (int i = 0; i < MLA_CHUNK / 32; i++) sum += red[i][g];
            float f = m[g] == -INFINITY ? 0.0f : expf(m[g] - mx[g]);
            l[g] = l[g] * f + sum;
            m[g] = mx[g];
            a[g][0] *= f;
            a[g][1] *= f;
            a[g][2] *= f;
            a[g][3] *= f;
        }
        // context columns: acc[g][r] += sum_t p[t][g] latent[t][r]
        if (r4 < R4) {
            const float4* col = (const float4*) (lat + (long) c0 * R) + r4;
#pragma unroll 8
            for (int i = 0; i < n; i++) {
                float4 k = col[(long) i * R4];
                float4 p0 = ((const float4*) sp)[i * 2], p1 = ((const float4*) sp)[i * 2 + 1];
                float p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
#pragma unroll
                for (int g = 0; g < MLA_HG; g++) {
                    a[g][0] = fmaf(p[g], k.x, a[g][0]);
                    a[g][1] = fmaf(p[g], k.y, a[g][1]);
                    a[g][2] = fmaf(p[g], k.z, a[g][2]);
                    a[g][3] = fmaf(p[g], k.w, a[g][3]);
                }
            }
        }
        __syncthreads();   // sp and red are rewritten by the next sub-chunk
    }
#pragma unroll
    for (int g = 0; g < MLA_HG; g++) {
        if (g >= hg) continue;
        long row = ((long) b * splits + split) * H + h0 + g;
        if (r4 < R4) ((float4*) (acc + row * R))[r4] = make_float4(a[g][0], a[g][1], a[g][2], a[g][3]);
        if (tid == 0) {
            ml[2 * row] = m[g];
            ml[2 * row + 1] = l[g];
        }
    }
}

// ctx [B, H, R] from the partials of the splits that saw positions, added in split order (deterministic).
// grid (H, B), block MLA_CHUNK.
extern "C" __global__ void mla_decode_combine(const float* __restrict__ acc, const float* __restrict__ ml,
                                              const int* __restrict__ positions, float* __restrict__ ctx, int H, int R,
                                              int perSplit, int splits) {
    int h = blockIdx.x, b = blockIdx.y;
    int active = min(splits, (positions[b] + 1 + perSplit * MLA_CHUNK - 1) / (perSplit * MLA_CHUNK));
    float mx = -INFINITY;
    for (int s = 0; s < active; s++) mx = fmaxf(mx, ml[2 * (((long) b * splits + s) * H + h)]);
    float total = 0.0f;
    for (int s = 0; s < active; s++) {
        long row = ((long) b * splits + s) * H + h;
        total += expf(ml[2 * row] - mx) * ml[2 * row + 1];
    }
    float inv = 1.0f / total;
    for (int r = threadIdx.x; r < R; r += blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < active; s++) {
            long row = ((long) b * splits + s) * H + h;
            v = fmaf(expf(ml[2 * row] - mx), acc[row * R + r], v);
        }
        ctx[((long) b * H + h) * R + r] = v * inv;
    }
}

// The new token's cache rows: rows [B, cols] go to row positions[b] of the cache at table[b].
// grid (ceil(cols / 256), B).
extern "C" __global__ void mla_append_rows(const float* __restrict__ rows, const long long* __restrict__ table,
                                           const int* __restrict__ positions, int cols) {
    int b = blockIdx.y, c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float* cache = (float*) table[b];
    cache[(long) positions[b] * cols + c] = rows[(long) b * cols + c];
}
