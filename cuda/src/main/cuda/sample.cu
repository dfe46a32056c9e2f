// Token sampling on the device: one block of 1024 threads per row of fp32 logits. The same function as the engine's
// Sampler (engine/.../generate/Sampler.java + LogitsKernels.java) for the same uniform number: greedy argmax (lowest
// id on ties); else temperature, top-k (ties by lower id), top-p over the softmax sorted descending (smallest prefix
// whose mass reaches top_p), and the token at uniform * mass of the cumulative distribution, in the order the host
// sampler draws in (sorted descending for top-k and small nuclei, vocabulary order for top_p = 1 and for nuclei
// above SORT_LIMIT candidates). Weights are bit-identical to the host's (exp_repro below, or double exp for top-k, as
// Math.exp there); sums run in double (the host's too), so a different summation order moves them by ~1e-16 and
// the drawn token is the same. Sequential parts (nucleus boundary, draw over <= 4096 sorted weights) run on one
// thread in the host's order.
#include <cstdint>

#define NT 1024
#define SORT_LIMIT 4096   // Sampler.SORT_LIMIT
#define MAX_TOP_K 4096    // CudaSampler.MAX_TOP_K: top-k above this is sampled on the host

struct RowParams {         // 32 bytes, packed by CudaSampler
    double uniform;
    double topP;
    float invT;
    int topK;
    int flags;             // bit 0 greedy, bit 1 logprob wanted
    int pad;
};

// VecMath.exp, operation for operation (round-to-nearest intrinsics: no contraction into other fmas).
__device__ __forceinline__ float exp_repro(float x) {
    const float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f, ROUND = 12582912.f;
    float xc = fminf(fmaxf(x, -104.f), 89.f);
    float t = __fmaf_rn(xc, LOG2E, ROUND);
    float n = __fsub_rn(t, ROUND);
    float r = __fmaf_rn(n, -LN2_HI, xc);
    r = __fmaf_rn(n, -LN2_LO, r);
    float p = __fmaf_rn(r, 1.f / 5040.f, 1.f / 720.f);
    p = __fmaf_rn(p, r, 1.f / 120.f);
    p = __fmaf_rn(p, r, 1.f / 24.f);
    p = __fmaf_rn(p, r, 1.f / 6.f);
    p = __fmaf_rn(p, r, 0.5f);
    p = __fmaf_rn(p, r, 1.f);
    p = __fmaf_rn(p, r, 1.f);
    int ni = __float_as_int(t) - __float_as_int(ROUND);
    int n1 = ni >> 1, n2 = ni - n1;
    float s1 = __int_as_float((int) ((unsigned) (n1 + 127) << 23));
    float s2 = __int_as_float((int) ((unsigned) (n2 + 127) << 23));
    float e = __fmul_rn(__fmul_rn(p, s1), s2);
    if (x < -103.5f) e = 0.f;
    if (x > 88.72f) e = __int_as_float(0x7f800000);
    return e;
}

// Sampler.key: ascending by value, then by descending id; the best token has the largest key. As unsigned 64 bits
// (sign flipped) so that 0 sorts below every real key.
__device__ __forceinline__ unsigned long long sort_key(float v, int i) {
    int bits = __float_as_int(v);
    bits ^= (bits >> 31) & 0x7FFFFFFF;
    return ((unsigned long long) ((unsigned) bits ^ 0x80000000u) << 32) | (unsigned) (0x7FFFFFFF - i);
}
__device__ __forceinline__ int key_index(unsigned long long k) { return 0x7FFFFFFF - (int) (k & 0xFFFFFFFFu); }
__device__ __forceinline__ float key_value(unsigned long long k) {
    int bits = (int) ((unsigned) (k >> 32) ^ 0x80000000u);
    bits ^= (bits >> 31) & 0x7FFFFFFF;
    return __int_as_float(bits);
}

struct Shared {
    unsigned long long keys[SORT_LIMIT];   // sorted candidates; reused as per-thread chunk sums
    double red[32];
    int ired[32];
    unsigned hist[256];
    unsigned long long prefix;
    int count, result;
    double dres;
};

__device__ double block_sum(double v, Shared& s) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.red[w] = v;
    __syncthreads();
    if (w == 0) {
        v = s.red[l];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (l == 0) s.dres = v;
    }
    __syncthreads();
    return s.dres;
}

__device__ int block_sum_int(int v, Shared& s) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.ired[w] = v;
    __syncthreads();
    if (w == 0) {
        v = s.ired[l];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (l == 0) s.result = v;
    }
    __syncthreads();
    return s.result;
}

__device__ int block_min_int(int v, Shared& s) {
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.ired[w] = v;
    __syncthreads();
    if (w == 0) {
        v = s.ired[l];
        for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (l == 0) s.result = v;
    }
    __syncthreads();
    return s.result;
}

__device__ float block_max(float v, Shared& s) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) s.red[w] = v;
    __syncthreads();
    if (w == 0) {
        float m = (float) s.red[l];
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        if (l == 0) s.dres = m;
    }
    __syncthreads();
    return (float) s.dres;
}

// Exclusive prefix over the threads of per-thread values (thread order = vocabulary order of their chunks): double
// for the probability mass, int for counts. One warp scans 32 threads' values each, in a fixed order, so the sums
// do not depend on scheduling.
template <typename T>
__device__ T block_exclusive_scan(T v, Shared& s) {
    T* part = reinterpret_cast<T*>(s.keys);
    __syncthreads();
    part[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        T acc = 0;
        for (int j = 0; j < 32; j++) acc += part[threadIdx.x * 32 + j];
        T inc = acc;
        for (int o = 1; o < 32; o <<= 1) {
            T y = __shfl_up_sync(0xffffffffu, inc, o);
            if ((int) threadIdx.x >= o) inc += y;
        }
        T run = inc - acc;
        for (int j = 0; j < 32; j++) {
            T x = part[threadIdx.x * 32 + j];
            part[threadIdx.x * 32 + j] = run;
            run += x;
        }
    }
    __syncthreads();
    T r = part[threadIdx.x];
    __syncthreads();
    return r;
}

// Sorts keys[0, n) descending (n <= SORT_LIMIT; padded with zeros to a power of two).
__device__ void sort_descending(Shared& s, int n) {
    int m = 1;
    while (m < n) m <<= 1;
    for (int i = n + threadIdx.x; i < m; i += NT) s.keys[i] = 0ull;
    __syncthreads();
    for (int size = 2; size <= m; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < m; i += NT) {
                int j = i ^ stride;
                if (j > i) {
                    bool desc = (i & size) == 0;
                    unsigned long long a = s.keys[i], b = s.keys[j];
                    if (desc ? a < b : a > b) {
                        s.keys[i] = b;
                        s.keys[j] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// Sampler.nucleus + Sampler.draw over weights in descending order (one thread; the host's order of additions).
__device__ int nucleus_draw(const float* w, int n, double total, double topP, double uniform) {
    int kept = n;
    if (topP < 1) {
        double limit = topP * total, cum = 0;
        kept = 0;
        while (kept < n && (kept == 0 || cum < limit)) cum += w[kept++];
    }
    double t = 0;
    for (int j = 0; j < kept; j++) t += w[j];
    double u = uniform * t, cum = 0;
    for (int j = 0; j < kept; j++) {
        cum += w[j];
        if (u < cum) return j;
    }
    return kept - 1;
}

// The draw over the k largest keys gathered in s.keys: sorted descending, weights exp((x - top) / T) in double as the
// host's Math.exp (top-k rows), summed in order by one thread, then the nucleus draw at the row's uniform number.
__device__ int draw_top_k(const RowParams& p, int k, float* sorted, Shared& s) {
    sort_descending(s, k);
    float top = key_value(s.keys[0]);
    for (int j = threadIdx.x; j < k; j += NT) {
        float z = __fmul_rn(__fsub_rn(key_value(s.keys[j]), top), p.invT);
        sorted[j] = (float) exp((double) z);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0;
        for (int j = 0; j < k; j++) total += sorted[j];
        s.result = key_index(s.keys[nucleus_draw(sorted, k, total, p.topP, p.uniform)]);
    }
    __syncthreads();
    return s.result;
}

// Top-k: the k largest keys by an 8-bit radix select over the 64-bit keys (exactly k, since keys are distinct),
// sorted; weights as the host's (float) Math.exp((l - top) * invT); nucleus and draw in that order.
__device__ int sample_top_k(const float* x, int vocab, const RowParams& p, float* sorted, Shared& s) {
    int k = p.topK;
    if (threadIdx.x == 0) s.prefix = 0ull;
    unsigned long long mask = 0ull;
    int remaining = k;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += NT) s.hist[i] = 0;
        __syncthreads();
        unsigned long long prefix = s.prefix;
        for (int i = threadIdx.x; i < vocab; i += NT) {
            unsigned long long key = sort_key(x[i], i);
            if ((key & mask) == prefix) atomicAdd(&s.hist[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int above = 0, b = 255;
            for (; b > 0; b--) {
                if (above + (int) s.hist[b] >= remaining) break;
                above += s.hist[b];
            }
            s.count = remaining - above;
            s.prefix = prefix | ((unsigned long long) b << shift);
        }
        __syncthreads();
        remaining = s.count;
        mask |= 255ull << shift;
    }
    unsigned long long threshold = s.prefix;
    __syncthreads(); // every thread has read s.count and s.prefix before they are reused
    if (threadIdx.x == 0) s.count = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += NT) {
        unsigned long long key = sort_key(x[i], i);
        if (key >= threshold) s.keys[atomicAdd(&s.count, 1)] = key;
    }
    __syncthreads();
    return draw_top_k(p, k, sorted, s);
}

// The first vocabulary index at which the running sum of the eligible weights exceeds target, over contiguous
// per-thread chunks (exclusive scan of chunk sums, then each thread scans its own chunk); -1 when none does.
// Eligible: all (ties < 0), or w > v plus the first keptTies weights equal to v in vocabulary order.
__device__ int cumulative_find(const float* w, int vocab, double target, float v, int keptTies, bool all, int& last, Shared& s) {
    int chunk = (vocab + NT - 1) / NT;
    int lo = min(vocab, (int) threadIdx.x * chunk), hi = min(vocab, lo + chunk);
    int tiesBefore = 0;
    if (!all) {
        int t = 0;
        for (int i = lo; i < hi; i++) t += w[i] == v;
        tiesBefore = block_exclusive_scan<int>(t, s);
    }
    double sum = 0;
    int ties = tiesBefore, myLast = -1;
    for (int i = lo; i < hi; i++) {
        float x = w[i];
        bool ok = all ? true : (x > v || (x == v && ties++ < keptTies));
        if (ok) {
            sum += x;
            if (all ? x > 0 : true) myLast = i;
        }
    }
    double cum = block_exclusive_scan<double>(sum, s);
    int found = 0x7FFFFFFF;
    ties = tiesBefore;
    for (int i = lo; i < hi; i++) {
        float x = w[i];
        bool ok = all ? true : (x > v || (x == v && ties++ < keptTies));
        if (ok) {
            cum += x;
            if (target < cum) {
                found = i;
                break;
            }
        }
    }
    found = block_min_int(found, s);
    last = -block_min_int(-myLast, s); // the largest eligible (positive, for all) index
    return found == 0x7FFFFFFF ? -1 : found;
}

// No top-k: softmax weights over the whole vocabulary (exp_repro, as LogitsKernels.sumExp), then Sampler.sampleFull.
__device__ int sample_full(const float* x, int vocab, float max, const RowParams& p, float* w, float* sorted, Shared& s) {
    double part = 0;
    for (int i = threadIdx.x; i < vocab; i += NT) {
        float e = exp_repro(__fmul_rn(__fsub_rn(x[i], max), p.invT));
        w[i] = e;
        part += e;
    }
    double total = block_sum(part, s);  // also orders the w writes before the reads below
    int last;
    if (p.topP >= 1) {
        int t = cumulative_find(w, vocab, p.uniform * total, 0.f, 0, true, last, s);
        return t >= 0 ? t : (last >= 0 ? last : vocab - 1);
    }
    float cutoff = vocab > 1 ? (float) ((1 - p.topP) / (vocab - 1) * total) : 0.f;
    int c = 0;
    for (int i = threadIdx.x; i < vocab; i += NT) c += w[i] >= cutoff;
    int candidates = block_sum_int(c, s);
    if (candidates <= SORT_LIMIT) {
        if (threadIdx.x == 0) s.count = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < vocab; i += NT) {
            if (w[i] >= cutoff) s.keys[atomicAdd(&s.count, 1)] = sort_key(w[i], i);
        }
        __syncthreads();
        sort_descending(s, candidates);
        for (int j = threadIdx.x; j < candidates; j += NT) sorted[j] = key_value(s.keys[j]);
        __syncthreads();
        if (threadIdx.x == 0) s.result = key_index(s.keys[nucleus_draw(sorted, candidates, total, p.topP, p.uniform)]);
        __syncthreads();
        return s.result;
    }
    // Sampler.sampleNucleusByThreshold: bisect the boundary weight's bits, then draw in vocabulary order.
    double limit = p.topP * total;
    float wmax = 0.f;
    for (int i = threadIdx.x; i < vocab; i += NT) wmax = fmaxf(wmax, w[i]);
    wmax = block_max(wmax, s);
    int lo = 0, hi = __float_as_int(wmax);
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        float t = __int_as_float(mid);
        double m = 0;
        for (int i = threadIdx.x; i < vocab; i += NT) if (w[i] >= t) m += w[i];
        if (block_sum(m, s) >= limit) lo = mid;
        else hi = mid - 1;
    }
    float v = __int_as_float(lo);
    double a = 0;
    int tc = 0;
    for (int i = threadIdx.x; i < vocab; i += NT) {
        if (w[i] > v) a += w[i];
        tc += w[i] == v;
    }
    double above = block_sum(a, s);
    int ties = block_sum_int(tc, s);
    int keptTies = 0;
    while (keptTies < ties && ((keptTies == 0 && above == 0) || above + (double) keptTies * v < limit)) keptTies++;
    double mass = above + (double) keptTies * v;
    int t = cumulative_find(w, vocab, p.uniform * mass, v, keptTies, false, last, s);
    return t >= 0 ? t : last;
}

// logits [rows, vocab]; params [rows]; scratch: rows x (vocab + SORT_LIMIT) floats; tokens, logprobs [rows].
extern "C" __global__ void __launch_bounds__(NT) sample_rows(const float* __restrict__ logits, int vocab,
        const RowParams* __restrict__ params, float* scratch, int* tokens, float* logprobs) {
    __shared__ Shared s;
    const float* x = logits + (size_t) blockIdx.x * vocab;
    float* w = scratch + (size_t) blockIdx.x * (vocab + SORT_LIMIT);
    float* sorted = w + vocab;
    RowParams p = params[blockIdx.x];
    float m = __int_as_float(0xff800000);
    int nan = 0;
    for (int i = threadIdx.x; i < vocab; i += NT) {
        float v = x[i];
        if (v != v) nan = 1;
        m = fmaxf(m, v);
    }
    nan = __syncthreads_or(nan);
    m = block_max(m, s);
    int code = nan ? -1 : m == __int_as_float(0xff800000) ? -2 : m == __int_as_float(0x7f800000) ? -3 : 0;
    if (code != 0) {
        if (threadIdx.x == 0) {
            tokens[blockIdx.x] = code;
            logprobs[blockIdx.x] = __int_as_float(0x7fc00000);
        }
        return;
    }
    int token;
    if (p.flags & 1) {
        int first = 0x7FFFFFFF;
        for (int i = threadIdx.x; i < vocab; i += NT) if (x[i] == m) { first = i; break; }
        token = block_min_int(first, s);
    } else if (p.topK > 0 && p.topK < vocab) {
        token = sample_top_k(x, vocab, p, sorted, s);
    } else {
        token = sample_full(x, vocab, m, p, w, sorted, s);
    }
    float lp = __int_as_float(0x7fc00000);
    if (p.flags & 2) {
        double part = 0;
        for (int i = threadIdx.x; i < vocab; i += NT) part += exp_repro(__fsub_rn(x[i], m));
        double sum = block_sum(part, s);
        lp = (float) ((double) __fsub_rn(x[token], m) - log(sum));
    }
    if (threadIdx.x == 0) {
        tokens[blockIdx.x] = token;
        logprobs[blockIdx.x] = lp;
    }
}

#include "sample_split.cuh"
