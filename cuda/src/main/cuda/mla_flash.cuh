// Flash attention for MLA prefill in the bf16-compute mode (kimimesh.cuda.gemm=bf16), included by mla.cu so that it
// loads with the MLA module. One block = 4 warps of one head, each warp 16 x MR queries; keys in tiles of 64 through
// shared memory (cp.async, STAGES deep), bf16 mma.sync m16n8k16 with fp32 accumulation, online softmax in fp32 (the
// base-2 exponent with log2(e) folded into the scale), causal tiles past the block's last query never loaded.
// MR = 2 lets each K / V fragment read from shared memory serve two query tiles (half the shared-memory traffic per
// product) at the cost of registers and occupancy; the variants are compiled side by side and timed in
// cuda/bench/softmax/flash_bench.cu.
// Replaces the materialised fp32 score rows, the softmax pass and the two cuBLAS products of the unfused path.
// Shapes: qk head dim 192 = 128 (k_nope, per head from the expanded kv) + 64 (k_rot, shared by all heads), v 128.
#include <cuda_bf16.h>
#include <stdint.h>

namespace mla_flash {
constexpr int NOPE = 128, ROPE = 64, QK = NOPE + ROPE, VD = 128;
constexpr int WARPS = 4, THREADS = WARPS * 32;  // keys per tile (BN) is a template parameter, 64 by default
// shared-memory row strides in bf16 elements: 8 elements (16 bytes) of padding make consecutive rows start 4 banks
// apart, so each 8-row ldmatrix phase touches 32 distinct banks
constexpr int QS = QK + 8, KS = QK + 8, VS = VD + 8;
template <int MR, int STAGES, int BN = 64> constexpr int smem_bytes() { return 2 * (WARPS * 16 * MR * QS + STAGES * BN * (KS + VS)); }

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16 bytes global -> shared; rows past the end (valid false) are filled with zeros, so no uninitialised value meets an mma
__device__ __forceinline__ void cp16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(p)));
}
// c += a b: A 16x16 row-major bf16, B 16x8 column-major bf16, C 16x8 fp32
__device__ __forceinline__ void mma(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

template <int MR, int STAGES, bool QREG, int BN = 64>
__device__ __forceinline__ void flash_block(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv,
                                            const __nv_bfloat16* __restrict__ rot, float* __restrict__ out, int len, int pos,
                                            int heads, float scaleLog2) {
    constexpr int BM = WARPS * 16 * MR;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
    __nv_bfloat16* sK = sQ + BM * QS;              // STAGES x [BN][KS]
    __nv_bfloat16* sV = sK + STAGES * BN * KS;     // STAGES x [BN][VS]
    const int h = blockIdx.y;
    // the longest query blocks (the last ones) start first, so the short ones fill the tail of the grid
    const int q0 = (gridDim.x - 1 - blockIdx.x) * BM;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int total = pos + len;
    const long qStride = (long)heads * QK, kvStride = (long)heads * (NOPE + VD);
    const int kEnd = pos + min(q0 + BM, len);  // keys the block's last query sees
    const int tiles = (kEnd + BN - 1) / BN;

    // Q tile: BM rows x 24 chunks of 8 elements
    for (int c = tid; c < BM * (QK / 8); c += THREADS) {
        int r = c / (QK / 8), k8 = c % (QK / 8);
        bool ok = q0 + r < len;
        const __nv_bfloat16* src = q + (ok ? (long)(q0 + r) * qStride + (long)h * QK + k8 * 8 : 0);
        cp16(sQ + r * QS + k8 * 8, src, ok);
    }
    auto load_kv = [&](int tile, int stage) {
        int k0 = tile * BN;
        __nv_bfloat16* dK = sK + stage * BN * KS;
        __nv_bfloat16* dV = sV + stage * BN * VS;
        for (int c = tid; c < BN * (QK / 8); c += THREADS) {
            int r = c / (QK / 8), k8 = c % (QK / 8), key = k0 + r;
            bool ok = key < total;
            const __nv_bfloat16* src = !ok ? kv
                                     : k8 < NOPE / 8 ? kv + (long)key * kvStride + (long)h * (NOPE + VD) + k8 * 8
                                                     : rot + (long)key * ROPE + (k8 - NOPE / 8) * 8;
            cp16(dK + r * KS + k8 * 8, src, ok);
        }
        for (int c = tid; c < BN * (VD / 8); c += THREADS) {
            int r = c / (VD / 8), k8 = c % (VD / 8), key = k0 + r;
            bool ok = key < total;
            const __nv_bfloat16* src = ok ? kv + (long)key * kvStride + (long)h * (NOPE + VD) + NOPE + k8 * 8 : kv;
            cp16(dV + r * VS + k8 * 8, src, ok);
        }
    };
    load_kv(0, 0);
    cp_commit();

    // per thread and query tile m: rows g and g + 8 of the warp's tile, columns 2 * tig, 2 * tig + 1 of each 8-wide tile
    const int g = lane >> 2, tig = lane & 3;
    const int wRow = warp * 16 * MR;                 // the warp's first row in the block
    float o[MR][VD / 8][4];
    float mRow[MR][2], lRow[MR][2];
#pragma unroll
    for (int m = 0; m < MR; m++) {
#pragma unroll
        for (int i = 0; i < VD / 8; i++) o[m][i][0] = o[m][i][1] = o[m][i][2] = o[m][i][3] = 0.0f;
        mRow[m][0] = mRow[m][1] = -INFINITY;
        lRow[m][0] = lRow[m][1] = 0.0f;
    }

    // ldmatrix lane addresses. A (Q, 16x16 at rows wRow + 16m, dims kk*16): matrices (rows 0-7 | 8-15) x (dims 0-7 | 8-15)
    const int aRow = wRow + (lane & 7) + ((lane >> 3) & 1) * 8, aCol = (lane >> 4) * 8;
    // B from K ([key][dim], two 8-key n-tiles x two 8-dim halves): key offset, dim offset
    const int bKey = (lane & 7) + (lane >> 4) * 8, bDim = ((lane >> 3) & 1) * 8;
    // B from V ([key][vdim], transposed load: two 8-key halves x two 8-wide v tiles): key offset, vdim offset
    const int vKey = (lane & 7) + ((lane >> 3) & 1) * 8, vCol = (lane >> 4) * 8;

    uint32_t qf[QREG ? QK / 16 : 1][4];
    for (int j = 0; j < tiles; j++) {
        const int stage = STAGES == 1 ? 0 : j & 1;
        if (STAGES == 2 && j + 1 < tiles) {
            load_kv(j + 1, stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const __nv_bfloat16* cK = sK + stage * BN * KS;
        const __nv_bfloat16* cV = sV + stage * BN * VS;

        if (QREG && j == 0) {  // the warp's Q fragments, read from shared memory once (MR 1 only: 48 registers)
#pragma unroll
            for (int kk = 0; kk < QK / 16; kk++) ldsm_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3], sQ + aRow * QS + kk * 16 + aCol);
        }
        // S = Q K^T for the warp's MR x 16 queries x 64 keys
        float s[MR][BN / 8][4];
#pragma unroll
        for (int m = 0; m < MR; m++)
#pragma unroll
            for (int i = 0; i < BN / 8; i++) s[m][i][0] = s[m][i][1] = s[m][i][2] = s[m][i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < QK / 16; kk++) {
            uint32_t a[MR][4];
#pragma unroll
            for (int m = 0; m < MR; m++) {
                if (QREG) {
                    a[m][0] = qf[kk][0]; a[m][1] = qf[kk][1]; a[m][2] = qf[kk][2]; a[m][3] = qf[kk][3];
                } else {
                    ldsm_x4(a[m][0], a[m][1], a[m][2], a[m][3], sQ + (aRow + 16 * m) * QS + kk * 16 + aCol);
                }
            }
#pragma unroll
            for (int np = 0; np < BN / 16; np++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, cK + (np * 16 + bKey) * KS + kk * 16 + bDim);
#pragma unroll
                for (int m = 0; m < MR; m++) {
                    mma(s[m][2 * np], a[m][0], a[m][1], a[m][2], a[m][3], b0, b1);
                    mma(s[m][2 * np + 1], a[m][0], a[m][1], a[m][2], a[m][3], b2, b3);
                }
            }
        }

        // scale, causal mask (only tiles that reach past the warp's first query need it), online softmax
        const int k0 = j * BN;
        const bool masked = k0 + BN - 1 > pos + q0 + wRow;
        uint32_t p[MR][BN / 16][4];  // P as the A operand of P V, 16 keys per k-step
#pragma unroll
        for (int m = 0; m < MR; m++) {
            const int qAbs0 = pos + q0 + wRow + 16 * m + g, qAbs1 = qAbs0 + 8;  // a key k is visible when k <= qAbs
            float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
            for (int i = 0; i < BN / 8; i++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int key = k0 + i * 8 + 2 * tig + e;
                    float x0 = s[m][i][e] * scaleLog2, x1 = s[m][i][2 + e] * scaleLog2;
                    if (masked) {
                        if (key > qAbs0) x0 = -INFINITY;
                        if (key > qAbs1) x1 = -INFINITY;
                    }
                    s[m][i][e] = x0;
                    s[m][i][2 + e] = x1;
                    mx0 = fmaxf(mx0, x0);
                    mx1 = fmaxf(mx1, x1);
                }
            }
#pragma unroll
            for (int d = 1; d < 4; d <<= 1) {
                mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, d));
                mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, d));
            }
            const float n0 = fmaxf(mRow[m][0], mx0), n1 = fmaxf(mRow[m][1], mx1);
            // a row with no visible key yet keeps max -inf: use 0 as the reference so that exp2 gives 0, not NaN
            const float r0 = n0 == -INFINITY ? 0.0f : n0, r1 = n1 == -INFINITY ? 0.0f : n1;
            const float al0 = exp2f(mRow[m][0] - r0), al1 = exp2f(mRow[m][1] - r1);
            mRow[m][0] = n0;
            mRow[m][1] = n1;
            float l0 = lRow[m][0] * al0, l1 = lRow[m][1] * al1;
#pragma unroll
            for (int i = 0; i < VD / 8; i++) {
                o[m][i][0] *= al0;
                o[m][i][1] *= al0;
                o[m][i][2] *= al1;
                o[m][i][3] *= al1;
            }
#pragma unroll
            for (int i = 0; i < BN / 8; i++) {
                float e0 = exp2f(s[m][i][0] - r0), e1 = exp2f(s[m][i][1] - r0), e2 = exp2f(s[m][i][2] - r1), e3 = exp2f(s[m][i][3] - r1);
                l0 += e0 + e1;
                l1 += e2 + e3;
                p[m][i >> 1][(i & 1) * 2] = pack_bf16(e0, e1);
                p[m][i >> 1][(i & 1) * 2 + 1] = pack_bf16(e2, e3);
            }
            lRow[m][0] = l0;
            lRow[m][1] = l1;
        }
        // O += P V
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
#pragma unroll
            for (int vp = 0; vp < VD / 16; vp++) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3, cV + (kk * 16 + vKey) * VS + vp * 16 + vCol);
#pragma unroll
                for (int m = 0; m < MR; m++) {
                    mma(o[m][2 * vp], p[m][kk][0], p[m][kk][1], p[m][kk][2], p[m][kk][3], b0, b1);
                    mma(o[m][2 * vp + 1], p[m][kk][0], p[m][kk][1], p[m][kk][2], p[m][kk][3], b2, b3);
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before a later load overwrites it
        if (STAGES == 1 && j + 1 < tiles) {
            load_kv(j + 1, 0);
            cp_commit();
        }
    }

    const long oStride = (long)heads * VD;
#pragma unroll
    for (int m = 0; m < MR; m++) {
        float l0 = lRow[m][0], l1 = lRow[m][1];
#pragma unroll
        for (int d = 1; d < 4; d <<= 1) {
            l0 += __shfl_xor_sync(0xffffffff, l0, d);
            l1 += __shfl_xor_sync(0xffffffff, l1, d);
        }
        const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
        const int row0 = q0 + wRow + 16 * m + g;  // segment index of the thread's first row in tile m
#pragma unroll
        for (int i = 0; i < VD / 8; i++) {
            int col = h * VD + i * 8 + 2 * tig;
            if (row0 < len) *reinterpret_cast<float2*>(out + (long)row0 * oStride + col) = make_float2(o[m][i][0] * inv0, o[m][i][1] * inv0);
            if (row0 + 8 < len)
                *reinterpret_cast<float2*>(out + (long)(row0 + 8) * oStride + col) = make_float2(o[m][i][2] * inv1, o[m][i][3] * inv1);
        }
    }
}
}  // namespace mla_flash

// q: [len, heads * 192] bf16 (q_nope | q_rope per head); kv: [total, heads * 256] bf16 (k_nope | v per head);
// rot: [total, 64] bf16; out: [len, heads * 128] fp32. Query t (0-based in the segment) sees keys [0, pos + t].
// grid (ceil(len / 128), heads), 128 threads, mla_flash::smem_bytes<2, 1>() (94,208 bytes) of dynamic shared memory.
// Every row must start on a 16-byte boundary (row widths are multiples of 8 elements, the buffers pool allocations).
// MR 2, one stage, two blocks an SM: the fastest variant on an H100 (cuda/bench/softmax/flash_bench.cu compiles and
// times the others: MR 1 with one or two stages, Q fragments in registers, MR 2 with two stages).
extern "C" __global__ void __launch_bounds__(mla_flash::THREADS, 1) mla_flash_bf16_m2s1(
    const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv, const __nv_bfloat16* __restrict__ rot,
    float* __restrict__ out, int len, int pos, int heads, float scaleLog2) {
    mla_flash::flash_block<2, 1, false>(q, kv, rot, out, len, pos, heads, scaleLog2);
}

// 32 keys a tile (-Dkimimesh.cuda.flashVariant=m2s1k32 / m2s2k32; flash_bench.cu's mr2s1k32 / mr2s2k32): half the
// score and probability registers of m2s1 (which spills 80 bytes at 64 keys), at twice the barriers per key; with two
// stages two blocks still fit an SM. Shared memory: mla_flash::smem_bytes<2, 1, 32>() / <2, 2, 32>().
extern "C" __global__ void __launch_bounds__(mla_flash::THREADS, 1) mla_flash_bf16_m2s1k32(
    const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv, const __nv_bfloat16* __restrict__ rot,
    float* __restrict__ out, int len, int pos, int heads, float scaleLog2) {
    mla_flash::flash_block<2, 1, false, 32>(q, kv, rot, out, len, pos, heads, scaleLog2);
}
extern "C" __global__ void __launch_bounds__(mla_flash::THREADS, 1) mla_flash_bf16_m2s2k32(
    const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ kv, const __nv_bfloat16* __restrict__ rot,
    float* __restrict__ out, int len, int pos, int heads, float scaleLog2) {
    mla_flash::flash_block<2, 2, false, 32>(q, kv, rot, out, len, pos, heads, scaleLog2);
}
