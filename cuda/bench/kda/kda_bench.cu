// Standalone check and timing of the KDA chunk kernels: the current kernels of kda.cu (raw q and k in, the norms taken
// in the prep; Qp = Qg - M W and o0 = M u0 formed in the prep) against the verified v2 ones (kda_v2.cuh: a separate
// L2-norm pass, M U in the scan), on fresh random inputs shaped like the model's (raw q and k, per-channel log decays
// down to about -35 a step, beta in (0, 1), a random initial state), one case at a time:
//   prep:  Kd and decay must equal v2's bit for bit (same norms, same element-wise step); u0 and W too with the v2
//          diagonal step (variant "prep/v2diag"), close with the 2 x 2 one (v4 and v5 = kda_chunk_prep_v5); every
//          region the scan reads finite, and zero past each chunk's end;
//   full:  new prep + new scan vs v2 (outputs and final states), also the variants (prep/v2diag, scan with 512
//          threads, scan/v5 = kda_chunk_scan_v5 and scan/v6 = kda_chunk_scan_v6, which are also compared with the v4
//          scan on the same workspace: v6 bit for bit);
//          the new path twice gives the same bits, and so does scan/v5;
// then the median time of each kernel (cudaEvents, 7 runs after a warm-up). Outputs are poisoned (NaN) first.
// Build: nvcc -arch=sm_90 -O3 -std=c++17 -o kda_bench kda_bench.cu   (kda.cu and kda_v2.cuh beside it)
//        (-DKDA_PROFILE: also the per-step cycle counts of the current kernels, from the marks in kda.cu)
// Run:   ./kda_bench            (all cases; "time": timings only; "preps": each prep of the 32k case twice, for a
//                                 profiler; "tc": the tensor-core scan of the bf16-compute mode
//                                 against v2 and the fp32 kernels in use, the tensor-core prep kda_chunk_prep_tc
//                                 and kda_chunk_prep_tc2 / _tc3 against prep v5, then their timings beside the fp32 kernels:
//                                 see runTc; "v6": kda_chunk_prep_v6 against v5 bit for bit on every case, then both
//                                 timed alternately: see runV6)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>
#include <string>
#include <cuda_runtime.h>
#include "kda.cu"
#include "kda_v2.cuh"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(2); } } while (0)
#define CKL() do { CK(cudaGetLastError()); } while (0)

// One warm-up run, then seven timed by events: the sorted milliseconds (median at [3]).
template <class F> static std::vector<float> timed7(F fn) {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    fn();
    std::vector<float> ms;
    for (int r = 0; r < 7; r++) {
        CK(cudaEventRecord(e0));
        fn();
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float x;
        CK(cudaEventElapsedTime(&x, e0, e1));
        ms.push_back(x);
    }
    CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
    std::sort(ms.begin(), ms.end());
    return ms;
}

__device__ unsigned hash3(unsigned a, unsigned b) {
    unsigned x = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u + (a << 6) + (a >> 2));
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x;
}
__device__ float unif(long i, unsigned seed) { return (hash3((unsigned)i ^ (unsigned)(i >> 32) * 0x27d4eb2du, seed) + 0.5f) * (1.0f / 4294967296.0f); }
__device__ float gauss(long i, unsigned seed) {
    float u1 = unif(2 * i, seed), u2 = unif(2 * i + 1, seed);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
// kind 0: N(0, sc); 1: log decay g = -e^{a_h} softplus(z), a_h uniform in [-3, 2.5] per head, z ~ N(-0.5, 1.5);
// 2: beta = sigmoid(N(0,1))
__global__ void fill(float* x, long n, int kind, float sc, unsigned seed, int heads, int d) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        if (kind == 0) x[i] = sc * gauss(i, seed);
        else if (kind == 1) {
            int h = (int)((i / d) % heads);
            float a = -3.0f + 5.5f * unif(h, seed ^ 0x5555u);
            float z = -0.5f + 1.5f * gauss(i, seed);
            float sp = z > 20.0f ? z : log1pf(expf(z));
            x[i] = -expf(a) * sp;
        } else x[i] = 1.0f / (1.0f + expf(-gauss(i, seed)));
    }
}
__global__ void poison(float* x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) x[i] = __int_as_float(0x7fc00000);
}
// err[0] += (a-b)^2, err[1] += b^2 (double); m[0] = max |a-b|, m[1] = max |b|, m[2] = max |a-b| / max(|b|, 1e-3), m[3] = #non-finite a
__global__ void cmp(const float* a, const float* b, long n, double* err, unsigned* m) {
    double e2 = 0, r2 = 0;
    float ma = 0, mb = 0, mr = 0;
    unsigned bad = 0;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float x = a[i], y = b[i];
        if (!isfinite(x)) { bad++; continue; }
        float df = fabsf(x - y);
        e2 += (double)df * df;
        r2 += (double)y * y;
        ma = fmaxf(ma, df);
        mb = fmaxf(mb, fabsf(y));
        mr = fmaxf(mr, df / fmaxf(fabsf(y), 1e-3f));
    }
    atomicAdd(&err[0], e2);
    atomicAdd(&err[1], r2);
    atomicMax(&m[0], __float_as_uint(ma));
    atomicMax(&m[1], __float_as_uint(mb));
    atomicMax(&m[2], __float_as_uint(mr));
    atomicAdd(&m[3], bad);
}
// copies [off, off + len) of each (chunk, head) record of a workspace into a dense array; mode 0 keeps rows (of rowLen
// floats) before the chunk's end, 1 everything, 2 the rows past the end (zeros elsewhere)
__global__ void wsPart(const float* ws, long wsz, long off, long len, long rowLen, int mode, const int* chunkLen, float* dst, int chunks, int heads) {
    long n = (long)chunks * heads * len;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long rc = i / len, o = i % len;
        int c = chunkLen[(int)(rc / heads)];
        bool before = (o % (CH * rowLen)) / rowLen < c;
        bool keep = mode == 1 || (mode == 0 ? before : !before);
        dst[i] = keep ? ws[rc * wsz + off + o] : 0.0f;
    }
}
// the variants timed beside the kernels in use
extern "C" __global__ void __launch_bounds__(256, 2) prep_v2diag(const float* q, const float* k, const float* v, const float* g, const float* beta,
                                                                 const int* chunkRow, const int* chunkLen, float* ws, int heads, int d, float scale) {
    kda_chunk_prep_body<false>(q, k, v, g, beta, chunkRow, chunkLen, ws, heads, d, scale);
}
extern "C" __global__ void __launch_bounds__(512, 1) scan_512(const float* ws, const long long* states, const int* segChunk0, const int* segChunks,
                                                              const int* chunkRow, const int* chunkLen, float* out, int heads, int d) {
    kda_chunk_scan_body<512>(ws, states, segChunk0, segChunks, chunkRow, chunkLen, out, heads, d);
}

// the tensor-core scan with other L2 prefetch distances (kda_chunk_scan_tc: KDA_TC_PREFETCH chunks ahead), and with W
// and Qp staged in shared memory two chunks ahead (STAGED)
#define KDA_TC_VARIANT(name, pf, staged)                                                                                           \
    extern "C" __global__ void __launch_bounds__(256, 1) name(const float* ws, const long long* states, const int* segChunk0,     \
                                                             const int* segChunks, const int* chunkRow, const int* chunkLen,     \
                                                             float* out, int heads, int d) {                                     \
        kda_chunk_scan_tc_body<pf, staged>(ws, states, segChunk0, segChunks, chunkRow, chunkLen, out, heads, d);                  \
    }
KDA_TC_VARIANT(scan_tc_pf1, 1, false)
KDA_TC_VARIANT(scan_tc_pf3, 3, false)
KDA_TC_VARIANT(scan_tc_pf6, 6, false)
KDA_TC_VARIANT(scan_tc_staged, 0, true)
typedef void (*ScanFn)(const float*, const long long*, const int*, const int*, const int*, const int*, float*, int, int);
static const int TC_VARIANTS = 4;
static const ScanFn tcVariants[] = {scan_tc_pf1, scan_tc_pf3, scan_tc_pf6, scan_tc_staged};
static const char* tcVariantNames[] = {"tc pf1", "tc pf3", "tc pf6", "tc staged"};
static int tcVariantShared(int vi, int d) { return 4 * (kda_scan_tc_shared_floats(d) + (vi == 3 ? kda_scan_tc_staged_floats(d) : 0)); }

struct Err { double nrel; float maxAbs, maxRef, maxRel; unsigned bad; };
static double* dErr;
static unsigned* dM;
static Err compare(const float* a, const float* b, long n) {
    CK(cudaMemset(dErr, 0, 16));
    CK(cudaMemset(dM, 0, 16));
    cmp<<<1024, 256>>>(a, b, n, dErr, dM);
    CKL();
    double e[2];
    unsigned m[4];
    CK(cudaMemcpy(e, dErr, 16, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(m, dM, 16, cudaMemcpyDeviceToHost));
    Err r;
    r.nrel = std::sqrt(e[0] / std::max(e[1], 1e-300));
    memcpy(&r.maxAbs, &m[0], 4); memcpy(&r.maxRef, &m[1], 4); memcpy(&r.maxRel, &m[2], 4);
    r.bad = m[3];
    return r;
}
static bool report(const char* cs, const char* what, Err e, double tol) {
    bool ok = e.bad == 0 && e.nrel <= tol && std::isfinite(e.nrel);
    printf("  %-8s %-34s norm-rel %.2e  max|d| %.2e (max|ref| %.2e, max|d|/max|ref| %.2e)  max rel %.2e  non-finite %u  %s\n", cs, what, e.nrel,
           e.maxAbs, e.maxRef, e.maxAbs / std::max(e.maxRef, 1e-30f), e.maxRel, e.bad, ok ? "ok" : "FAIL");
    return ok;
}

static float prepTcMs[3] = {0.0f, 0.0f, 0.0f};   // runTc: median times of kda_chunk_prep_tc, _tc2, _tc3 in the last timed case
typedef void (*PrepFn)(const float*, const float*, const float*, const float*, const float*, const int*, const int*, float*, int, int, float);
// Mode "tc": the tensor-core scan (kda_chunk_scan_tc, TF32 products, fp32 state) after prep v5, against the verified v2
// path (outputs and final states; TF32 operands: about 1e-3 norm-relative expected, 1e-2 = the bf16-compute mode's
// tolerance to pass) and against the fp32 scan in use (v6) on the same workspace; the same bits twice; then the median
// times of prep v5, scan v6 and scan tc, interleaved.
template <class SetStates>
static void runTc(const char* nm, int H, int d, int segs, int chunks, int T, long n, long sn, bool timed, float* q, float* k, float* qn, float* kn,
                  float* v, float* g, float* beta, float* outRef, float* outNew, float* wsRef, float* wsNew, float* st0, float* stRef,
                  float* stNew, float* va, int* dRow, int* dLen, int* dFirst, int* dCount, long long* dSt, SetStates setStates, int prepSh,
                  int v2ScanSh, int v6ScanSh, bool& allOk, std::vector<std::string>& table, std::vector<std::string>& prepTable) {
    const double tolTc = 1e-2, tolFp32 = 2e-5;
    float scale = 1.0f / sqrtf((float)d);
    int tcSh = kda_scan_tc_shared_floats(d) * 4;
    for (const void* f : {(const void*)v2_kda_chunk_prep, (const void*)v2_kda_chunk_scan, (const void*)kda_chunk_prep_v5,
                          (const void*)kda_chunk_scan_v6, (const void*)kda_chunk_scan_tc}) {
        CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
        CK(cudaFuncSetAttribute(f, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    }
    printf("case %s: %d heads x %d, %d segments, %d chunks, %d tokens; scan tc shared %d B\n", nm, H, d, segs, chunks, T, tcSh);
    auto prep = [&] { kda_chunk_prep_v5<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale); CKL(); };
    auto scan6 = [&](float* out) { kda_chunk_scan_v6<<<dim3(H, segs, d / 32), 256, v6ScanSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d); CKL(); };
    auto scanTc = [&](float* out) { kda_chunk_scan_tc<<<dim3(H, segs, d / 32), 256, tcSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d); CKL(); };
    // reference: v2 (separate norm pass, M U in the scan)
    poison<<<1024, 256>>>(wsRef, (long)(4L * CH * d + CH * CH + d) * chunks * H); poison<<<1024, 256>>>(outRef, n); CKL();
    CK(cudaMemcpy(stRef, st0, sn * 4, cudaMemcpyDeviceToDevice));
    v2_kda_l2norm<<<dim3(T, H), 128>>>(q, k, qn, kn, H, d, scale); CKL();
    v2_kda_chunk_prep<<<dim3(chunks, H), 256, prepSh>>>(qn, kn, v, g, beta, dRow, dLen, wsRef, H, d); CKL();
    setStates(stRef);
    v2_kda_chunk_scan<<<dim3(H, segs, d / 32), 256, v2ScanSh>>>(wsRef, dSt, dFirst, dCount, dRow, dLen, outRef, H, d); CKL();
    // the fp32 path in use (prep v5 + scan v6): outputs into va, states into stNew's copy below
    poison<<<1024, 256>>>(wsNew, kda_ws_floats(d) * chunks * H); CKL();
    prep();
    float* out6 = va;
    poison<<<1024, 256>>>(out6, n); CKL();
    std::vector<float> st6(sn);
    CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
    setStates(stNew);
    scan6(out6);
    CK(cudaDeviceSynchronize());
    allOk &= report(nm, "fp32 (v5 + v6) out vs v2", compare(out6, outRef, n), tolFp32);
    allOk &= report(nm, "fp32 (v5 + v6) states vs v2", compare(stNew, stRef, sn), tolFp32);
    CK(cudaMemcpy(st6.data(), stNew, sn * 4, cudaMemcpyDeviceToHost));
    // the tensor-core scan on the same workspace
    poison<<<1024, 256>>>(outNew, n); CKL();
    CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
    scanTc(outNew);
    CK(cudaDeviceSynchronize());
    allOk &= report(nm, "tc (v5 + tc) out vs v2", compare(outNew, outRef, n), tolTc);
    allOk &= report(nm, "tc (v5 + tc) states vs v2", compare(stNew, stRef, sn), tolTc);
    allOk &= report(nm, "tc out vs fp32 v6", compare(outNew, out6, n), tolTc);
    // run to run: the same bits twice
    float* out2 = outRef;   // the reference is no longer needed
    CK(cudaMemcpy(stRef, stNew, sn * 4, cudaMemcpyDeviceToDevice));
    poison<<<1024, 256>>>(out2, n); CKL();
    CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
    scanTc(out2);
    CK(cudaDeviceSynchronize());
    allOk &= report(nm, "tc twice (bits) out", compare(out2, outNew, n), 0.0);
    allOk &= report(nm, "tc twice (bits) states", compare(stNew, stRef, sn), 0.0);
    // prep tc and tc2 (kda_chunk_prep_tc / _tc2: v5 with its two triangular products on TF32 tensor cores) into a
    // second workspace: Kd and decay are v5's bits (the steps before the products are v5's), u0 | W | Qp | o0 close to
    // v5's, every region finite and zero past each chunk's end; then with scan tc and scan v6 against the fp32 path
    // (tc3, 3xTF32 products: within 1e-4 of v5, where TF32's rounding gives about 3e-4)
    for (int pv = 0; pv < 3; pv++) {
        const PrepFn prepTcFn = pv == 0 ? kda_chunk_prep_tc : pv == 1 ? kda_chunk_prep_tc2 : kda_chunk_prep_tc3;
        const std::string pn = pv == 0 ? "prep tc " : pv == 1 ? "prep tc2 " : "prep tc3 ";
        const double tolPrep = pv == 2 ? 1e-4 : tolTc;
        const long wz = kda_ws_floats(d), wn = wz * chunks * H, rg = 5L * CH * d;
        float *wsTc, *pa, *pb;
        CK(cudaMalloc(&wsTc, wn * 4)); CK(cudaMalloc(&pa, (long)chunks * H * rg * 4)); CK(cudaMalloc(&pb, (long)chunks * H * rg * 4));
        CK(cudaFuncSetAttribute((const void*)prepTcFn, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
        CK(cudaFuncSetAttribute((const void*)prepTcFn, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
        poison<<<1024, 256>>>(wsTc, wn); CKL();
        prepTcFn<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsTc, H, d, scale); CKL();
        auto region = [&](const float* w, long off, long len, int mode, float* dst) {
            wsPart<<<2048, 256>>>(w, wz, off, len, d, mode, dLen, dst, chunks, H); CKL();
            return (long)chunks * H * len;
        };
        long m = region(wsTc, 3L * CH * d, (long)CH * d, 1, pa); region(wsNew, 3L * CH * d, (long)CH * d, 1, pb);
        allOk &= report(nm, (pn + "Kd = v5 (bits)").c_str(), compare(pa, pb, m), 0.0);
        m = region(wsTc, 5L * CH * d + CH * CH, d, 1, pa); region(wsNew, 5L * CH * d + CH * CH, d, 1, pb);
        allOk &= report(nm, (pn + "decay = v5 (bits)").c_str(), compare(pa, pb, m), 0.0);
        const char* names[] = {"u0", "W", "Qp", "", "o0"};
        for (int r : {0, 1, 2, 4}) {
            m = region(wsTc, (long)r * CH * d, (long)CH * d, 0, pa); region(wsNew, (long)r * CH * d, (long)CH * d, 0, pb);
            allOk &= report(nm, (pn + names[r] + " vs v5").c_str(), compare(pa, pb, m), tolPrep);
        }
        m = region(wsTc, 0, rg, 1, pa);
        allOk &= report(nm, (pn + "scan's regions finite").c_str(), compare(pa, pa, m), 0.0);
        m = region(wsTc, 0, rg, 2, pa);
        Err z = compare(pa, pa, m);
        bool zok = z.bad == 0 && z.maxRef == 0.0f;
        printf("  %-8s %-34s max|x| %.2e  non-finite %u  %s\n", nm, (pn + "zero past the end").c_str(), z.maxRef, z.bad, zok ? "ok" : "FAIL");
        allOk &= zok;
        for (int sv = 0; sv < 2; sv++) {
            poison<<<1024, 256>>>(out2, n); CKL();
            CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
            if (sv == 0) kda_chunk_scan_tc<<<dim3(H, segs, d / 32), 256, tcSh>>>(wsTc, dSt, dFirst, dCount, dRow, dLen, out2, H, d);
            else kda_chunk_scan_v6<<<dim3(H, segs, d / 32), 256, v6ScanSh>>>(wsTc, dSt, dFirst, dCount, dRow, dLen, out2, H, d);
            CKL();
            CK(cudaDeviceSynchronize());
            // the v2 reference: outputs were overwritten (out2 = outRef); compare with v5 + v6 (va, st6), within 4e-7 of v2
            CK(cudaMemcpy(pb, st6.data(), sn * 4, cudaMemcpyHostToDevice));
            std::string t = pn + (sv == 0 ? "+ scan tc " : "+ scan v6 ");
            allOk &= report(nm, (t + "out vs fp32").c_str(), compare(out2, out6, n), tolTc);
            allOk &= report(nm, (t + "states vs fp32").c_str(), compare(stNew, pb, sn), tolTc);
        }
        if (timed) {
            prepTcMs[pv] = timed7([&] { prepTcFn<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsTc, H, d, scale); })[3];
        }
        for (float* p : {wsTc, pa, pb}) CK(cudaFree(p));
    }
    // the prefetch distances change no arithmetic: the same bits
    for (int vi = 0; vi < TC_VARIANTS; vi++) {
        CK(cudaFuncSetAttribute((const void*)tcVariants[vi], cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
        poison<<<1024, 256>>>(out2, n); CKL();
        CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
        tcVariants[vi]<<<dim3(H, segs, d / 32), 256, tcVariantShared(vi, d)>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out2, H, d); CKL();
        CK(cudaDeviceSynchronize());
        allOk &= report(nm, (std::string(tcVariantNames[vi]) + " = tc (bits) out").c_str(), compare(out2, outNew, n), 0.0);
        allOk &= report(nm, (std::string(tcVariantNames[vi]) + " = tc (bits) states").c_str(), compare(stNew, stRef, sn), 0.0);
    }
    if (!timed) return;
    auto timeIt = [](auto fn) { return timed7(fn); };
    auto tp = timeIt(prep);
    auto t6 = timeIt([&] { scan6(outNew); });
    auto tt = timeIt([&] { scanTc(outNew); });
    auto t6b = timeIt([&] { scan6(outNew); });
    auto ttb = timeIt([&] { scanTc(outNew); });
    // prep v5 against preps tc2 and tc3 (the bf16-compute mode's candidates), alternating twice, and each with the tc scan
    auto prepTc2 = [&] { kda_chunk_prep_tc2<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale); CKL(); };
    auto prepTc3 = [&] { kda_chunk_prep_tc3<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale); CKL(); };
    auto q1 = timeIt(prepTc2);
    auto x1 = timeIt(prepTc3);
    auto p2 = timeIt(prep);
    auto q2 = timeIt(prepTc2);
    auto x2 = timeIt(prepTc3);
    auto pst = timeIt([&] { prep(); scanTc(outNew); });
    auto qst = timeIt([&] { prepTc2(); scanTc(outNew); });
    auto xst = timeIt([&] { prepTc3(); scanTc(outNew); });
    char pb2[512];
    snprintf(pb2, sizeof pb2, "| %-6s | %6.3f / %6.3f | %6.3f / %6.3f | %6.3f / %6.3f | %6.3f | %6.3f | %6.3f | %6.3f |", nm, tp[3], p2[3], q1[3], q2[3], x1[3],
             x2[3], prepTcMs[0], pst[3], qst[3], xst[3]);
    prepTable.push_back(pb2);
#ifdef KDA_PROFILE
    {
        const char* pnames[] = {"prep v5", "prep tc", "prep tc2", "prep tc3"};
        for (int pv = 0; pv < 4; pv++) {
            unsigned long long z[16] = {0}, pr[16];
            CK(cudaMemcpyToSymbol(kda_prof, z, sizeof z));
            for (int r = 0; r < 4; r++) {
                if (pv == 0) prep();
                else if (pv == 1) kda_chunk_prep_tc<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                else if (pv == 2) prepTc2();
                else prepTc3();
                CKL();
            }
            CK(cudaMemcpyFromSymbol(pr, kda_prof, sizeof pr));
            const double pbk = (double)chunks * H * 4;
            printf("  profile %s %s (cycles per block, thread 0): load+norm+cumsum %.0f | diag %.0f | elementwise %.0f | off-diag %.0f | solve %.0f | T product %.0f | (M copy +) M product %.0f\n",
                   nm, pnames[pv], pr[0] / pbk, pr[1] / pbk, pr[2] / pbk, pr[3] / pbk, pr[4] / pbk, pr[5] / pbk, pr[6] / pbk);
        }
    }
#endif
    float tv[TC_VARIANTS];
    for (int vi = 0; vi < TC_VARIANTS; vi++)
        tv[vi] = timeIt([&] { tcVariants[vi]<<<dim3(H, segs, d / 32), 256, tcVariantShared(vi, d)>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, outNew, H, d); CKL(); })[3];
    char buf[512];
    snprintf(buf, sizeof buf, "| %-6s | %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f |", nm, tp[3], tp[0], tp[6],
             t6[3], t6[0], t6[6], tt[3], tt[0], tt[6], tp[3] + t6[3], tp[3] + tt[3], t6b[3], ttb[3], tv[0], tv[1], tv[2], tv[3], prepTcMs[0], prepTcMs[0] + tt[3]);
    table.push_back(buf);
}

// the 32-bit words of a and b that differ (n words): counted as bits, so -0 / +0 and NaN payloads count too
__global__ void bitdiff(const float* a, const float* b, long n, unsigned long long* cnt) {
    unsigned long long c = 0;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        c += __float_as_uint(a[i]) != __float_as_uint(b[i]);
    atomicAdd(cnt, c);
}
// Mode "v6": kda_chunk_prep_v6 (v5's operations under another lane-to-data map) against kda_chunk_prep_v5 on the
// case's fresh inputs: both workspaces poisoned alike (NaN), then every word of them (u0, W, Qp, Kd, o0, the M
// scratch, decay; rows past a ragged chunk's end included) must be equal bit for bit; v6's scan regions finite and
// zero past the end; timed cases: v5, v6, v5, v6 (median of 7 each) into prepTable.
static void runV6(const char* nm, int H, int d, int chunks, float* q, float* k, float* v, float* g, float* beta, float* wsA, float* wsB,
                  float* tmp, int* dRow, int* dLen, int prepSh, bool timed, bool& allOk, std::vector<std::string>& prepTable) {
    float scale = 1.0f / sqrtf((float)d);
    for (const void* f : {(const void*)kda_chunk_prep_v5, (const void*)kda_chunk_prep_v6}) {
        CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
        CK(cudaFuncSetAttribute(f, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    }
    const long wz = kda_ws_floats(d), wn = wz * chunks * H;
    auto p5 = [&] { kda_chunk_prep_v5<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsA, H, d, scale); CKL(); };
    auto p6 = [&] { kda_chunk_prep_v6<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsB, H, d, scale); CKL(); };
    poison<<<1024, 256>>>(wsA, wn); poison<<<1024, 256>>>(wsB, wn); CKL();
    p5();
    p6();
    unsigned long long* dc;
    CK(cudaMalloc(&dc, 8));
    CK(cudaMemset(dc, 0, 8));
    bitdiff<<<1024, 256>>>(wsA, wsB, wn, dc); CKL();
    unsigned long long diff = 0;
    CK(cudaMemcpy(&diff, dc, 8, cudaMemcpyDeviceToHost));
    CK(cudaFree(dc));
    bool ok = diff == 0;
    printf("  %-8s %-34s %lld words, %llu differ  %s\n", nm, "prep v6 = v5, whole workspace (bits)", (long long)wn, diff, ok ? "ok" : "FAIL");
    allOk &= ok;
    // v6's regions the scan reads are finite, and zero past each chunk's end (v5's properties, checked on v6 too)
    long m = (long)chunks * H * 5L * CH * d;
    wsPart<<<2048, 256>>>(wsB, wz, 0, 5L * CH * d, d, 1, dLen, tmp, chunks, H); CKL();
    allOk &= report(nm, "prep v6 scan's regions finite", compare(tmp, tmp, m), 0.0);
    wsPart<<<2048, 256>>>(wsB, wz, 0, 5L * CH * d, d, 2, dLen, tmp, chunks, H); CKL();
    Err z = compare(tmp, tmp, m);
    bool zok = z.bad == 0 && z.maxRef == 0.0f;
    printf("  %-8s %-34s max|x| %.2e  non-finite %u  %s\n", nm, "prep v6 zero past the end", z.maxRef, z.bad, zok ? "ok" : "FAIL");
    allOk &= zok;
    if (!timed) return;
    auto a1 = timed7(p5), b1 = timed7(p6), a2 = timed7(p5), b2 = timed7(p6);
    char buf[512];
    snprintf(buf, sizeof buf, "| %-6s | %6.3f (%.3f..%.3f) / %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) / %6.3f (%.3f..%.3f) | %.3f |", nm, a1[3], a1[0],
             a1[6], a2[3], a2[0], a2[6], b1[3], b1[0], b1[6], b2[3], b2[0], b2[6], (b1[3] + b2[3]) / (a1[3] + a2[3]));
    prepTable.push_back(buf);
}

struct Case { std::string name; int heads, d; std::vector<int> lens; bool timed; };

int main(int argc, char** argv) {
    std::vector<Case> cases = {
        {"d32", 4, 32, {200, 64, 1}, false},
        {"d96", 4, 96, {300, 65, 7}, false},
        {"d64", 16, 64, {5000, 700, 129, 2}, false},
        {"multi", 32, 128, {1000, 9000, 4133, 7001, 63}, true},
        {"32k", 32, 128, {32768}, true},
    };
    bool onlyTime = argc > 1 && !strcmp(argv[1], "time");
    bool tcMode = argc > 1 && !strcmp(argv[1], "tc");
    bool v6Mode = argc > 1 && !strcmp(argv[1], "v6");
    // "preps": each prep of the 32k case once (v5, tc, tc2, tc3, v6) after a warm-up, no checks: for a profiler
    // (ncu --kernel-name regex:kda_chunk_prep ./kda_bench preps)
    if (argc > 1 && !strcmp(argv[1], "preps")) cases.erase(cases.begin(), cases.end() - 1);
    const bool prepsMode = argc > 1 && !strcmp(argv[1], "preps");
    std::vector<std::string> tcTable, prepTable;
    CK(cudaMalloc(&dErr, 16));
    CK(cudaMalloc(&dM, 16));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    std::vector<std::string> table;
    bool allOk = true;
    unsigned seed = 12345;
    for (const Case& cs : cases) {
        int H = cs.heads, d = cs.d, segs = (int)cs.lens.size();
        int T = 0;
        for (int l : cs.lens) T += l;
        long n = (long)T * H * d;
        std::vector<int> rows, lens, first, count;
        int start = 0;
        for (int l : cs.lens) {
            first.push_back((int)rows.size());
            for (int c0 = 0; c0 < l; c0 += CH) { rows.push_back(start + c0); lens.push_back(std::min(CH, l - c0)); }
            count.push_back((int)rows.size() - first.back());
            start += l;
        }
        int chunks = (int)rows.size();
        long wsz2 = 4L * CH * d + CH * CH + d, wsn2 = wsz2 * chunks * H;
        long wsz = kda_ws_floats(d), wsn = wsz * chunks * H;
        float *q, *k, *qn, *kn, *v, *g, *beta, *outRef, *outNew, *wsRef, *wsNew, *st0, *stRef, *stNew, *va, *vb, *st4buf;
        long sn = (long)H * d * d * segs;
        CK(cudaMalloc(&q, n * 4)); CK(cudaMalloc(&k, n * 4)); CK(cudaMalloc(&qn, n * 4)); CK(cudaMalloc(&kn, n * 4));
        CK(cudaMalloc(&v, n * 4)); CK(cudaMalloc(&g, n * 4)); CK(cudaMalloc(&beta, (long)T * H * 4));
        CK(cudaMalloc(&outRef, n * 4)); CK(cudaMalloc(&outNew, n * 4));
        CK(cudaMalloc(&wsRef, wsn2 * 4)); CK(cudaMalloc(&wsNew, wsn * 4));
        CK(cudaMalloc(&st0, sn * 4)); CK(cudaMalloc(&stRef, sn * 4)); CK(cudaMalloc(&stNew, sn * 4)); CK(cudaMalloc(&st4buf, sn * 4));
        CK(cudaMalloc(&va, std::max(wsn, n) * 4)); CK(cudaMalloc(&vb, std::max(wsn, n) * 4));
        // raw projections: N(0, 1) q and k of norm about sqrt(d), as the model's are before normalisation
        fill<<<2048, 256>>>(q, n, 0, 1.0f, seed++, H, d);
        fill<<<2048, 256>>>(k, n, 0, 1.0f, seed++, H, d);
        fill<<<2048, 256>>>(v, n, 0, 1.0f, seed++, H, d);
        fill<<<2048, 256>>>(g, n, 1, 0.0f, seed++, H, d);
        fill<<<2048, 256>>>(beta, (long)T * H, 2, 0.0f, seed++, H, d);
        fill<<<2048, 256>>>(st0, sn, 0, 0.3f, seed++, H, d);
        CKL();
        float scale = 1.0f / sqrtf((float)d);
        int *dRow, *dLen, *dFirst, *dCount;
        long long* dSt;
        CK(cudaMalloc(&dRow, chunks * 4)); CK(cudaMalloc(&dLen, chunks * 4));
        CK(cudaMalloc(&dFirst, segs * 4)); CK(cudaMalloc(&dCount, segs * 4)); CK(cudaMalloc(&dSt, segs * 8));
        CK(cudaMemcpy(dRow, rows.data(), chunks * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dLen, lens.data(), chunks * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dFirst, first.data(), segs * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dCount, count.data(), segs * 4, cudaMemcpyHostToDevice));
        auto setStates = [&](float* base) {
            std::vector<long long> p(segs);
            for (int i = 0; i < segs; i++) p[i] = (long long)(base + (long)i * H * d * d);
            CK(cudaMemcpy(dSt, p.data(), segs * 8, cudaMemcpyHostToDevice));
        };
        int prepSh = (3 * CH * d + CH * CH) * 4;
        int v2ScanSh = (3 * CH * (d + 4) + CH * (CH + 4) + 2 * CH * 32 + d * 32 + d) * 4;
        int scanSh = kda_scan_shared_floats(d) * 4;
        int v5ScanSh = kda_scan_v5_shared_floats(d) * 4, v6ScanSh = kda_scan_v6_shared_floats(d) * 4;
        for (const void* f : {(const void*)v2_kda_chunk_prep, (const void*)v2_kda_chunk_scan, (const void*)kda_chunk_prep, (const void*)kda_chunk_scan,
                              (const void*)prep_v2diag, (const void*)scan_512, (const void*)kda_chunk_scan_v5, (const void*)kda_chunk_prep_v5,
                              (const void*)kda_chunk_scan_v6}) {
            CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
            // as KdaKernels does: the largest shared-memory carveout, so that two prep blocks fit an SM
            CK(cudaFuncSetAttribute(f, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
        }
        auto refNorm = [&] { v2_kda_l2norm<<<dim3(T, H), 128>>>(q, k, qn, kn, H, d, scale); CKL(); };
        auto refPrep = [&] { v2_kda_chunk_prep<<<dim3(chunks, H), 256, prepSh>>>(qn, kn, v, g, beta, dRow, dLen, wsRef, H, d); CKL(); };
        auto refScan = [&](float* out) { v2_kda_chunk_scan<<<dim3(H, segs, d / 32), 256, v2ScanSh>>>(wsRef, dSt, dFirst, dCount, dRow, dLen, out, H, d); CKL(); };
        // variant 0: kda_chunk_prep (v4), 1: with v2's diagonal step, 2: kda_chunk_prep_v5
        auto newPrep = [&](int variant) {
            if (variant == 1) prep_v2diag<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
            else if (variant == 2) kda_chunk_prep_v5<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
            else kda_chunk_prep<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
            CKL();
        };
        // variant 0: kda_chunk_scan (v4), 1: its 512-thread form, 2: kda_chunk_scan_v5, 3: kda_chunk_scan_v6
        auto newScan = [&](int variant, float* out) {
            if (variant == 3) {
                kda_chunk_scan_v6<<<dim3(H, segs, d / 32), 256, v6ScanSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d);
                CKL();
                return;
            }
            if (variant == 1) scan_512<<<dim3(H, segs, d / 32), 512, scanSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d);
            else if (variant == 2) kda_chunk_scan_v5<<<dim3(H, segs, d / 32), 256, v5ScanSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d);
            else kda_chunk_scan<<<dim3(H, segs, d / 32), 256, scanSh>>>(wsNew, dSt, dFirst, dCount, dRow, dLen, out, H, d);
            CKL();
        };
        if (prepsMode) {
            float scale = 1.0f / sqrtf((float)d);
            for (const void* f : {(const void*)kda_chunk_prep_tc, (const void*)kda_chunk_prep_tc2, (const void*)kda_chunk_prep_tc3,
                                  (const void*)kda_chunk_prep_v6}) {
                CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
                CK(cudaFuncSetAttribute(f, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
            }
            for (int r = 0; r < 2; r++) {   // r = 0: warm-up
                kda_chunk_prep_v5<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                kda_chunk_prep_tc<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                kda_chunk_prep_tc2<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                kda_chunk_prep_tc3<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                kda_chunk_prep_v6<<<dim3(chunks, H), 256, prepSh>>>(q, k, v, g, beta, dRow, dLen, wsNew, H, d, scale);
                CKL();
            }
            CK(cudaDeviceSynchronize());
            printf("preps: v5, tc, tc2, tc3, v6 run twice on case %s\n", cs.name.c_str());
            continue;
        }
        if (v6Mode) {
            printf("case %s: %d heads x %d, %d segments (", cs.name.c_str(), H, d, segs);
            for (int l : cs.lens) printf(" %d", l);
            printf(" ), %d chunks\n", chunks);
            runV6(cs.name.c_str(), H, d, chunks, q, k, v, g, beta, wsNew, va, vb, dRow, dLen, prepSh, cs.timed, allOk, prepTable);
            for (float* p : {q, k, qn, kn, v, g, beta, outRef, outNew, wsRef, wsNew, st0, stRef, stNew, va, vb, st4buf}) CK(cudaFree(p));
            for (void* p : {(void*)dRow, (void*)dLen, (void*)dFirst, (void*)dCount, (void*)dSt}) CK(cudaFree(p));
            continue;
        }
        if (tcMode) {
            runTc(cs.name.c_str(), H, d, segs, chunks, T, n, sn, cs.timed, q, k, qn, kn, v, g, beta, outRef, outNew, wsRef, wsNew, st0, stRef,
                  stNew, va, dRow, dLen, dFirst, dCount, dSt, setStates, prepSh, v2ScanSh, v6ScanSh, allOk, tcTable, prepTable);
            for (float* p : {q, k, qn, kn, v, g, beta, outRef, outNew, wsRef, wsNew, st0, stRef, stNew, va, vb, st4buf}) CK(cudaFree(p));
            for (void* p : {(void*)dRow, (void*)dLen, (void*)dFirst, (void*)dCount, (void*)dSt}) CK(cudaFree(p));
            continue;
        }
        printf("case %s: %d heads x %d, %d segments (", cs.name.c_str(), H, d, segs);
        for (int l : cs.lens) printf(" %d", l);
        int occ = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kda_chunk_prep, 256, prepSh));
        printf(" ), %d chunks; shared prep %d B (%d blocks/SM), scan %d -> %d B (v5 %d B)\n", chunks, prepSh, occ, v2ScanSh, scanSh, v5ScanSh);
        const double tol = 2e-5;
        auto part = [&](const float* ws, long wz, long off, long len, long rowLen, int mode, float* dst) {
            wsPart<<<2048, 256>>>(ws, wz, off, len, rowLen, mode, dLen, dst, chunks, H);
            CKL();
            return (long)chunks * H * len;
        };
        const char* nm = cs.name.c_str();
        if (!onlyTime) {
            // reference: the v2 path
            poison<<<1024, 256>>>(wsRef, wsn2); poison<<<1024, 256>>>(outRef, n); CKL();
            CK(cudaMemcpy(stRef, st0, sn * 4, cudaMemcpyDeviceToDevice));
            refNorm();
            refPrep();
            setStates(stRef);
            refScan(outRef);
            CK(cudaDeviceSynchronize());
            for (int variant = 0; variant < 3; variant++) {
                bool v2diag = variant == 1;
                std::string tag = v2diag ? "prep/v2diag " : variant == 2 ? "prep/v5 " : "prep ";
                poison<<<1024, 256>>>(wsNew, wsn); CKL();
                newPrep(variant);
                long m;
                // u0 and W (the first 2 CH d floats of both layouts), Kd, decay
                m = part(wsRef, wsz2, 0, 2L * CH * d, d, 0, va); part(wsNew, wsz, 0, 2L * CH * d, d, 0, vb);
                allOk &= report(nm, (tag + "u0 | W").c_str(), compare(vb, va, m), v2diag ? 0.0 : tol);
                m = part(wsRef, wsz2, 3L * CH * d, (long)CH * d, d, 0, va); part(wsNew, wsz, 3L * CH * d, (long)CH * d, d, 0, vb);
                allOk &= report(nm, (tag + "Kd (bits)").c_str(), compare(vb, va, m), 0.0);
                m = part(wsRef, wsz2, 4L * CH * d + CH * CH, d, 1L << 40, 1, va); part(wsNew, wsz, 5L * CH * d + CH * CH, d, 1L << 40, 1, vb);
                allOk &= report(nm, (tag + "decay (bits)").c_str(), compare(vb, va, m), 0.0);
                // every region the scan reads is finite, and zero past the chunk's end
                m = part(wsNew, wsz, 0, 5L * CH * d, d, 1, vb);
                allOk &= report(nm, (tag + "scan's regions finite").c_str(), compare(vb, vb, m), 0.0);
                m = part(wsNew, wsz, 0, 5L * CH * d, d, 2, vb);
                Err z = compare(vb, vb, m);
                bool zok = z.bad == 0 && z.maxRef == 0.0f;
                printf("  %-8s %-34s max|x| %.2e  non-finite %u  %s\n", nm, (tag + "zero past the end").c_str(), z.maxRef, z.bad, zok ? "ok" : "FAIL");
                allOk &= zok;
                // full path, with the scan in use, its 512-thread form and v5 (v5 also against the scan in use)
                for (int sv = 0; sv < 4; sv++) {
                    std::string t2 = tag + (sv == 1 ? "+ scan/512 " : sv == 2 ? "+ scan/v5 " : sv == 3 ? "+ scan/v6 " : "+ scan ");
                    poison<<<1024, 256>>>(outNew, n); CKL();
                    CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
                    setStates(stNew);
                    newScan(sv, outNew);
                    CK(cudaDeviceSynchronize());
                    allOk &= report(nm, (t2 + "out").c_str(), compare(outNew, outRef, n), tol);
                    allOk &= report(nm, (t2 + "states").c_str(), compare(stNew, stRef, sn), tol);
                    if (sv >= 2) {
                        // v5 and v6 against v4 from the same workspace (v5: the summation order differs; v6: bits)
                        std::string t3 = tag + (sv == 2 ? "scan/v5 vs v4 " : "scan/v6 vs v4 (bits) ");
                        double tv = sv == 2 ? tol : 0.0;
                        float* out4 = va;
                        poison<<<1024, 256>>>(out4, n); CKL();
                        CK(cudaMemcpy(st4buf, st0, sn * 4, cudaMemcpyDeviceToDevice));
                        setStates(st4buf);
                        newScan(0, out4);
                        CK(cudaDeviceSynchronize());
                        allOk &= report(nm, (t3 + "out").c_str(), compare(outNew, out4, n), tv);
                        allOk &= report(nm, (t3 + "states").c_str(), compare(stNew, st4buf, sn), tv);
                    }
                }
            }
            // run-to-run: the path in use twice from the same inputs gives the same bits
            poison<<<1024, 256>>>(outNew, n); CKL();
            CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
            setStates(stNew);
            newPrep(0);
            newScan(0, outNew);
            float* out2 = va;
            poison<<<1024, 256>>>(out2, n); CKL();
            CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
            newPrep(0);
            newScan(0, out2);
            CK(cudaDeviceSynchronize());
            allOk &= report(nm, "new twice (bits)", compare(out2, outNew, n), 0.0);
            // and v5's scan twice
            poison<<<1024, 256>>>(outNew, n); CKL();
            CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
            newScan(2, outNew);
            poison<<<1024, 256>>>(out2, n); CKL();
            CK(cudaMemcpy(stNew, st0, sn * 4, cudaMemcpyDeviceToDevice));
            newScan(2, out2);
            CK(cudaDeviceSynchronize());
            allOk &= report(nm, "scan/v5 twice (bits)", compare(out2, outNew, n), 0.0);
        }
        if (cs.timed) {
            auto timeIt = [](auto fn) { return timed7(fn); };
            setStates(stRef);
            auto rn = timeIt([&] { refNorm(); });
            auto rp = timeIt([&] { refPrep(); });
            auto rs = timeIt([&] { refScan(outRef); });
            setStates(stNew);
#ifdef KDA_PROFILE
            unsigned long long z[16] = {0};
            CK(cudaMemcpyToSymbol(kda_prof, z, sizeof z));
#endif
            auto np = timeIt([&] { newPrep(0); });
            auto ns = timeIt([&] { newScan(0, outNew); });
#ifdef KDA_PROFILE
            unsigned long long pr[16];
            CK(cudaMemcpyFromSymbol(pr, kda_prof, sizeof pr));
            double runs = 8.0, pb = (double)chunks * H * runs, sbk = (double)H * segs * (d / 32) * runs;
            printf("  profile %s (cycles per block, thread 0): prep load+norm+cumsum %.0f | diag %.0f | elementwise %.0f | off-diag %.0f | solve %.0f | T product %.0f | M product %.0f\n",
                   nm, pr[0] / pb, pr[1] / pb, pr[2] / pb, pr[3] / pb, pr[4] / pb, pr[5] / pb, pr[6] / pb);
            printf("  profile %s (cycles per block over all chunks): scan wait before X %.0f | X %.0f | Y %.0f\n", nm, pr[8] / sbk,
                   pr[9] / sbk, pr[10] / sbk);
#endif
#ifdef KDA_PROFILE
            CK(cudaMemcpyToSymbol(kda_prof, z, sizeof z));
#endif
            auto n5 = timeIt([&] { newScan(2, outNew); });
#ifdef KDA_PROFILE
            CK(cudaMemcpyFromSymbol(pr, kda_prof, sizeof pr));
            printf("  profile %s scan/v5 (cycles per block over all chunks): wait before X %.0f | X %.0f | Y %.0f\n", nm, pr[8] / sbk,
                   pr[9] / sbk, pr[10] / sbk);
            CK(cudaMemcpyToSymbol(kda_prof, z, sizeof z));
#endif
            auto n6 = timeIt([&] { newScan(3, outNew); });
#ifdef KDA_PROFILE
            CK(cudaMemcpyFromSymbol(pr, kda_prof, sizeof pr));
            printf("  profile %s scan/v6 (cycles per block over all chunks): wait before X %.0f | X %.0f | Y %.0f\n", nm, pr[8] / sbk,
                   pr[9] / sbk, pr[10] / sbk);
#endif
            auto p5 = timeIt([&] { newPrep(2); });
            auto pv = timeIt([&] { newPrep(1); });
            auto s2 = timeIt([&] { newScan(1, outNew); });
            auto rp2 = timeIt([&] { refPrep(); });
            auto ns2 = timeIt([&] { newScan(0, outNew); });
            auto np2 = timeIt([&] { newPrep(0); });
            char buf[1024];
            snprintf(buf, sizeof buf, "| %-6s | %6.3f | %6.3f | %6.3f | %7.3f | %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) | %7.3f | %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) | %6.3f (%.3f..%.3f) | %7.3f | %7.3f | %6.3f | %6.3f | %6.3f | %6.3f | %6.3f |",
                     nm, rn[3], rp[3], rs[3], rn[3] + rp[3] + rs[3], np[3], np[0], np[6], ns[3], ns[0], ns[6], np[3] + ns[3], p5[3], p5[0], p5[6],
                     n5[3], n5[0], n5[6], n6[3], n6[0], n6[6], p5[3] + ns[3], p5[3] + n6[3], pv[3], s2[3], rp2[3], np2[3], ns2[3]);
            table.push_back(buf);
        }
        for (float* p : {q, k, qn, kn, v, g, beta, outRef, outNew, wsRef, wsNew, st0, stRef, stNew, va, vb, st4buf}) CK(cudaFree(p));
        for (void* p : {(void*)dRow, (void*)dLen, (void*)dFirst, (void*)dCount, (void*)dSt}) CK(cudaFree(p));
    }
    if (v6Mode) {
        printf("\nprep v5 against v6, ms, median of 7 (min..max), %s, timed in the order v5, v6, v5 again, v6 again\n", prop.name);
        printf("| case | prep v5 / again | prep v6 / again | v6 / v5 (sums) |\n| --- | --- | --- | --- |\n");
        for (auto& s : prepTable) printf("%s\n", s.c_str());
        printf("\nchecks: %s\n", allOk ? "ALL OK" : "SOME FAILED");
        return allOk ? 0 : 1;
    }
    if (tcMode) {
        printf("\nms, median of 7 (min..max), %s; fp32 = kda_chunk_prep_v5 + kda_chunk_scan_v6 (the exact mode's kernels), tc = kda_chunk_prep_v5 + kda_chunk_scan_tc\n", prop.name);
        printf("| case | prep v5 | scan v6 (fp32) | scan tc (L2 prefetch %d chunks ahead) | fp32 total | tc total | scan v6 again | scan tc again | tc, prefetch 1 | tc, prefetch 3 | tc, prefetch 6 | tc, W / Qp staged | prep tc | prep tc + scan tc |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n", KDA_TC_PREFETCH);
        for (auto& s : tcTable) printf("%s\n", s.c_str());
        printf("\nthe bf16-compute mode's prep, ms, median of 7, %s (timed in the order: prep v5, ..., prep tc2, prep tc3, prep v5 again, prep tc2 again, prep tc3 again; prep tc from the checks above)\n", prop.name);
        printf("| case | prep v5 / again | prep tc2 / again | prep tc3 / again | prep tc | prep v5 + scan tc | prep tc2 + scan tc | prep tc3 + scan tc |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (auto& s : prepTable) printf("%s\n", s.c_str());
        printf("\nchecks: %s\n", allOk ? "ALL OK" : "SOME FAILED");
        return allOk ? 0 : 1;
    }
    printf("\nms, median of 7 (min..max), %s\n", prop.name);
    printf("| case | v2 norm | v2 prep | v2 scan | v2 total | v4 prep | v4 scan | v4 total | v5 prep | scan/v5 | scan/v6 | v5 prep + v4 scan | v5 prep + scan/v6 | prep/v2diag | scan/512 | v2 prep again | v4 prep again | v4 scan again |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (auto& s : table) printf("%s\n", s.c_str());
    printf("\nchecks: %s\n", allOk ? "ALL OK" : "SOME FAILED");
    return allOk ? 0 : 1;
}
