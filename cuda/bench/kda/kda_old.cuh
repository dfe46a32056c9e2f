// The chunk kernels as they were before the rewrite of 2026-12-06 (the verified reference of kda_bench.cu), renamed.
#pragma once
// Per-chunk work that does not depend on the carried state, for every (chunk, head) at once. With G the in-chunk
// cumulative log decay and L[t,s] = sum_i k_t k_s e^{G_t - G_s} (s < t), M[t,s] = sum_i q_t k_s e^{G_t - G_s} (s <= t):
//   u0_t = b_t (v_t - sum_{s<t} L[t,s] u0_s),  W_t = b_t (e^{G_t} k_t - sum_{s<t} L[t,s] W_s)   (so u = u0 - W S0),
//   Qg_t = e^{G_t} q_t,  Kd_t = e^{G_last - G_t} k_t,  decay = e^{G_last}.
// Workspace per (chunk, head), floats: u0 [CH*d] | W [CH*d] | Qg [CH*d] | Kd [CH*d] | M [CH*CH] | decay [d].
extern "C" __global__ void old_kda_chunk_prep(const float* qn, const float* kn, const float* v, const float* g, const float* beta,
                                          const int* chunkRow, const int* chunkLen, float* ws, int heads, int d) {
    extern __shared__ float sm[];
    int ci = blockIdx.x, h = blockIdx.y;
    int c = chunkLen[ci], row0 = chunkRow[ci];
    int LD = d + 1;
    float* G = sm;                 // [CH][LD]
    float* K = G + CH * LD;        // [CH][LD]
    float* Q = K + CH * LD;        // [CH][LD]
    float* Lm = Q + CH * LD;       // [CH][CH]
    int P = heads * d;
    long wsz = 4L * CH * d + CH * CH + d;
    float* base = ws + ((long)ci * heads + h) * wsz;
    float* U0 = base;
    float* W = base + (long)CH * d;
    float* QG = base + 2L * CH * d;
    float* KD = base + 3L * CH * d;
    float* M = base + 4L * CH * d;
    float* DEC = M + CH * CH;
    for (int idx = threadIdx.x; idx < c * d; idx += blockDim.x) {
        int t = idx / d, i = idx % d;
        long ro = (long)(row0 + t) * P + (long)h * d + i;
        G[t * LD + i] = g[ro];
        K[t * LD + i] = kn[ro];
        Q[t * LD + i] = qn[ro];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < c; t++) {
            acc += G[t * LD + i];
            G[t * LD + i] = acc;
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < CH * CH; idx += blockDim.x) {
        int t = idx / CH, s = idx % CH;
        float l = 0.0f, m = 0.0f;
        if (t < c && s <= t) {
            for (int i = 0; i < d; i++) {
                float ke = K[s * LD + i] * __expf(G[t * LD + i] - G[s * LD + i]);
                l += K[t * LD + i] * ke;
                m += Q[t * LD + i] * ke;
            }
        }
        Lm[t * CH + s] = l;
        M[t * CH + s] = m;
    }
    __syncthreads();
    // forward substitution, one column of [u0 | W] per thread; rows depend only on earlier rows of the same column
    for (int col = threadIdx.x; col < 2 * d; col += blockDim.x) {
        bool isU = col < d;
        int i = isU ? col : col - d;
        float* X = isU ? U0 : W;
        for (int t = 0; t < c; t++) {
            float rhs = isU ? v[(long)(row0 + t) * P + (long)h * d + i] : __expf(G[t * LD + i]) * K[t * LD + i];
            for (int s = 0; s < t; s++) rhs -= Lm[t * CH + s] * X[s * d + i];
            X[t * d + i] = beta[(long)(row0 + t) * heads + h] * rhs;
        }
    }
    for (int idx = threadIdx.x; idx < c * d; idx += blockDim.x) {
        int t = idx / d, i = idx % d;
        float gl = G[(c - 1) * LD + i], gt = G[t * LD + i];
        QG[t * d + i] = __expf(gt) * Q[t * LD + i];
        KD[t * d + i] = __expf(gl - gt) * K[t * LD + i];
    }
    for (int i = threadIdx.x; i < d; i += blockDim.x) DEC[i] = __expf(G[(c - 1) * LD + i]);
}

// The state-carrying pass: chunks of one segment in order. grid (heads, segments, d/32), block 256; the block holds a
// [d, 32] column tile of S in shared memory and stages each chunk's W | Qg | Kd | M | decay there (dynamic shared
// memory). Per chunk: u = u0 - W S; o = Qg S + M u; S = decay * S + Kd^T u. Each thread owns one column and 8 rows
// (t = warp + 8m), or d/8 rows of S, in registers.
extern "C" __global__ void old_kda_chunk_scan(const float* ws, const long long* states, const int* segChunk0, const int* segChunks,
                                          const int* chunkRow, const int* chunkLen, float* out, int heads, int d) {
    extern __shared__ float4 sm4[];
    float* sm = reinterpret_cast<float*>(sm4);
    const int stage = 3 * CH * d + CH * CH + d;   // W | QG | KD | M | DEC
    float* W = sm;
    float* QG = W + CH * d;
    float* KD = QG + CH * d;
    float* M = KD + CH * d;
    float* DEC = M + CH * CH;
    float* S = sm + ((stage + 3) & ~3);           // [d][32]
    float* U = S + d * 32;                        // [CH][33]
    int h = blockIdx.x, s = blockIdx.y, j0 = blockIdx.z * 32;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float* st = (float*)states[s] + (long)h * d * d;
    for (int i = warp; i < d; i += 8) S[i * 32 + lane] = st[(long)i * d + j0 + lane];
    long wsz = 4L * CH * d + CH * CH + d;
    int P = heads * d;
    int rowsS = d / 8;
    int first = segChunk0[s], n = segChunks[s];
    for (int cc = 0; cc < n; cc++) {
        int ci = first + cc;
        int c = chunkLen[ci], row0 = chunkRow[ci];
        const float* base = ws + ((long)ci * heads + h) * wsz;
        const float4* src = reinterpret_cast<const float4*>(base + (long)CH * d);
        for (int x = threadIdx.x; x < stage / 4; x += blockDim.x) sm4[x] = src[x];
        __syncthreads();
        float acc[8];
#pragma unroll
        for (int m = 0; m < 8; m++) {
            int t = warp + 8 * m;
            acc[m] = t < c ? base[t * d + j0 + lane] : 0.0f;
        }
        for (int i = 0; i < d; i++) {
            float sv = S[i * 32 + lane];
#pragma unroll
            for (int m = 0; m < 8; m++) acc[m] -= W[(warp + 8 * m) * d + i] * sv;
        }
#pragma unroll
        for (int m = 0; m < 8; m++) U[(warp + 8 * m) * 33 + lane] = acc[m];
        __syncthreads();
#pragma unroll
        for (int m = 0; m < 8; m++) acc[m] = 0.0f;
        for (int i = 0; i < d; i++) {
            float sv = S[i * 32 + lane];
#pragma unroll
            for (int m = 0; m < 8; m++) acc[m] += QG[(warp + 8 * m) * d + i] * sv;
        }
        for (int s2 = 0; s2 < c; s2++) {
            float uv = U[s2 * 33 + lane];
#pragma unroll
            for (int m = 0; m < 8; m++) acc[m] += M[(warp + 8 * m) * CH + s2] * uv;
        }
#pragma unroll
        for (int m = 0; m < 8; m++) {
            int t = warp + 8 * m;
            if (t < c) out[(long)(row0 + t) * P + (long)h * d + j0 + lane] = acc[m];
        }
        float sacc[MAXD / 8];
#pragma unroll
        for (int m = 0; m < MAXD / 8; m++) sacc[m] = 0.0f;
        for (int s2 = 0; s2 < c; s2++) {
            float uv = U[s2 * 33 + lane];
#pragma unroll
            for (int m = 0; m < MAXD / 8; m++) if (m < rowsS) sacc[m] += KD[s2 * d + warp + 8 * m] * uv;
        }
        __syncthreads(); // every read of the old S is done
#pragma unroll
        for (int m = 0; m < MAXD / 8; m++) {
            if (m < rowsS) {
                int i = warp + 8 * m;
                S[i * 32 + lane] = DEC[i] * S[i * 32 + lane] + sacc[m];
            }
        }
        __syncthreads();
    }
    for (int i = warp; i < d; i += 8) st[(long)i * d + j0 + lane] = S[i * 32 + lane];
}
