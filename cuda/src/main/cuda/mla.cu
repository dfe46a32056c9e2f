// Multi-head latent attention helpers; the products run in cuBLAS (fp32). scores holds, per (head, query t),
// `total` raw dot products; this applies the scale, the causal mask (query t sees keys [0, pos + t]) and the softmax
// in place, writing exact zeros past the visible keys.
extern "C" __global__ void mla_softmax(float* scores, int T, int total, int pos, int rowOffset, float scale) {
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y;
    float* row = scores + ((long)h * T + t) * total;
    int visible = min(total, pos + rowOffset + t + 1);
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        float e = expf(row[j] * scale - mx);
        row[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (blockDim.x >> 5); w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < total; j += blockDim.x) row[j] = j < visible ? row[j] * inv : 0.0f;
}

// ---- absorbed MLA decode for a batch of single-token sequences, each over its own latent cache ----
// table: per sequence b, three 8-byte slots: latent cache [>= total, R] address, k_rot cache [>= total, rope] address,
// total (visible positions). qLat [B, heads, R] (q_nope W_kb per head), q [B, heads * (nope + rope)],
// scores [B, heads, maxTotal], ctx [B, heads, R]. Heads go in groups of 8 so that each latent row read from memory
// serves 8 heads (the cache is shared by all heads: MQA).
#define MLA_HG 8
#define MLA_KEYS 64
#define MLA_MAX_R 512
#define MLA_MAX_ROPE 64

// grid (ceil(maxTotal / 64), ceil(heads / 8), B), 256 threads: warp w scores keys blockIdx.x * 64 + w * 8 + [0, 8).
extern "C" __global__ void mla_decode_scores(const float* qLat, const float* q, const long long* table, float* scores,
                                             int heads, int R, int nope, int rope, int maxTotal) {
    __shared__ float qs[MLA_HG][MLA_MAX_R];
    __shared__ float qr[MLA_HG][MLA_MAX_ROPE];
    int b = blockIdx.z, h0 = blockIdx.y * MLA_HG, qw = nope + rope;
    const float* lat = (const float*) table[3 * b];
    const float* rot = (const float*) table[3 * b + 1];
    int total = (int) table[3 * b + 2];
    int nh = min(MLA_HG, heads - h0);
    for (int i = threadIdx.x; i < MLA_HG * R; i += blockDim.x) {
        int h = i / R, d = i % R;
        qs[h][d] = h < nh ? qLat[((long) b * heads + h0 + h) * R + d] : 0.f;
    }
    for (int i = threadIdx.x; i < MLA_HG * rope; i += blockDim.x) {
        int h = i / rope, d = i % rope;
        qr[h][d] = h < nh ? q[(long) b * heads * qw + (long) (h0 + h) * qw + nope + d] : 0.f;
    }
    __syncthreads();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int i = 0; i < MLA_KEYS / 8; i++) {
        int t = blockIdx.x * MLA_KEYS + warp * (MLA_KEYS / 8) + i;
        if (t >= total) break;
        float acc[MLA_HG];
#pragma unroll
        for (int h = 0; h < MLA_HG; h++) acc[h] = 0.f;
        const float* lr = lat + (long) t * R;
        for (int d = lane; d < R; d += 32) {
            float l = lr[d];
#pragma unroll
            for (int h = 0; h < MLA_HG; h++) acc[h] = fmaf(qs[h][d], l, acc[h]);
        }
        const float* kr = rot + (long) t * rope;
        for (int d = lane; d < rope; d += 32) {
            float k = kr[d];
#pragma unroll
            for (int h = 0; h < MLA_HG; h++) acc[h] = fmaf(qr[h][d], k, acc[h]);
        }
#pragma unroll
        for (int h = 0; h < MLA_HG; h++) {
            float v = acc[h];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
            if (lane == h && h < nh) scores[((long) b * heads + h0 + h) * maxTotal + t] = v;
        }
    }
}

// grid (heads, B): scale and softmax over the sequence's visible positions, in place.
extern "C" __global__ void mla_decode_softmax(float* scores, const long long* table, int heads, int maxTotal, float scale) {
    __shared__ float red[32];
    int h = blockIdx.x, b = blockIdx.y;
    float* row = scores + ((long) b * heads + h) * maxTotal;
    int visible = (int) table[3 * b + 2];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        float e = expf(row[j] * scale - mx);
        row[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (blockDim.x >> 5); w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) row[j] *= inv;
}

// grid (ceil(R / 32), ceil(heads / 8), B), 256 threads: warp w accumulates head h0 + w over 32 latent columns,
// ctx[b, h, d] = sum_t p[b, h, t] latent_b[t, d], keys in order.
extern "C" __global__ void mla_decode_ctx(const float* scores, const long long* table, float* ctx, int heads, int R, int maxTotal) {
    __shared__ float ps[MLA_HG][MLA_KEYS];
    int b = blockIdx.z, h0 = blockIdx.y * MLA_HG, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int d = blockIdx.x * 32 + lane, h = h0 + warp;
    const float* lat = (const float*) table[3 * b];
    int total = (int) table[3 * b + 2];
    float acc = 0.f;
    for (int t0 = 0; t0 < total; t0 += MLA_KEYS) {
        int n = min(MLA_KEYS, total - t0);
        __syncthreads();
        for (int i = threadIdx.x; i < MLA_HG * MLA_KEYS; i += blockDim.x) {
            int hh = i / MLA_KEYS, j = i % MLA_KEYS;
            ps[hh][j] = h0 + hh < heads && j < n ? scores[((long) b * heads + h0 + hh) * maxTotal + t0 + j] : 0.f;
        }
        __syncthreads();
        if (d < R) {
            const float* lr = lat + (long) t0 * R + d;
#pragma unroll 8
            for (int j = 0; j < n; j++) acc = fmaf(ps[warp][j], lr[(long) j * R], acc);
        }
    }
    if (d < R && h < heads) ctx[((long) b * heads + h) * R + d] = acc;
}
