// The device sampler with its passes over the vocabulary spread over many blocks (-Dkimimesh.cuda.sampler=split,
// CudaSampler): sample_rows runs one block per row, so at batch 1 one SM reads the 163,840 logits once for the maximum,
// eight times for top-k's radix select and once more for the logprob's sum. Here:
//   sample_split_partial  grid (nb, rows): per slice of the row its maximum, NaN flag, first index of that maximum
//                         (greedy), and for top-k rows with k <= SPLIT_CAND the slice's min(k, slice) largest keys
//                         (the row's k largest keys are among the union of every slice's k largest);
//   sample_split_lse      grid (nb, rows), rows that want a logprob: the slice's sum of exp_repro(x - max) (the row's
//                         max from the partials), in double;
//   sample_split_finish   grid rows, block NT: the row's max, NaN and error codes from the partials; greedy from the
//                         slices' first indices; top-k <= SPLIT_CAND by the radix select over the candidates; other
//                         rows as sample_rows (sample_top_k / sample_full over the row); the logprob from the partial sums.
// The same token for the same uniform number as sample_rows: the max and the first index are exact; the top-k
// candidates and their sort are the same keys, so the weights, sums and draw are operation for operation those of
// sample_top_k. The logprob's sum of the same terms runs in another order (both are double sums; the host's order
// differs from either), as sample.cu's header describes. Included at the end of sample.cu (its helpers and Shared).

#define SPLIT_NT 256     // threads of the per-slice kernels
#define SPLIT_CAND 64    // largest top-k whose candidates the slices select; larger k runs sample_top_k over the row

// The largest key of [0, n) keys such that exactly k keys are >= it (keys distinct, k <= n): an 8-bit radix select
// from the top byte, the bucket found by one warp (lane l sums buckets 8l .. 8l + 7, a suffix scan over the lanes).
template <typename KeyAt>
__device__ unsigned long long select_kth(KeyAt keyAt, int n, int k, unsigned* hist, unsigned long long* prefixSh, int* countSh) {
    int tid = threadIdx.x, lane = tid & 31;
    unsigned long long prefix = 0ull, mask = 0ull;
    int remaining = k;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int i = tid; i < n; i += blockDim.x) {
            unsigned long long key = keyAt(i);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (tid < 32) {
            int h[8], sum = 0;
#pragma unroll
            for (int m = 0; m < 8; m++) {
                h[m] = (int) hist[8 * lane + m];
                sum += h[m];
            }
            int inc = sum;   // keys in this lane's buckets and all higher ones
            for (int o = 1; o < 32; o <<= 1) {
                int y = __shfl_down_sync(0xffffffffu, inc, o);
                if (lane + o < 32) inc += y;
            }
            int above = inc - sum;
            // exactly one lane holds the bucket where the count from the top reaches `remaining`
            if (above < remaining && remaining <= inc) {
                int b = 0;
#pragma unroll
                for (int m = 7; m >= 0; m--) {
                    if (above + h[m] >= remaining) {
                        b = 8 * lane + m;
                        break;
                    }
                    above += h[m];
                }
                *countSh = remaining - above;
                *prefixSh = prefix | ((unsigned long long) b << shift);
            }
        }
        __syncthreads();
        prefix = *prefixSh;
        remaining = *countSh;
        mask |= 255ull << shift;
        __syncthreads();   // all have read prefixSh and countSh before the next pass's warp 0 rewrites them
    }
    return prefix;
}

struct SliceKey {
    const float* x;
    int lo;
    __device__ unsigned long long operator()(int i) const { return sort_key(x[lo + i], lo + i); }
};

// pmax [rows, nb]; pfirst [rows, nb] (first index of the slice max, greedy rows; 0x7FFFFFFF when none); pnan [rows,
// nb]; cand [rows, nb, SPLIT_CAND] keys (0 past the slice's count; real keys are > 0).
extern "C" __global__ void __launch_bounds__(SPLIT_NT) sample_split_partial(const float* __restrict__ logits, int vocab,
        const RowParams* __restrict__ params, int nb, float* pmax, int* pfirst, int* pnan, unsigned long long* cand) {
    __shared__ float rmax[SPLIT_NT / 32];
    __shared__ int rmin[SPLIT_NT / 32];
    __shared__ unsigned hist[256];
    __shared__ unsigned long long prefixSh;
    __shared__ int countSh;
    int blk = blockIdx.x, row = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    int slice = (vocab + nb - 1) / nb, lo = min(vocab, blk * slice), hi = min(vocab, lo + slice);
    const float* x = logits + (size_t) row * vocab;
    RowParams p = params[row];
    float m = __int_as_float(0xff800000);
    int nan = 0;
    for (int i = lo + tid; i < hi; i += SPLIT_NT) {
        float v = x[i];
        if (v != v) nan = 1;
        m = fmaxf(m, v);
    }
    nan = __syncthreads_or(nan);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) rmax[warp] = m;
    __syncthreads();
    m = rmax[0];
    for (int w = 1; w < SPLIT_NT / 32; w++) m = fmaxf(m, rmax[w]);
    long slot = (long) row * nb + blk;
    if (p.flags & 1) {
        int first = 0x7FFFFFFF;
        for (int i = lo + tid; i < hi; i += SPLIT_NT) if (x[i] == m) { first = i; break; }
        for (int o = 16; o > 0; o >>= 1) first = min(first, __shfl_xor_sync(0xffffffffu, first, o));
        if (lane == 0) rmin[warp] = first;
        __syncthreads();
        if (tid == 0) {
            for (int w = 1; w < SPLIT_NT / 32; w++) first = min(first, rmin[w]);
            pfirst[slot] = first;
        }
    }
    if (tid == 0) {
        pmax[slot] = m;
        pnan[slot] = nan;
    }
    if ((p.flags & 1) || nan || p.topK <= 0 || p.topK >= vocab || p.topK > SPLIT_CAND) return;
    unsigned long long* out = cand + slot * SPLIT_CAND;
    int kk = min(p.topK, hi - lo);
    for (int j = kk + tid; j < SPLIT_CAND; j += SPLIT_NT) out[j] = 0ull;
    if (kk <= 0) return;
    unsigned long long threshold = select_kth(SliceKey{x, lo}, hi - lo, kk, hist, &prefixSh, &countSh);
    if (tid == 0) countSh = 0;
    __syncthreads();
    for (int i = lo + tid; i < hi; i += SPLIT_NT) {
        unsigned long long key = sort_key(x[i], i);
        if (key >= threshold) out[atomicAdd(&countSh, 1)] = key;
    }
}

// plse [rows, nb]: the slice's sum of exp_repro(x - M) (M the row's max), for rows that want a logprob and have no
// error code (the finisher ignores it otherwise).
extern "C" __global__ void __launch_bounds__(SPLIT_NT) sample_split_lse(const float* __restrict__ logits, int vocab,
        const RowParams* __restrict__ params, int nb, const float* __restrict__ pmax, const int* __restrict__ pnan,
        double* plse) {
    __shared__ double red[SPLIT_NT / 32];
    int blk = blockIdx.x, row = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (!(params[row].flags & 2)) return;
    // every warp reduces the row's partials itself (a few loads a lane, no barrier)
    float m = __int_as_float(0xff800000);
    int nan = 0;
    for (int j = lane; j < nb; j += 32) {
        m = fmaxf(m, pmax[(long) row * nb + j]);
        nan |= pnan[(long) row * nb + j];
    }
    for (int o = 16; o > 0; o >>= 1) {
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        nan |= __shfl_xor_sync(0xffffffffu, nan, o);
    }
    if (nan || m == __int_as_float(0xff800000) || m == __int_as_float(0x7f800000)) return;
    int slice = (vocab + nb - 1) / nb, lo = min(vocab, blk * slice), hi = min(vocab, lo + slice);
    const float* x = logits + (size_t) row * vocab;
    double part = 0;
    for (int i = lo + tid; i < hi; i += SPLIT_NT) part += exp_repro(__fsub_rn(x[i], m));
    for (int o = 16; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
    if (lane == 0) red[warp] = part;
    __syncthreads();
    if (tid == 0) {
        double t = red[0];
        for (int w = 1; w < SPLIT_NT / 32; w++) t += red[w];
        plse[(long) row * nb + blk] = t;
    }
}

struct CandKey {
    const unsigned long long* c;
    __device__ unsigned long long operator()(int i) const { return c[i]; }
};

// sample_top_k over the slices' candidates (k <= SPLIT_CAND): the same k keys, so the same sort, weights and draw.
__device__ int sample_top_k_cand(const unsigned long long* c, int n, const RowParams& p, float* sorted, Shared& s) {
    int k = p.topK;
    unsigned long long threshold = select_kth(CandKey{c}, n, k, s.hist, &s.prefix, &s.count);
    if (threadIdx.x == 0) s.count = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += NT) {
        unsigned long long key = c[i];
        if (key >= threshold) s.keys[atomicAdd(&s.count, 1)] = key;
    }
    __syncthreads();
    return draw_top_k(p, k, sorted, s);
}

// grid rows, block NT; scratch and outputs as sample_rows, the partials as written above.
extern "C" __global__ void __launch_bounds__(NT) sample_split_finish(const float* __restrict__ logits, int vocab,
        const RowParams* __restrict__ params, int nb, const float* __restrict__ pmax, const int* __restrict__ pfirst,
        const int* __restrict__ pnan, const unsigned long long* __restrict__ cand, const double* __restrict__ plse,
        float* scratch, int* tokens, float* logprobs) {
    __shared__ Shared s;
    int row = blockIdx.x, tid = threadIdx.x;
    const float* x = logits + (size_t) row * vocab;
    float* w = scratch + (size_t) row * (vocab + SORT_LIMIT);
    float* sorted = w + vocab;
    RowParams p = params[row];
    long base = (long) row * nb;
    float m = __int_as_float(0xff800000);
    int nan = 0;
    for (int j = tid; j < nb; j += NT) {
        m = fmaxf(m, pmax[base + j]);
        nan |= pnan[base + j];
    }
    nan = __syncthreads_or(nan);
    m = block_max(m, s);
    int code = nan ? -1 : m == __int_as_float(0xff800000) ? -2 : m == __int_as_float(0x7f800000) ? -3 : 0;
    if (code != 0) {
        if (tid == 0) {
            tokens[row] = code;
            logprobs[row] = __int_as_float(0x7fc00000);
        }
        return;
    }
    int token;
    if (p.flags & 1) {
        int first = 0x7FFFFFFF;
        for (int j = tid; j < nb; j += NT) if (pmax[base + j] == m) first = min(first, pfirst[base + j]);
        token = block_min_int(first, s);
    } else if (p.topK > 0 && p.topK < vocab) {
        token = p.topK <= SPLIT_CAND ? sample_top_k_cand(cand + base * SPLIT_CAND, nb * SPLIT_CAND, p, sorted, s)
                                     : sample_top_k(x, vocab, p, sorted, s);
    } else {
        token = sample_full(x, vocab, m, p, w, sorted, s);
    }
    float lp = __int_as_float(0x7fc00000);
    if (p.flags & 2) {
        double part = 0;
        for (int j = tid; j < nb; j += NT) part += plse[base + j];
        double sum = block_sum(part, s);
        lp = (float) ((double) __fsub_rn(x[token], m) - log(sum));
    }
    if (tid == 0) {
        tokens[row] = token;
        logprobs[row] = lp;
    }
}
