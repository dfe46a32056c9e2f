// Kimi Delta Attention on the GPU: L2 normalisation, the recurrent (decode) step and the chunkwise (prefill) form.
// Per head the state S is [d_k, d_v] = [d, d] row-major; S_t = (I - b k k^T) Diag(exp g_t) S_{t-1} + b k v^T,
// o_t = S_t^T q_t. Columns of S evolve independently, so kernels split the v dimension across blocks.
#define MAXD 128
#define CH 64

// Token-by-token recurrence. grid (heads, segments, d/32), block 256 = 8 warps: lane j owns column j0 + j, warp w owns
// rows w, w + 8, ... of S, held in registers for the whole segment.
// With normalize = 1, q and k are the raw projections and each token's L2 norms are taken here (element i squared,
// an xor tree over each 32 elements, the quarters summed in order: the order kda_chunk_prep uses, so both forms see
// the same normalised q and k); the decode step then needs one launch per layer.
extern "C" __global__ void kda_recurrent(const float* qn, const float* kn, const float* v, const float* g, const float* beta,
                                         const long long* states, const int* start, const int* len, float* out,
                                         int heads, int d, int normalize, float scale) {
    __shared__ float sq[MAXD], sk[MAXD], sa[MAXD];
    __shared__ float red[2][8][32];
    __shared__ float nred[2][4];
    int h = blockIdx.x, s = blockIdx.y, j0 = blockIdx.z * 32;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int j = j0 + lane;
    int rowsPer = d / 8;
    float* S = (float*)states[s] + (long)h * d * d;
    float reg[MAXD / 8];
#pragma unroll
    for (int m = 0; m < MAXD / 8; m++) reg[m] = (m < rowsPer) ? S[(long)(warp + 8 * m) * d + j] : 0.0f;
    int row0 = start[s], L = len[s];
    int P = heads * d;
    for (int t = 0; t < L; t++) {
        long ro = (long)(row0 + t) * P + (long)h * d;
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            sq[i] = qn[ro + i];
            sk[i] = kn[ro + i];
            sa[i] = expf(g[ro + i]);
        }
        __syncthreads();
        if (normalize) {
            // element i's square in thread i of a 128-thread block, xor-tree per warp, warps summed in order (warps
            // past d add zeros)
            int wq = warp & 3, idx = wq * 32 + lane;
            float a = idx < d ? (warp < 4 ? sq[idx] : sk[idx]) : 0.0f;
            a = 0.0f + a * a;
            for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
            if (lane == 0) nred[warp >> 2][wq] = a;
            __syncthreads();
            float qs = 0.0f, ks = 0.0f;
            for (int w = 0; w < 4; w++) { qs += nred[0][w]; ks += nred[1][w]; }
            float qi = 1.0f / sqrtf(qs + 1e-6f) * scale, ki = 1.0f / sqrtf(ks + 1e-6f);
            for (int i = threadIdx.x; i < d; i += blockDim.x) {
                sq[i] = sq[i] * qi;
                sk[i] = sk[i] * ki;
            }
            __syncthreads();
        }
        float kv = 0.0f;
#pragma unroll
        for (int m = 0; m < MAXD / 8; m++) {
            if (m < rowsPer) {
                int i = warp + 8 * m;
                reg[m] *= sa[i];
                kv += sk[i] * reg[m];
            }
        }
        red[0][warp][lane] = kv;
        __syncthreads();
        kv = 0.0f;
        for (int w = 0; w < 8; w++) kv += red[0][w][lane];
        float b = beta[(long)(row0 + t) * heads + h];
        kv = b * (v[ro + j] - kv);
        float o = 0.0f;
#pragma unroll
        for (int m = 0; m < MAXD / 8; m++) {
            if (m < rowsPer) {
                int i = warp + 8 * m;
                reg[m] += sk[i] * kv;
                o += sq[i] * reg[m];
            }
        }
        red[1][warp][lane] = o;
        __syncthreads();
        if (warp == 0) {
            float acc = 0.0f;
            for (int w = 0; w < 8; w++) acc += red[1][w][lane];
            out[ro + j] = acc;
        }
        __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < MAXD / 8; m++) if (m < rowsPer) S[(long)(warp + 8 * m) * d + j] = reg[m];
}

// ---- Chunkwise prefill: kda_chunk_prep (every chunk x head at once) then kda_chunk_scan (chunks in order) ----
// Per chunk of c <= CH tokens, with G the in-chunk cumulative log decay (G_t = sum_{s<=t} g_s, per channel),
// L[t,s] = sum_i k_t k_s e^{G_t - G_s} (s < t) and M[t,s] = sum_i q_t k_s e^{G_t - G_s} (s <= t):
//   u0 = T v,  W = T (e^G k)  with  T = (I + Diag(b) L)^-1 Diag(b)   (so u = u0 - W S0),
//   Qg_t = e^{G_t} q_t,  Kd_t = e^{G_last - G_t} k_t,  decay = e^{G_last}.
// The output o = Qg S0 + M u = (Qg - M W) S0 + M u0, so the prep also forms Qp = Qg - M W and o0 = M u0: the scan
// then needs neither M nor the M u product on its sequential path.
// Workspace per (chunk, head), floats, row-major: u0 [CH][d] | W [CH][d] | Qp [CH][d] | Kd [CH][d] | o0 [CH][d] |
// M [CH][CH] (the prep's own scratch; the scan does not read it) | decay [d]. Rows t >= c of u0, W, Qp, Kd and o0
// are written as zeros.
#define SB 16   // sub-chunk of the factorised decays
__host__ __device__ __forceinline__ long kda_ws_floats(int d) { return 5L * CH * d + CH * CH + d; }

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
// KDA_PROFILE (the standalone harness only): thread 0 of each block adds the cycles between consecutive marks to
// kda_prof[kernel][mark], to see where a chunk kernel spends its time without a profiler.
#ifdef KDA_PROFILE
__device__ unsigned long long kda_prof[2][8];
#define KDA_T0 long long kda_t0_ = clock64();
#define KDA_MARK(kernel, k)                                                                     \
    if (threadIdx.x == 0) {                                                                     \
        long long t_ = clock64();                                                               \
        atomicAdd(&kda_prof[kernel][k], (unsigned long long)(t_ - kda_t0_));                    \
        kda_t0_ = t_;                                                                           \
    }
#else
#define KDA_T0
#define KDA_MARK(kernel, k)
#endif
__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void st4(float* p, float4 x) { *reinterpret_cast<float4*>(p) = x; }
__device__ __forceinline__ float comp(const float4& x, int k) { return k == 0 ? x.x : k == 1 ? x.y : k == 2 ? x.z : x.w; }
// N = 2 or 4 consecutive floats from (or to) 8- or 16-byte aligned memory
template <int N> __device__ __forceinline__ void ldn(const float* p, float* x) {
    if constexpr (N == 4) {
        float4 v = ld4(p);
        x[0] = v.x; x[1] = v.y; x[2] = v.z; x[3] = v.w;
    } else {
        float2 v = *reinterpret_cast<const float2*>(p);
        x[0] = v.x; x[1] = v.y;
    }
}
template <int N> __device__ __forceinline__ void stn(float* p, const float* x) {
    if constexpr (N == 4) st4(p, make_float4(x[0], x[1], x[2], x[3]));
    else *reinterpret_cast<float2*>(p) = make_float2(x[0], x[1]);
}

// the chunk kernels' dynamic shared memory
extern __shared__ float4 kda_smem[];

// the tensor-core forms of the bf16-compute mode: kda_chunk_scan_tc and the prep's products (kda_chunk_prep_tc)
#include "kda_tc.cuh"

// e^{G_t - G_s} for s <= t overflows float32 when taken apart (e^{-G_s} with G_s near -1000), so it is factorised
// only across sub-chunks of SB rows, through reference rows where every factor is <= 1:
//   t in sub-chunk bt > bs, s in bs:  e^{G_t - G_s} = A_t * D_{bt,bs} * B_s  with  A_t = e^{G_t - G_{SB bt}},
//   D_{bt,bs} = e^{G_{SB bt} - G_{SB (bs+1)}},  B_s = e^{G_{SB (bs+1)} - G_s}   (all exponents <= 0);
// within a sub-chunk the decays are taken pairwise. Then L and M off the diagonal sub-blocks are plain products.
// Shared floats: G, K, Q [CH][d] | L, later T, later M [CH][CH] = 112 KB at d = 128, so that two blocks share an SM
// (one block's loads and stores overlap the other's arithmetic). Rows of G, K, Q are unpadded: their 16-byte groups
// are XOR-swizzled by the row (at()), so reads of one column group from several rows hit different banks. The small
// vectors (D [3][d], E [4][d], beta [CH]) live in the upper-right 32 x 32 block of L, which L never uses and T
// overwrites only after they are read.
// q and k come in raw: each row is L2-normalised here (q also scaled by d^-1/2; the sums in kda_recurrent's order, so
// both forms see the same bits), so that no separate pass writes and re-reads normalised copies.
// DIAG22: the diagonal sub-blocks in 2 x 2 blocks of pairs (each loaded row serves two pairs), else one pair per
// thread pair (the v2 form, kept for the harness's comparison).
// QG_SHARED (v5): Qg is not written to the workspace in step 3 and re-read at the end; step 5 turns A q into
// Qg = E_b (A q) in place (as it turns A k into e^G k), since Q's rows are not read after step 4. Qg is then rounded
// twice (A, then E_b) instead of once: Qp moves by about an ulp.
// TC (with QG_SHARED; the bf16-compute mode's preps): steps 6 and 7, the two triangular products, on TF32 tensor cores;
// every other step is v5's, in fp32. 1: kda_chunk_prep_tc (kda_prep_products_tc in kda_tc.cuh); 2: kda_chunk_prep_tc2
// (kda_prep_products_tc2: equal work per warp, no run-time test around an MMA); 3: kda_chunk_prep_tc3 (the same with
// 3xTF32 products, fp32-accurate, and two of tc2's shared-memory bank conflicts removed: the norms' rescale and the
// products' T / M fragment loads, T and M then stored with kda_tc3_col's column swizzle). TC_INLINE (2 and 3): the
// products inlined (d = MAXD, the model's), else called (the smaller widths of the tests).
// CF (v6, with DIAG22 and QG_SHARED, TC = 0): v5's arithmetic, every fp32 operation in the same order, with three of
// its shared-memory bank conflicts removed by a different lane-to-data mapping (cuda/bench/kda/smem_banks.py models
// them): the norms' lanes take (quarter lane >> 3, row lane & 7), so that each 8-lane phase of a 16-byte access reads
// eight rows (eight swizzled bank groups) where v5's read four quarters of two rows (one group: 4-way); the products'
// lanes own column group lane of both halves ([v | e^G k] columns 4 lane.. and d + 4 lane..) where v5's owned 8
// consecutive columns (two loads 32 bytes apart per lane: 2-way); the diagonal step's 2 x 2 blocks are taken in
// kda_diag_order's order (below), so that the two blocks sharing a phase never read two rows with the same swizzle
// (v5's consecutive blocks did, 1.31-way over the step).
// kda_diag_order: the diagonal step's 144 blocks of pairs (4 sub-chunks x 36), t1 | s1 << 8, ordered so that each two
// consecutive blocks (the 8 lanes of a 16-byte phase: 4 quarters each) read rows that are equal or differ in bit 2,
// i.e. land in disjoint halves of the swizzled bank groups (at(): group ^ (t & 7)). A perfect matching of the blocks
// under that rule, found by search (cuda/bench/kda/smem_banks.py checks it and models the wavefronts).
__constant__ unsigned short kda_diag_order[144] = {
    0x0000, 0x0004, 0x0002, 0x0006, 0x0202, 0x0204, 0x0404, 0x0008, 0x0206, 0x0406, 0x0606, 0x0208,
    0x0408, 0x000c, 0x0608, 0x020c, 0x0808, 0x080c, 0x000a, 0x000e, 0x020a, 0x020e, 0x040a, 0x0a0c,
    0x060a, 0x080e, 0x080a, 0x040c, 0x0a0a, 0x0a0e, 0x060c, 0x1010, 0x0c0c, 0x1012, 0x040e, 0x1212,
    0x060e, 0x1818, 0x0c0e, 0x181a, 0x0e0e, 0x1a1a, 0x1014, 0x1414, 0x1214, 0x1218, 0x1016, 0x1416,
    0x1216, 0x1616, 0x1018, 0x101c, 0x1418, 0x181c, 0x1618, 0x1a1c, 0x101a, 0x101e, 0x121a, 0x121c,
    0x141a, 0x121e, 0x161a, 0x181e, 0x141c, 0x2020, 0x161c, 0x2022, 0x1c1c, 0x2222, 0x141e, 0x1a1e,
    0x161e, 0x2828, 0x1c1e, 0x282a, 0x1e1e, 0x2a2a, 0x2024, 0x2424, 0x2224, 0x2228, 0x2026, 0x2426,
    0x2226, 0x2626, 0x2028, 0x202c, 0x2428, 0x282c, 0x2628, 0x2a2c, 0x202a, 0x202e, 0x222a, 0x222c,
    0x242a, 0x222e, 0x262a, 0x282e, 0x242c, 0x3030, 0x262c, 0x3032, 0x2c2c, 0x3232, 0x242e, 0x2a2e,
    0x262e, 0x3838, 0x2c2e, 0x383a, 0x2e2e, 0x3a3a, 0x3034, 0x3434, 0x3234, 0x3238, 0x3036, 0x3436,
    0x3236, 0x3636, 0x3038, 0x3c3c, 0x3438, 0x383c, 0x3638, 0x3a3c, 0x303a, 0x303c, 0x323a, 0x343c,
    0x343a, 0x323c, 0x363a, 0x363c, 0x303e, 0x343e, 0x323e, 0x363e, 0x383e, 0x3c3e, 0x3a3e, 0x3e3e,
};
template <bool DIAG22, bool QG_SHARED = false, int TC = 0, bool TC_INLINE = true, bool CF = false>
__device__ __forceinline__ void kda_chunk_prep_body(const float* q, const float* k, const float* v, const float* g, const float* beta,
                                                    const int* chunkRow, const int* chunkLen, float* ws, int heads, int d, float scale) {
    float* sm = reinterpret_cast<float*>(kda_smem);
    const int d4 = d / 4;
    float* Gs = sm;               // G; then B; then v; then u0
    float* Ks = Gs + CH * d;      // k; then A k; then e^G k; then W
    float* Qs = Ks + CH * d;      // q; then A q
    float* Lm = Qs + CH * d;      // L [CH][CH]; then T; then M
    auto at = [d](int t, int i) { return t * d + ((((i >> 2) ^ (t & 7)) << 2) | (i & 3)); };
    auto vec = [Lm](int x) { return Lm + (x >> 5) * CH + 32 + (x & 31); };
    const int DV = 0, EV = 3 * d, SBV = 7 * d;   // D for the sub-block pairs (2,0), (3,1), (3,0) (the others are 1);
                                                 // E_b = e^{G_{SB b}}; beta (0 past the chunk)
    int ci = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
    int c = chunkLen[ci], row0 = chunkRow[ci];
    int P = heads * d;
    float* base = ws + ((long)ci * heads + h) * kda_ws_floats(d);
    float* U0 = base;
    float* W = base + (long)CH * d;
    float* QP = base + 2L * CH * d;   // Qg first (step 3), Qg - M W at the end
    float* KD = base + 3L * CH * d;
    float* O0 = base + 4L * CH * d;
    float* M = base + 5L * CH * d;
    float* DEC = M + CH * CH;
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    KDA_T0

    // 1. k, q, g of the chunk into shared memory (zeros past c: G then stays G_{c-1}, so every factor stays finite)
    for (int x = tid; x < CH * d4; x += blockDim.x) {
        int t = x / d4, i = 4 * (x % d4), o = at(t, i);
        if (t < c) {
            long ro = (long)(row0 + t) * P + (long)h * d + i;
            cp_async16(Ks + o, k + ro);
            cp_async16(Qs + o, q + ro);
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
    if (tid < 128) {
        // cumulative sum, one channel per thread, in token order (the same float sums as the recurrent form)
        if (tid < d) {
            float acc = 0.0f;
#pragma unroll 16
            for (int t = 0; t < CH; t++) {
                acc += Gs[at(t, tid)];
                Gs[at(t, tid)] = acc;
            }
        }
    } else {
        // L2 norms of the rows of q and k. The recurrent kernel sums the squares of each 32 elements by a warp's xor
        // tree (all lanes end with lane 0's value: (x0 + x16) + (x8 + x24) + ...), then the quarters in order; here one
        // thread takes one quarter of one row through that same tree in registers (independent rows in flight, where
        // a warp per row waited on five rounds of shuffles), and the four lanes of a row combine their quarters.
        // Task id = (tid - 128) + 128 r: quarter id & 3, row (id >> 2) & 63, q for r < 2 and k after.
        const int lane = tid & 31;
#pragma unroll 1
        for (int r = 0; r < 4; r++) {
            // v6 (CF): the same rows per warp and round (32 (r & 1) + 8 warp ..), each phase of 8 lanes one quarter
            int id = tid - 128 + 128 * r;
            int j = CF ? lane >> 3 : id & 3;
            int t = CF ? 32 * (r & 1) + 8 * ((tid - 128) >> 5) + (lane & 7) : (id >> 2) & (CH - 1);
            float* X = r < 2 ? Qs : Ks;
            // the tree's first level in the loads: a[l] = x_l^2 + x_{l+16}^2 (each square rounded, as in the
            // recurrent kernel: __fmul_rn keeps the compiler from fusing a square into the add)
            float a[16];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float4 x = 32 * j < d ? ld4(X + at(t, 32 * j + 4 * e)) : zero4;
                float4 y = 32 * j < d ? ld4(X + at(t, 32 * j + 16 + 4 * e)) : zero4;
                a[4 * e] = __fmul_rn(x.x, x.x) + __fmul_rn(y.x, y.x);
                a[4 * e + 1] = __fmul_rn(x.y, x.y) + __fmul_rn(y.y, y.y);
                a[4 * e + 2] = __fmul_rn(x.z, x.z) + __fmul_rn(y.z, y.z);
                a[4 * e + 3] = __fmul_rn(x.w, x.w) + __fmul_rn(y.w, y.w);
            }
#pragma unroll
            for (int l = 0; l < 8; l++) a[l] += a[l + 8];
#pragma unroll
            for (int l = 0; l < 4; l++) a[l] += a[l + 4];
            a[0] += a[2];
            a[1] += a[3];
            a[0] += a[1];
            float sum = 0.0f;
#pragma unroll
            for (int jj = 0; jj < 4; jj++) sum += __shfl_sync(0xffffffffu, a[0], CF ? (lane & 7) + 8 * jj : (lane & ~3) + jj);
            float f = r < 2 ? 1.0f / sqrtf(sum + 1e-6f) * scale : 1.0f / sqrtf(sum + 1e-6f);
            if (32 * j < d && t < c) {
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    // tc3: the four lanes of a row start at different groups (e + 2j), so that their 16-byte
                    // accesses hit different banks (the same group of each quarter is one bank group: 4-way)
                    const int ee = TC == 3 ? ((e + 2 * j) & 7) : e;
                    float* p = X + at(t, 32 * j + 4 * ee);
                    float4 x = ld4(p);
                    st4(p, make_float4(x.x * f, x.y * f, x.z * f, x.w * f));
                }
            }
        }
    }
    __syncthreads();
    KDA_MARK(0, 0)

    // 2. the diagonal sub-blocks, pairwise (s <= t)
    if constexpr (DIAG22) {
        // in 2 x 2 blocks of pairs (t1, t1+1) x (s1, s1+1), so that each row loaded serves two pairs: 4 sub-blocks x
        // 36 blocks (s1 <= t1), each over a quarter of the channels (every fourth group of 4, so that the four lanes
        // of a block read different banks). Pairs with s > t are computed and dropped (their exponent may overflow).
        for (int it = tid; it < 4 * 36 * 4; it += blockDim.x) {
            int qq = it & 3, rest = it >> 2, t1, s1;
            if constexpr (CF) {
                // v6: the block from the conflict-free order (the same blocks, the same sums per block)
                unsigned o = kda_diag_order[rest];
                t1 = o & 255;
                s1 = o >> 8;
            } else {
                int blk = rest / 36, p = rest - blk * 36;
                int bt = (int)((sqrtf(8.0f * p + 1.0f) - 1.0f) * 0.5f);
                while ((bt + 1) * (bt + 2) / 2 <= p) bt++;
                while (bt * (bt + 1) / 2 > p) bt--;
                t1 = blk * SB + 2 * bt;
                s1 = blk * SB + 2 * (p - bt * (bt + 1) / 2);
            }
            float l[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}}, m[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
            for (int i = 4 * qq; i < d; i += 16) {
                float4 gt[2], kt[2], qt[2], gs[2], ks[2];
#pragma unroll
                for (int a = 0; a < 2; a++) {
                    int ot = at(t1 + a, i), os = at(s1 + a, i);
                    gt[a] = ld4(Gs + ot); kt[a] = ld4(Ks + ot); qt[a] = ld4(Qs + ot);
                    gs[a] = ld4(Gs + os); ks[a] = ld4(Ks + os);
                }
#pragma unroll
                for (int a = 0; a < 2; a++)
#pragma unroll
                    for (int b = 0; b < 2; b++)
#pragma unroll
                        for (int kk = 0; kk < 4; kk++) {
                            float ke = comp(ks[b], kk) * __expf(comp(gt[a], kk) - comp(gs[b], kk));
                            l[a][b] += comp(kt[a], kk) * ke;
                            m[a][b] += comp(qt[a], kk) * ke;
                        }
            }
#pragma unroll
            for (int a = 0; a < 2; a++)
#pragma unroll
                for (int b = 0; b < 2; b++) {
                    l[a][b] += __shfl_xor_sync(0xffffffffu, l[a][b], 1);
                    l[a][b] += __shfl_xor_sync(0xffffffffu, l[a][b], 2);
                    m[a][b] += __shfl_xor_sync(0xffffffffu, m[a][b], 1);
                    m[a][b] += __shfl_xor_sync(0xffffffffu, m[a][b], 2);
                }
            if (qq == 0) {
#pragma unroll
                for (int a = 0; a < 2; a++)
#pragma unroll
                    for (int b = 0; b < 2; b++) {
                        int t = t1 + a, s = s1 + b;
                        if (s <= t) {
                            Lm[t * CH + s] = s < t ? l[a][b] : 0.0f;
                            M[t * CH + s] = m[a][b];
                        }
                    }
            }
        }
    } else {
        // 4 x 136 pairs, each over one half of the channels (alternate groups of 4)
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
                for (int kk = 0; kk < 4; kk++) {
                    float ke = comp(kb, kk) * __expf(comp(a, kk) - comp(b, kk));
                    l += comp(ka, kk) * ke;
                    m += comp(qa, kk) * ke;
                }
            }
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            m += __shfl_xor_sync(0xffffffffu, m, 1);
            if (half == 0) {
                Lm[t * CH + s] = s < t ? l : 0.0f;
                M[t * CH + s] = m;
            }
        }
    }
    __syncthreads();
    KDA_MARK(0, 1)

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
            if (!QG_SHARED) st4(QP + t * d + i, qg);
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
    KDA_MARK(0, 2)

    // 4. the off-diagonal sub-blocks: 6 pairs x 16 tiles of 4 x 4, each over a quarter of the channels (every fourth
    // group of 4)
    for (int it = tid; it < 6 * 16 * 4; it += blockDim.x) {
        int qq = it & 3, tile = (it >> 2) & 15, pr = it >> 6;
        // pairs (bt, bs) = (1,0) (2,0) (2,1) (3,0) (3,1) (3,2), packed a nibble each; ds: which D (-1: D = 1)
        int bt = (0x333221 >> (4 * pr)) & 15, bs_ = (0x210100 >> (4 * pr)) & 15, ds = ((0x023010 >> (4 * pr)) & 15) - 1;
        int t0 = bt * SB + 4 * (tile >> 2), s0 = bs_ * SB + 4 * (tile & 3);
        float l[4][4], m[4][4];
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++) l[a][b] = m[a][b] = 0.0f;
        for (int i = 4 * qq; i < d; i += 16) {
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
            for (int kk = 0; kk < 4; kk++)
#pragma unroll
                for (int a = 0; a < 4; a++)
#pragma unroll
                    for (int b = 0; b < 4; b++) {
                        l[a][b] += comp(ka[a], kk) * comp(bs[b], kk);
                        m[a][b] += comp(qa[a], kk) * comp(bs[b], kk);
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
        if (qq == 0) {
#pragma unroll
            for (int a = 0; a < 4; a++) {
                st4(Lm + (t0 + a) * CH + s0, make_float4(l[a][0], l[a][1], l[a][2], l[a][3]));
                st4(M + (t0 + a) * CH + s0, make_float4(m[a][0], m[a][1], m[a][2], m[a][3]));
            }
        }
    }
    __syncthreads();
    KDA_MARK(0, 3)

    // 5. T by forward substitution, one column per thread of warps 0-1, held in registers; meanwhile the other warps
    // fetch v (into G's place) and turn A k into e^G k
    {
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
                float4 e = ld4(vec(EV + (t / SB) * d + i)), kk = ld4(Ks + oo);
                st4(Ks + oo, make_float4(kk.x * e.x, kk.y * e.y, kk.z * e.z, kk.w * e.w));
                if (QG_SHARED) {
                    float4 qq = ld4(Qs + oo);
                    st4(Qs + oo, make_float4(qq.x * e.x, qq.y * e.y, qq.z * e.z, qq.w * e.w));
                }
            }
            cp_async_commit();
            cp_async_wait<0>();
        }
        __syncthreads();
        KDA_MARK(0, 4)
        if (tid < CH) {
#pragma unroll
            for (int t = 0; t < CH; t++) Lm[t * CH + (TC == 3 ? kda_tc3_col(t, tid) : tid)] = x[t];
        }
    }
    __syncthreads();
    if constexpr (TC != 0) {
        static_assert(QG_SHARED, "the tensor-core products read Qg from shared memory");
        if constexpr (TC == 1) {
            kda_prep_products_tc(at, Gs, Ks, Qs, Lm, M, U0, W, QP, O0, d, tid);
        } else {
            // d / 32 n-tiles per warp (d is a multiple of 32 up to MAXD: KdaKernels checks it)
            constexpr bool X3 = TC == 3;
            if (TC_INLINE) kda_prep_products_tc2<MAXD / 32, X3>(Gs, Ks, Qs, Lm, M, U0, W, QP, O0, tid);   // d == MAXD
            else if (d == 32) kda_prep_products_tc2_call<1, X3>(Gs, Ks, Qs, Lm, M, U0, W, QP, O0, tid);
            else if (d == 64) kda_prep_products_tc2_call<2, X3>(Gs, Ks, Qs, Lm, M, U0, W, QP, O0, tid);
            else kda_prep_products_tc2_call<3, X3>(Gs, Ks, Qs, Lm, M, U0, W, QP, O0, tid);
        }
        KDA_MARK(0, 6)
        return;
    }

    // 6. [u0 | W] = T [v | e^G k]; 7. [o0 | M W] = M [u0 | W], the same product with M (lower triangular, its
    // diagonal included) in T's place and u0, W in v's and e^G k's. Warp -> 8 rows (s up to the last row), lane -> 8
    // columns of the 2d. Rows are paired across the warps that share a scheduler (w and w + 4) so that each pair has
    // the same work.
    // v6 (CF): lane -> column group lane of each half, i.e. columns 4 lane.. of v (acc[.][0..3]) and of e^G k
    // (acc[.][4..7]); then u0 | W and o0 | M W likewise. Each column's sums are v5's, in v5's order.
    int warp = tid >> 5, lane = tid & 31;
    int tg = warp < 4 ? warp : 11 - warp;
    bool prod = lane < d / 4 && warp < 8;
    int col = CF ? 4 * lane : 8 * lane;
    float* R = col < d ? Gs : Ks;
    int rc = col < d ? col : col - d;
    float acc[8][8];
    auto product = [&]() {
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
            for (int kk = 0; kk < 4; kk++) {
                float4 r0 = CF ? ld4(Gs + at(s + kk, col)) : ld4(R + at(s + kk, rc));
                float4 r1 = CF ? ld4(Ks + at(s + kk, col)) : ld4(R + at(s + kk, rc + 4));
#pragma unroll
                for (int a = 0; a < 8; a++) {
                    float tk = comp(tv[a], kk);
                    acc[a][0] += tk * r0.x; acc[a][1] += tk * r0.y; acc[a][2] += tk * r0.z; acc[a][3] += tk * r0.w;
                    acc[a][4] += tk * r1.x; acc[a][5] += tk * r1.y; acc[a][6] += tk * r1.z; acc[a][7] += tk * r1.w;
                }
            }
        }
    };
    if (prod) {
        product();
        float* dst = col < d ? U0 + col : W + (col - d);
#pragma unroll
        for (int a = 0; a < 8; a++) {
            int t = 8 * tg + a;
            st4(CF ? U0 + t * d + col : dst + t * d, make_float4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
            st4(CF ? W + t * d + col : dst + t * d + 4, make_float4(acc[a][4], acc[a][5], acc[a][6], acc[a][7]));
        }
    }
    KDA_MARK(0, 5)
    __syncthreads();
    // u0 and W into v's and e^G k's places; M (written by steps 2 and 4) into T's, zero above the diagonal
    if (prod) {
#pragma unroll
        for (int a = 0; a < 8; a++) {
            int t = 8 * tg + a;
            st4(CF ? Gs + at(t, col) : R + at(t, rc), make_float4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
            st4(CF ? Ks + at(t, col) : R + at(t, rc + 4), make_float4(acc[a][4], acc[a][5], acc[a][6], acc[a][7]));
        }
    }
    for (int y = tid; y < CH * CH / 4; y += blockDim.x) {
        int t = y / (CH / 4), s = 4 * (y % (CH / 4));
        float4 m4 = s <= t ? __ldcg(reinterpret_cast<const float4*>(M + t * CH + s)) : zero4;
        if (s + 1 > t) m4.y = 0.0f;
        if (s + 2 > t) m4.z = 0.0f;
        if (s + 3 > t) m4.w = 0.0f;
        st4(Lm + t * CH + s, m4);
    }
    __syncthreads();
    if (prod) {
        product();
#pragma unroll
        for (int a = 0; a < 8; a++) {
            int t = 8 * tg + a;
            if constexpr (CF) {
                // o0 from the u0 half, Qp = Qg - M W from the W half, both at columns col..
                st4(O0 + t * d + col, make_float4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
                float4 g0 = ld4(Qs + at(t, col));
                st4(QP + t * d + col, make_float4(g0.x - acc[a][4], g0.y - acc[a][5], g0.z - acc[a][6], g0.w - acc[a][7]));
            } else if (col < d) {
                st4(O0 + t * d + col, make_float4(acc[a][0], acc[a][1], acc[a][2], acc[a][3]));
                st4(O0 + t * d + col + 4, make_float4(acc[a][4], acc[a][5], acc[a][6], acc[a][7]));
            } else {
                float* qp = QP + t * d + rc;
                float4 g0, g1;
                if (QG_SHARED) {
                    g0 = ld4(Qs + at(t, rc));
                    g1 = ld4(Qs + at(t, rc + 4));
                } else {
                    g0 = __ldcg(reinterpret_cast<const float4*>(qp));
                    g1 = __ldcg(reinterpret_cast<const float4*>(qp + 4));
                }
                st4(qp, make_float4(g0.x - acc[a][0], g0.y - acc[a][1], g0.z - acc[a][2], g0.w - acc[a][3]));
                st4(qp + 4, make_float4(g1.x - acc[a][4], g1.y - acc[a][5], g1.z - acc[a][6], g1.w - acc[a][7]));
            }
        }
    }
    KDA_MARK(0, 6)
}
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep(const float* q, const float* k, const float* v, const float* g,
                                                                    const float* beta, const int* chunkRow, const int* chunkLen,
                                                                    float* ws, int heads, int d, float scale) {
    kda_chunk_prep_body<true>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
// v5: Qg kept in shared memory (QG_SHARED above); the same workspace
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep_v5(const float* q, const float* k, const float* v, const float* g,
                                                                       const float* beta, const int* chunkRow, const int* chunkLen,
                                                                       float* ws, int heads, int d, float scale) {
    kda_chunk_prep_body<true, true>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
// v6: v5's bits with its shared-memory bank conflicts of the norms, the diagonal step and the products removed (CF
// above); the same workspace
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep_v6(const float* q, const float* k, const float* v, const float* g,
                                                                       const float* beta, const int* chunkRow, const int* chunkLen,
                                                                       float* ws, int heads, int d, float scale) {
    kda_chunk_prep_body<true, true, 0, true, true>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
// tc: v5 with the two triangular products on TF32 tensor cores (bf16-compute mode only); the same workspace
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep_tc(const float* q, const float* k, const float* v, const float* g,
                                                                       const float* beta, const int* chunkRow, const int* chunkLen,
                                                                       float* ws, int heads, int d, float scale) {
    kda_chunk_prep_body<true, true, 1>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
// tc2: v5 with the two triangular products on TF32 tensor cores, each warp a quarter of one half's columns over all
// rows (kda_prep_products_tc2; bf16-compute mode only); the same workspace
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep_tc2(const float* q, const float* k, const float* v, const float* g,
                                                                        const float* beta, const int* chunkRow, const int* chunkLen,
                                                                        float* ws, int heads, int d, float scale) {
    // d = MAXD (the model's) apart, so that its products are inlined without spilling
    if (d == MAXD) kda_chunk_prep_body<true, true, 2, true>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
    else kda_chunk_prep_body<true, true, 2, false>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
// tc3: tc2 with 3xTF32 products (each operand split into a TF32 head and a TF32 tail, three MMAs a product): about
// fp32's accuracy, for the bf16-compute mode; the same workspace
extern "C" __global__ void __launch_bounds__(256, 2) kda_chunk_prep_tc3(const float* q, const float* k, const float* v, const float* g,
                                                                        const float* beta, const int* chunkRow, const int* chunkLen,
                                                                        float* ws, int heads, int d, float scale) {
    if (d == MAXD) kda_chunk_prep_body<true, true, 3, true>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
    else kda_chunk_prep_body<true, true, 3, false>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}

// The scan's X phase for one half of the block: acc (NEG: -=, else +=) A S, A's rows ty + 16 a (a < 4: the warp's
// rows are then consecutive, so its 16-byte loads of them hit different banks) over the d rows of the S tile [d][32],
// columns CX tx..
template <bool NEG, int CX>
__device__ __forceinline__ void kda_scan_x(const float* A, const float* S, int LDW, int d, int ty, int tx, float (&acc)[4][CX]) {
#pragma unroll 2
    for (int i = 0; i < d; i += 4) {
        float4 w[4];
        float sv[4][CX];
#pragma unroll
        for (int a = 0; a < 4; a++) w[a] = ld4(A + (ty + 16 * a) * LDW + i);
#pragma unroll
        for (int kk = 0; kk < 4; kk++) ldn<CX>(S + (i + kk) * 32 + CX * tx, sv[kk]);
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < CX; b++) {
                    if (NEG) acc[a][b] -= comp(w[a], kk) * sv[kk][b];
                    else acc[a][b] += comp(w[a], kk) * sv[kk][b];
                }
    }
}

// The state-carrying pass: the chunks of one segment in order. grid (heads, segments, d/32), block THREADS (256 in
// use); the block carries a [d, 32] column tile of S. Per chunk, two phases between barriers:
//   X: U = u0 - W S (the first half of the threads) and o = o0 + Qp S (the second half, then stored);
//   Y: S = decay * S + Kd^T U.
// Each phase's operands are fetched with cp.async while the other phase runs (W | Qp | u0 | o0 for X when Y starts,
// Kd | decay for Y when X starts). Shared floats: W, Qp, Kd [CH][d+4] | u0, o0, U [CH][32] | S [d][32] | decay [d].
// X: thread -> rows ty, ty + 16, ty + 32, ty + 48, CX columns; Y: thread -> S rows 4ti.., CY columns (kept in registers
// across chunks). 256 threads (4 x 4 tiles) ran faster than 512 (4 x 2 tiles, more shared-memory loads per product).
// KD_EARLY (v6): Kd and decay of chunk c + 1 are fetched with X's operands at the start of Y of chunk c, into a second
// Kd | decay buffer (chunk parity), so that the end of X waits for no copy; the arithmetic is v4's, bit for bit.
// Shared floats then: v4's, plus Kd [CH][d+4] | decay [d].
template <int THREADS, bool KD_EARLY = false>
__device__ __forceinline__ void kda_chunk_scan_body(const float* ws, const long long* states, const int* segChunk0, const int* segChunks,
                                                    const int* chunkRow, const int* chunkLen, float* out, int heads, int d) {
    constexpr int HT = THREADS / 2;       // threads per product in X
    constexpr int CX = 512 / HT;          // X columns per thread: 16 row groups x 32 / CX column groups = HT
    constexpr int CY = 1024 / THREADS;    // Y columns per thread: 32 row groups x 32 / CY column groups = THREADS
    float* sm = reinterpret_cast<float*>(kda_smem);
    const int LDW = d + 4, d4 = d / 4;
    float* Wb = sm;
    float* QPb = Wb + CH * LDW;
    float* KDb = QPb + CH * LDW;
    float* U0b = KDb + CH * LDW;
    float* O0b = U0b + CH * 32;
    float* U = O0b + CH * 32;
    float* S = U + CH * 32;
    float* DECb = S + d * 32;
    float* KDb2 = DECb + d;   // KD_EARLY: odd chunks' Kd and decay
    float* DECb2 = KDb2 + CH * LDW;
    auto kdBuf = [&](int cc) { return KD_EARLY && (cc & 1) ? KDb2 : KDb; };
    auto decBuf = [&](int cc) { return KD_EARLY && (cc & 1) ? DECb2 : DECb; };
    int h = blockIdx.x, sg = blockIdx.y, j0 = blockIdx.z * 32, tid = threadIdx.x;
    long wsz = kda_ws_floats(d);
    int P = heads * d;
    int first = segChunk0[sg], n = segChunks[sg];
    float* st = (float*)states[sg] + (long)h * d * d;
    const bool isU = tid < HT;
    int ty = (tid % HT) / (32 / CX), tx = tid % (32 / CX);
    int ti = tid / (32 / CY), tj = tid % (32 / CY);
    bool own = 4 * ti < d;
    KDA_T0
    float sr[4][CY];
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) {
            ldn<CY>(st + (long)(4 * ti + a) * d + j0 + CY * tj, sr[a]);
            stn<CY>(S + (4 * ti + a) * 32 + CY * tj, sr[a]);
        }
    }
    auto rec = [&](int cc) { return ws + ((long)(first + cc) * heads + h) * wsz; };
    auto issueX = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            float* kdb = kdBuf(cc);
            for (int x = tid; x < CH * d4; x += THREADS) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(Wb + t * LDW + i, b + (long)CH * d + t * d + i);
                cp_async16(QPb + t * LDW + i, b + 2L * CH * d + t * d + i);
                if (KD_EARLY) cp_async16(kdb + t * LDW + i, b + 3L * CH * d + t * d + i);
            }
            if (KD_EARLY)
                for (int x = tid; x < d4; x += THREADS) cp_async16(decBuf(cc) + 4 * x, b + 5L * CH * d + CH * CH + 4 * x);
            for (int x = tid; x < CH * 8; x += THREADS) {
                int o = (x >> 3) * 32 + 4 * (x & 7);
                long gsrc = (long)(x >> 3) * d + j0 + 4 * (x & 7);
                cp_async16(U0b + o, b + gsrc);
                cp_async16(O0b + o, b + 4L * CH * d + gsrc);
            }
        }
        cp_async_commit();
    };
    auto issueY = [&](int cc) {
        const float* b = rec(cc);
        for (int x = tid; x < CH * d4; x += THREADS) {
            int t = x / d4, i = 4 * (x % d4);
            cp_async16(KDb + t * LDW + i, b + 3L * CH * d + t * d + i);
        }
        for (int x = tid; x < d4; x += THREADS) cp_async16(DECb + 4 * x, b + 5L * CH * d + CH * CH + 4 * x);
        cp_async_commit();
    };
    issueX(0);
    for (int cc = 0; cc < n; cc++) {
        int ci = first + cc, c = chunkLen[ci], row0 = chunkRow[ci];
        cp_async_wait<0>();
        __syncthreads();
        KDA_MARK(1, 0)
        if (!KD_EARLY) issueY(cc);
        // X: U = u0 - W S (rows past c set to 0: Kd^T U then needs no bounds), o = o0 + Qp S
        float acc[4][CX];
#pragma unroll
        for (int a = 0; a < 4; a++) ldn<CX>((isU ? U0b : O0b) + (ty + 16 * a) * 32 + CX * tx, acc[a]);
        if (isU) {
            kda_scan_x<true, CX>(Wb, S, LDW, d, ty, tx, acc);
#pragma unroll
            for (int a = 0; a < 4; a++) {
                int t = ty + 16 * a;
                if (t >= c) {
#pragma unroll
                    for (int b = 0; b < CX; b++) acc[a][b] = 0.0f;
                }
                stn<CX>(U + t * 32 + CX * tx, acc[a]);
            }
        } else {
            kda_scan_x<false, CX>(QPb, S, LDW, d, ty, tx, acc);
#pragma unroll
            for (int a = 0; a < 4; a++) {
                int t = ty + 16 * a;
                if (t < c) stn<CX>(out + (long)(row0 + t) * P + (long)h * d + j0 + CX * tx, acc[a]);
            }
        }
        // Y: S = decay * S + Kd^T U
        cp_async_wait<0>();
        __syncthreads();
        KDA_MARK(1, 1)
        issueX(cc + 1);
        if (own) {
            const float* KDc = kdBuf(cc);
            const float* DECc = decBuf(cc);
            float sacc[4][CY];
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < CY; b++) sacc[a][b] = 0.0f;
            int c4 = (c + 3) & ~3;   // Kd and U rows past c are zeros
            for (int s2 = 0; s2 < c4; s2 += 4) {
#pragma unroll
                for (int kk = 0; kk < 4; kk++) {
                    float4 kd = ld4(KDc + (s2 + kk) * LDW + 4 * ti);
                    float u[CY];
                    ldn<CY>(U + (s2 + kk) * 32 + CY * tj, u);
#pragma unroll
                    for (int a = 0; a < 4; a++)
#pragma unroll
                        for (int b = 0; b < CY; b++) sacc[a][b] += comp(kd, a) * u[b];
                }
            }
#pragma unroll
            for (int a = 0; a < 4; a++) {
                float dec = DECc[4 * ti + a];
#pragma unroll
                for (int b = 0; b < CY; b++) sr[a][b] = dec * sr[a][b] + sacc[a][b];
                stn<CY>(S + (4 * ti + a) * 32 + CY * tj, sr[a]);
            }
        }
        KDA_MARK(1, 2)
    }
    cp_async_wait<0>();
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) stn<CY>(st + (long)(4 * ti + a) * d + j0 + CY * tj, sr[a]);
    }
}
// shared floats of kda_chunk_scan (KdaKernels.java computes the same)
__host__ __device__ __forceinline__ int kda_scan_shared_floats(int d) { return 3 * CH * (d + 4) + 3 * CH * 32 + d * 32 + d; }
extern "C" __global__ void __launch_bounds__(256) kda_chunk_scan(const float* ws, const long long* states, const int* segChunk0,
                                                                    const int* segChunks, const int* chunkRow, const int* chunkLen,
                                                                    float* out, int heads, int d) {
    kda_chunk_scan_body<256>(ws, states, segChunk0, segChunks, chunkRow, chunkLen, out, heads, d);
}
__host__ __device__ __forceinline__ int kda_scan_v6_shared_floats(int d) { return kda_scan_shared_floats(d) + CH * (d + 4) + d; }
extern "C" __global__ void __launch_bounds__(256) kda_chunk_scan_v6(const float* ws, const long long* states, const int* segChunk0,
                                                                       const int* segChunks, const int* chunkRow, const int* chunkLen,
                                                                       float* out, int heads, int d) {
    kda_chunk_scan_body<256, true>(ws, states, segChunk0, segChunks, chunkRow, chunkLen, out, heads, d);
}

// ---- kda_chunk_scan_v5: the same two phases with wider register tiles and the reductions split four ways ----
// Written on the hypothesis that v4's phases are bound by shared-memory wavefronts (a warp's 16-byte load taking four
// cycles whatever its lanes share; v4's 4 x 4 tiles make 8 such loads per 64 FMAs). Measured on an H100
// (2026-12-06, docs/benchmarks-gpu.md): X took as long as v4's and the scan 9% longer, so the hypothesis is wrong;
// kept (opt-in, -Dkimimesh.cuda.kdaScan=v5) as the measured alternative. Each thread holds an 8 x 8 tile (16 loads
// per 256 FMAs) over a quarter of the reduction, and the four partial sums meet in shared memory (one more barrier a
// phase):
//   X: warp w -> product w >> 2 (U = u0 - W S, or o = o0 + Qp S), reduction quarter w & 3 of the d rows of S;
//      lane -> rows ty + 8a (a < 8), columns 8 tx..8 tx + 7;
//   Y: warp pair p = w >> 1 -> chunk rows 16p..16p + 15 of Kd^T U; lane -> S rows 8 ri.., columns 8 cj..;
// then U, o and S = decay S + Kd^T U are summed from the four partials as ((P0 + P1) + (P2 + P3)), each thread
// finishing four 4-column pieces of rows (rows of the same piece in a quarter warp: 128 contiguous bytes). A thread
// stores its two 4-column halves of a row in the order given by the row's parity, so that the two rows of a quarter
// warp hit different banks. Shared floats: v4's, plus the partials P [4][2][CH][32] (also [4][d][32] in Y).
__device__ __forceinline__ void kda_st8(float* row, int c0, int flip, const float (&x)[8]) {
    if (flip) {
        st4(row + c0 + 4, make_float4(x[4], x[5], x[6], x[7]));
        st4(row + c0, make_float4(x[0], x[1], x[2], x[3]));
    } else {
        st4(row + c0, make_float4(x[0], x[1], x[2], x[3]));
        st4(row + c0 + 4, make_float4(x[4], x[5], x[6], x[7]));
    }
}
// ((P0 + P1) + (P2 + P3)) of the 4-column piece at offset o of four partial arrays `stride` floats apart
__device__ __forceinline__ float4 kda_sum4(const float* P, int stride, int o) {
    float4 a = ld4(P + o), b = ld4(P + stride + o), c = ld4(P + 2 * stride + o), e = ld4(P + 3 * stride + o);
    return make_float4((a.x + b.x) + (c.x + e.x), (a.y + b.y) + (c.y + e.y), (a.z + b.z) + (c.z + e.z), (a.w + b.w) + (c.w + e.w));
}
#define KDA_PART (2 * CH * 32)   // floats of one reduction quarter's partials (X: both products; Y: d x 32 <= this)
__host__ __device__ __forceinline__ int kda_scan_v5_shared_floats(int d) { return kda_scan_shared_floats(d) + 4 * KDA_PART; }
extern "C" __global__ void __launch_bounds__(256) kda_chunk_scan_v5(const float* ws, const long long* states, const int* segChunk0,
                                                                       const int* segChunks, const int* chunkRow, const int* chunkLen,
                                                                       float* out, int heads, int d) {
    float* sm = reinterpret_cast<float*>(kda_smem);
    const int LDW = d + 4, d4 = d / 4;
    float* Wb = sm;
    float* QPb = Wb + CH * LDW;
    float* KDb = QPb + CH * LDW;
    float* U0b = KDb + CH * LDW;
    float* O0b = U0b + CH * 32;
    float* U = O0b + CH * 32;
    float* S = U + CH * 32;
    float* DECb = S + d * 32;
    float* P = sm + kda_scan_shared_floats(d);   // 16-byte aligned: kda_scan_shared_floats(d) is a multiple of 4
    int h = blockIdx.x, sg = blockIdx.y, j0 = blockIdx.z * 32, tid = threadIdx.x;
    long wsz = kda_ws_floats(d);
    int P_ = heads * d;
    int first = segChunk0[sg], n = segChunks[sg];
    float* st = (float*)states[sg] + (long)h * d * d;
    const int warp = tid >> 5, lane = tid & 31;
    // X tiles
    const int prod = warp >> 2, kq = warp & 3, ty = lane >> 2, tx = lane & 3;
    const int kx0 = kq * d4, kx1 = kx0 + d4;   // this warp's quarter of the d rows of S
    float* PX = P + kq * KDA_PART + prod * CH * 32;
    // Y tiles
    const int yp = warp >> 1, ri = (tid & 63) >> 2, cj = tid & 3;
    const bool yown = 8 * ri < d;
    float* PY = P + yp * KDA_PART;
    // the finishing map: 4-column piece fj of rows fr + 16 b (X, per product), S rows 4 ti.. (Y)
    const int fr = (tid & 127) >> 3, fj = tid & 7;
    const int ti = tid >> 3, tj = tid & 7;
    const bool own = 4 * ti < d;
    KDA_T0
    float sr[4][4];
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) {
            ldn<4>(st + (long)(4 * ti + a) * d + j0 + 4 * tj, sr[a]);
            stn<4>(S + (4 * ti + a) * 32 + 4 * tj, sr[a]);
        }
    }
    auto rec = [&](int cc) { return ws + ((long)(first + cc) * heads + h) * wsz; };
    auto issueX = [&](int cc) {
        if (cc < n) {
            const float* b = rec(cc);
            for (int x = tid; x < CH * d4; x += 256) {
                int t = x / d4, i = 4 * (x % d4);
                cp_async16(Wb + t * LDW + i, b + (long)CH * d + t * d + i);
                cp_async16(QPb + t * LDW + i, b + 2L * CH * d + t * d + i);
            }
            for (int x = tid; x < CH * 8; x += 256) {
                int o = (x >> 3) * 32 + 4 * (x & 7);
                long gsrc = (long)(x >> 3) * d + j0 + 4 * (x & 7);
                cp_async16(U0b + o, b + gsrc);
                cp_async16(O0b + o, b + 4L * CH * d + gsrc);
            }
        }
        cp_async_commit();
    };
    auto issueY = [&](int cc) {
        const float* b = rec(cc);
        for (int x = tid; x < CH * d4; x += 256) {
            int t = x / d4, i = 4 * (x % d4);
            cp_async16(KDb + t * LDW + i, b + 3L * CH * d + t * d + i);
        }
        for (int x = tid; x < d4; x += 256) cp_async16(DECb + 4 * x, b + 5L * CH * d + CH * CH + 4 * x);
        cp_async_commit();
    };
    issueX(0);
    for (int cc = 0; cc < n; cc++) {
        int ci = first + cc, c = chunkLen[ci], row0 = chunkRow[ci];
        cp_async_wait<0>();
        __syncthreads();
        KDA_MARK(1, 0)
        issueY(cc);
        {
            // X partials: A's rows ty + 8a times S's rows kx0..kx1, columns 8tx..
            const float* A = prod == 0 ? Wb : QPb;
            float acc[8][8];
#pragma unroll
            for (int a = 0; a < 8; a++)
#pragma unroll
                for (int b = 0; b < 8; b++) acc[a][b] = 0.0f;
#pragma unroll 2
            for (int i = kx0; i < kx1; i += 4) {
                float4 w[8];
#pragma unroll
                for (int a = 0; a < 8; a++) w[a] = ld4(A + (ty + 8 * a) * LDW + i);
#pragma unroll
                for (int kk = 0; kk < 4; kk++) {
                    float4 s0 = ld4(S + (i + kk) * 32 + 8 * tx), s1 = ld4(S + (i + kk) * 32 + 8 * tx + 4);
#pragma unroll
                    for (int a = 0; a < 8; a++) {
                        float wk = comp(w[a], kk);
                        acc[a][0] += wk * s0.x; acc[a][1] += wk * s0.y; acc[a][2] += wk * s0.z; acc[a][3] += wk * s0.w;
                        acc[a][4] += wk * s1.x; acc[a][5] += wk * s1.y; acc[a][6] += wk * s1.z; acc[a][7] += wk * s1.w;
                    }
                }
            }
#pragma unroll
            for (int a = 0; a < 8; a++) kda_st8(PX + (ty + 8 * a) * 32, 8 * tx, ty & 1, acc[a]);
        }
        __syncthreads();
        // U = u0 - sum (rows past c: 0, so that Kd^T U needs no bounds) and o = o0 + sum (stored right here)
#pragma unroll
        for (int b = 0; b < 4; b++) {
            int t = fr + 16 * b, o = t * 32 + 4 * fj;
            float4 s = kda_sum4(P + prod * CH * 32, KDA_PART, o);
            if (prod == 0) {
                float4 u0 = ld4(U0b + o);
                float4 u = t < c ? make_float4(u0.x - s.x, u0.y - s.y, u0.z - s.z, u0.w - s.w) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                st4(U + o, u);
            } else if (t < c) {
                float4 o0 = ld4(O0b + o);
                st4(out + (long)(row0 + t) * P_ + (long)h * d + j0 + 4 * fj, make_float4(o0.x + s.x, o0.y + s.y, o0.z + s.z, o0.w + s.w));
            }
        }
        // Y: S = decay * S + Kd^T U
        cp_async_wait<0>();
        __syncthreads();
        KDA_MARK(1, 1)
        issueX(cc + 1);
        if (yown) {
            float sacc[8][8];
#pragma unroll
            for (int a = 0; a < 8; a++)
#pragma unroll
                for (int b = 0; b < 8; b++) sacc[a][b] = 0.0f;
            int tEnd = min(16 * yp + 16, (c + 3) & ~3);   // Kd and U rows past c are zeros
            for (int s2 = 16 * yp; s2 < tEnd; s2 += 4) {
#pragma unroll
                for (int kk = 0; kk < 4; kk++) {
                    const float* kr = KDb + (s2 + kk) * LDW + 8 * ri;
                    float4 k0 = ld4(kr), k1 = ld4(kr + 4);
                    float4 u0 = ld4(U + (s2 + kk) * 32 + 8 * cj), u1 = ld4(U + (s2 + kk) * 32 + 8 * cj + 4);
                    float kv[8] = {k0.x, k0.y, k0.z, k0.w, k1.x, k1.y, k1.z, k1.w};
#pragma unroll
                    for (int a = 0; a < 8; a++) {
                        sacc[a][0] += kv[a] * u0.x; sacc[a][1] += kv[a] * u0.y; sacc[a][2] += kv[a] * u0.z; sacc[a][3] += kv[a] * u0.w;
                        sacc[a][4] += kv[a] * u1.x; sacc[a][5] += kv[a] * u1.y; sacc[a][6] += kv[a] * u1.z; sacc[a][7] += kv[a] * u1.w;
                    }
                }
            }
#pragma unroll
            for (int a = 0; a < 8; a++) kda_st8(PY + (8 * ri + a) * 32, 8 * cj, ri & 1, sacc[a]);
        }
        __syncthreads();
        if (own) {
#pragma unroll
            for (int a = 0; a < 4; a++) {
                int o = (4 * ti + a) * 32 + 4 * tj;
                float4 s = kda_sum4(P, KDA_PART, o);
                float dec = DECb[4 * ti + a];
                sr[a][0] = dec * sr[a][0] + s.x; sr[a][1] = dec * sr[a][1] + s.y;
                sr[a][2] = dec * sr[a][2] + s.z; sr[a][3] = dec * sr[a][3] + s.w;
                stn<4>(S + o, sr[a]);
            }
        }
        KDA_MARK(1, 2)
    }
    cp_async_wait<0>();
    if (own) {
#pragma unroll
        for (int a = 0; a < 4; a++) stn<4>(st + (long)(4 * ti + a) * d + j0 + 4 * tj, sr[a]);
    }
}

