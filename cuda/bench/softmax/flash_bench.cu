// Standalone check and timing of the fused MLA prefill attention (mla_flash_bf16, cuda/src/main/cuda/mla_flash.cuh)
// on the bench model's MLA shape: 32 heads, qk 128 + 64 (k_rot shared by the heads), v 128, bf16 inputs.
// The reference is a plain fp32 kernel on the same bf16 inputs (scores, masked softmax, P V in fp32), run over every
// query of the small cases and a sample of queries of the long ones. Outputs are NaN-poisoned before each run.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>
#include <string>
#include <ctime>
#include <cuda_runtime.h>
#include "mla.cu"
#ifdef FLASH_WGMMA
#include <cuda.h>              // CUtensorMap and its enums; cuTensorMapEncodeTiled through the runtime's entry point
#include "mla_flash_sm90a.cu"  // built with -gencode=arch=compute_90a,code=sm_90a (run.sh)
#endif

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); exit(1); } } while (0)

using namespace mla_flash;

// one block per (sampled query, head): fp32 scores into a global row, softmax, then P V; rows[i] = query index
__global__ void reference(const __nv_bfloat16* q, const __nv_bfloat16* kv, const __nv_bfloat16* rot, const int* rows,
                          float* scores, float* out, int heads, int pos, float scale) {
    __shared__ float qs[QK];
    __shared__ float red[32];
    int i = blockIdx.x, h = blockIdx.y, t = rows[i], visible = pos + t + 1;
    for (int d = threadIdx.x; d < QK; d += blockDim.x) qs[d] = __bfloat162float(q[((long)t * heads + h) * QK + d]);
    __syncthreads();
    float* row = scores + ((long)i * heads + h) * (long)(pos + rows[gridDim.x - 1] + 1);
    long kvs = (long)heads * (NOPE + VD);
    float mx = -INFINITY;
    for (int k = threadIdx.x; k < visible; k += blockDim.x) {
        float acc = 0.0f;
        for (int d = 0; d < NOPE; d++) acc += qs[d] * __bfloat162float(kv[k * kvs + h * (NOPE + VD) + d]);
        for (int d = 0; d < ROPE; d++) acc += qs[NOPE + d] * __bfloat162float(rot[(long)k * ROPE + d]);
        row[k] = acc * scale;
        mx = fmaxf(mx, acc * scale);
    }
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int k = threadIdx.x; k < visible; k += blockDim.x) { row[k] = expf(row[k] - mx); sum += row[k]; }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) sum += red[w];
    for (int c = threadIdx.x; c < VD; c += blockDim.x) {
        float acc = 0.0f;
        for (int k = 0; k < visible; k++) acc += row[k] * __bfloat162float(kv[k * kvs + h * (NOPE + VD) + NOPE + c]);
        out[((long)i * heads + h) * VD + c] = acc / sum;
    }
}

// uniform in [-amp, amp): xorshift64 (rand() took seconds for the 32k case's 470 M values); the seed mixes in the
// run's seed, so every run draws fresh inputs
static unsigned long long runSeed = 0;
static void fill(std::vector<__nv_bfloat16>& v, unsigned seed, float amp) {
    unsigned long long x = (seed + runSeed) * 0x9E3779B97F4A7C15ull + 1;
    for (auto& e : v) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        e = __float2bfloat16(((x >> 40) * (1.0f / 16777216.0f) - 0.5f) * 2 * amp);
    }
}

// the variants the backend does not launch (mla_flash.cuh keeps mla_flash_bf16_m2s1): MR x STAGES, Q in registers
#define FLASH_VARIANT(name, mr, stages, qreg, minBlocks, bn)                                                             \
    __global__ void __launch_bounds__(THREADS, minBlocks) name(const __nv_bfloat16* __restrict__ q,                       \
        const __nv_bfloat16* __restrict__ kv, const __nv_bfloat16* __restrict__ rot, float* __restrict__ out, int len,     \
        int pos, int heads, float scaleLog2) {                                                                          \
        flash_block<mr, stages, qreg, bn>(q, kv, rot, out, len, pos, heads, scaleLog2);                                   \
    }
FLASH_VARIANT(mla_flash_bf16, 1, 2, false, 0, 64)
FLASH_VARIANT(mla_flash_bf16_q, 1, 2, true, 0, 64)
FLASH_VARIANT(mla_flash_bf16_s1, 1, 1, false, 0, 64)
FLASH_VARIANT(mla_flash_bf16_m2, 2, 2, false, 1, 64)
// mla_flash_bf16_m2s1k32 / m2s2k32 (32 keys a tile) come from mla_flash.cuh: the backend launches them when
// -Dkimimesh.cuda.flashVariant asks for them

typedef void (*FlashKernel)(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, float*, int, int, int, float);
#ifdef FLASH_WGMMA
typedef void (*TmaKernel)(const mla_wgmma::TensorMap, const mla_wgmma::TensorMap, const mla_wgmma::TensorMap, float*, int, int,
                          int, float);
#else
typedef void* TmaKernel;
#endif
// tma: fn is null and tfn takes tensor maps (bn keys a tile: the K / V maps' box)
struct Variant { const char* name; FlashKernel fn; int rows, smem, threads = THREADS; TmaKernel tfn = nullptr; int bn = 0; };

#ifdef FLASH_WGMMA
typedef CUresult (*EncodeTiled)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                                const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
// a 2-D bf16 map over rows x cols (row pitch `pitch` elements), box 64 x boxRows, 128-byte swizzle, zeros past the end
static mla_wgmma::TensorMap tensorMap(const void* base, long rows, long cols, long pitch, int boxRows) {
    static EncodeTiled encode = nullptr;
    if (!encode) {
        cudaDriverEntryPointQueryResult qr;
        CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", (void**)&encode, 12000, cudaEnableDefault, &qr));
        if (qr != cudaDriverEntryPointSuccess || !encode) { printf("cuTensorMapEncodeTiled not found\n"); exit(1); }
    }
    static_assert(sizeof(CUtensorMap) == sizeof(mla_wgmma::TensorMap), "a tensor map is 128 bytes");
    CUtensorMap m;
    cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)pitch * 2};
    cuuint32_t box[2] = {64, (cuuint32_t)boxRows}, elem[2] = {1, 1};
    CUresult r = encode(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, elem,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) { printf("cuTensorMapEncodeTiled failed: %d\n", (int)r); exit(1); }
    mla_wgmma::TensorMap t;
    memcpy(&t, &m, sizeof t);
    return t;
}
#endif

// launches a variant: a TMA one gets tensor maps over q, kv and rot (built per launch, as the backend does)
static void launch(const Variant& v, dim3 grid, const __nv_bfloat16* q, const __nv_bfloat16* kv, const __nv_bfloat16* rot,
                   float* out, int len, int pos, int heads, float scaleLog2) {
#ifdef FLASH_WGMMA
    if (v.tfn) {
        long total = (long)pos + len;
        v.tfn<<<grid, v.threads, v.smem>>>(tensorMap(q, len, (long)heads * QK, (long)heads * QK, v.rows),
                                           tensorMap(kv, total, (long)heads * (NOPE + VD), (long)heads * (NOPE + VD), v.bn),
                                           tensorMap(rot, total, ROPE, ROPE, v.bn), out, len, pos, heads, scaleLog2);
        return;
    }
#endif
    v.fn<<<grid, v.threads, v.smem>>>(q, kv, rot, out, len, pos, heads, scaleLog2);
}
static const Variant VARIANTS[] = {
#ifdef FLASH_WGMMA
    // wgmma (mla_flash_sm90a.cu): a producer warpgroup and two (m192: three) consumer warpgroups of 64 queries
#define WG(name, bn, stages, cwg) {#name, mla_flash_wgmma_##name, 64 * cwg, mla_wgmma::Layout<bn, stages, cwg>::SMEM, mla_wgmma::threads<cwg>()}
    WG(n128s2, 128, 2, 2), WG(n128s2pp, 128, 2, 2), WG(n64s3, 64, 3, 2), WG(n64s3pp, 64, 3, 2), WG(n64s4pp, 64, 4, 2),
    WG(m192n64s3, 64, 3, 3), WG(n64s4ov, 64, 4, 2), WG(n64s4ovpp, 64, 4, 2), WG(m192n64s3ov, 64, 3, 3),
    // the copy-engine producer (tma; tmaf: with the scale folded into the exponent's FMA)
#define WGT(name, bn, stages, cwg) {#name, nullptr, 64 * cwg, mla_wgmma::Layout<bn, stages, cwg>::SMEM, mla_wgmma::threads<cwg>(), mla_flash_wgmma_##name, bn}
    WGT(m192n64s3tma, 64, 3, 3), WGT(m192n64s3tmaf, 64, 3, 3), WGT(m192n64s3ovtmaf, 64, 3, 3), WGT(n64s4pptmaf, 64, 4, 2),
    WGT(n64s4ovtmaf, 64, 4, 2), WGT(n64s4ovpptmaf, 64, 4, 2), WGT(n128s2pptmaf, 128, 2, 2),
#endif
    {"mr1s2", mla_flash_bf16, 64, smem_bytes<1, 2>()},
    {"mr1s2q", mla_flash_bf16_q, 64, smem_bytes<1, 2>()},
    {"mr1s1", mla_flash_bf16_s1, 64, smem_bytes<1, 1>()},
    {"mr2s2", mla_flash_bf16_m2, 128, smem_bytes<2, 2>()},
    {"mr2s1", mla_flash_bf16_m2s1, 128, smem_bytes<2, 1>()},
    {"mr2s1k32", mla_flash_bf16_m2s1k32, 128, smem_bytes<2, 1, 32>()},
    {"mr2s2k32", mla_flash_bf16_m2s2k32, 128, smem_bytes<2, 2, 32>()},
};

// the variants to run: those named on the command line (each in its own process, so that a hang or a fault in one
// leaves the others' results), or all of them
static std::vector<std::string> only;
static bool selected(const char* name) {
    return only.empty() || std::find(only.begin(), only.end(), std::string(name)) != only.end();
}

// checks every variant against the reference on the sampled rows (inputs and reference made once); true when all match
static bool run_case(int heads, int len, int pos, int sampleEvery, bool time) {
    // FLASH_LEN=N: only the cases of that length (one kernel launch to profile)
    if (getenv("FLASH_LEN") && atoi(getenv("FLASH_LEN")) != len) return true;
    int total = pos + len;
    std::vector<__nv_bfloat16> hq((size_t)len * heads * QK), hkv((size_t)total * heads * (NOPE + VD)), hrot((size_t)total * ROPE);
    fill(hq, len + 11, 1.0f);
    fill(hkv, total + 7, 1.0f);
    fill(hrot, total + 3, 1.0f);
    __nv_bfloat16 *q, *kv, *rot;
    float *out, *refOut, *scores;
    int* rows;
    CK(cudaMalloc(&q, hq.size() * 2)); CK(cudaMalloc(&kv, hkv.size() * 2)); CK(cudaMalloc(&rot, hrot.size() * 2));
    CK(cudaMemcpy(q, hq.data(), hq.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(kv, hkv.data(), hkv.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(rot, hrot.data(), hrot.size() * 2, cudaMemcpyHostToDevice));
    size_t outN = (size_t)len * heads * VD;
    CK(cudaMalloc(&out, outN * 4));
    std::vector<int> hrows;
    for (int t = 0; t < len; t += sampleEvery) hrows.push_back(t);
    if (hrows.back() != len - 1) hrows.push_back(len - 1);
    int ns = hrows.size();
    CK(cudaMalloc(&rows, ns * 4));
    CK(cudaMemcpy(rows, hrows.data(), ns * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&refOut, (size_t)ns * heads * VD * 4));
    CK(cudaMalloc(&scores, (size_t)ns * heads * total * 4));
    float scale = 1.0f / sqrtf((float)QK), scaleLog2 = scale * 1.4426950408889634f;
    reference<<<dim3(ns, heads), 256>>>(q, kv, rot, rows, scores, refOut, heads, pos, scale);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<float> ho(outN), hr((size_t)ns * heads * VD);
    CK(cudaMemcpy(hr.data(), refOut, hr.size() * 4, cudaMemcpyDeviceToHost));
    bool all = true;
    for (const Variant& v : VARIANTS) {
        if (!selected(v.name)) continue;
        const void* fn = v.fn ? (const void*)v.fn : (const void*)v.tfn;
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, v.smem));
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
        dim3 grid((len + v.rows - 1) / v.rows, heads);
        CK(cudaMemset(out, 0xff, outN * 4));  // NaN poison: every element must be written
        launch(v, grid, q, kv, rot, out, len, pos, heads, scaleLog2);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(ho.data(), out, outN * 4, cudaMemcpyDeviceToHost));
        size_t nan = 0;
        for (float x : ho) nan += std::isnan(x);
        double num = 0, den = 0, maxd = 0, maxr = 0;
        for (int i = 0; i < ns; i++)
            for (int h = 0; h < heads; h++)
                for (int c = 0; c < VD; c++) {
                    double a = ho[((size_t)hrows[i] * heads + h) * VD + c], b = hr[((size_t)i * heads + h) * VD + c];
                    num += (a - b) * (a - b);
                    den += b * b;
                    maxd = std::max(maxd, fabs(a - b));
                    maxr = std::max(maxr, fabs(b));
                }
        double rel = sqrt(num / den);
        bool ok = nan == 0 && rel < 1e-2 && maxd <= 2e-2 * maxr;
        all &= ok;
        printf("flash %s heads=%d len=%d pos=%d rows checked=%d: rel %.3e max|d| %.3e (max|ref| %.3e) NaN %zu %s", v.name, heads, len, pos,
               ns, rel, maxd, maxr, nan, ok ? "ok" : "FAIL");
        if (time) {
            cudaEvent_t e0, e1;
            CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
            std::vector<float> ms;
            for (int rep = 0; rep < 15; rep++) {
                float m;
                CK(cudaEventRecord(e0));
                launch(v, grid, q, kv, rot, out, len, pos, heads, scaleLog2);
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                CK(cudaGetLastError());
                CK(cudaEventElapsedTime(&m, e0, e1));
                ms.push_back(m);
            }
            std::sort(ms.begin(), ms.end());
            double pairs = (double)len * pos + (double)len * (len + 1) / 2;  // visible (query, key) pairs per head
            double tflops = 2.0 * heads * pairs * (QK + VD) / (ms[7] * 1e-3) / 1e12;
            printf("  | %.3f ms median of 15 (min %.3f, max %.3f), %.0f TFLOP/s (causal)", ms[7], ms[0], ms[14], tflops);
        }
        printf("\n");
    }
    for (void* p : {(void*)q, (void*)kv, (void*)rot, (void*)out, (void*)refOut, (void*)scores, (void*)rows}) CK(cudaFree(p));
    return all;
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) only.push_back(argv[i]);
    runSeed = getenv("FLASH_SEED") ? strtoull(getenv("FLASH_SEED"), nullptr, 10) : (unsigned long long)time(nullptr);
    printf("seed %llu (FLASH_SEED=%llu repeats this run's inputs)\n", runSeed, runSeed);
    bool ok = true;
    // the reference is the slow part: the small cases check every row, the long ones a sample
    ok &= run_case(3, 1, 0, 1, false);       // one query
    ok &= run_case(4, 777, 100, 1, false);   // partial last block, keys before the segment, every row checked
    ok &= run_case(2, 130, 5, 1, false);
    ok &= run_case(5, 1000, 3000, 1, false); // more cached keys than queries, several key tiles before the diagonal
    ok &= run_case(32, 300, 0, 1, false);    // every head of the bench shape, one partial block
    ok &= run_case(32, 4096, 0, 61, true);
    ok &= run_case(32, 32768, 0, 509, true);
    printf("%s\n", ok ? "flash: all checks pass" : "flash: CHECK FAILED");
    return ok ? 0 : 1;
}
