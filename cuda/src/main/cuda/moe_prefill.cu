// Routed experts of a prefill grouped on the device: a stable counting sort of the (row, choice) pairs by expert,
// so the host reads back only the per-expert counts (E ints) instead of the whole routing, and no host loop touches
// the T x k pairs. The layout is the host grouping's (experts in index order, each expert's rows ascending), so the
// expert GEMMs see the same operands in the same places and the result is the host-grouped path's, bit for bit.
//
// Rows are taken in chunks of MP_ROWS (one block of MP_ROWS threads, one row a thread). Within a chunk, a row's rank
// among the chunk's rows that chose expert e is a popcount over a bit mask per expert (no atomics on positions, so
// the order is fixed). A row that names an expert twice sets one bit: both of its pairs then share one grouped row,
// which the combine adds twice, as the host path adds two equal rows.
// table: per expert {gate, up, down} weight pointers, gate 0 = served elsewhere (MoeKernels.ExpertTable).

#define MP_ROWS 128
#define MP_WORDS (MP_ROWS / 32)

__device__ __forceinline__ bool mp_here(int ex, int E, const long long* table) {
    return ex >= 0 && ex < E && table[3 * ex] != 0;
}

// The chunk's masks: mask[e * MP_WORDS + w] bit b = row (w * 32 + b) of the chunk chose expert e (served here).
__device__ void mp_masks(const int* experts, int T, int k, int E, const long long* table, unsigned* mask) {
    for (int i = threadIdx.x; i < E * MP_WORDS; i += blockDim.x) mask[i] = 0u;
    __syncthreads();
    int r = blockIdx.x * MP_ROWS + threadIdx.x;
    if (r < T) {
        for (int j = 0; j < k; j++) {
            int ex = experts[(long)r * k + j];
            if (mp_here(ex, E, table)) atomicOr(&mask[ex * MP_WORDS + (threadIdx.x >> 5)], 1u << (threadIdx.x & 31));
        }
    }
    __syncthreads();
}

// chunkCount[c * E + e] = rows of chunk c that chose expert e. Grid: ceil(T / MP_ROWS) blocks of MP_ROWS threads,
// dynamic shared memory 4 * E * MP_WORDS bytes.
extern "C" __global__ void __launch_bounds__(MP_ROWS) moe_pair_count(const int* experts, int T, int k, int E,
                                                                     const long long* table, int* chunkCount) {
    extern __shared__ unsigned mp_mask[];
    mp_masks(experts, T, k, E, table, mp_mask);
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = 0;
#pragma unroll
        for (int w = 0; w < MP_WORDS; w++) c += __popc(mp_mask[e * MP_WORDS + w]);
        chunkCount[(long)blockIdx.x * E + e] = c;
    }
}

// Per expert (one thread each, one block): chunkCount becomes each chunk's first rank within the expert (an exclusive
// scan over the chunks), count[e] the expert's rows.
extern "C" __global__ void moe_pair_scan(int* chunkCount, int chunks, int E, int* count) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int s = 0;
#pragma unroll 8
        for (int c = 0; c < chunks; c++) {
            int v = chunkCount[(long)c * E + e];
            chunkCount[(long)c * E + e] = s;
            s += v;
        }
        count[e] = s;
    }
}

// Places every pair: pos = start[e] + chunk base + rank in the chunk; pairRow[pos] = its row, pairPos[r * k + j] = pos
// (-1 for an expert served elsewhere). start[] comes from the host (packed, or the padded buckets of the batched
// GEMMs), so padding rows are not written here: the caller fills pairRow with a valid row first.
extern "C" __global__ void __launch_bounds__(MP_ROWS) moe_pair_fill(const int* experts, int T, int k, int E,
                                                                    const long long* table, const int* chunkBase,
                                                                    const int* start, int* pairRow, int* pairPos) {
    extern __shared__ unsigned mp_mask[];
    mp_masks(experts, T, k, E, table, mp_mask);
    int r = blockIdx.x * MP_ROWS + threadIdx.x;
    if (r >= T) return;
    int w = threadIdx.x >> 5;
    unsigned below = (1u << (threadIdx.x & 31)) - 1u;
    for (int j = 0; j < k; j++) {
        int ex = experts[(long)r * k + j];
        if (!mp_here(ex, E, table)) {
            pairPos[(long)r * k + j] = -1;
            continue;
        }
        const unsigned* m = mp_mask + ex * MP_WORDS;
        int rank = __popc(m[w] & below);
        for (int q = 0; q < w; q++) rank += __popc(m[q]);
        int pos = start[ex] + chunkBase[(long)blockIdx.x * E + ex] + rank;
        pairRow[pos] = r;
        pairPos[(long)r * k + j] = pos;
    }
}

// out[r] += sum of weights[r, j] * down[pairPos[r, j] - base] over the row's pairs whose expert lies in [e0, e1), in
// ascending expert order (a row's equal experts in choice order): scatter_add_pairs' sum, the same operations in the
// same order, so the same bits. One block a row; cols % 4 == 0, down and out 16-byte aligned. k <= 64.
extern "C" __global__ void moe_combine_pairs(const float* __restrict__ down, const int* __restrict__ experts,
                                             const float* __restrict__ weights, const int* __restrict__ pairPos,
                                             float* __restrict__ out, int k, int cols, int e0, int e1, int base) {
    __shared__ int se[64], sp[64];
    __shared__ float sw[64];
    __shared__ int n;
    long r = blockIdx.x;
    if (threadIdx.x == 0) {
        int cnt = 0;
        for (int j = 0; j < k; j++) {
            int p = pairPos[r * k + j], ex = experts[r * k + j];
            if (p < 0 || ex < e0 || ex >= e1) continue;
            int i = cnt++;
            while (i > 0 && se[i - 1] > ex) {
                se[i] = se[i - 1];
                sp[i] = sp[i - 1];
                sw[i] = sw[i - 1];
                i--;
            }
            se[i] = ex;
            sp[i] = p - base;
            sw[i] = weights[r * k + j];
        }
        n = cnt;
    }
    __syncthreads();
    int cnt = n;
    if (cnt == 0) return;
    float4* dst = reinterpret_cast<float4*>(out + r * cols);
    for (int c = threadIdx.x; c < cols / 4; c += blockDim.x) {
        float4 acc = dst[c];
        for (int i = 0; i < cnt; i++) {
            float wgt = sw[i];
            float4 s = reinterpret_cast<const float4*>(down + (long)sp[i] * cols)[c];
            acc.x += wgt * s.x;
            acc.y += wgt * s.y;
            acc.z += wgt * s.z;
            acc.w += wgt * s.w;
        }
        dst[c] = acc;
    }
}
