// MoE routing on the device: scores = sigmoid (or softmax) of the router logits, choice = scores + bias, optional
// group-limited choice (keep the topkGroup groups with the largest top-2 sums), top-k by descending choice (the lower
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
        for (int gi = 0; gi < groups; gi++)
            if (!kept[gi]) for (int i = gi * per; i < (gi + 1) * per; i++) choice[i] = -INFINITY;
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
            float wt = biasCorrected ? choice[idx] : scores[idx];
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
