// MoE routing on the device: scores = sigmoid (or softmax) of the router logits, choice = scores + bias, optional
// group-limited choice (keep the topkGroup groups with the largest top-2 sums, the others' choice 0.0), top-k by descending choice (the lower
// index wins a tie), weights from the unbiased (biasCorrected = 0) or bias-corrected scores, renormalised, scaled.
// One block per row; dynamic shared memory holds 2 * E floats.
extern "C" __global__ void moe_route(const float* logits, const float* bias, int E, int k, int softmax, int groups,
                                     int topkGroup, int renorm, int biasCorrected, float scaling, int* experts, float* weights) {
    extern __shared__ float sm[];
    float* scores = sm;
    float* choice = sm + E;
    __shared__ float bv[32];
    __shared__ int bi[32];
    int r = blockIdx.x;
    const float* lg = logits + (long)r * E;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (softmax) {
        if (threadIdx.x == 0) {
            float mx = -INFINITY;
            for (int i = 0; i < E; i++) mx = fmaxf(mx, lg[i]);
            double sum = 0;
            for (int i = 0; i < E; i++) sum += (scores[i] = expf(lg[i] - mx));
            for (int i = 0; i < E; i++) scores[i] = (float)(scores[i] / sum);
        }
        __syncthreads();
    } else {
        for (int i = threadIdx.x; i < E; i += blockDim.x) scores[i] = (float)(1.0 / (1.0 + exp(-(double)lg[i])));
        __syncthreads();
    }
    for (int i = threadIdx.x; i < E; i += blockDim.x) choice[i] = scores[i] + (bias ? bias[i] : 0.0f);
    __syncthreads();
    if (groups > 1 && threadIdx.x == 0) {
        int per = E / groups;
        float gs[64];
        bool kept[64];
        for (int gi = 0; gi < groups; gi++) {
            float a = -INFINITY, b = -INFINITY;
            for (int i = gi * per; i < (gi + 1) * per; i++) {
                if (choice[i] > a) { b = a; a = choice[i]; } else if (choice[i] > b) b = choice[i];
            }
            gs[gi] = per > 1 ? a + b : a;
            kept[gi] = false;
        }
        for (int j = 0; j < topkGroup; j++) {
            int best = -1;
            for (int gi = 0; gi < groups; gi++) if (!kept[gi] && (best < 0 || gs[gi] > gs[best])) best = gi;
            kept[best] = true;
        }
        // dropped groups get 0.0, as the original's masked_fill(~score_mask, 0.0): a kept expert whose biased
        // score is negative ranks below them
        for (int gi = 0; gi < groups; gi++)
            if (!kept[gi]) for (int i = gi * per; i < (gi + 1) * per; i++) choice[i] = 0.0f;
    }
    __syncthreads();
    double wsum = 0.0;
    for (int j = 0; j < k; j++) {
        float best = -INFINITY;
        int bidx = 0x7fffffff;
        for (int i = threadIdx.x; i < E; i += blockDim.x) {
            float c = choice[i];
            if (c > best || (c == best && i < bidx)) { best = c; bidx = i; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffff, best, o);
            int oi = __shfl_xor_sync(0xffffffff, bidx, o);
            if (ob > best || (ob == best && oi < bidx)) { best = ob; bidx = oi; }
        }
        if (lane == 0) { bv[warp] = best; bi[warp] = bidx; }
        __syncthreads();
        if (threadIdx.x == 0) {
            float b = bv[0];
            int idx = bi[0];
            for (int w = 1; w < nw; w++) if (bv[w] > b || (bv[w] == b && bi[w] < idx)) { b = bv[w]; idx = bi[w]; }
            // the unmasked biased score (choice[] may hold a dropped group's 0.0)
            float wt = biasCorrected ? scores[idx] + (bias ? bias[idx] : 0.0f) : scores[idx];
            experts[r * k + j] = idx;
            weights[r * k + j] = wt;
            wsum += wt;
            choice[idx] = -INFINITY;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        for (int j = 0; j < k; j++) {
            float w = weights[r * k + j];
            if (renorm) w = (float)(w / (wsum + 1e-20));
            weights[r * k + j] = w * scaling;
        }
    }
}

// ---- Grouped routed experts for few rows (decode): the routing stays on the device, no host synchronisation. ----
// table: per expert {gate, up, down} bf16 weight pointers (0 = expert served elsewhere). The pairs (row r, choice j)
// are grouped by expert: active experts in index order, each with a contiguous range of pair positions.

// One block. experts [P = T*k]; outputs: info[0] = active expert count, activeExp[n], activeStart[n + 1],
// pairRow[pos] (the token row of each grouped pair), posOf[p] (grouped position of pair p, -1 when not here).
extern "C" __global__ void moe_group(const int* experts, int P, int k, int E, const long long* table, int* info,
                                     int* activeExp, int* activeStart, int* pairRow, int* posOf) {
    extern __shared__ int gs[];
    int* cnt = gs;
    int* cur = gs + E;
    for (int i = threadIdx.x; i < E; i += blockDim.x) cnt[i] = 0;
    __syncthreads();
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
        int e = experts[p];
        if (e >= 0 && e < E && table[3 * e] != 0) atomicAdd(&cnt[e], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int n = 0, off = 0;
        for (int e = 0; e < E; e++) {
            int c = cnt[e];
            cur[e] = off;
            if (c > 0) {
                activeExp[n] = e;
                activeStart[n] = off;
                off += c;
                n++;
            }
        }
        activeStart[n] = off;
        info[0] = n;
    }
    __syncthreads();
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
        int e = experts[p];
        if (e >= 0 && e < E && table[3 * e] != 0) {
            int pos = atomicAdd(&cur[e], 1);
            pairRow[pos] = p / k;
            posOf[p] = pos;
        } else {
            posOf[p] = -1;
        }
    }
}

// Grouping of moe_route_group(_v2), by warp 0: lane l owns experts 8l .. 8l + 7 (E <= 256); from the per-expert pair
// counts, each expert's first slot (cur), the active experts in index order with their starts, and their number.
__device__ __forceinline__ void group_scan(const int* cnt, int E, int lane, int* cur, int* activeExp, int* activeStart,
                                           int* info) {
    // lane l owns experts 8l .. 8l + 7: local sums, then a warp scan of pair counts and of active experts
    int c[8], sum = 0, act = 0;
#pragma unroll
    for (int m = 0; m < 8; m++) {
        int e = 8 * lane + m;
        c[m] = e < E ? cnt[e] : 0;
        sum += c[m];
        act += c[m] > 0;
    }
    int incS = sum, incA = act;
    for (int o = 1; o < 32; o <<= 1) {
        int s = __shfl_up_sync(0xffffffff, incS, o), a = __shfl_up_sync(0xffffffff, incA, o);
        if (lane >= o) { incS += s; incA += a; }
    }
    int off = incS - sum, n = incA - act;
#pragma unroll
    for (int m = 0; m < 8; m++) {
        int e = 8 * lane + m;
        if (e < E) cur[e] = off;
        if (c[m] > 0) {
            activeExp[n] = e;
            activeStart[n] = off;
            off += c[m];
            n++;
        }
    }
    if (lane == 31) {
        activeStart[n] = off;
        info[0] = n;
    }
}

// moe_route then moe_group in one block, warp-parallel, for the decode shapes (sigmoid router, no group limit,
// E <= 256, k <= 32): warp w routes rows w, w + 32, ... (each lane holds 8 experts' scores in registers; top-k by k
// warp argmax rounds, the lower index winning ties), then the block groups the pairs by expert with a one-warp
// prefix scan instead of a serial loop. Same experts, weights and grouping as the two kernels (the pairs of one
// expert in any order: each pair's products are independent). grid 1, block 1024, dynamic shared T * k ints.
extern "C" __global__ void __launch_bounds__(1024) moe_route_group(
        const float* logits, const float* bias, int T, int E, int k, int renorm, int biasCorrected, float scaling,
        int* experts, float* weights, const long long* table, int* info, int* activeExp, int* activeStart, int* pairRow,
        int* posOf) {
    extern __shared__ int pairExp[];
    __shared__ int cnt[256], cur[256];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, P = T * k;
    for (int r = warp; r < T; r += 32) {
        const float* lg = logits + (long) r * E;
        float sc[8], ch[8];
#pragma unroll
        for (int m = 0; m < 8; m++) {
            int i = lane + 32 * m;
            sc[m] = i < E ? (float) (1.0 / (1.0 + exp(-(double) lg[i]))) : 0.0f;
            ch[m] = i < E ? sc[m] + (bias ? bias[i] : 0.0f) : -INFINITY;
        }
        double wsum = 0.0;
        float mine = 0.0f;
        int myIdx = 0;
        for (int j = 0; j < k; j++) {
            float best = -INFINITY;
            int bidx = 0x7fffffff;
#pragma unroll
            for (int m = 0; m < 8; m++) {
                int i = lane + 32 * m;
                if (i < E && (ch[m] > best || (ch[m] == best && i < bidx))) { best = ch[m]; bidx = i; }
            }
            for (int o = 16; o > 0; o >>= 1) {
                float ob = __shfl_xor_sync(0xffffffff, best, o);
                int oi = __shfl_xor_sync(0xffffffff, bidx, o);
                if (ob > best || (ob == best && oi < bidx)) { best = ob; bidx = oi; }
            }
            // the owner lane of the winner: its unbiased score (the weight), then it leaves the choice
            int owner = bidx & 31, slot = bidx >> 5;
            float s = 0.0f;
#pragma unroll
            for (int m = 0; m < 8; m++) if (m == slot) s = sc[m];
            s = __shfl_sync(0xffffffff, s, owner);
            float wt = biasCorrected ? s + (bias ? bias[bidx] : 0.0f) : s;
            if (lane == owner) {
#pragma unroll
                for (int m = 0; m < 8; m++) if (m == slot) ch[m] = -INFINITY;
            }
            wsum += wt;
            if (lane == j) {
                mine = wt;
                myIdx = bidx;
            }
        }
        if (lane < k) {
            float w = mine;
            if (renorm) w = (float) (w / (wsum + 1e-20));
            experts[r * k + lane] = myIdx;
            weights[r * k + lane] = w * scaling;
            pairExp[r * k + lane] = myIdx;
        }
    }
    for (int e = threadIdx.x; e < 256; e += blockDim.x) cnt[e] = 0;
    __syncthreads();
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
        int e = pairExp[p];
        if (e >= 0 && e < E && table[3 * e] != 0) atomicAdd(&cnt[e], 1);
    }
    __syncthreads();
    if (warp == 0) group_scan(cnt, E, lane, cur, activeExp, activeStart, info);
    __syncthreads();
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
        int e = pairExp[p];
        if (e >= 0 && e < E && table[3 * e] != 0) {
            int pos = atomicAdd(&cur[e], 1);
            pairRow[pos] = p / k;
            posOf[p] = pos;
        } else {
            posOf[p] = -1;
        }
    }
}

// The top-k order of moe_route_group as one 64-bit key: the choice's float bits made monotone in the high word, the
// index reversed in the low word, so the largest key is the largest choice with the lowest index on ties (choice is
// a sigmoid >= +0 plus a bias, never -0.0; NaN gets key 0, below every number as no comparison ever picks it).
__device__ __forceinline__ unsigned long long route_key(float c, int i) {
    unsigned u = __float_as_uint(c);
    unsigned ord = c != c ? 0u : (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return ((unsigned long long) ord << 32) | (0xFFFFFFFFu - (unsigned) i);
}

// moe_route_group with nothing global on its serial path (-Dkimimesh.cuda.fusedRoute=v2): the router logits, the bias
// and which experts are served here (table[3e] != 0) are all loaded at the start, together; the biased weight of every
// expert is formed before the rounds (the one-row routing waited for bias[winner] in every round when bias-corrected,
// and read the table twice after the rounds); a round is one 64-bit warp max (route_key) instead of a value and an index
// compared apart; the block has one warp per row up to 32 warps and at least 256 threads (one expert's table entry a
// thread), not 1024 at batch 1. Same experts, weights (same float and double operations in the same order) and
// grouping as moe_route_group. grid 1, block max(256, 32 * min(T, 32)), dynamic shared T * k ints.
extern "C" __global__ void __launch_bounds__(1024) moe_route_group_v2(
        const float* logits, const float* bias, int T, int E, int k, int renorm, int biasCorrected, float scaling,
        int* experts, float* weights, const long long* table, int* info, int* activeExp, int* activeStart, int* pairRow,
        int* posOf) {
    extern __shared__ int pairExp[];
    __shared__ int cnt[256], cur[256];
    __shared__ unsigned char here[256];
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5, P = T * k;
    long long served = tid < E ? table[3 * tid] : 0;   // blockDim >= 256 >= E: one expert a thread
    for (int e = tid; e < 256; e += blockDim.x) cnt[e] = 0;
    for (int r = warp; r < T; r += nw) {
        const float* lg = logits + (long) r * E;
        float lv[8], bv[8];
#pragma unroll
        for (int m = 0; m < 8; m++) {
            int i = lane + 32 * m;
            lv[m] = i < E ? lg[i] : 0.0f;
            bv[m] = i < E && bias ? bias[i] : 0.0f;
        }
        float wt[8];
        unsigned long long key[8];
#pragma unroll
        for (int m = 0; m < 8; m++) {
            int i = lane + 32 * m;
            float sc = i < E ? (float) (1.0 / (1.0 + exp(-(double) lv[m]))) : 0.0f;
            // bv is 0.0f without a bias: sc + 0.0f == sc (sc >= +0), as moe_route_group's choice and weight
            wt[m] = biasCorrected ? sc + bv[m] : sc;
            key[m] = i < E ? route_key(sc + bv[m], i) : 0ull;
        }
        double wsum = 0.0;
        float mine = 0.0f;
        int myIdx = 0;
        for (int j = 0; j < k; j++) {
            unsigned long long best = key[0];
#pragma unroll
            for (int m = 1; m < 8; m++) best = key[m] > best ? key[m] : best;
            for (int o = 16; o > 0; o >>= 1) {
                unsigned long long other = __shfl_xor_sync(0xffffffff, best, o);
                best = other > best ? other : best;
            }
            int bidx = (int) (0xFFFFFFFFu - (unsigned) (best & 0xFFFFFFFFull));
            int owner = bidx & 31, slot = bidx >> 5;
            float s = 0.0f;
#pragma unroll
            for (int m = 0; m < 8; m++) if (m == slot) s = wt[m];
            s = __shfl_sync(0xffffffff, s, owner);
            // the winner leaves the choice as moe_route_group's -INFINITY (same key order if every other is gone)
            if (lane == owner) {
#pragma unroll
                for (int m = 0; m < 8; m++) if (m == slot) key[m] = route_key(-INFINITY, bidx);
            }
            wsum += s;
            if (lane == j) {
                mine = s;
                myIdx = bidx;
            }
        }
        if (lane < k) {
            float w = mine;
            if (renorm) w = (float) (w / (wsum + 1e-20));
            experts[r * k + lane] = myIdx;
            weights[r * k + lane] = w * scaling;
            pairExp[r * k + lane] = myIdx;
        }
    }
    if (tid < E) here[tid] = served != 0;
    __syncthreads();
    for (int p = tid; p < P; p += blockDim.x) {
        int e = pairExp[p];
        if (e >= 0 && e < E && here[e]) atomicAdd(&cnt[e], 1);
    }
    __syncthreads();
    if (warp == 0) group_scan(cnt, E, lane, cur, activeExp, activeStart, info);
    __syncthreads();
    for (int p = tid; p < P; p += blockDim.x) {
        int e = pairExp[p];
        if (e >= 0 && e < E && here[e]) {
            int pos = atomicAdd(&cur[e], 1);
            pairRow[pos] = p / k;
            posOf[p] = pos;
        } else {
            posOf[p] = -1;
        }
    }
}

#include "gemv_tile.cuh"

// grid (ceil(I / (8 NR)), P), block 256: warp w of block (x, slot) computes gate and up rows n = (8x + w) NR ..
// + NR - 1 of active expert `slot` for its pairs (TB at a time), act[pos, n] = silu(gate) * up. The 2 NR weight rows
// go through one tile_dot (gemv_tile.cuh), so their loads are all in flight together.
template <int NR, int U, int TB>
__device__ __forceinline__ void moe_gate_up_tile(const float* __restrict__ x, const long long* table, const int* info,
                                                 const int* activeExp, const int* activeStart, const int* pairRow,
                                                 float* __restrict__ act, int H, int I) {
    int slot = blockIdx.y;
    if (slot >= info[0]) return;
    int lane = threadIdx.x & 31;
    int n0 = (blockIdx.x * 8 + (threadIdx.x >> 5)) * NR;
    if (n0 >= I) return;
    int rows = min(NR, I - n0);
    int e = activeExp[slot], s0 = activeStart[slot], cnt = activeStart[slot + 1] - s0;
    const unsigned short* w[2 * NR];
#pragma unroll
    for (int r = 0; r < NR; r++) {
        long off = (long)min(n0 + r, I - 1) * H;
        w[2 * r] = (const unsigned short*)table[3 * e] + off;
        w[2 * r + 1] = (const unsigned short*)table[3 * e + 1] + off;
    }
    for (int t0 = 0; t0 < cnt; t0 += TB) {
        int tn = min(TB, cnt - t0);
        const float* xr[TB];
        float acc[2 * NR][TB];
#pragma unroll
        for (int j = 0; j < TB; j++) {
            xr[j] = x + (long)pairRow[s0 + t0 + min(j, tn - 1)] * H;
#pragma unroll
            for (int r = 0; r < 2 * NR; r++) acc[r][j] = 0.0f;
        }
        tile_dot<2 * NR, U, TB>(w, 2 * rows, xr, tn, H >> 3, lane, 32, acc);
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int j = 0; j < TB; j++) {
                float g = warp_sum(acc[2 * r][j]), u = warp_sum(acc[2 * r + 1][j]);
                if (lane == 0 && r < rows && j < tn) act[(long)(s0 + t0 + j) * I + n0 + r] = g * (1.0f / (1.0f + expf(-g))) * u;
            }
    }
}

// grid (ceil(H / (8 NR)), P), block 256: down[pos, n] = act[pos] . w_down[n] for the pairs of active expert `slot`,
// NR rows n per warp.
template <int NR, int U, int TB>
__device__ __forceinline__ void moe_down_tile(const float* __restrict__ act, const long long* table, const int* info,
                                              const int* activeExp, const int* activeStart, float* __restrict__ down, int H, int I) {
    int slot = blockIdx.y;
    if (slot >= info[0]) return;
    int lane = threadIdx.x & 31;
    int n0 = (blockIdx.x * 8 + (threadIdx.x >> 5)) * NR;
    if (n0 >= H) return;
    int rows = min(NR, H - n0);
    int e = activeExp[slot], s0 = activeStart[slot], cnt = activeStart[slot + 1] - s0;
    const unsigned short* w[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) w[r] = (const unsigned short*)table[3 * e + 2] + (long)min(n0 + r, H - 1) * I;
    for (int t0 = 0; t0 < cnt; t0 += TB) {
        int tn = min(TB, cnt - t0);
        const float* xr[TB];
        float acc[NR][TB];
#pragma unroll
        for (int j = 0; j < TB; j++) {
            xr[j] = act + (long)(s0 + t0 + min(j, tn - 1)) * I;
#pragma unroll
            for (int r = 0; r < NR; r++) acc[r][j] = 0.0f;
        }
        tile_dot<NR, U, TB>(w, rows, xr, tn, I >> 3, lane, 32, acc);
#pragma unroll
        for (int r = 0; r < NR; r++)
#pragma unroll
            for (int j = 0; j < TB; j++) {
                float v = warp_sum(acc[r][j]);
                if (lane == 0 && r < rows && j < tn) down[(long)(s0 + t0 + j) * H + n0 + r] = v;
            }
    }
}

// extern "C" entry points moe_gate_up_n{NR}u{U}t{TB} / moe_down_n{NR}u{U}t{TB}: MoeKernels picks one by shape
#define MOE_ARGS_GU const float* __restrict__ x, const long long* table, const int* info, const int* activeExp, \
    const int* activeStart, const int* pairRow, float* __restrict__ act, int H, int I
#define MOE_ARGS_D const float* __restrict__ act, const long long* table, const int* info, const int* activeExp, \
    const int* activeStart, float* __restrict__ down, int H, int I
#define MOE_GU(NR, U, TB) extern "C" __global__ void __launch_bounds__(256) moe_gate_up_n##NR##u##U##t##TB(MOE_ARGS_GU) { \
    moe_gate_up_tile<NR, U, TB>(x, table, info, activeExp, activeStart, pairRow, act, H, I); }
#define MOE_D(NR, U, TB) extern "C" __global__ void __launch_bounds__(256) moe_down_n##NR##u##U##t##TB(MOE_ARGS_D) { \
    moe_down_tile<NR, U, TB>(act, table, info, activeExp, activeStart, down, H, I); }
#define MOE_TB(M, NR, U) M(NR, U, 1) M(NR, U, 2) M(NR, U, 4) M(NR, U, 8)
// the tilings MoeKernels uses (the fastest of those cuda/bench/decode swept on an H100, at T = 1 and 8)
MOE_TB(MOE_GU, 1, 4) MOE_TB(MOE_D, 4, 2)

#include "moe_order.cuh"

// grid (rows, ceil(H / 256)): out[r, c] += weight(r, j) * down[posOf(r, j), c] over the row's choices in expert
// index order (the CPU backend's order), multiply and add rounded separately as there. Several blocks per row: one
// block per row made each thread walk 9 columns x k dependent loads (37 us at batch 1).
extern "C" __global__ void moe_combine(const float* down, const int* posOf, const int* experts, const float* weights,
                                       float* out, int k, int H) {
    __shared__ int ex[64], pos[64], order[64];
    __shared__ float wt[64];
    __shared__ int count;
    int r = blockIdx.x;
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        ex[j] = experts[r * k + j];
        pos[j] = posOf[r * k + j];
        wt[j] = weights[r * k + j];
    }
    __syncthreads();
    if (threadIdx.x == 0) count = moe_choice_order(ex, pos, k, order);
    __syncthreads();
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= H) return;
    int n = count;
    float acc = out[(long)r * H + c];
    for (int i = 0; i < n; i++) {
        int j = order[i];
        acc = __fadd_rn(acc, __fmul_rn(wt[j], down[(long)pos[j] * H + c]));
    }
    out[(long)r * H + c] = acc;
}

// ---- Routed experts at prefill, bf16-compute mode (-Dkimimesh.cuda.gemm=bf16): the glue writes the bf16 operands of
// the expert GEMMs itself, so no f32_to_bf16 pass runs per expert GEMM (2,304 of them in a 32k prefill of the bench
// model, 27 ms). Both round to nearest even like f32_to_bf16, so the GEMMs see the same bf16 values as before.
#include <cuda_bf16.h>

// 4 fp32 values as 4 bf16 in one 8-byte store
__device__ __forceinline__ uint2 bf16x4(float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    return make_uint2(*reinterpret_cast<unsigned*>(&lo), *reinterpret_cast<unsigned*>(&hi));
}

// out[i, :] = bf16(x[rows[i], :]): gather_rows and the conversion in one pass. cols % 4 == 0, x 16-byte aligned.
// grid: rows, block 256
extern "C" __global__ void moe_gather_bf16(const float* __restrict__ x, const int* __restrict__ rows,
                                           __nv_bfloat16* __restrict__ out, int cols) {
    const float4* src = reinterpret_cast<const float4*>(x + (long)rows[blockIdx.x] * cols);
    uint2* dst = reinterpret_cast<uint2*>(out + (long)blockIdx.x * cols);
    for (int c = threadIdx.x; c < cols / 4; c += blockDim.x) dst[c] = bf16x4(src[c]);
}

__device__ __forceinline__ float moe_silu_mul(float z, float u) { return z * (1.0f / (1.0f + expf(-z))) * u; }

// out = bf16(silu(g) * u): swiglu_f32's arithmetic (elementwise.cu, same operations in the same order, IEEE), then
// the rounding f32_to_bf16 did. n % 4 == 0, g and u 16-byte aligned. grid-stride over groups of 4
extern "C" __global__ void moe_swiglu_bf16(const float* __restrict__ g, const float* __restrict__ u,
                                           __nv_bfloat16* __restrict__ out, long n) {
    const float4* g4 = reinterpret_cast<const float4*>(g);
    const float4* u4 = reinterpret_cast<const float4*>(u);
    uint2* o = reinterpret_cast<uint2*>(out);
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n / 4; i += (long)gridDim.x * blockDim.x) {
        float4 a = g4[i], b = u4[i];
        o[i] = bf16x4(make_float4(moe_silu_mul(a.x, b.x), moe_silu_mul(a.y, b.y), moe_silu_mul(a.z, b.z), moe_silu_mul(a.w, b.w)));
    }
}
