// Flash attention for MLA prefill in the bf16-compute mode on Hopper's warpgroup tensor-core instructions (wgmma,
// sm_90a only: build-kernels.sh builds files named *_sm90a.cu for that target; MlaKernels falls back to
// mla_flash_bf16_m2s1 in mla.cu where this module does not load). Same contract as mla_flash_bf16_m2s1.
//
// One block = 64 x CWG queries of one head (CWG consumer warpgroups, 2 or 3) and a producer warpgroup:
//   warpgroup 0, the producer: copies the Q tile once and K / V tiles of BN keys into STAGES shared-memory stages
//     by cp.async, in the 128-byte-swizzled layout wgmma reads, and signals each stage full on an mbarrier;
//   warpgroups 1.. CWG, the consumers: 64 queries each; S = Q K^T by wgmma m64nBNk16 (both operands from shared
//     memory) into fp32 registers, online softmax in registers (base-2 exponent, log2(e) folded into the scale),
//     P rounded to bf16 in registers and used as the A operand of O += P V (wgmma m64n128k16, V read transposed from
//     shared memory); each consumer releases the stage on an mbarrier when its products are done.
// The consumers synchronise only through the stage barriers, so one's softmax overlaps another's products.
// setmaxnreg moves registers from the producer (which only computes addresses) to the consumers (S and O in fp32).
// The default (MlaKernels) is m192n64s3tma: three consumers (192 queries, so each K / V byte copied serves 1.5 times
// the queries of a 128-query block), 64 keys a tile, three stages, and the producer replaced by one thread issuing
// bulk tensor copies (TMA, below): 22.0 ms at 32k x 32 heads on an H100 against 33.1 ms for m192n64s3 (the cp.async
// producer) and 42.4 ms for mla_flash_bf16_m2s1 (docs/benchmarks-gpu.md, 2026-12-06 flash3 and flash4).
//
// Shared-memory layout (every region 1024-byte aligned, as the 128-byte swizzle repeats every 8 rows of 128 bytes):
// a matrix of R rows by 64 bf16 (128 bytes) is stored row after row with the 16-byte chunk c of row r at chunk
// c ^ (r % 8). Q is 3 such matrices (dims 0-63, 64-127, 128-191: q_nope 0-127 and the rope part) of 64 CWG rows;
// each K stage 3 matrices of BN rows (key-major: the K-major B operand of Q K^T); each V stage 2 matrices of BN rows
// (vdims 0-63, 64-127; [key][vdim] is the MN-major B operand of P V).
#include <cuda_bf16.h>
#include <stdint.h>

namespace mla_wgmma {
constexpr int NOPE = 128, ROPE = 64, QK = NOPE + ROPE, VD = 128;
constexpr int ROWB = 128;             // bytes per swizzled row (64 bf16)
// threads of a block with CWG consumer warpgroups (64 queries each) and the producer warpgroup
template <int CWG> constexpr int threads() { return 128 * (CWG + 1); }

template <int BN, int STAGES, int CWG = 2> struct Layout {
    static constexpr int BM = 64 * CWG;  // queries per block
    static constexpr int Q_BYTES = 3 * BM * ROWB;
    static constexpr int K_BYTES = 3 * BN * ROWB, V_BYTES = 2 * BN * ROWB;
    static constexpr int STAGE_BYTES = K_BYTES + V_BYTES;
    static constexpr int BAR_OFFSET = Q_BYTES + STAGES * STAGE_BYTES;
    // + the mbarriers (full and empty per stage, and Q's for the TMA producer), + 1024 so that the base can be rounded
    // up to 1024 bytes
    static constexpr int SMEM = BAR_OFFSET + (2 * STAGES + 1) * 8 + 1024;
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// byte offset of 16-byte chunk c (0-7) of row r in a 128-byte-swizzled matrix
__device__ __forceinline__ uint32_t swz(int r, int c) { return (uint32_t)(r * ROWB + ((c ^ (r & 7)) << 4)); }

__device__ __forceinline__ void cp16(uint32_t dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void bar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void bar_arrive(uint32_t bar) {
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
// arrives once and adds `bytes` to the transactions the current phase waits for (the TMA copies complete them)
__device__ __forceinline__ void bar_arrive_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// waits until the phase of the given parity has completed
__device__ __forceinline__ void bar_wait(uint32_t bar, int parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n}\n" ::"r"(bar), "r"(parity) : "memory");
}

// the shared-memory matrix descriptor of a 128-byte-swizzled operand: start address, leading-dimension byte offset
// (K-major: unused, 1 by convention; MN-major: the distance between 64-element column blocks), stride byte offset
// (1024: the distance between groups of 8 rows), swizzle mode 1 (128 bytes) in bits 62-63; offsets in 16-byte units
__device__ __forceinline__ uint64_t desc(uint32_t addr, uint32_t lbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

// A CUtensorMap (cuda.h) as the kernels take it: 128 opaque bytes, 64-byte aligned, passed by value as a
// __grid_constant__ parameter (its address is then the one the copy engine reads it from); built on the host by
// cuTensorMapEncodeTiled (MlaKernels via Driver.tensorMapTiled; flash_bench through the driver entry point)
struct alignas(64) TensorMap { unsigned long long opaque[16]; };
// the bulk tensor copy of the box at (c0 elements along the row, c1 rows) of a 2-D tensor map into shared memory at
// dst, completing `box bytes` transactions on the mbarrier bar; rows past the tensor's end arrive as zeros (and
// still count their bytes); the map's 128-byte swizzle writes the layout of swz()
__device__ __forceinline__ void tma_load(uint32_t dst, const TensorMap* map, int c0, int c1, uint32_t bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
                 ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
__device__ __forceinline__ void tma_prefetch(const TensorMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// 2^x on the special-function unit without exp2f's range handling (denormal results flush to 0: far below bf16's
// resolution of a probability)
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// keeps the compiler from moving accumulator registers across an issue / wait point while the tensor cores own them
template <int N> __device__ __forceinline__ void reg_fence(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// d (64 x 128, fp32) (+)= A (64 x 16 from shared, K-major) B (128 x 16 from shared, K-major)
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], uint64_t descA, uint64_t descB, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(descA), "l"(descB), "r"(accumulate));
}
// d (64 x 64, fp32) (+)= A (64 x 16 from shared, K-major) B (64 x 16 from shared, K-major)
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], uint64_t descA, uint64_t descB, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(descA), "l"(descB), "r"(accumulate));
}
// d (64 x 128, fp32) += A (64 x 16 bf16 in registers, the mma.sync A-fragment layout per warp) B (16 x 128 from shared,
// MN-major: the transposed form, imm-trans-b = 1)
__device__ __forceinline__ void wgmma_rs_n128_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t descB) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "n"(1));
}

// named barriers of the ping-pong order (0 is __syncthreads): consumer cw waits on 1 + cw for its turn to issue Q K^T
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

// CWG: consumer warpgroups (2: 128 queries a block; 3: 192, so each K / V byte loaded serves more queries, at fewer
// registers a consumer thread). PINGPONG (CWG 2 only): the consumers take turns to issue their Q K^T products (named barriers), so that one's softmax runs while
// the other's products hold the tensor cores (FlashAttention-3's inter-warpgroup schedule); without it they meet
// only at the stage barriers.
// OVERLAP: see the consumer loop (FlashAttention-3's intra-warpgroup overlap of softmax and P V).
// TMA: the producer is one thread issuing bulk tensor copies (maps over q, kv and rot: see the TMA kernels'
// comment) that complete on the stage barriers, instead of 128 threads computing cp.async addresses; the producer
// warpgroup then keeps 24 registers a thread and the consumers get the rest. The maps' addresses are those of the
// kernel's __grid_constant__ parameters.
// FOLD: the softmax scales the scores inside the exponent, 2^(s x scaleLog2 - m) as one FMA and ex2.approx, the
// running maximum taken over the unscaled scores (the scale is positive).
template <int BN, int STAGES, bool PINGPONG, int CWG, bool OVERLAP = false, bool TMA = false, bool FOLD = false>
__device__ __forceinline__ void flash_block(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv,
                                            const __nv_bfloat16* __restrict__ rot, float* __restrict__ out, int len, int pos,
                                            int heads, float scaleLog2, const TensorMap* tmQ = nullptr,
                                            const TensorMap* tmKV = nullptr, const TensorMap* tmRot = nullptr) {
    static_assert(!PINGPONG || CWG == 2, "the ping-pong order pairs two consumers");
    using L = Layout<BN, STAGES, CWG>;
    constexpr int BM = L::BM;
    extern __shared__ unsigned char smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = base, sStages = base + L::Q_BYTES, bars = base + L::BAR_OFFSET;
    auto full = [&](int s) { return bars + 8u * s; };
    auto empty = [&](int s) { return bars + 8u * (STAGES + s); };
    const uint32_t qFull = bars + 16u * STAGES;  // TMA: Q has landed
    const int h = blockIdx.y;
    // the longest query blocks (the last ones) start first, so the short ones fill the tail of the grid
    const int q0 = (gridDim.x - 1 - blockIdx.x) * BM;
    const int total = pos + len;
    const int kEnd = pos + min(q0 + BM, len);  // keys the block's last query sees
    const int tiles = (kEnd + BN - 1) / BN;
    const int tid = threadIdx.x, wg = tid >> 7, t = tid & 127;
    if (tid == 0) {
        for (int s = 0; s < STAGES; s++) {
            bar_init(full(s), TMA ? 1 : 128);  // cp.async: every producer thread arrives once its copies have landed
            bar_init(empty(s), 128 * CWG);  // every consumer thread arrives once its products have read the stage
        }
        if (TMA) bar_init(qFull, 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (TMA && wg == 0) {
        // ---- TMA producer: thread 0 alone. Q once (its own barrier), then K / V tile j into stage j % STAGES as soon
        // as the consumers have released the stage; each stage's barrier expects its bytes and completes when they land
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (t != 0) return;
        tma_prefetch(tmQ);
        tma_prefetch(tmKV);
        tma_prefetch(tmRot);
        bar_arrive_tx(qFull, L::Q_BYTES);
        for (int x = 0; x < 3; x++) tma_load(sQ + x * (BM * ROWB), tmQ, h * QK + 64 * x, q0, qFull);
        const int kvCol = h * (NOPE + VD);
        for (int j = 0; j < tiles; j++) {
            const int s = j % STAGES, k0 = j * BN;
            if (j >= STAGES) bar_wait(empty(s), (j / STAGES - 1) & 1);
            const uint32_t sK = sStages + s * L::STAGE_BYTES, sV = sK + L::K_BYTES;
            bar_arrive_tx(full(s), L::STAGE_BYTES);
            tma_load(sK, tmKV, kvCol, k0, full(s));                        // k_nope dims 0-63
            tma_load(sK + BN * ROWB, tmKV, kvCol + 64, k0, full(s));       // k_nope dims 64-127
            tma_load(sK + 2 * BN * ROWB, tmRot, 0, k0, full(s));            // k_rot
            tma_load(sV, tmKV, kvCol + NOPE, k0, full(s));                 // v dims 0-63
            tma_load(sV + BN * ROWB, tmKV, kvCol + NOPE + 64, k0, full(s));  // v dims 64-127
        }
        return;
    }
    if (wg == 0) {
        // ---- producer: Q once, then K / V tile j into stage j % STAGES; up to STAGES - 1 tiles' copies in flight.
        // Tile j - STAGES + 1 is signalled full at the top of iteration j, before the wait for a free stage (so the
        // consumers never wait on a tile that has landed while the producer waits on them), once its copies have
        // landed (cp.async groups complete in order)
        if constexpr (CWG == 2) asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n");
        else asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
        const long qStride = (long)heads * QK, kvStride = (long)heads * (NOPE + VD);
        const __nv_bfloat16* kvHead = kv + (long)h * (NOPE + VD);
        for (int j = 0; j < tiles; j++) {
            if (j >= STAGES - 1) {  // tile j - STAGES + 1 has landed once at most STAGES - 2 later groups are pending
                asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 2) : "memory");
                // the tensor cores read the stage through the async proxy: order this thread's writes before them
                asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
                bar_arrive(full((j - STAGES + 1) % STAGES));
            }
            const int s = j % STAGES;
            if (j >= STAGES) bar_wait(empty(s), (j / STAGES - 1) & 1);
            if (j == 0) {
                for (int c = t; c < BM * (QK / 8); c += 128) {
                    const int r = c / (QK / 8), x = c % (QK / 8);
                    const bool ok = q0 + r < len;
                    const __nv_bfloat16* src = ok ? q + (long)(q0 + r) * qStride + (long)h * QK + x * 8 : q;
                    cp16(sQ + (x >> 3) * (BM * ROWB) + swz(r, x & 7), src, ok);
                }
            }
            const int k0 = j * BN;
            const uint32_t sK = sStages + s * L::STAGE_BYTES, sV = sK + L::K_BYTES;
            for (int c = t; c < BN * (QK / 8); c += 128) {
                const int r = c / (QK / 8), x = c % (QK / 8), key = k0 + r;
                const bool ok = key < total;
                const __nv_bfloat16* src = !ok ? kv : x < NOPE / 8 ? kvHead + (long)key * kvStride + x * 8
                                                                   : rot + (long)key * ROPE + (x - NOPE / 8) * 8;
                cp16(sK + (x >> 3) * (BN * ROWB) + swz(r, x & 7), src, ok);
            }
            for (int c = t; c < BN * (VD / 8); c += 128) {
                const int r = c / (VD / 8), x = c % (VD / 8), key = k0 + r;
                const bool ok = key < total;
                const __nv_bfloat16* src = ok ? kvHead + (long)key * kvStride + NOPE + x * 8 : kv;
                cp16(sV + (x >> 3) * (BN * ROWB) + swz(r, x & 7), src, ok);
            }
            asm volatile("cp.async.commit_group;\n" ::: "memory");
        }
        asm volatile("cp.async.wait_group 0;\n" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        for (int i = max(0, tiles - STAGES + 1); i < tiles; i++) bar_arrive(full(i % STAGES));
        return;
    }

    // ---- consumers: warpgroup cw holds queries q0 + 64 cw .. + 63; per warp w rows 16 w + g and 16 w + g + 8, as in
    // the mma.sync fragments: accumulator element 4 i + e is (row g + 8 (e >> 1), column 8 i + 2 tig + (e & 1))
    // 128 x (56 + 2 x 224) or 128 x (40 + 3 x 152) registers: within the 64 K of the multiprocessor
    // (TMA: 128 x (24 + 2 x 240) or 128 x (24 + 3 x 160))
    if constexpr (TMA) {
        if constexpr (CWG == 2) asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
        else asm volatile("setmaxnreg.inc.sync.aligned.u32 160;\n");
    } else {
        if constexpr (CWG == 2) asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n");
        else asm volatile("setmaxnreg.inc.sync.aligned.u32 152;\n");
    }
    const int cw = wg - 1, w = t >> 5, lane = t & 31, g = lane >> 2, tig = lane & 3;
    const int rowBase = cw * 64;
    const int qRow0 = q0 + rowBase + 16 * w + g;        // segment index of the thread's first row
    const int qAbs0 = pos + qRow0, qAbs1 = qAbs0 + 8;   // a key k is visible when k <= qAbs
    const int wgFirst = pos + q0 + rowBase, wgLast = wgFirst + 63;
    const uint32_t qBase = sQ + rowBase * ROWB;
    float o[VD / 2];
#pragma unroll
    for (int i = 0; i < VD / 2; i++) o[i] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    if (PINGPONG && cw == 1) named_arrive(1);  // the first turn goes to consumer 0
    if (TMA) bar_wait(qFull, 0);
    auto stageK = [&](int j) { return sStages + (j % STAGES) * L::STAGE_BYTES; };

    // S = Q K^T into sc: 12 steps of 16 dims; a step inside a 64-dim block moves the start by 32 bytes
    auto issueScores = [&](float (&sc)[BN / 2], uint32_t sK) {
#pragma unroll
        for (int i = 0; i < BN / 2; i++) sc[i] = 0.0f;
        wg_fence();
        reg_fence(sc);
#pragma unroll
        for (int kk = 0; kk < QK / 16; kk++) {
            const uint64_t da = desc(qBase + (kk >> 2) * (BM * ROWB) + (kk & 3) * 32, 16);
            const uint64_t db = desc(sK + (kk >> 2) * (BN * ROWB) + (kk & 3) * 32, 16);
            if constexpr (BN == 128) wgmma_ss_n128(sc, da, db, kk > 0);
            else wgmma_ss_n64(sc, da, db, kk > 0);
        }
        wg_commit();
    };
    // scale, causal mask (only tiles that reach past the warpgroup's first query), online softmax: sc becomes the
    // probabilities (fp32), m and l move on, al0 / al1 the factors O must be scaled by before this tile's P V
    auto softmax = [&](float (&sc)[BN / 2], int k0, float& al0, float& al1) {
        const bool masked = k0 + BN - 1 > wgFirst;
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int key = k0 + i * 8 + 2 * tig + e;
                float x0 = FOLD ? sc[4 * i + e] : sc[4 * i + e] * scaleLog2, x1 = FOLD ? sc[4 * i + 2 + e] : sc[4 * i + 2 + e] * scaleLog2;
                if (masked) {
                    if (key > qAbs0) x0 = -INFINITY;
                    if (key > qAbs1) x1 = -INFINITY;
                }
                sc[4 * i + e] = x0;
                sc[4 * i + 2 + e] = x1;
                mx0 = fmaxf(mx0, x0);
                mx1 = fmaxf(mx1, x1);
            }
        }
#pragma unroll
        for (int d = 1; d < 4; d <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, d));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, d));
        }
        if (FOLD) {  // the maximum of the scaled scores (-inf stays -inf)
            mx0 *= scaleLog2;
            mx1 *= scaleLog2;
        }
        const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
        // a row with no visible key yet keeps max -inf: use 0 as the reference so that exp2 gives 0, not NaN
        const float r0 = n0 == -INFINITY ? 0.0f : n0, r1 = n1 == -INFINITY ? 0.0f : n1;
        al0 = exp2f(m0 - r0);
        al1 = exp2f(m1 - r1);
        m0 = n0;
        m1 = n1;
        float s0 = 0.0f, s1 = 0.0f;
        if constexpr (FOLD) {
            const float nr0 = -r0, nr1 = -r1;
#pragma unroll
            for (int i = 0; i < BN / 8; i++) {
                sc[4 * i] = ex2(fmaf(sc[4 * i], scaleLog2, nr0));
                sc[4 * i + 1] = ex2(fmaf(sc[4 * i + 1], scaleLog2, nr0));
                sc[4 * i + 2] = ex2(fmaf(sc[4 * i + 2], scaleLog2, nr1));
                sc[4 * i + 3] = ex2(fmaf(sc[4 * i + 3], scaleLog2, nr1));
                s0 += sc[4 * i] + sc[4 * i + 1];
                s1 += sc[4 * i + 2] + sc[4 * i + 3];
            }
        } else {
            // (braces needed: with `} else` followed directly by `#pragma unroll` and the loop, nvcc 13.0 dropped the
            // s0 sums of the FOLD branch above, seen in its PTX; the tmaf kernels then wrote inf, 2026-12-06 flash4)
#pragma unroll
            for (int i = 0; i < BN / 8; i++) {
                sc[4 * i] = exp2f(sc[4 * i] - r0);
                sc[4 * i + 1] = exp2f(sc[4 * i + 1] - r0);
                sc[4 * i + 2] = exp2f(sc[4 * i + 2] - r1);
                sc[4 * i + 3] = exp2f(sc[4 * i + 3] - r1);
                s0 += sc[4 * i] + sc[4 * i + 1];
                s1 += sc[4 * i + 2] + sc[4 * i + 3];
            }
        }
        l0 = l0 * al0 + s0;
        l1 = l1 * al1 + s1;
    };
    // O *= al; P (bf16, the A operand of P V: 16 keys a step, the mma.sync A-fragment layout) from the probabilities
    auto rescalePack = [&](const float (&sc)[BN / 2], float al0, float al1, uint32_t (&p)[BN / 16][4]) {
#pragma unroll
        for (int i = 0; i < VD / 8; i++) {
            o[4 * i] *= al0;
            o[4 * i + 1] *= al0;
            o[4 * i + 2] *= al1;
            o[4 * i + 3] *= al1;
        }
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            p[i >> 1][(i & 1) * 2] = pack_bf16(sc[4 * i], sc[4 * i + 1]);
            p[i >> 1][(i & 1) * 2 + 1] = pack_bf16(sc[4 * i + 2], sc[4 * i + 3]);
        }
    };
    // O += P V: steps of 16 keys (2048 bytes of each V block); the two 64-wide vdim blocks lie BN rows apart
    auto issueValues = [&](const uint32_t (&p)[BN / 16][4], uint32_t sV) {
        wg_fence();
        reg_fence(o);
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) wgmma_rs_n128_tb(o, p[kk], desc(sV + kk * 16 * ROWB, BN * ROWB));
        wg_commit();
    };

    float sc[BN / 2];
    uint32_t p[BN / 16][4];
    if constexpr (!OVERLAP) {
        for (int j = 0; j < tiles; j++) {
            const int s = j % STAGES;
            bar_wait(full(s), (j / STAGES) & 1);
            const int k0 = j * BN;
            // every consumer takes its turn on every tile (also one it skips), so the barrier counts stay paired
            if (PINGPONG) named_sync(1 + cw);
            if (k0 <= wgLast) {  // the warpgroup's last query sees a key of this tile
                issueScores(sc, stageK(j));
                if (PINGPONG) named_arrive(2 - cw);
                wg_wait<0>();
                reg_fence(sc);
                float al0, al1;
                softmax(sc, k0, al0, al1);
                rescalePack(sc, al0, al1, p);
                issueValues(p, stageK(j) + L::K_BYTES);
                wg_wait<0>();
                reg_fence(o);
            } else if (PINGPONG) {
                named_arrive(2 - cw);
            }
            bar_arrive(empty(s));
        }
    } else {
        // FlashAttention-3's intra-warpgroup overlap: the scores of tile j and P V of tile j - 1 are issued together,
        // so the softmax of tile j runs while the tensor cores finish P V of tile j - 1; a stage is held from its
        // Q K^T to the end of its P V, one tile longer (STAGES >= 3 keeps the producer a tile ahead)
        // (the wgmma issues and waits stay out of data-dependent branches: ptxas serialises them otherwise, C7518)
        const int mine = min(tiles, wgLast / BN + 1);  // tiles with a key the warpgroup's last query sees (>= 1)
        float al0, al1;
        bar_wait(full(0), 0);
        if (PINGPONG) named_sync(1 + cw);
        issueScores(sc, stageK(0));
        if (PINGPONG) named_arrive(2 - cw);
        wg_wait<0>();
        reg_fence(sc);
        softmax(sc, 0, al0, al1);
        rescalePack(sc, al0, al1, p);
        for (int j = 1; j < mine; j++) {
            bar_wait(full(j % STAGES), (j / STAGES) & 1);
            if (PINGPONG) named_sync(1 + cw);
            issueScores(sc, stageK(j));
            issueValues(p, stageK(j - 1) + L::K_BYTES);
            if (PINGPONG) named_arrive(2 - cw);
            wg_wait<1>();
            reg_fence(sc);
            softmax(sc, j * BN, al0, al1);
            wg_wait<0>();
            reg_fence(o);
            bar_arrive(empty((j - 1) % STAGES));
            rescalePack(sc, al0, al1, p);
        }
        issueValues(p, stageK(mine - 1) + L::K_BYTES);
        wg_wait<0>();
        reg_fence(o);
        bar_arrive(empty((mine - 1) % STAGES));
        for (int j = mine; j < tiles; j++) {  // tiles past the warpgroup's last query: only the turns and releases
            bar_wait(full(j % STAGES), (j / STAGES) & 1);
            if (PINGPONG) {
                named_sync(1 + cw);
                named_arrive(2 - cw);
            }
            bar_arrive(empty(j % STAGES));
        }
    }
    if (PINGPONG && cw == 0) named_sync(1);  // consumer 1's last turn signal: consumed, so no barrier is left pending

    const long oStride = (long)heads * VD;
#pragma unroll
    for (int d = 1; d < 4; d <<= 1) {
        l0 += __shfl_xor_sync(0xffffffff, l0, d);
        l1 += __shfl_xor_sync(0xffffffff, l1, d);
    }
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
#pragma unroll
    for (int i = 0; i < VD / 8; i++) {
        const int col = h * VD + i * 8 + 2 * tig;
        if (qRow0 < len) *reinterpret_cast<float2*>(out + (long)qRow0 * oStride + col) = make_float2(o[4 * i] * inv0, o[4 * i + 1] * inv0);
        if (qRow0 + 8 < len)
            *reinterpret_cast<float2*>(out + (long)(qRow0 + 8) * oStride + col) = make_float2(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1);
    }
}
}  // namespace mla_wgmma

// q: [len, heads * 192] bf16 (q_nope | q_rope per head); kv: [total, heads * 256] bf16 (k_nope | v per head);
// rot: [total, 64] bf16; out: [len, heads * 128] fp32. Query t (0-based in the segment) sees keys [0, pos + t].
// grid (ceil(len / BM), heads), 128 (CWG + 1) threads, mla_wgmma::Layout<BN, STAGES, CWG>::SMEM bytes of dynamic shared
// memory. Every row must start on a 16-byte boundary.
// nBNsS: BN keys a tile in S stages, 128 queries a block (two consumers); m192: 192 queries (three consumers);
// pp: the ping-pong order of the consumers' Q K^T products.
#define MLA_FLASH_WGMMA(name, bn, stages, pingpong, cwg, overlap)                                                       \
    extern "C" __global__ void __launch_bounds__(mla_wgmma::threads<cwg>(), 1) name(                                   \
        const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv, const __nv_bfloat16* __restrict__ rot, \
        float* __restrict__ out, int len, int pos, int heads, float scaleLog2) {                                       \
        mla_wgmma::flash_block<bn, stages, pingpong, cwg, overlap>(q, kv, rot, out, len, pos, heads, scaleLog2);       \
    }
MLA_FLASH_WGMMA(mla_flash_wgmma_n128s2, 128, 2, false, 2, false)
MLA_FLASH_WGMMA(mla_flash_wgmma_n128s2pp, 128, 2, true, 2, false)
MLA_FLASH_WGMMA(mla_flash_wgmma_n64s3, 64, 3, false, 2, false)
MLA_FLASH_WGMMA(mla_flash_wgmma_n64s3pp, 64, 3, true, 2, false)
MLA_FLASH_WGMMA(mla_flash_wgmma_n64s4pp, 64, 4, true, 2, false)
MLA_FLASH_WGMMA(mla_flash_wgmma_m192n64s3, 64, 3, false, 3, false)
// ov: the intra-warpgroup overlap
MLA_FLASH_WGMMA(mla_flash_wgmma_n64s4ov, 64, 4, false, 2, true)
MLA_FLASH_WGMMA(mla_flash_wgmma_n64s4ovpp, 64, 4, true, 2, true)
MLA_FLASH_WGMMA(mla_flash_wgmma_m192n64s3ov, 64, 3, false, 3, true)

// TMA variants (suffix tma; tmaf: also FOLD): the same kernels with the copy engine as producer. Their parameters are
// three tensor maps instead of q, kv, rot (each 2-D, bf16, 128-byte swizzle, rows past the end read as zeros):
//   tmQ over q [len rows][heads x 192], box 64 x (64 CWG) rows; tmKV over kv [total rows][heads x 256], box 64 x BN;
//   tmRot over rot [total rows][64], box 64 x BN.
#define MLA_FLASH_WGMMA_TMA(name, bn, stages, pingpong, cwg, overlap, fold)                                              \
    extern "C" __global__ void __launch_bounds__(mla_wgmma::threads<cwg>(), 1) name(                                   \
        const __grid_constant__ mla_wgmma::TensorMap tmQ, const __grid_constant__ mla_wgmma::TensorMap tmKV,             \
        const __grid_constant__ mla_wgmma::TensorMap tmRot, float* __restrict__ out, int len, int pos, int heads,         \
        float scaleLog2) {                                                                                              \
        mla_wgmma::flash_block<bn, stages, pingpong, cwg, overlap, true, fold>(nullptr, nullptr, nullptr, out, len, pos,  \
                                                                               heads, scaleLog2, &tmQ, &tmKV, &tmRot);  \
    }
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_m192n64s3tma, 64, 3, false, 3, false, false)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_m192n64s3tmaf, 64, 3, false, 3, false, true)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_m192n64s3ovtmaf, 64, 3, false, 3, true, true)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_n64s4pptmaf, 64, 4, true, 2, false, true)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_n64s4ovtmaf, 64, 4, false, 2, true, true)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_n64s4ovpptmaf, 64, 4, true, 2, true, true)
MLA_FLASH_WGMMA_TMA(mla_flash_wgmma_n128s2pptmaf, 128, 2, true, 2, false, true)
