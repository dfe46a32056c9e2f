// The first rewrite of the chunk kernels (2026-12-06, harness call 1), renamed, for same-call timings.
#pragma once
extern "C" __global__ void __launch_bounds__(256) v1_kda_chunk_prep(const float* qn, const float* kn, const float* v, const float* g,
                                                                 const float* beta, const int* chunkRow, const int* chunkLen,
                                                                 float* ws, int heads, int d) {
    extern __shared__ float4 sm4[];
    float* sm = reinterpret_cast<float*>(sm4);
    const int LD = d + 4, LDL = CH + 4, d4 = d / 4;
    float* Gs = sm;               // G; then B; then v
    float* Ks = Gs + CH * LD;     // k; then A k; then e^G k
    float* Qs = Ks + CH * LD;     // q; then A q
    float* Lm = Qs + CH * LD;     // L; then T
    float* Dv = Lm + CH * LDL;    // D for the sub-block pairs (2,0), (3,1), (3,0); the others are 1
    float* Ev = Dv + 3 * d;       // e^{G_{SB b}}, b = 0..3
    float* sb = Ev + 4 * d;       // beta, 0 past the chunk
    int ci = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
    int c = chunkLen[ci], row0 = chunkRow[ci];
    int P = heads * d;
    long wsz = 4L * CH * d + CH * CH + d;
    float* base = ws + ((long)ci * heads + h) * wsz;
    float* U0 = base;
    float* W = base + (long)CH * d;
    float* QG = base + 2L * CH * d;
    float* KD = base + 3L * CH * d;
    float* M = base + 4L * CH * d;
    float* DEC = M + CH * CH;
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    // 1. k, q, g of the chunk into shared memory (zeros past c: G then stays G_{c-1}, so every factor stays finite)
    for (int x = tid; x < CH * d4; x += blockDim.x) {
        int t = x / d4, i = 4 * (x % d4);
        if (t < c) {
            long ro = (long)(row0 + t) * P + (long)h * d + i;
            cp_async16(Ks + t * LD + i, kn + ro);
            cp_async16(Qs + t * LD + i, qn + ro);
            cp_async16(Gs + t * LD + i, g + ro);
        } else {
            st4(Ks + t * LD + i, zero4);
            st4(Qs + t * LD + i, zero4);
            st4(Gs + t * LD + i, zero4);
        }
    }
    cp_async_commit();
    if (tid < CH) sb[tid] = tid < c ? beta[(long)(row0 + tid) * heads + h] : 0.0f;
    cp_async_wait<0>();
    __syncthreads();
    // cumulative sum, one channel per thread, in token order (the same float sums as the recurrent form)
    for (int i = tid; i < d; i += blockDim.x) {
        float acc = 0.0f;
#pragma unroll 16
        for (int t = 0; t < CH; t++) {
            acc += Gs[t * LD + i];
            Gs[t * LD + i] = acc;
        }
    }
    __syncthreads();

    // 2. the diagonal sub-blocks, pairwise: 4 x 136 pairs (s <= t), each over one half of the channels
    for (int it = tid; it < 4 * 136 * 2; it += blockDim.x) {
        int pair = it >> 1, half = it & 1;
        int blk = pair / 136, p = pair - blk * 136;
        int tl = (int)((sqrtf(8.0f * p + 1.0f) - 1.0f) * 0.5f);
        while ((tl + 1) * (tl + 2) / 2 <= p) tl++;
        while (tl * (tl + 1) / 2 > p) tl--;
        int t = blk * SB + tl, s = blk * SB + (p - tl * (tl + 1) / 2);
        const float *gt = Gs + t * LD, *gs = Gs + s * LD, *kt = Ks + t * LD, *ks = Ks + s * LD, *qt = Qs + t * LD;
        float l = 0.0f, m = 0.0f;
        int i0 = half * (d / 2), i1 = i0 + d / 2;
        for (int i = i0; i < i1; i += 4) {
            float4 a = ld4(gt + i), b = ld4(gs + i), ka = ld4(kt + i), kb = ld4(ks + i), qa = ld4(qt + i);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float ke = comp(kb, k) * __expf(comp(a, k) - comp(b, k));
                l += comp(ka, k) * ke;
                m += comp(qa, k) * ke;
            }
        }
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        m += __shfl_xor_sync(0xffffffffu, m, 1);
        if (half == 0) {
            Lm[t * LDL + s] = s < t ? l : 0.0f;
            M[t * CH + s] = m;
        }
    }

    __syncthreads();

    // 3. element-wise: Kd, Qg (to the workspace), A k and A q in place, B into registers (G is still read)
    float4 breg[CH * 32 / 256];
#pragma unroll
    for (int r = 0; r < CH * 32 / 256; r++) {
        int x = tid + r * 256;
        if (x < CH * d4 && blockDim.x == 256) {
            int t = x / d4, i = 4 * (x % d4);
            int bt = t / SB, rn = min(SB * (bt + 1), CH - 1);
            float4 gt = ld4(Gs + t * LD + i), gl = ld4(Gs + (CH - 1) * LD + i), gr = ld4(Gs + SB * bt * LD + i), gn = ld4(Gs + rn * LD + i);
            float4 kt = ld4(Ks + t * LD + i), qt = ld4(Qs + t * LD + i);
            float4 kd, qg, ak, aq, bb;
#define KDA_ELEM(f)                                  \
            kd.f = __expf(gl.f - gt.f) * kt.f;       \
            qg.f = __expf(gt.f) * qt.f;              \
            {                                        \
                float a = __expf(gt.f - gr.f);       \
                ak.f = kt.f * a;                     \
                aq.f = qt.f * a;                     \
            }                                        \
            bb.f = kt.f * __expf(gn.f - gt.f);
            KDA_ELEM(x) KDA_ELEM(y) KDA_ELEM(z) KDA_ELEM(w)
#undef KDA_ELEM
            st4(KD + t * d + i, kd);
            st4(QG + t * d + i, qg);
            st4(Ks + t * LD + i, ak);
            st4(Qs + t * LD + i, aq);
            breg[r] = bb;
        }
    }
    for (int i = tid; i < d; i += blockDim.x) {
        const float* G = Gs + i;
        Dv[i] = __expf(G[2 * SB * LD] - G[SB * LD]);
        Dv[d + i] = __expf(G[3 * SB * LD] - G[2 * SB * LD]);
        Dv[2 * d + i] = __expf(G[3 * SB * LD] - G[SB * LD]);
        for (int b = 0; b < 4; b++) Ev[b * d + i] = __expf(G[b * SB * LD]);
        DEC[i] = __expf(G[(CH - 1) * LD]);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < CH * 32 / 256; r++) {
        int x = tid + r * 256;
        if (x < CH * d4 && blockDim.x == 256) st4(Gs + (x / d4) * LD + 4 * (x % d4), breg[r]);
    }
    __syncthreads();

    // 4. the off-diagonal sub-blocks: 6 pairs x 16 tiles of 4 x 4, each over a quarter of the channels
    for (int it = tid; it < 6 * 16 * 4; it += blockDim.x) {
        int q = it & 3, tile = (it >> 2) & 15, pr = it >> 6;
        // pairs (bt, bs) = (1,0) (2,0) (2,1) (3,0) (3,1) (3,2), packed a nibble each; ds: which D (-1: D = 1)
        int bt = (0x333221 >> (4 * pr)) & 15, bs_ = (0x210100 >> (4 * pr)) & 15, ds = ((0x023010 >> (4 * pr)) & 15) - 1;
        int t0 = bt * SB + 4 * (tile >> 2), s0 = bs_ * SB + 4 * (tile & 3);
        float l[4][4], m[4][4];
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++) l[a][b] = m[a][b] = 0.0f;
        int i0 = q * d4, i1 = i0 + d4;
        for (int i = i0; i < i1; i += 4) {
            float4 ka[4], qa[4], bs[4];
#pragma unroll
            for (int a = 0; a < 4; a++) {
                ka[a] = ld4(Ks + (t0 + a) * LD + i);
                qa[a] = ld4(Qs + (t0 + a) * LD + i);
                bs[a] = ld4(Gs + (s0 + a) * LD + i);
            }
            if (ds >= 0) {
                float4 dd = ld4(Dv + ds * d + i);
#pragma unroll
                for (int b = 0; b < 4; b++) {
                    bs[b].x *= dd.x; bs[b].y *= dd.y; bs[b].z *= dd.z; bs[b].w *= dd.w;
                }
            }
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int a = 0; a < 4; a++)
#pragma unroll
                    for (int b = 0; b < 4; b++) {
                        l[a][b] += comp(ka[a], k) * comp(bs[b], k);
                        m[a][b] += comp(qa[a], k) * comp(bs[b], k);
                    }
        }
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                l[a][b] += __shfl_xor_sync(0xffffffffu, l[a][b], 1);
                l[a][b] += __shfl_xor_sync(0xffffffffu, l[a][b], 2);
                m[a][b] += __shfl_xor_sync(0xffffffffu, m[a][b], 1);
                m[a][b] += __shfl_xor_sync(0xffffffffu, m[a][b], 2);
            }
        if (q == 0) {
#pragma unroll
            for (int a = 0; a < 4; a++) {
                st4(Lm + (t0 + a) * LDL + s0, make_float4(l[a][0], l[a][1], l[a][2], l[a][3]));
                st4(M + (t0 + a) * CH + s0, make_float4(m[a][0], m[a][1], m[a][2], m[a][3]));
            }
        }
    }
    __syncthreads();

    // 5. T by forward substitution, one column per thread of warps 0-1, held in registers; meanwhile the other warps
    // fetch v (into G's place), turn A k into e^G k and zero M above the diagonal
    float x[CH];
    if (tid < CH) {
        const int j = tid;
#pragma unroll
        for (int t = 0; t < CH; t++) {
            float a0 = t == j ? 1.0f : 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma unroll
            for (int s = 0; s < t; s += 4) {
                float4 l4 = ld4(Lm + t * LDL + s);
                a0 -= l4.x * x[s];
                if (s + 1 < t) a1 -= l4.y * x[s + 1];
                if (s + 2 < t) a2 -= l4.z * x[s + 2];
                if (s + 3 < t) a3 -= l4.w * x[s + 3];
            }
            x[t] = sb[t] * ((a0 + a1) + (a2 + a3));
        }
    } else {
        int o = tid - CH, n = blockDim.x - CH;
        for (int y = o; y < CH * d4; y += n) {
            int t = y / d4, i = 4 * (y % d4);
            if (t < c) cp_async16(Gs + t * LD + i, v + (long)(row0 + t) * P + (long)h * d + i);
            else st4(Gs + t * LD + i, zero4);
            float4 e = ld4(Ev + (t / SB) * d + i), k = ld4(Ks + t * LD + i);
            st4(Ks + t * LD + i, make_float4(k.x * e.x, k.y * e.y, k.z * e.z, k.w * e.w));
        }
        cp_async_commit();
        for (int y = o; y < CH * CH; y += n) {
            int t = y / CH, s = y % CH;
            if (s > t) M[y] = 0.0f;
        }
        cp_async_wait<0>();
    }
    __syncthreads();
    if (tid < CH) {
#pragma unroll
        for (int t = 0; t < CH; t++) Lm[t * LDL + tid] = x[t];
    }
    __syncthreads();

    // 6. [u0 | W] = T [v | e^G k]: warp -> 8 rows (T is lower triangular: s <= the last row), lane -> 8 columns.
    // Rows are paired across the warps that share a scheduler (w and w + 4) so that each pair has the same work.
    int warp = tid >> 5, lane = tid & 31;
    int tg = warp < 4 ? warp : 11 - warp;
    if (lane < d / 4 && warp < 8) {
        int col = 8 * lane;
        const float* R = col < d ? Gs + col : Ks + (col - d);
        float acc[8][8];
#pragma unroll
        for (int a = 0; a < 8; a++)
#pragma unroll
            for (int b = 0; b < 8; b++) acc[a][b] = 0.0f;
        int smax = 8 * tg + 8;
        for (int s = 0; s < smax; s += 4) {
            float4 tv[8];
#pragma unroll
            for (int a = 0; a < 8; a++) tv[a] = ld4(Lm + (8 * tg + a) * LDL + s);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float4 r0 = ld4(R + (s + k) * LD), r1 = ld4(R + (s + k) * LD + 4);
#pragma unroll
                for (int a = 0; a < 8; a++) {
                    float tk = comp(tv[a], k);
                    acc[a][0] += tk * r0.x; acc[a][1] += tk * r0.y; acc[a][2] += tk * r0.z; acc[a][3] += tk * r0.w;
                    acc[a][4] += tk * r1.x; acc[a][5] += tk * r1.y; acc[a][6] += tk * r1.z; acc[a][7] += tk * r1.w;
                }
            }
        }
        float* dst = col < d ? U0 + col : W + (col - d);
#pragma unroll
        for (int a = 0; a < 8; a++) {
            int t = 8 * tg + a;
            st4(dst + t * d, make_float4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
            st4(dst + t * d + 4, make_float4(acc[a][4], acc[a][5], acc[a][6], acc[a][7]));
        }
    }
}

// The state-carrying pass: the chunks of one segment in order. grid (heads, segments, d/32), block 256; the block
// carries a [d, 32] column tile of S. Per chunk: U = u0 - W S (phase 1); o = Qg S + M U (phase 2);
// S = decay * S + Kd^T U (phase 3). Each phase's operands are fetched with cp.async right after the previous chunk's
// same phase has finished with them (W | u0, then Qg | M, then Kd | decay), so two phases of work hide each fetch.
// Shared floats: W, Qg, Kd [CH][d+4] | M [CH][CH+4] | u0, U [CH][32] | S [d][32] | decay [d].
// Phases 1-2: thread -> rows 4ty..4ty+3, columns 2tx, 2tx+1; phase 3: thread -> S rows 4ti.., columns 4tj.. (kept in
// registers across chunks).
extern "C" __global__ void __launch_bounds__(256) v1_kda_chunk_scan(const float* ws, const long long* states, const int* segChunk0,
                                                                 const int* segChunks, const int* chunkRow, const int* chunkLen,
                                                                 float* out, int heads, int d) {
    extern __shared__ float4 sm4[];
    float* sm = reinterpret_cast<float*>(sm4);
    const int LDW = d + 4, LDM = CH + 4, d4 = d / 4;
    float* Wb = sm;
    float* QGb = Wb + CH * LDW;
    float* KDb = QGb + CH * LDW;
    float* Mb = KDb + CH * LDW;
    float* U0b = Mb + CH * LDM;
    float* U = U0b + CH * 32;
    float* S = U + CH * 32;
    float* DECb = S + d * 32;
    int h = blockIdx.x, sg = blockIdx.y, j0 = blockIdx.z * 32, tid = threadIdx.x;
    long wsz = 4L * CH * d + CH * CH + d;
    int P = heads * d;
    int first = segChunk0[sg], n = segChunks[sg];
    float* st = (float*)states[sg] + (long)h * d * d;
    int ti = tid >> 3, tj = tid & 7, ty = tid >> 4, tx = tid & 15;
    bool own = 4 * ti < d;
    float sr[4][4];
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) {
            float4 x = ld4(st + (long)(4 * ti + a) * d + j0 + 4 * tj);
            sr[a][0] = x.x; sr[a][1] = x.y; sr[a][2] = x.z; sr[a][3] = x.w;
            st4(S + (4 * ti + a) * 32 + 4 * tj, x);
        }
    }
    auto rec = [&](int cc) { return ws + ((long)(first + cc) * heads + h) * wsz; };
    auto issueA = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            for (int x = tid; x < CH * d4; x += 256) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(Wb + t * LDW + i, b + (long)CH * d + t * d + i);
            }
            for (int x = tid; x < CH * 8; x += 256) cp_async16(U0b + (x >> 3) * 32 + 4 * (x & 7), b + (x >> 3) * d + j0 + 4 * (x & 7));
        }
        cp_async_commit();
    };
    auto issueB = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            for (int x = tid; x < CH * d4; x += 256) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(QGb + t * LDW + i, b + 2L * CH * d + t * d + i);
            }
            for (int x = tid; x < CH * CH / 4; x += 256) cp_async16(Mb + (x >> 4) * LDM + 4 * (x & 15), b + 4L * CH * d + 4 * x);
        }
        cp_async_commit();
    };
    auto issueC = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            for (int x = tid; x < CH * d4; x += 256) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(KDb + t * LDW + i, b + 3L * CH * d + t * d + i);
            }
            for (int x = tid; x < d4; x += 256) cp_async16(DECb + 4 * x, b + 4L * CH * d + CH * CH + 4 * x);
        }
        cp_async_commit();
    };
    issueA(0);
    issueB(0);
    for (int cc = 0; cc < n; cc++) {
        int ci = first + cc, c = chunkLen[ci], row0 = chunkRow[ci];
        // phase 1: U = u0 - W S (rows past c set to 0: M U and Kd^T U then need no bounds)
        cp_async_wait<1>();
        __syncthreads();
        issueC(cc);
        float acc[4][2];
#pragma unroll
        for (int a = 0; a < 4; a++) {
            float2 u = *reinterpret_cast<const float2*>(U0b + (4 * ty + a) * 32 + 2 * tx);
            acc[a][0] = u.x; acc[a][1] = u.y;
        }
#pragma unroll 2
        for (int i = 0; i < d; i += 4) {
            float4 w[4];
            float2 s[4];
#pragma unroll
            for (int a = 0; a < 4; a++) w[a] = ld4(Wb + (4 * ty + a) * LDW + i);
#pragma unroll
            for (int k = 0; k < 4; k++) s[k] = *reinterpret_cast<const float2*>(S + (i + k) * 32 + 2 * tx);
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    acc[a][0] -= comp(w[a], k) * s[k].x;
                    acc[a][1] -= comp(w[a], k) * s[k].y;
                }
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int t = 4 * ty + a;
            *reinterpret_cast<float2*>(U + t * 32 + 2 * tx) = t < c ? make_float2(acc[a][0], acc[a][1]) : make_float2(0.0f, 0.0f);
        }
        // phase 2: o = Qg S + M U
        cp_async_wait<1>();
        __syncthreads();
        issueA(cc + 1);
#pragma unroll
        for (int a = 0; a < 4; a++) acc[a][0] = acc[a][1] = 0.0f;
#pragma unroll 2
        for (int i = 0; i < d; i += 4) {
            float4 w[4];
            float2 s[4];
#pragma unroll
            for (int a = 0; a < 4; a++) w[a] = ld4(QGb + (4 * ty + a) * LDW + i);
#pragma unroll
            for (int k = 0; k < 4; k++) s[k] = *reinterpret_cast<const float2*>(S + (i + k) * 32 + 2 * tx);
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    acc[a][0] += comp(w[a], k) * s[k].x;
                    acc[a][1] += comp(w[a], k) * s[k].y;
                }
        }
        int c4 = (c + 3) & ~3;
        for (int s2 = 0; s2 < c4; s2 += 4) {
            float4 w[4];
            float2 u[4];
#pragma unroll
            for (int a = 0; a < 4; a++) w[a] = ld4(Mb + (4 * ty + a) * LDM + s2);
#pragma unroll
            for (int k = 0; k < 4; k++) u[k] = *reinterpret_cast<const float2*>(U + (s2 + k) * 32 + 2 * tx);
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    acc[a][0] += comp(w[a], k) * u[k].x;
                    acc[a][1] += comp(w[a], k) * u[k].y;
                }
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int t = 4 * ty + a;
            if (t < c) *reinterpret_cast<float2*>(out + (long)(row0 + t) * P + (long)h * d + j0 + 2 * tx) = make_float2(acc[a][0], acc[a][1]);
        }
        // phase 3: S = decay * S + Kd^T U
        cp_async_wait<1>();
        __syncthreads();
        issueB(cc + 1);
        if (own) {
            float sacc[4][4];
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++) sacc[a][b] = 0.0f;
#pragma unroll 4
            for (int s2 = 0; s2 < c; s2++) {
                float4 kd = ld4(KDb + s2 * LDW + 4 * ti), u = ld4(U + s2 * 32 + 4 * tj);
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    float k = comp(kd, a);
                    sacc[a][0] += k * u.x; sacc[a][1] += k * u.y; sacc[a][2] += k * u.z; sacc[a][3] += k * u.w;
                }
            }
#pragma unroll
            for (int a = 0; a < 4; a++) {
                float dec = DECb[4 * ti + a];
#pragma unroll
                for (int b = 0; b < 4; b++) sr[a][b] = dec * sr[a][b] + sacc[a][b];
                st4(S + (4 * ti + a) * 32 + 4 * tj, make_float4(sr[a][0], sr[a][1], sr[a][2], sr[a][3]));
            }
        }
    }
    cp_async_wait<0>();
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) st4(st + (long)(4 * ti + a) * d + j0 + 4 * tj, make_float4(sr[a][0], sr[a][1], sr[a][2], sr[a][3]));
    }
}
