// Multi-head latent attention helpers; the products run in cuBLAS (fp32). scores holds, per (head, query t),
// `total` raw dot products; this applies the scale, the causal mask (query t sees keys [0, pos + t]) and the softmax
// in place, writing exact zeros past the visible keys.
extern "C" __global__ void mla_softmax(float* scores, int T, int total, int pos, int rowOffset, float scale) {
    __shared__ float red[32];
    int t = blockIdx.x, h = blockIdx.y;
    float* row = scores + ((long)h * T + t) * total;
    int visible = min(total, pos + rowOffset + t + 1);
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
        float e = expf(row[j] * scale - mx);
        row[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (blockDim.x >> 5); w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < total; j += blockDim.x) row[j] = j < visible ? row[j] * inv : 0.0f;
}
