// Causal depthwise short convolution (kernel K <= 8) with carried tails, then SiLU. Segment s covers rows
// [start[s], start[s] + len[s]); tails[s] points at its [K-1, P] tail (oldest first). Two launches: the convolution
// (which reads the old tails), then the tail update.

extern "C" __global__ void short_conv_silu(const float* x, const float* w, const long long* tails, const int* start,
                                           const int* len, float* out, int P, int K) {
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
}

extern "C" __global__ void short_conv_tail(const float* x, const long long* tails, const int* start, const int* len, int P, int K) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    int s = blockIdx.y;
    if (c >= P) return;
    float* tail = (float*)tails[s];
    int row0 = start[s], L = len[s];
    float buf[8];
    for (int r = 0; r < K - 1; r++) {
        int src = L - (K - 1) + r;
        buf[r] = src >= 0 ? x[(long)(row0 + src) * P + c] : tail[(long)(K - 1 + src) * P + c];
    }
    for (int r = 0; r < K - 1; r++) tail[(long)r * P + c] = buf[r];
}
