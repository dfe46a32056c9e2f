// Standalone check and timing of a one-read MLA prefill softmax against the backend's kernels (mla.cu), on the score
// tiles of a 32k prefill (docs/benchmarks-gpu.md, prefill profile: mla_softmax 136 ms, mla_softmax_bf16 104 ms).
// The backend's kernels read a score row three times (max, exp-sum, normalise) and write it once; the candidates
// hold the row in registers (up to 32 values per thread of 1024, rows up to 32,768 keys), so each score is read once
// and written once. The candidates live in mla.cu (mla_softmax_1r, mla_softmax_bf16_1r); this times them against the
// looping kernels on the same rows and checks that they agree.
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
#include "mla.cu"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); exit(1); } } while (0)

// the block size MlaKernels launches the one-read kernels with: the smallest multiple of 32 (at least 128) that
// covers the row with SOFTMAX_RPT values per thread
static int threads_for(int width) { return std::max(128, ((width + SOFTMAX_RPT - 1) / SOFTMAX_RPT + 31) / 32 * 32); }

static float bf16f(__nv_bfloat16 b) { return __bfloat162float(b); }

int main(int argc, char** argv) {
    // one score tile of a 32k prefill: 32 heads x TL queries, keys up to the tile's end (the last tile sees all 32k)
    const int heads = 32, TL = 256, pos = 0;
    const float scale = 1.0f / sqrtf(192.0f);
    int rowOffsets[] = {0, 3000, 8192, 32768 - TL};
    printf("%-10s %-8s %10s %10s %10s %12s %12s\n", "kernel", "offset", "keys", "old us", "new us", "max|diff|", "GB/s new");
    bool ok = true;
    for (int ro : rowOffsets) {
        int total = pos + ro + TL;                       // kEnd of the tile: exact mode rows are kEnd wide
        int ld = (total + 7) & ~7;                       // bf16 mode rows are padded to 8
        size_t n = (size_t)heads * TL * ld;
        std::vector<float> h(n);
        srand(ro + 1);
        for (size_t i = 0; i < n; i++) h[i] = ((rand() / (float)RAND_MAX) - 0.5f) * 40.0f;
        float *a, *b;
        __nv_bfloat16 *pa, *pb;
        CK(cudaMalloc(&a, n * 4)); CK(cudaMalloc(&b, n * 4));
        CK(cudaMalloc(&pa, n * 2)); CK(cudaMalloc(&pb, n * 2));
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        // exact mode: in place on kEnd-wide rows
        std::vector<float> ra(n), rb(n);
        float tOld = 1e30f, tNew = 1e30f;
        for (int rep = 0; rep < 5; rep++) {
            CK(cudaMemcpy(a, h.data(), n * 4, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(b, h.data(), n * 4, cudaMemcpyHostToDevice));
            float ms;
            CK(cudaEventRecord(e0)); mla_softmax<<<dim3(TL, heads), 256>>>(a, TL, total, pos, ro, scale); CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1)); CK(cudaEventElapsedTime(&ms, e0, e1)); tOld = std::min(tOld, ms * 1000);
            CK(cudaEventRecord(e0)); mla_softmax_1r<<<dim3(TL, heads), threads_for(total)>>>(b, TL, total, pos, ro, scale); CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1)); CK(cudaEventElapsedTime(&ms, e0, e1)); tNew = std::min(tNew, ms * 1000);
            CK(cudaGetLastError());
        }
        CK(cudaMemcpy(ra.data(), a, (size_t)heads * TL * total * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(rb.data(), b, (size_t)heads * TL * total * 4, cudaMemcpyDeviceToHost));
        double md = 0;
        for (size_t i = 0; i < (size_t)heads * TL * total; i++) md = std::max(md, (double)fabsf(ra[i] - rb[i]));
        double bytes = 8.0 * heads * TL * (double)total;
        printf("%-10s %-8d %10d %10.1f %10.1f %12.3e %12.1f\n", "fp32", ro, total, tOld, tNew, md, bytes / (tNew * 1e3));
        ok &= md < 1e-6;
        // bf16 mode: fp32 scores -> bf16 probabilities on ld-wide rows
        CK(cudaMemcpy(a, h.data(), n * 4, cudaMemcpyHostToDevice));
        tOld = tNew = 1e30f;
        for (int rep = 0; rep < 5; rep++) {
            float ms;
            CK(cudaEventRecord(e0)); mla_softmax_bf16<<<dim3(TL, heads), 256>>>(a, pa, TL, total, ld, pos, ro, scale); CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1)); CK(cudaEventElapsedTime(&ms, e0, e1)); tOld = std::min(tOld, ms * 1000);
            CK(cudaEventRecord(e0)); mla_softmax_bf16_1r<<<dim3(TL, heads), threads_for(total)>>>(a, pb, TL, total, ld, pos, ro, scale); CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1)); CK(cudaEventElapsedTime(&ms, e0, e1)); tNew = std::min(tNew, ms * 1000);
            CK(cudaGetLastError());
        }
        std::vector<__nv_bfloat16> qa(n), qb(n);
        CK(cudaMemcpy(qa.data(), pa, n * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(qb.data(), pb, n * 2, cudaMemcpyDeviceToHost));
        md = 0;
        for (size_t r = 0; r < (size_t)heads * TL; r++)
            for (int j = 0; j < total; j++) md = std::max(md, (double)fabsf(bf16f(qa[r * ld + j]) - bf16f(qb[r * ld + j])));
        bytes = 6.0 * heads * TL * (double)total;
        printf("%-10s %-8d %10d %10.1f %10.1f %12.3e %12.1f\n", "bf16", ro, total, tOld, tNew, md, bytes / (tNew * 1e3));
        ok &= md <= 1.0 / 256;   // one bf16 rounding step of a probability <= 1
        CK(cudaFree(a)); CK(cudaFree(b)); CK(cudaFree(pa)); CK(cudaFree(pb));
    }
    printf("%s\n", ok ? "all checks pass" : "CHECK FAILED");
    return ok ? 0 : 1;
}
