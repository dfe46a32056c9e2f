// The verified v2 chunk kernels (kda.cu before the v4 change of 2026-12-06: q and k normalised by kda_l2norm first,
// M U in the scan), kept as the reference of kda_bench.cu. Needs kda.cu's helpers (cp_async16, ld4, st4, comp, SB).
// Workspace per (chunk, head): u0 | W | Qg | Kd [CH][d] | M [CH][CH] | decay [d].

// qn = q / sqrt(|q|^2 + 1e-6) * scale, kn = k / sqrt(|k|^2 + 1e-6); one block (128 threads) per (row, head).
// (The v2 path's separate normalisation pass; kda_recurrent and the v4 prep take the same sums.)
extern "C" __global__ void v2_kda_l2norm(const float* q, const float* k, float* qn, float* kn, int heads, int d, float scale) {
    __shared__ float red[2][4];
    long base = (long)blockIdx.x * heads * d + (long)blockIdx.y * d;
    float qs = 0.0f, ks = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float a = q[base + i], b = k[base + i];
        qs += a * a;
        ks += b * b;
    }
    for (int o = 16; o > 0; o >>= 1) {
        qs += __shfl_xor_sync(0xffffffff, qs, o);
        ks += __shfl_xor_sync(0xffffffff, ks, o);
    }
    int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) { red[0][warp] = qs; red[1][warp] = ks; }
    __syncthreads();
    qs = 0.0f; ks = 0.0f;
    for (int w = 0; w < (blockDim.x >> 5); w++) { qs += red[0][w]; ks += red[1][w]; }
    float qi = 1.0f / sqrtf(qs + 1e-6f) * scale, ki = 1.0f / sqrtf(ks + 1e-6f);
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        qn[base + i] = q[base + i] * qi;
        kn[base + i] = k[base + i] * ki;
    }
}

extern "C" __global__ void __launch_bounds__(256, 2) v2_kda_chunk_prep(const float* qn, const float* kn, const float* v, const float* g,
                                                                    const float* beta, const int* chunkRow, const int* chunkLen,
                                                                    float* ws, int heads, int d) {
    extern __shared__ float4 sm4[];
    float* sm = reinterpret_cast<float*>(sm4);
    const int d4 = d / 4;
    float* Gs = sm;               // G; then B; then v
    float* Ks = Gs + CH * d;      // k; then A k; then e^G k
    float* Qs = Ks + CH * d;      // q; then A q
    float* Lm = Qs + CH * d;      // L [CH][CH]; then T
    auto at = [d](int t, int i) { return t * d + ((((i >> 2) ^ (t & 7)) << 2) | (i & 3)); };
    auto vec = [Lm](int x) { return Lm + (x >> 5) * CH + 32 + (x & 31); };
    const int DV = 0, EV = 3 * d, SBV = 7 * d;   // D for the sub-block pairs (2,0), (3,1), (3,0) (the others are 1);
                                                 // E_b = e^{G_{SB b}}; beta (0 past the chunk)
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
        int t = x / d4, i = 4 * (x % d4), o = at(t, i);
        if (t < c) {
            long ro = (long)(row0 + t) * P + (long)h * d + i;
            cp_async16(Ks + o, kn + ro);
            cp_async16(Qs + o, qn + ro);
            cp_async16(Gs + o, g + ro);
        } else {
            st4(Ks + o, zero4);
            st4(Qs + o, zero4);
            st4(Gs + o, zero4);
        }
    }
    cp_async_commit();
    if (tid < CH) *vec(SBV + tid) = tid < c ? beta[(long)(row0 + tid) * heads + h] : 0.0f;
    cp_async_wait<0>();
    __syncthreads();
    // cumulative sum, one channel per thread, in token order (the same float sums as the recurrent form)
    for (int i = tid; i < d; i += blockDim.x) {
        float acc = 0.0f;
#pragma unroll 16
        for (int t = 0; t < CH; t++) {
            acc += Gs[at(t, i)];
            Gs[at(t, i)] = acc;
        }
    }
    __syncthreads();

    // 2. the diagonal sub-blocks, pairwise: 4 x 136 pairs (s <= t), each over one half of the channels (alternate
    // groups of 4)
    for (int it = tid; it < 4 * 136 * 2; it += blockDim.x) {
        int pair = it >> 1, half = it & 1;
        int blk = pair / 136, p = pair - blk * 136;
        int tl = (int)((sqrtf(8.0f * p + 1.0f) - 1.0f) * 0.5f);
        while ((tl + 1) * (tl + 2) / 2 <= p) tl++;
        while (tl * (tl + 1) / 2 > p) tl--;
        int t = blk * SB + tl, s = blk * SB + (p - tl * (tl + 1) / 2);
        float l = 0.0f, m = 0.0f;
        for (int i = 4 * half; i < d; i += 8) {
            int ot = at(t, i), os = at(s, i);
            float4 a = ld4(Gs + ot), b = ld4(Gs + os), ka = ld4(Ks + ot), kb = ld4(Ks + os), qa = ld4(Qs + ot);
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
            Lm[t * CH + s] = s < t ? l : 0.0f;
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
            int bt = t / SB, rn = min(SB * (bt + 1), CH - 1), o = at(t, i);
            float4 gt = ld4(Gs + o), gl = ld4(Gs + at(CH - 1, i)), gr = ld4(Gs + at(SB * bt, i)), gn = ld4(Gs + at(rn, i));
            float4 kt = ld4(Ks + o), qt = ld4(Qs + o);
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
            st4(Ks + o, ak);
            st4(Qs + o, aq);
            breg[r] = bb;
        }
    }
    for (int i = tid; i < d; i += blockDim.x) {
        *vec(DV + i) = __expf(Gs[at(2 * SB, i)] - Gs[at(SB, i)]);
        *vec(DV + d + i) = __expf(Gs[at(3 * SB, i)] - Gs[at(2 * SB, i)]);
        *vec(DV + 2 * d + i) = __expf(Gs[at(3 * SB, i)] - Gs[at(SB, i)]);
        for (int b = 0; b < 4; b++) *vec(EV + b * d + i) = __expf(Gs[at(b * SB, i)]);
        DEC[i] = __expf(Gs[at(CH - 1, i)]);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < CH * 32 / 256; r++) {
        int x = tid + r * 256;
        if (x < CH * d4 && blockDim.x == 256) st4(Gs + at(x / d4, 4 * (x % d4)), breg[r]);
    }
    __syncthreads();

    // 4. the off-diagonal sub-blocks: 6 pairs x 16 tiles of 4 x 4, each over a quarter of the channels (every fourth
    // group of 4)
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
        for (int i = 4 * q; i < d; i += 16) {
            float4 ka[4], qa[4], bs[4];
#pragma unroll
            for (int a = 0; a < 4; a++) {
                ka[a] = ld4(Ks + at(t0 + a, i));
                qa[a] = ld4(Qs + at(t0 + a, i));
                bs[a] = ld4(Gs + at(s0 + a, i));
            }
            if (ds >= 0) {
                float4 dd = ld4(vec(DV + ds * d + i));
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
                st4(Lm + (t0 + a) * CH + s0, make_float4(l[a][0], l[a][1], l[a][2], l[a][3]));
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
                float4 l4 = ld4(Lm + t * CH + s);
                a0 -= l4.x * x[s];
                if (s + 1 < t) a1 -= l4.y * x[s + 1];
                if (s + 2 < t) a2 -= l4.z * x[s + 2];
                if (s + 3 < t) a3 -= l4.w * x[s + 3];
            }
            x[t] = *vec(SBV + t) * ((a0 + a1) + (a2 + a3));
        }
    } else {
        int o = tid - CH, n = blockDim.x - CH;
        for (int y = o; y < CH * d4; y += n) {
            int t = y / d4, i = 4 * (y % d4), oo = at(t, i);
            if (t < c) cp_async16(Gs + oo, v + (long)(row0 + t) * P + (long)h * d + i);
            else st4(Gs + oo, zero4);
            float4 e = ld4(vec(EV + (t / SB) * d + i)), k = ld4(Ks + oo);
            st4(Ks + oo, make_float4(k.x * e.x, k.y * e.y, k.z * e.z, k.w * e.w));
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
        for (int t = 0; t < CH; t++) Lm[t * CH + tid] = x[t];
    }
    __syncthreads();

    // 6. [u0 | W] = T [v | e^G k]: warp -> 8 rows (T is lower triangular: s <= the last row), lane -> 8 columns.
    // Rows are paired across the warps that share a scheduler (w and w + 4) so that each pair has the same work.
    int warp = tid >> 5, lane = tid & 31;
    int tg = warp < 4 ? warp : 11 - warp;
    if (lane < d / 4 && warp < 8) {
        int col = 8 * lane;
        const float* R = col < d ? Gs : Ks;
        int rc = col < d ? col : col - d;
        float acc[8][8];
#pragma unroll
        for (int a = 0; a < 8; a++)
#pragma unroll
            for (int b = 0; b < 8; b++) acc[a][b] = 0.0f;
        int smax = 8 * tg + 8;
        for (int s = 0; s < smax; s += 4) {
            float4 tv[8];
#pragma unroll
            for (int a = 0; a < 8; a++) tv[a] = ld4(Lm + (8 * tg + a) * CH + s);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float4 r0 = ld4(R + at(s + k, rc)), r1 = ld4(R + at(s + k, rc + 4));
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
// carries a [d, 32] column tile of S. Per chunk, two phases between barriers:
//   X: U = u0 - W S and o = Qg S, in one pass over S;   Y: o += M U (then stored), S = decay * S + Kd^T U.
// Each phase's operands are fetched with cp.async while the other phase runs (W | u0 | Qg for X when Y starts, M | Kd |
// decay for Y when X starts). Shared floats: W, Qg, Kd [CH][d+4] | M [CH][CH+4] | u0, U [CH][32] | S [d][32] | decay [d].
// X and the M U part of Y: thread -> rows 4ty..4ty+3, columns 2tx, 2tx+1; the S update: thread -> S rows 4ti..,
// columns 4tj.. (kept in registers across chunks). The sums run in the same order as the earlier kernels' (i, then s,
// ascending): fed the same workspace, this scan gives their bits (cuda/bench/kda checks it). Its time is bound by the
// 120 KB of workspace a block streams per chunk, not by its arithmetic (docs/benchmarks-gpu.md, the v3 experiment).
extern "C" __global__ void __launch_bounds__(256) v2_kda_chunk_scan(const float* ws, const long long* states, const int* segChunk0,
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
    auto issueX = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            for (int x = tid; x < CH * d4; x += 256) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(Wb + t * LDW + i, b + (long)CH * d + t * d + i);
                cp_async16(QGb + t * LDW + i, b + 2L * CH * d + t * d + i);
            }
            for (int x = tid; x < CH * 8; x += 256) cp_async16(U0b + (x >> 3) * 32 + 4 * (x & 7), b + (x >> 3) * d + j0 + 4 * (x & 7));
        }
        cp_async_commit();
    };
    auto issueY = [&](int cc) {
        const float* b = rec(cc);
        for (int x = tid; x < CH * d4; x += 256) {
            int t = x / d4, i = 4 * (x % d4);
            cp_async16(KDb + t * LDW + i, b + 3L * CH * d + t * d + i);
        }
        for (int x = tid; x < CH * CH / 4; x += 256) cp_async16(Mb + (x >> 4) * LDM + 4 * (x & 15), b + 4L * CH * d + 4 * x);
        for (int x = tid; x < d4; x += 256) cp_async16(DECb + 4 * x, b + 4L * CH * d + CH * CH + 4 * x);
        cp_async_commit();
    };
    issueX(0);
    for (int cc = 0; cc < n; cc++) {
        int ci = first + cc, c = chunkLen[ci], row0 = chunkRow[ci];
        // X: U = u0 - W S (rows past c set to 0: M U and Kd^T U then need no bounds), o = Qg S
        cp_async_wait<0>();
        __syncthreads();
        issueY(cc);
        float au[4][2], ao[4][2];
#pragma unroll
        for (int a = 0; a < 4; a++) {
            float2 u = *reinterpret_cast<const float2*>(U0b + (4 * ty + a) * 32 + 2 * tx);
            au[a][0] = u.x; au[a][1] = u.y;
            ao[a][0] = ao[a][1] = 0.0f;
        }
#pragma unroll 2
        for (int i = 0; i < d; i += 4) {
            float4 w[4], q[4];
            float2 sv[4];
#pragma unroll
            for (int a = 0; a < 4; a++) {
                w[a] = ld4(Wb + (4 * ty + a) * LDW + i);
                q[a] = ld4(QGb + (4 * ty + a) * LDW + i);
            }
#pragma unroll
            for (int k = 0; k < 4; k++) sv[k] = *reinterpret_cast<const float2*>(S + (i + k) * 32 + 2 * tx);
#pragma unroll
            for (int k = 0; k < 4; k++)
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    au[a][0] -= comp(w[a], k) * sv[k].x;
                    au[a][1] -= comp(w[a], k) * sv[k].y;
                    ao[a][0] += comp(q[a], k) * sv[k].x;
                    ao[a][1] += comp(q[a], k) * sv[k].y;
                }
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int t = 4 * ty + a;
            *reinterpret_cast<float2*>(U + t * 32 + 2 * tx) = t < c ? make_float2(au[a][0], au[a][1]) : make_float2(0.0f, 0.0f);
        }
        // Y: o += M U; S = decay * S + Kd^T U
        cp_async_wait<0>();
        __syncthreads();
        issueX(cc + 1);
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
                    ao[a][0] += comp(w[a], k) * u[k].x;
                    ao[a][1] += comp(w[a], k) * u[k].y;
                }
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int t = 4 * ty + a;
            if (t < c) *reinterpret_cast<float2*>(out + (long)(row0 + t) * P + (long)h * d + j0 + 2 * tx) = make_float2(ao[a][0], ao[a][1]);
        }
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
