// Decode GEMV harness: every bf16 weight GEMV of one decode step of the bench model (bench-48b-shape-4layers, batch
// T = 1 and 8) through the old gemv_bf16 and each tiled variant (gemv.cu), and the MoE expert GEMVs (old moe_gate_up
// / moe_down vs the tiled moe.cu ones). Correctness: each output (poisoned with NaN first) against a double CPU
// reference (max |out - ref| / max |ref|). Timing: median of single launches between events, over enough weight
// copies that L2 (50 MB) cannot hold them; GB/s = weight bytes / time, next to the device-to-device copy ceiling
// measured in the same run. Prints per-shape lines, then a step table (count x time) last.
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); exit(2); } } while (0)

typedef void (*GemvFn)(const float*, const unsigned short*, float*, int, int, int);
extern "C" __global__ void old_gemv_bf16(const float*, const unsigned short*, float*, int, int, int, int);
typedef void (*MoeGuFn)(const float*, const long long*, const int*, const int*, const int*, const int*, float*, int, int);
typedef void (*MoeDFn)(const float*, const long long*, const int*, const int*, const int*, float*, int, int);
extern "C" __global__ void old_moe_gate_up(const float*, const long long*, const int*, const int*, const int*, const int*, float*, int, int);
extern "C" __global__ void old_moe_down(const float*, const long long*, const int*, const int*, const int*, float*, int, int);

#define DECL_G(R, U, TB, S) extern "C" __global__ void gemv_r##R##u##U##t##TB##s##S(const float*, const unsigned short*, float*, int, int, int);
#define DECL_GS(R, U, S) DECL_G(R, U, 1, S) DECL_G(R, U, 8, S)
DECL_GS(2, 2, 8) DECL_GS(2, 2, 4) DECL_GS(1, 4, 8) DECL_GS(2, 4, 1) DECL_GS(4, 4, 1) DECL_GS(4, 2, 1)
#define DECL_GU(NR, U, TB) extern "C" __global__ void moe_gate_up_n##NR##u##U##t##TB(const float*, const long long*, const int*, const int*, const int*, const int*, float*, int, int);
#define DECL_D(NR, U, TB) extern "C" __global__ void moe_down_n##NR##u##U##t##TB(const float*, const long long*, const int*, const int*, const int*, float*, int, int);
DECL_GU(1, 4, 1) DECL_GU(1, 4, 8) DECL_D(4, 2, 1) DECL_D(4, 2, 8)

struct Variant { std::string name; int R, S; GemvFn f1, f8; };
#define V(R, U, S) {"r" #R "u" #U "s" #S, R, S, (GemvFn)gemv_r##R##u##U##t1s##S, (GemvFn)gemv_r##R##u##U##t8s##S}
// the tilings gemv.cu keeps (a first run swept 14: r1u4s1, r1u8s1, r2u4s1, r4u2s1, r4u4s1, r1u4s2, r1u4s4, r1u4s8,
// r2u4s2, r2u4s4, r2u2s8, r1u8s2, r1u8s4, r2u2s4; docs/gpu-logs/decode-gemv-sweep.txt)
static std::vector<Variant> variants = {V(2, 2, 8), V(2, 2, 4), V(1, 4, 8), V(2, 4, 1), V(4, 4, 1), V(4, 2, 1)};

// GemvTiles.pick (cuda/src/main/java/dev/kimimesh/cuda/GemvTiles.java) for T in {1, 8}: the variant the backend runs
static std::string picked(int t, int n, int k) {
    if (k < 1024) return t == 1 ? "r2u4s1" : "r4u4s1";
    if (t == 1) return k == 1024 ? "r2u2s4" : "r2u2s8";
    if (n >= 32768) return "r4u2s1";
    if (n <= 512) return "r1u4s8";
    return k >= 4096 ? "r2u2s8" : "r2u2s4";
}

struct Shape { const char* what; int N, K, count; };
// one decode step of bench-48b-shape-4layers: 3 KDA layers (q,k,v / f_a,g_a / b / f_b,g_b / o), layer 0 dense MLP,
// 3 MoE layers (router, shared expert gate/up/down), the MLA layer (q, kv_a latent, kv_a rope, o), the lm_head
static std::vector<Shape> shapes = {
    {"kda q/k/v", 4096, 2304, 9}, {"kda f_a/g_a", 128, 2304, 6}, {"kda b", 32, 2304, 3}, {"kda f_b/g_b", 4096, 128, 6},
    {"o_proj kda+mla", 2304, 4096, 4}, {"dense gate/up", 9216, 2304, 2}, {"dense down", 2304, 9216, 1},
    {"router", 256, 2304, 3}, {"shared gate/up", 1024, 2304, 6}, {"shared down", 2304, 1024, 3},
    {"mla q", 6144, 2304, 1}, {"mla kv_a latent", 512, 2304, 1}, {"mla kv_a rope", 64, 2304, 1}, {"lm_head", 163840, 2304, 1}};

static float bf16f(unsigned short b) { unsigned u = (unsigned)b << 16; float f; memcpy(&f, &u, 4); return f; }

__global__ void fill_bf16(unsigned short* dst, long n, unsigned long long seed) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned long long z = seed + 0x9E3779B97F4A7C15ull * (unsigned long long)(i + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        unsigned b = (unsigned)z & 0xFFFFu;
        dst[i] = (unsigned short)((b & 0x8000u) | ((0x77u + ((b >> 7) & 3u)) << 7) | (b & 0x7Fu));
    }
}

static std::mt19937_64 rng(20261206);
static std::vector<float> randx(long n) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& e : v) e = d(rng);
    return v;
}

static double relerr(const std::vector<float>& out, const std::vector<double>& ref) {
    double mx = 0, mr = 0;
    for (size_t i = 0; i < out.size(); i++) {
        if (!std::isfinite(out[i])) return INFINITY;
        mx = std::max(mx, std::fabs(out[i] - ref[i]));
        mr = std::max(mr, std::fabs(ref[i]));
    }
    return mx / mr;
}

template <class F>
static float median_us(int reps, int copies, F launch) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) launch(i % copies);
    std::vector<float> t;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a));
        launch(i % copies);
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1000);
    }
    CK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return t[t.size() / 2];
}

static double ceiling_gbs() {
    size_t n = 1ull << 30;
    void *s, *d;
    CK(cudaMalloc(&s, n));
    CK(cudaMalloc(&d, n));
    CK(cudaMemset(s, 1, n));
    float us = median_us(9, 1, [&](int) { CK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice)); });
    CK(cudaFree(s));
    CK(cudaFree(d));
    return 2.0 * n / (us * 1e3);
}

int main(int argc, char** argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    double ceil = ceiling_gbs();
    printf("device %s, %d SMs, L2 %d MB; copy ceiling %.0f GB/s\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, ceil);
    FILE* step = fopen(getenv("STEP_TABLE") ? getenv("STEP_TABLE") : "step-table.txt", "w");
    std::vector<std::string> table;
    int failures = 0;
    const int reps = quick ? 10 : 30;
    for (int T : {1, 8}) {
        double oldStep = 0, newStep = 0, pickStep = 0, bytesStep = 0;
        for (const Shape& sh : shapes) {
            long wn = (long)sh.N * sh.K;
            double bytes = 2.0 * wn;
            int copies = std::max(2, (int)std::ceil(200e6 / bytes));
            std::vector<unsigned short*> w(copies);
            for (int c = 0; c < copies; c++) {
                CK(cudaMalloc(&w[c], 2 * wn));
                fill_bf16<<<1024, 256>>>(w[c], wn, 1000 + c + 7919ull * sh.N);
            }
            CK(cudaGetLastError());
            std::vector<float> hx = randx((long)T * sh.K);
            float *x, *out;
            CK(cudaMalloc(&x, 4L * T * sh.K));
            CK(cudaMalloc(&out, 4L * T * sh.N));
            CK(cudaMemcpy(x, hx.data(), 4L * T * sh.K, cudaMemcpyHostToDevice));
            std::vector<unsigned short> hw(wn);
            CK(cudaMemcpy(hw.data(), w[0], 2 * wn, cudaMemcpyDeviceToHost));
            std::vector<double> ref((long)T * sh.N);
            for (int t = 0; t < T; t++)
                for (int n = 0; n < sh.N; n++) {
                    double s = 0;
                    const unsigned short* wr = hw.data() + (long)n * sh.K;
                    const float* xr = hx.data() + (long)t * sh.K;
                    for (int k = 0; k < sh.K; k++) s += (double)bf16f(wr[k]) * xr[k];
                    ref[(long)t * sh.N + n] = s;
                }
            std::vector<float> ho((long)T * sh.N);
            auto check = [&](auto launch) {
                CK(cudaMemset(out, 0xFF, 4L * T * sh.N));
                launch(0);
                CK(cudaGetLastError());
                CK(cudaMemcpy(ho.data(), out, 4L * T * sh.N, cudaMemcpyDeviceToHost));
                return relerr(ho, ref);
            };
            auto oldL = [&](int c) { old_gemv_bf16<<<(sh.N + 7) / 8, 256>>>(x, w[c], out, T, sh.N, sh.K, 1); };
            double eOld = check(oldL);
            float tOld = median_us(reps, copies, oldL);
            std::string best, pick = picked(T, sh.N, sh.K);
            float tBest = 1e30f, tPick = 0;
            double eBest = 0;
            char line[512];
            for (const Variant& v : variants) {
                GemvFn f = T == 1 ? v.f1 : v.f8;
                int rowsPerBlock = 8 / v.S * v.R;
                auto L = [&](int c) { f<<<(sh.N + rowsPerBlock - 1) / rowsPerBlock, 256>>>(x, w[c], out, T, sh.N, sh.K); };
                double e = check(L);
                float tv = median_us(reps, copies, L);
                if (!(e < 1e-5)) failures++;
                printf("T=%d %-16s N=%6d K=%5d %-8s %8.2f us %6.0f GB/s err %.2e%s\n", T, sh.what, sh.N, sh.K, v.name.c_str(), tv,
                       bytes / (tv * 1e3), e, e < 1e-5 ? "" : "  FAIL");
                if (tv < tBest) { tBest = tv; best = v.name; eBest = e; }
                if (v.name == pick) tPick = tv;
            }
            if (!(eOld < 1e-5)) failures++;
            snprintf(line, sizeof line, "T=%d %-16s %6dx%-5d x%d | old %8.2f us %5.0f GB/s %3.0f%% err %.1e | best %-6s %8.2f us %5.0f GB/s %3.0f%% err %.1e | picked %-6s %8.2f us %.2fx",
                     T, sh.what, sh.N, sh.K, sh.count, tOld, bytes / (tOld * 1e3), 100 * bytes / (tOld * 1e3) / ceil, eOld, best.c_str(), tBest,
                     bytes / (tBest * 1e3), 100 * bytes / (tBest * 1e3) / ceil, eBest, pick.c_str(), tPick, tOld / tPick);
            table.push_back(line);
            oldStep += sh.count * tOld;
            newStep += sh.count * tBest;
            pickStep += sh.count * tPick;
            bytesStep += sh.count * bytes;
            for (auto p : w) CK(cudaFree(p));
            CK(cudaFree(x));
            CK(cudaFree(out));
        }
        char line[256];
        snprintf(line, sizeof line, "T=%d step GEMVs (%.0f MB): old %.1f us, picked %.1f us, best-per-shape %.1f us, floor at ceiling %.1f us", T, bytesStep / 1e6,
                 oldStep, pickStep, newStep, bytesStep / (ceil * 1e3));
        table.push_back(line);
    }

    // MoE experts: 256 experts of gate/up [1024, 2304] and down [2304, 1024], top-8 per row, T rows
    const int E = 256, H = 2304, I = 1024, k = 8;
    std::vector<long long> htab(3 * E);
    std::vector<unsigned short*> ew(3 * E);
    for (int e = 0; e < 3 * E; e++) {
        CK(cudaMalloc(&ew[e], 2L * H * I));
        fill_bf16<<<512, 256>>>(ew[e], (long)H * I, 555 + e);
        htab[e] = (long long)ew[e];
    }
    long long* tab;
    CK(cudaMalloc(&tab, 8L * 3 * E));
    CK(cudaMemcpy(tab, htab.data(), 8L * 3 * E, cudaMemcpyHostToDevice));
    struct GuV { const char* name; MoeGuFn f1, f8; int nr; };
    struct DV { const char* name; MoeDFn f1, f8; int nr; };
    std::vector<GuV> gus = {{"n1u4", (MoeGuFn)moe_gate_up_n1u4t1, (MoeGuFn)moe_gate_up_n1u4t8, 1}};
    std::vector<DV> ds = {{"n4u2", (MoeDFn)moe_down_n4u2t1, (MoeDFn)moe_down_n4u2t8, 4}};
    for (int T : {1, 8}) {
        int P = T * k;
        const int routings = 6;
        // several routings (distinct experts per row), grouped on the host as moe_group does on the device
        std::vector<int*> dmeta(routings);
        std::vector<std::vector<int>> act_e(routings), act_s(routings), prow(routings);
        std::vector<int> nActive(routings);
        for (int q = 0; q < routings; q++) {
            std::vector<std::vector<int>> rowsOf(E);
            for (int t = 0; t < T; t++) {
                std::vector<int> pick;
                while ((int)pick.size() < k) {
                    int e = (int)(rng() % E);
                    if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
                }
                for (int e : pick) rowsOf[e].push_back(t);
            }
            int off = 0;
            for (int e = 0; e < E; e++)
                if (!rowsOf[e].empty()) {
                    act_e[q].push_back(e);
                    act_s[q].push_back(off);
                    for (int r : rowsOf[e]) prow[q].push_back(r);
                    off += rowsOf[e].size();
                }
            nActive[q] = act_e[q].size();
            act_s[q].push_back(off);
            std::vector<int> meta(1 + P + (P + 1) + P, 0);
            meta[0] = nActive[q];
            std::copy(act_e[q].begin(), act_e[q].end(), meta.begin() + 1);
            std::copy(act_s[q].begin(), act_s[q].end(), meta.begin() + 1 + P);
            std::copy(prow[q].begin(), prow[q].end(), meta.begin() + 1 + P + P + 1);
            CK(cudaMalloc(&dmeta[q], 4 * meta.size()));
            CK(cudaMemcpy(dmeta[q], meta.data(), 4 * meta.size(), cudaMemcpyHostToDevice));
        }
        auto info = [&](int q) { return dmeta[q]; };
        auto aexp = [&](int q) { return dmeta[q] + 1; };
        auto astart = [&](int q) { return dmeta[q] + 1 + P; };
        auto prw = [&](int q) { return dmeta[q] + 1 + P + P + 1; };
        std::vector<float> hx = randx((long)T * H);
        float *x, *act, *down;
        CK(cudaMalloc(&x, 4L * T * H));
        CK(cudaMalloc(&act, 4L * P * I));
        CK(cudaMalloc(&down, 4L * P * H));
        CK(cudaMemcpy(x, hx.data(), 4L * T * H, cudaMemcpyHostToDevice));
        // references for routing 0: act from x, down from the (checked) act
        std::vector<unsigned short> hg((long)H * I), hu((long)H * I);
        std::vector<double> refAct((long)P * I), refDown((long)P * H);
        for (int s = 0; s < nActive[0]; s++) {
            int e = act_e[0][s];
            CK(cudaMemcpy(hg.data(), ew[3 * e], 2L * H * I, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(hu.data(), ew[3 * e + 1], 2L * H * I, cudaMemcpyDeviceToHost));
            for (int pos = act_s[0][s]; pos < act_s[0][s + 1]; pos++)
                for (int n = 0; n < I; n++) {
                    double g = 0, u = 0;
                    const float* xr = hx.data() + (long)prow[0][pos] * H;
                    for (int kk = 0; kk < H; kk++) {
                        g += (double)bf16f(hg[(long)n * H + kk]) * xr[kk];
                        u += (double)bf16f(hu[(long)n * H + kk]) * xr[kk];
                    }
                    refAct[(long)pos * I + n] = g / (1 + std::exp(-g)) * u;
                }
        }
        int gridY = P;
        double guBytes = 0, dBytes = 0;
        for (int q = 0; q < routings; q++) { guBytes += 2.0 * nActive[q] * 2 * I * H; dBytes += 2.0 * nActive[q] * I * H; }
        guBytes /= routings;
        dBytes /= routings;
        std::vector<float> ho((long)P * I);
        auto checkAct = [&](auto launch) {
            CK(cudaMemset(act, 0xFF, 4L * P * I));
            launch(0);
            CK(cudaGetLastError());
            CK(cudaMemcpy(ho.data(), act, 4L * P * I, cudaMemcpyDeviceToHost));
            ho.resize((long)act_s[0][nActive[0]] * I);
            std::vector<double> r(refAct.begin(), refAct.begin() + ho.size());
            double e = relerr(ho, r);
            ho.resize((long)P * I);
            return e;
        };
        auto oldGu = [&](int q) { old_moe_gate_up<<<dim3((I + 7) / 8, gridY), 256>>>(x, tab, info(q), aexp(q), astart(q), prw(q), act, H, I); };
        double e0 = checkAct(oldGu);
        float t0 = median_us(reps, routings, oldGu);
        char line[512];
        snprintf(line, sizeof line, "T=%d moe_gate_up old      %7.2f us %5.0f GB/s %3.0f%% err %.1e", T, t0, guBytes / (t0 * 1e3), 100 * guBytes / (t0 * 1e3) / ceil, e0);
        table.push_back(line);
        if (!(e0 < 1e-5)) failures++;
        for (auto& v : gus) {
            MoeGuFn f = T == 1 ? v.f1 : v.f8;
            auto L = [&](int q) { f<<<dim3((I + 8 * v.nr - 1) / (8 * v.nr), gridY), 256>>>(x, tab, info(q), aexp(q), astart(q), prw(q), act, H, I); };
            double e = checkAct(L);
            float tv = median_us(reps, routings, L);
            if (!(e < 1e-5)) failures++;
            snprintf(line, sizeof line, "T=%d moe_gate_up %-6s %7.2f us %5.0f GB/s %3.0f%% err %.1e%s", T, v.name, tv, guBytes / (tv * 1e3),
                     100 * guBytes / (tv * 1e3) / ceil, e, e < 1e-5 ? "" : " FAIL");
            table.push_back(line);
        }
        // down: reference from the act the old kernel wrote (routing 0)
        oldGu(0);
        std::vector<float> hact((long)P * I);
        CK(cudaMemcpy(hact.data(), act, 4L * P * I, cudaMemcpyDeviceToHost));
        std::vector<unsigned short> hd((long)H * I);
        int used = act_s[0][nActive[0]];
        for (int s = 0; s < nActive[0]; s++) {
            int e = act_e[0][s];
            CK(cudaMemcpy(hd.data(), ew[3 * e + 2], 2L * H * I, cudaMemcpyDeviceToHost));
            for (int pos = act_s[0][s]; pos < act_s[0][s + 1]; pos++)
                for (int n = 0; n < H; n++) {
                    double v = 0;
                    for (int kk = 0; kk < I; kk++) v += (double)bf16f(hd[(long)n * I + kk]) * hact[(long)pos * I + kk];
                    refDown[(long)pos * H + n] = v;
                }
        }
        std::vector<float> hdn((long)used * H);
        std::vector<double> rd(refDown.begin(), refDown.begin() + (long)used * H);
        auto checkDown = [&](auto launch) {
            CK(cudaMemset(down, 0xFF, 4L * P * H));
            launch(0);
            CK(cudaGetLastError());
            CK(cudaMemcpy(hdn.data(), down, 4L * used * H, cudaMemcpyDeviceToHost));
            return relerr(hdn, rd);
        };
        auto oldD = [&](int q) { old_moe_down<<<dim3((H + 7) / 8, gridY), 256>>>(act, tab, info(q), aexp(q), astart(q), down, H, I); };
        e0 = checkDown(oldD);
        t0 = median_us(reps, routings, oldD);
        if (!(e0 < 1e-5)) failures++;
        snprintf(line, sizeof line, "T=%d moe_down    old      %7.2f us %5.0f GB/s %3.0f%% err %.1e", T, t0, dBytes / (t0 * 1e3), 100 * dBytes / (t0 * 1e3) / ceil, e0);
        table.push_back(line);
        for (auto& v : ds) {
            MoeDFn f = T == 1 ? v.f1 : v.f8;
            auto L = [&](int q) { f<<<dim3((H + 8 * v.nr - 1) / (8 * v.nr), gridY), 256>>>(act, tab, info(q), aexp(q), astart(q), down, H, I); };
            double e = checkDown(L);
            float tv = median_us(reps, routings, L);
            if (!(e < 1e-5)) failures++;
            snprintf(line, sizeof line, "T=%d moe_down    %-6s %7.2f us %5.0f GB/s %3.0f%% err %.1e%s", T, v.name, tv, dBytes / (tv * 1e3),
                     100 * dBytes / (tv * 1e3) / ceil, e, e < 1e-5 ? "" : " FAIL");
            table.push_back(line);
        }
        for (auto p : dmeta) CK(cudaFree(p));
        CK(cudaFree(x));
        CK(cudaFree(act));
        CK(cudaFree(down));
    }
    printf("\n==== summary (device %s, copy ceiling %.0f GB/s; %% = of that ceiling)\n", prop.name, ceil);
    for (auto& l : table) {
        printf("%s\n", l.c_str());
        if (step) fprintf(step, "%s\n", l.c_str());
    }
    printf("correctness failures (rel err >= 1e-5 or non-finite): %d\n", failures);
    if (step) fclose(step);
    return failures ? 1 : 0;
}
