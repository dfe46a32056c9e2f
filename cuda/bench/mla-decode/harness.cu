// Check and timing of the MLA decode attention kernels: mla_decode.cu (v1), mla_decode_v2.cu (v2, with the wide
// combine: the backend's default) and mla_decode_v3.cu (v3, every head in one block: -Dkimimesh.cuda.mlaDecode=v3),
// each against a float64 CPU reference on fresh random caches, at the bench model's MLA shape (32 heads,
// kv_lora_rank 512, rope 64) with the grids the backend picks (MlaKernels.splitDecode / splitDecodeV3) and the
// capacities a decode at that context has (the caches double: 8192 at 4k, 65536 at 32k). Times are the median of 21
// runs of split + combine, by events.
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
#include "mla_decode.cu"
#include "mla_decode_v2.cu"
#include "mla_decode_v3.cu"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); exit(1); } } while (0)

static const int H = 32, R = 512, ROPE = 64, NOPE = 128, QW = NOPE + ROPE, HG = 8;

__global__ void fill(float* p, long n, unsigned seed) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        unsigned x = (unsigned) i * 2654435761u ^ seed;
        x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16;
        p[i] = (x >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Case { int batch, context, capacity; };

int main() {
    int sms = 0;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    float scale = 1.0f / sqrtf((float) QW);
    Case cases[] = {{1, 4096, 8192}, {8, 4096, 8192}, {64, 4096, 8192}, {1, 32768, 65536}, {8, 32768, 65536}, {64, 32768, 65536}};
    printf("%-26s %10s %10s %10s %12s %12s %12s %8s\n", "case", "v1 us", "v2 us", "v3 us", "v1 rel err", "v2 rel err", "v3 rel err",
           "floor us");
    for (Case c : cases) {
        int b = c.batch, cap = c.capacity;
        long cacheN = (long) cap * R, rotN = (long) cap * ROPE;
        std::vector<float*> lat(b), rot(b);
        std::vector<long long> table(2 * b);
        for (int s = 0; s < b; s++) {
            CK(cudaMalloc(&lat[s], 4 * cacheN));
            CK(cudaMalloc(&rot[s], 4 * rotN));
            fill<<<1024, 256>>>(lat[s], cacheN, 11 + s);
            fill<<<256, 256>>>(rot[s], rotN, 977 + s);
            table[2 * s] = (long long) lat[s];
            table[2 * s + 1] = (long long) rot[s];
        }
        std::vector<int> pos(b);
        for (int s = 0; s < b; s++) pos[s] = c.context - 7 * (s % 3); // positions differ a little per sequence
        long long* dTable;
        int* dPos;
        float *qLat, *q, *ctx1, *ctx2, *ctx3;
        CK(cudaMalloc(&dTable, 16L * b));
        CK(cudaMalloc(&dPos, 4L * b));
        CK(cudaMemcpy(dTable, table.data(), 16L * b, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dPos, pos.data(), 4L * b, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&qLat, 4L * b * H * R));
        CK(cudaMalloc(&q, 4L * b * H * QW));
        CK(cudaMalloc(&ctx1, 4L * b * H * R));
        CK(cudaMalloc(&ctx2, 4L * b * H * R));
        CK(cudaMalloc(&ctx3, 4L * b * H * R));
        fill<<<256, 256>>>(qLat, (long) b * H * R, 5);
        fill<<<256, 256>>>(q, (long) b * H * QW, 6);
        // the grid of MlaKernels.splitDecode
        int groups = H / HG, chunks = (cap + 127) / 128;
        int want = std::max(1, (2 * sms + b * groups - 1) / (b * groups));
        int perSplit = (chunks + want - 1) / want, splits = (chunks + perSplit - 1) / perSplit;
        // the grid of MlaKernels.splitDecodeV3: ranges of 16-row tiles, about 2 x SMs / B a sequence, at least 2 tiles
        int tiles = (cap + 15) / 16, want3 = std::max(1, 2 * sms / b);
        int per3 = std::max(std::max(2, (tiles + want3 - 1) / want3), (tiles + 1023) / 1024);
        int span3 = per3 * 16, splits3 = (tiles + per3 - 1) / per3;
        int ld4 = ((R + ROPE) / 4) | 1, sh3 = 16 * (32 + 2 * 16) * ld4 + 4 * (4 * 16 * 32 + 16 * 32 + 3 * 32);
        CK(cudaFuncSetAttribute(mla_decode_split_v3, cudaFuncAttributeMaxDynamicSharedMemorySize, sh3));
        float *acc, *ml;
        int maxSplits = std::max(splits, 2 * splits3 + 1);   // room for the range-size sweep below
        CK(cudaMalloc(&acc, 4L * b * maxSplits * H * R));
        CK(cudaMalloc(&ml, 8L * b * maxSplits * H));
        int sh1 = 4 * (HG * (R + ROPE) + 128 * 8), sh2 = 4 * (HG * (R + ROPE) + V2_CHUNK * V2_HG + 128 * 32);
        dim3 grid(splits, groups, b);
        auto v1 = [&]() {
            mla_decode_split<<<grid, MLA_CHUNK, sh1>>>(qLat, q, dTable, dPos, acc, ml, H, R, ROPE, QW, NOPE, HG, perSplit, scale);
            mla_decode_combine<<<dim3(H, b), MLA_CHUNK>>>(acc, ml, dPos, ctx1, H, R, perSplit, splits);
        };
        auto v2 = [&]() {
            mla_decode_split_v2<<<grid, V2_THREADS, sh2>>>(qLat, q, dTable, dPos, acc, ml, H, R, ROPE, QW, NOPE, HG, perSplit, scale);
            mla_decode_combine_v2w<<<dim3(H, b, (R + 127) / 128), 128>>>(acc, ml, dPos, ctx2, H, R, perSplit, splits);
        };
        auto v3 = [&]() {
            mla_decode_split_v3<<<dim3(splits3, 1, b), V3_THREADS, sh3>>>(qLat, q, dTable, dPos, acc, ml, H, R, ROPE, QW, NOPE, H, span3,
                                                                          scale);
            mla_decode_combine_v3<<<dim3(H, b, (R + 127) / 128), 128>>>(acc, ml, dPos, ctx3, H, R, span3, splits3);
        };
        CK(cudaMemset(ctx1, 0xff, 4L * b * H * R)); // NaN-poisoned: every element must be written
        CK(cudaMemset(ctx2, 0xff, 4L * b * H * R));
        CK(cudaMemset(ctx3, 0xff, 4L * b * H * R));
        v1();
        CK(cudaGetLastError());
        v2();
        CK(cudaGetLastError());
        v3();
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        // float64 reference for the first two sequences
        double err1 = 0, err2 = 0, err3 = 0;
        int checked = std::min(b, c.context > 8192 ? 1 : 2);   // the float64 reference of a 32k sequence takes seconds
        std::vector<float> hl((size_t) cacheN), hr((size_t) rotN), hq((size_t) b * H * R), hqq((size_t) b * H * QW);
        std::vector<float> g1((size_t) b * H * R), g2((size_t) b * H * R), g3((size_t) b * H * R);
        CK(cudaMemcpy(hq.data(), qLat, 4L * b * H * R, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hqq.data(), q, 4L * b * H * QW, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(g1.data(), ctx1, 4L * b * H * R, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(g2.data(), ctx2, 4L * b * H * R, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(g3.data(), ctx3, 4L * b * H * R, cudaMemcpyDeviceToHost));
        for (int s = 0; s < checked; s++) {
            CK(cudaMemcpy(hl.data(), lat[s], 4 * cacheN, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(hr.data(), rot[s], 4 * rotN, cudaMemcpyDeviceToHost));
            int n = pos[s] + 1;
            double num1 = 0, num2 = 0, num3 = 0, den = 0;
            std::vector<double> sc(n), out(R);
            for (int h = 0; h < H; h++) {
                const float* ql = &hq[((size_t) s * H + h) * R];
                const float* qr = &hqq[(size_t) s * H * QW + (size_t) h * QW + NOPE];
                double mx = -1e300;
                for (int t = 0; t < n; t++) {
                    double d = 0;
                    for (int r = 0; r < R; r++) d += (double) ql[r] * hl[(size_t) t * R + r];
                    for (int r = 0; r < ROPE; r++) d += (double) qr[r] * hr[(size_t) t * ROPE + r];
                    sc[t] = d * scale;
                    mx = std::max(mx, sc[t]);
                }
                double sum = 0;
                for (int t = 0; t < n; t++) sum += (sc[t] = exp(sc[t] - mx));
                std::fill(out.begin(), out.end(), 0.0);
                for (int t = 0; t < n; t++) for (int r = 0; r < R; r++) out[r] += sc[t] * hl[(size_t) t * R + r];
                for (int r = 0; r < R; r++) {
                    double ref = out[r] / sum, a = g1[((size_t) s * H + h) * R + r], c2 = g2[((size_t) s * H + h) * R + r],
                           c3 = g3[((size_t) s * H + h) * R + r];
                    num1 += (a - ref) * (a - ref);
                    num2 += (c2 - ref) * (c2 - ref);
                    num3 += (c3 - ref) * (c3 - ref);
                    den += ref * ref;
                }
            }
            err1 = std::max(err1, std::isnan(num1) ? INFINITY : sqrt(num1 / den));
            err2 = std::max(err2, std::isnan(num2) ? INFINITY : sqrt(num2 / den));
            err3 = std::max(err3, std::isnan(num3) ? INFINITY : sqrt(num3 / den));
        }
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        std::vector<float> t1, t2, t3;
        for (int rep = 0; rep < 21; rep++) {
            for (int which = 0; which < 3; which++) {
                CK(cudaEventRecord(e0));
                if (which == 0) v1(); else if (which == 1) v2(); else v3();
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                float ms;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                (which == 0 ? t1 : which == 1 ? t2 : t3).push_back(ms * 1000);
            }
        }
        // floor: every visible cache row read once at 3 TB/s
        double bytes = 0;
        for (int s = 0; s < b; s++) bytes += (double) (pos[s] + 1) * (R + ROPE) * 4;
        char name[64];
        snprintf(name, sizeof name, "b%d ctx %d (cap %d)", b, c.context, cap);
        printf("%-26s %10.1f %10.1f %10.1f %12.2e %12.2e %12.2e %8.1f\n", name, median(t1), median(t2), median(t3), err1, err2, err3,
               bytes / 3.0e12 * 1e6);
        fflush(stdout);
        // v3 at other range sizes (tiles a range: half and twice the backend's), to see whether the grid rule is right
        for (int alt : {std::max(2, per3 / 2), per3 * 2}) {
            if (alt == per3) continue;
            int altSplits = (tiles + alt - 1) / alt;
            if (altSplits > maxSplits || altSplits > 1024) continue;
            std::vector<float> ta;
            for (int rep = 0; rep < 11; rep++) {
                CK(cudaEventRecord(e0));
                mla_decode_split_v3<<<dim3(altSplits, 1, b), V3_THREADS, sh3>>>(qLat, q, dTable, dPos, acc, ml, H, R, ROPE, QW, NOPE, H,
                                                                                alt * 16, scale);
                mla_decode_combine_v3<<<dim3(H, b, (R + 127) / 128), 128>>>(acc, ml, dPos, ctx3, H, R, alt * 16, altSplits);
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                float ms;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                ta.push_back(ms * 1000);
            }
            printf("  v3 with ranges of %d positions (%d a sequence; backend: %d): %.1f us\n", alt * 16, altSplits, span3, median(ta));
        }
        fflush(stdout);
        for (int s = 0; s < b; s++) {
            CK(cudaFree(lat[s]));
            CK(cudaFree(rot[s]));
        }
        for (void* p : {(void*) dTable, (void*) dPos, (void*) qLat, (void*) q, (void*) ctx1, (void*) ctx2, (void*) ctx3, (void*) acc, (void*) ml}) CK(cudaFree(p));
    }
    return 0;
}
