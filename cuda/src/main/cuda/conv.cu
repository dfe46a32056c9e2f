// Causal depthwise short convolution (kernel K <= 8) with carried tails, then SiLU. Segment s covers rows
// [start[s], start[s] + len[s]); tails[s] points at its [K-1, P] tail (oldest first). Segments of at most 64 rows
// (decode) take one launch: each thread owns channel c of its segment, so it can write the new tail after its own
// reads of the old one (withTail = 1). Longer segments take two: the convolution (its 64-row blocks all read the old
// tail), then short_conv_tail.

__device__ __forceinline__ void conv_tail_update(const float* x, float* tail, int row0, int L, int c, int P, int K) {
    float buf[8];
    for (int r = 0; r < K - 1; r++) {
        int src = L - (K - 1) + r;
        buf[r] = src >= 0 ? x[(long)(row0 + src) * P + c] : tail[(long)(K - 1 + src) * P + c];
    }
    for (int r = 0; r < K - 1; r++) tail[(long)r * P + c] = buf[r];
}

extern "C" __global__ void short_conv_silu(const float* x, const float* w, const long long* tails, const int* start,
                                           const int* len, float* out, int P, int K, int withTail) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int s = blockIdx.y;
    int t0 = blockIdx.z * 64;
    int L = len[s];
    if (c >= P || t0 >= L) return;
    const float* tail = (const float*)tails[s];
    int row0 = start[s];
    float wk[8];
    for (int j = 0; j < K; j++) wk[j] = w[c * K + j];
    int t1 = min(L, t0 + 64);
    for (int t = t0; t < t1; t++) {
        float acc = 0.0f;
        for (int j = 0; j < K; j++) {
            int src = t - (K - 1) + j;
            float v = src >= 0 ? x[(long)(row0 + src) * P + c] : tail[(long)(K - 1 + src) * P + c];
            acc += wk[j] * v;
        }
        out[(long)(row0 + t) * P + c] = acc / (1.0f + expf(-acc));
    }
    if (withTail) conv_tail_update(x, (float*)tails[s], row0, L, c, P, K);
}

extern "C" __global__ void short_conv_tail(const float* x, const long long* tails, const int* start, const int* len, int P, int K) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int s = blockIdx.y;
    if (c >= P) return;
    conv_tail_update(x, (float*)tails[s], start[s], len[s], c, P, K);
}
