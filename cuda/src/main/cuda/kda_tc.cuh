// KDA chunk kernels on tensor cores (TF32 mma.sync, fp32 accumulation), the bf16-compute mode's forms: the scan
// (kda_chunk_scan_tc) and the prep's two triangular products (kda_prep_products_tc, used by kda_chunk_prep_tc).
// Included by kda.cu (CH, kda_ws_floats and the workspace layout come from there); both read and write the same
// workspace as the fp32 kernels.
//
// Per chunk, as the fp32 scan: X: U = u0 - W S and o = o0 + Qp S; Y: S = decay * S + Kd^T U. The products run as
// m16n8k8 TF32 MMAs: W, Qp, Kd (from the workspace) and the shared copies of S and U are rounded to TF32 (10-bit
// mantissa, round to nearest); every sum and the state carried between chunks stay fp32 (the state lives in the Y
// warps' accumulators for the whole segment; only the copy the X product reads is rounded). Expected error: about
// 1e-3 norm-relative on outputs and states (TF32 operands), checked in cuda/bench/kda (kda_tc_bench.cu) against the
// verified fp32 kernels and in KernelCheck at the bf16-compute tolerance.
//
// Why this shape: the fp32 scan spent about 15k cycles a chunk on SIMT FMAs fed from shared memory; the products are
// 768 MMAs a chunk here. What is left is moving a chunk's operands (W, Qp, Kd: 96 KB, shared by the four column-tile
// blocks of a head through L2; u0, o0: 16 KB), so the A operands go straight from global memory into registers in
// fragment order (16-byte loads, no shared staging, no cp.async), one phase ahead of their use: W / Qp and u0 / o0 of
// chunk c + 1 are loaded at the end of X of chunk c, Kd and decay of chunk c + 1 at the end of Y of chunk c. Only
// S and U, the B operands every warp reads, go through shared memory.
//
// grid (heads, segments, d/32), block 256 = 8 warps; the block carries a [d, 32] column tile of S.
//   X: warp w < 4 -> U rows 16w..16w+15; warp w >= 4 -> o rows 16(w-4)..; each 4 n-tiles of 8 columns, d/8 k-steps.
//   Y: warp w < d/16 -> S rows 16w..16w+15 (its accumulators are the state), 4 n-tiles, CH/8 k-steps.
// k is permuted inside each group of 16 (mma's k index t <-> 4t + 2s, t + 4 <-> 4t + 2s + 1 for the group's two
// k-steps s), so that a lane's A elements of a group are 4 consecutive floats of a row (one 16-byte load), and the
// B rows a warp reads (4t + 2s + e) hit distinct banks with a row stride of 34 floats.

#define KDA_TC_LD 34   // row stride (floats) of the shared S and U: 4 * 34 = 8 (mod 32), conflict-free B loads

__device__ __forceinline__ float kda_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
}
// c += a b, m16n8k8, TF32 operands (already rounded), fp32 accumulators
__device__ __forceinline__ void kda_mma_tf32(float (&c)[4], float a0, float a1, float a2, float a3, float b0, float b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(__float_as_uint(a0)), "r"(__float_as_uint(a1)), "r"(__float_as_uint(a2)), "r"(__float_as_uint(a3)),
                   "r"(__float_as_uint(b0)), "r"(__float_as_uint(b1)));
}

// shared floats of kda_chunk_scan_tc: S [d][KDA_TC_LD] | U [CH][KDA_TC_LD] (KdaKernels.java computes the same)
__host__ __device__ __forceinline__ int kda_scan_tc_shared_floats(int d) { return (d + CH) * KDA_TC_LD; }

// PF > 0: at the start of chunk c the block asks L2 for chunk c + PF's record (prefetch.global.L2; the d/32 column-tile
// blocks of a head each take one share of its u0 | W | Qp | Kd | o0 lines, block 0 the decay), so that the device
// memory would stream the workspace ahead of the loads instead of in one burst a phase ahead of each use. Measured on
// an H100 (2026-12-06, same call, ms at 32k / 5 segments): PF 0 2.223 / 2.041, 1 2.229 / 2.129, 3 2.267 / 2.781,
// 6 2.396 / 2.494: no gain at 32k and a loss with several segments. On another H100 (the lead's call of the same night)
// PF 0 2.619 / 2.646 against PF 1 2.078 / 2.186: so the kernel in use has PF = 1 (never much worse, sometimes 20%
// better); the other distances stay for the harness (cuda/bench/kda, mode tc).
// STAGED (harness variant; on an H100, 2026-12-06 night: the same bits, 2.50-2.52 ms at 32k against 2.08-2.20 for the
// 1-chunk prefetch, so the hypothesis below did not hold and it stays in the harness only): W and Qp go through
// shared memory, double-buffered and fetched by cp.async two chunks ahead (chunk c + 2's copy is issued as soon as X
// of chunk c has read its buffer), instead of into registers one phase ahead: the hypothesis is that the kernel waits
// on that one-phase-ahead fetch of 64 KB a chunk (about 8.5k cycles a chunk measured against ~1.5k of MMAs). Rows at
// a stride of d + 16 floats, so that a quarter warp's 16-byte fragment loads (rows g, g + 1) hit distinct banks.
__host__ __device__ __forceinline__ int kda_scan_tc_staged_floats(int d) { return 4 * CH * (d + 16); }
template <int PF, bool STAGED = false>
__device__ __forceinline__ void kda_chunk_scan_tc_body(const float* ws, const long long* states, const int* segChunk0, const int* segChunks,
                                                       const int* chunkRow, const int* chunkLen, float* out, int heads, int d) {
    float* sm = reinterpret_cast<float*>(kda_smem);
    float* S = sm;                       // the state tile, TF32-rounded, [d][LD]
    float* U = sm + d * KDA_TC_LD;       // U of the chunk, TF32-rounded, [CH][LD]
    constexpr int LD = KDA_TC_LD;
    const int h = blockIdx.x, sg = blockIdx.y, j0 = blockIdx.z * 32, tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const long wsz = kda_ws_floats(d);
    const int P = heads * d, kg = d / 16;   // k groups of X
    const int first = segChunk0[sg], n = segChunks[sg];
    float* st = (float*)states[sg] + (long)h * d * d;
    auto rec = [&](int cc) { return ws + ((long)(first + cc) * heads + h) * wsz; };
    const int LA = d + 16;
    float* AB = U + CH * LD;   // STAGED: [chunk parity][W, Qp][CH][LA]
    auto abuf = [&](int cc, int p) { return AB + ((cc & 1) * 2 + p) * CH * LA; };
    auto issueA = [&](int cc) {   // STAGED: W and Qp of chunk cc into its parity's buffers (a group, empty past the end)
        if (cc < n) {
            const float* b = rec(cc);
            const int d4 = d / 4, per = CH * d4;
            for (int x = tid; x < 2 * per; x += 256) {
                const int p = x >= per, r = x - p * per, row = r / d4, c4 = r - row * d4;
                cp_async16(abuf(cc, p) + row * LA + 4 * c4, b + (p ? 2L : 1L) * CH * d + (long)row * d + 4 * c4);
            }
        }
        cp_async_commit();
    };
    auto prefetchL2 = [&](int cc) {
        const unsigned long long b = (unsigned long long)rec(cc), e = b + 5ull * CH * d * 4, b0 = b & ~127ull;
        const long lines = (long)((e - b0 + 127) >> 7), per = (lines + gridDim.z - 1) / gridDim.z;
        const long l0 = blockIdx.z * per, l1 = min(lines, l0 + per);
        for (long l = l0 + tid; l < l1; l += 256) asm volatile("prefetch.global.L2 [%0];" ::"l"(b0 + 128ull * l));
        const unsigned long long d0 = b + (5ull * CH * d + CH * CH) * 4, d1 = d0 + 4ull * d, da = d0 & ~127ull;
        if (blockIdx.z == 0 && tid < (int)((d1 - da + 127) >> 7)) asm volatile("prefetch.global.L2 [%0];" ::"l"(da + 128ull * tid));
    };
    if (PF > 0)
        for (int cc = 0; cc < PF && cc < n; cc++) prefetchL2(cc);

    // X roles: product (0: U from u0 and W; 1: o from o0 and Qp), row tile
    const int xp = warp >> 2, xr = 16 * (warp & 3) + g;
    const long aOff = (xp == 0 ? (long)CH * d : 2L * CH * d);   // W or Qp
    const long cOff = (xp == 0 ? 0L : 4L * CH * d);             // u0 or o0
    // Y role: S rows 16 warp + g (+ 8)
    const bool yown = 16 * warp < d;
    const int yr = 16 * warp + g;

    float4 aReg[MAXD / 16][2];   // X's A: rows xr, xr + 8; group q: columns 16q + 4t..+3
    float2 cReg[4][2];           // u0 or o0 at rows xr, xr + 8, columns 8 nt + 2t..+1 of the tile
    float kReg[CH / 16][4][2];   // Y's A: Kd rows 16q + 4t + e (e < 4), columns yr, yr + 8
    float decReg[2];
    auto loadX = [&](int cc) {
        const float* b = rec(cc);
#pragma unroll
        for (int q = 0; q < MAXD / 16; q++) {
            if (!STAGED && q < kg) {
                aReg[q][0] = __ldg(reinterpret_cast<const float4*>(b + aOff + (long)xr * d + 16 * q + 4 * t));
                aReg[q][1] = __ldg(reinterpret_cast<const float4*>(b + aOff + (long)(xr + 8) * d + 16 * q + 4 * t));
            }
        }
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            cReg[nt][0] = __ldg(reinterpret_cast<const float2*>(b + cOff + (long)xr * d + j0 + 8 * nt + 2 * t));
            cReg[nt][1] = __ldg(reinterpret_cast<const float2*>(b + cOff + (long)(xr + 8) * d + j0 + 8 * nt + 2 * t));
        }
    };
    auto loadY = [&](int cc) {
        if (!yown) return;
        const float* b = rec(cc);
        const float* kd = b + 3L * CH * d;
#pragma unroll
        for (int q = 0; q < CH / 16; q++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                kReg[q][e][0] = __ldg(kd + (long)(16 * q + 4 * t + e) * d + yr);
                kReg[q][e][1] = __ldg(kd + (long)(16 * q + 4 * t + e) * d + yr + 8);
            }
        const float* dec = b + 5L * CH * d + CH * CH;
        decReg[0] = __ldg(dec + yr);
        decReg[1] = __ldg(dec + yr + 8);
    };

    // the state tile into the Y warps' accumulators (fp32) and, rounded, into shared memory
    float sacc[4][4];
    if (yown) {
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            int col = 8 * nt + 2 * t;
            float2 s0 = *reinterpret_cast<const float2*>(st + (long)yr * d + j0 + col);
            float2 s1 = *reinterpret_cast<const float2*>(st + (long)(yr + 8) * d + j0 + col);
            sacc[nt][0] = s0.x; sacc[nt][1] = s0.y; sacc[nt][2] = s1.x; sacc[nt][3] = s1.y;
            *reinterpret_cast<float2*>(S + yr * LD + col) = make_float2(kda_tf32(s0.x), kda_tf32(s0.y));
            *reinterpret_cast<float2*>(S + (yr + 8) * LD + col) = make_float2(kda_tf32(s1.x), kda_tf32(s1.y));
        }
    }
    if (n > 0) {
        if (STAGED) {
            issueA(0);
            issueA(1);
            cp_async_wait<1>();
        }
        loadX(0);
        loadY(0);
    }
    __syncthreads();
    for (int cc = 0; cc < n; cc++) {
        const int ci = first + cc, c = chunkLen[ci], row0 = chunkRow[ci];
        if (PF > 0 && cc + PF < n) prefetchL2(cc + PF);
        // X: acc = W S (or Qp S) over the d rows of S
        float acc[4][4];
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[nt][e] = 0.0f;
#pragma unroll
        for (int q = 0; q < MAXD / 16; q++) {
            if (q < kg) {
                float4 r0, r1;
                if (STAGED) {
                    const float* A = abuf(cc, xp) + xr * LA + 16 * q + 4 * t;
                    r0 = ld4(A);
                    r1 = ld4(A + 8 * LA);
                } else {
                    r0 = aReg[q][0];
                    r1 = aReg[q][1];
                }
                // k-step s of group q: mma k = t <-> row 16q + 4t + 2s, k = t + 4 <-> row 16q + 4t + 2s + 1
                const float a[2][4] = {{kda_tf32(r0.x), kda_tf32(r1.x), kda_tf32(r0.y), kda_tf32(r1.y)},
                                       {kda_tf32(r0.z), kda_tf32(r1.z), kda_tf32(r0.w), kda_tf32(r1.w)}};
#pragma unroll
                for (int s = 0; s < 2; s++) {
                    const float* sb = S + (16 * q + 4 * t + 2 * s) * LD + g;
#pragma unroll
                    for (int nt = 0; nt < 4; nt++)
                        kda_mma_tf32(acc[nt], a[s][0], a[s][1], a[s][2], a[s][3], sb[8 * nt], sb[LD + 8 * nt]);
                }
            }
        }
        // U = u0 - W S (rows past c: 0, so that Kd^T U needs no bounds), rounded for Y's product; o = o0 + Qp S
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            int col = 8 * nt + 2 * t;
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                int r = xr + 8 * hf;
                float v0 = acc[nt][2 * hf], v1 = acc[nt][2 * hf + 1];
                float2 c0 = cReg[nt][hf];
                if (xp == 0) {
                    float2 u = r < c ? make_float2(kda_tf32(c0.x - v0), kda_tf32(c0.y - v1)) : make_float2(0.0f, 0.0f);
                    *reinterpret_cast<float2*>(U + r * LD + col) = u;
                } else if (r < c) {
                    *reinterpret_cast<float2*>(out + (long)(row0 + r) * P + (long)h * d + j0 + col) = make_float2(c0.x + v0, c0.y + v1);
                }
            }
        }
        if (cc + 1 < n) loadX(cc + 1);   // in flight during Y
        __syncthreads();
        if (STAGED) issueA(cc + 2);   // this parity's buffers are free: X of chunk cc has read them
        // Y: S = decay * S + Kd^T U over the chunk's rows (Kd and U are zero past c)
        if (yown) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                sacc[nt][0] *= decReg[0]; sacc[nt][1] *= decReg[0];
                sacc[nt][2] *= decReg[1]; sacc[nt][3] *= decReg[1];
            }
            const int qEnd = (c + 15) >> 4;
#pragma unroll
            for (int q = 0; q < CH / 16; q++) {
                if (q < qEnd) {
#pragma unroll
                    for (int s = 0; s < 2; s++) {
                        const float a0 = kda_tf32(kReg[q][2 * s][0]), a1 = kda_tf32(kReg[q][2 * s][1]);
                        const float a2 = kda_tf32(kReg[q][2 * s + 1][0]), a3 = kda_tf32(kReg[q][2 * s + 1][1]);
                        const float* ub = U + (16 * q + 4 * t + 2 * s) * LD + g;
#pragma unroll
                        for (int nt = 0; nt < 4; nt++) kda_mma_tf32(sacc[nt], a0, a1, a2, a3, ub[8 * nt], ub[LD + 8 * nt]);
                    }
                }
            }
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                int col = 8 * nt + 2 * t;
                *reinterpret_cast<float2*>(S + yr * LD + col) = make_float2(kda_tf32(sacc[nt][0]), kda_tf32(sacc[nt][1]));
                *reinterpret_cast<float2*>(S + (yr + 8) * LD + col) = make_float2(kda_tf32(sacc[nt][2]), kda_tf32(sacc[nt][3]));
            }
            if (cc + 1 < n) loadY(cc + 1);   // in flight during X
        }
        if (STAGED) cp_async_wait<1>();   // chunk cc + 1's W and Qp (only cc + 2's copy may still fly)
        __syncthreads();
    }
    if (yown) {
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            int col = 8 * nt + 2 * t;
            *reinterpret_cast<float2*>(st + (long)yr * d + j0 + col) = make_float2(sacc[nt][0], sacc[nt][1]);
            *reinterpret_cast<float2*>(st + (long)(yr + 8) * d + j0 + col) = make_float2(sacc[nt][2], sacc[nt][3]);
        }
    }
}
#ifndef KDA_TC_PREFETCH
#define KDA_TC_PREFETCH 1   // chunks ahead: the same bits at every distance; 1 measured 2.08 against 2.62 ms (none) at 32k on one H100, level (2.23 / 2.22) on another: docs/benchmarks-gpu.md
#endif
extern "C" __global__ void __launch_bounds__(256, 1) kda_chunk_scan_tc(const float* ws, const long long* states, const int* segChunk0,
                                                                      const int* segChunks, const int* chunkRow, const int* chunkLen,
                                                                      float* out, int heads, int d) {
    kda_chunk_scan_tc_body<KDA_TC_PREFETCH>(ws, states, segChunk0, segChunks, chunkRow, chunkLen, out, heads, d);
}

// The prep's steps 6 and 7 on tensor cores: [u0 | W] = T [v | e^G k], then [o0 | M W] = M [u0 | W] and
// Qp = Qg - M W (kda_chunk_prep_body's shared buffers and workspace pointers; T, then M, in Lm [CH][CH], lower
// triangular with zeros above the diagonal; v / u0 in Gs and e^G k / W in Ks as at(row, column); Qg in Qs).
// T and M come out of the fp32 solve and fp32 sums; only the operands of the two products are rounded to TF32.
// Warp w -> row tile mt (16 rows) and column half ch (0: v / u0 -> u0 / o0; 1: e^G k / W -> W / Qp), d/8 n-tiles;
// the product runs over the k groups of 16 up to the diagonal block, so tiles further down do more: mt = w for
// w < 4 and 7 - w after, so that the two warps of a scheduler (w, w + 4) have m-tiles summing to 3 (equal work).
// k is permuted inside each group of 16 as in the scan (a lane's T / M elements of a group: one 16-byte load).
template <class At>
__device__ __forceinline__ void kda_prep_products_tc(At at, float* Gs, float* Ks, const float* Qs, float* Lm, const float* M, float* U0,
                                                     float* W, float* QP, float* O0, int d, int tid) {
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int mt = warp < 4 ? warp : 7 - warp, ch = warp >> 2;
    float* R = ch == 0 ? Gs : Ks;
    const int r0 = 16 * mt + g, nts = d / 8;
    float acc[MAXD / 8][4];
    auto product = [&]() {
#pragma unroll
        for (int nt = 0; nt < MAXD / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[nt][e] = 0.0f;
#pragma unroll 1
        for (int q = 0; q <= mt; q++) {
            const float4 x0 = ld4(Lm + r0 * CH + 16 * q + 4 * t), x1 = ld4(Lm + (r0 + 8) * CH + 16 * q + 4 * t);
            const float a[2][4] = {{kda_tf32(x0.x), kda_tf32(x1.x), kda_tf32(x0.y), kda_tf32(x1.y)},
                                   {kda_tf32(x0.z), kda_tf32(x1.z), kda_tf32(x0.w), kda_tf32(x1.w)}};
#pragma unroll
            for (int s = 0; s < 2; s++) {
                const int k0 = 16 * q + 4 * t + 2 * s;   // mma k = t <-> row k0, k = t + 4 <-> row k0 + 1
#pragma unroll
                for (int nt = 0; nt < MAXD / 8; nt++) {
                    if (nt < nts) {
                        const int i = 8 * nt + g;
                        kda_mma_tf32(acc[nt], a[s][0], a[s][1], a[s][2], a[s][3], kda_tf32(R[at(k0, i)]), kda_tf32(R[at(k0 + 1, i)]));
                    }
                }
            }
        }
    };
    product();
    float* dst = ch == 0 ? U0 : W;
#pragma unroll
    for (int nt = 0; nt < MAXD / 8; nt++) {
        if (nt < nts) {
            const int col = 8 * nt + 2 * t;
            *reinterpret_cast<float2*>(dst + r0 * d + col) = make_float2(acc[nt][0], acc[nt][1]);
            *reinterpret_cast<float2*>(dst + (r0 + 8) * d + col) = make_float2(acc[nt][2], acc[nt][3]);
        }
    }
    __syncthreads();
    // u0 and W into v's and e^G k's places (col and col + 1 share a swizzled group of 4: one 8-byte store); M (written
    // by steps 2 and 4) into T's, zero above the diagonal
#pragma unroll
    for (int nt = 0; nt < MAXD / 8; nt++) {
        if (nt < nts) {
            const int col = 8 * nt + 2 * t;
            *reinterpret_cast<float2*>(R + at(r0, col)) = make_float2(acc[nt][0], acc[nt][1]);
            *reinterpret_cast<float2*>(R + at(r0 + 8, col)) = make_float2(acc[nt][2], acc[nt][3]);
        }
    }
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int y = tid; y < CH * CH / 4; y += 256) {
        int tt = y / (CH / 4), s = 4 * (y % (CH / 4));
        float4 m4 = s <= tt ? __ldcg(reinterpret_cast<const float4*>(M + tt * CH + s)) : zero4;
        if (s + 1 > tt) m4.y = 0.0f;
        if (s + 2 > tt) m4.z = 0.0f;
        if (s + 3 > tt) m4.w = 0.0f;
        *reinterpret_cast<float4*>(Lm + tt * CH + s) = m4;
    }
    __syncthreads();
    product();
#pragma unroll
    for (int nt = 0; nt < MAXD / 8; nt++) {
        if (nt < nts) {
            const int col = 8 * nt + 2 * t;
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = r0 + 8 * hf;
                const float v0 = acc[nt][2 * hf], v1 = acc[nt][2 * hf + 1];
                if (ch == 0) {
                    *reinterpret_cast<float2*>(O0 + r * d + col) = make_float2(v0, v1);
                } else {
                    const float2 qg = *reinterpret_cast<const float2*>(Qs + at(r, col));
                    *reinterpret_cast<float2*>(QP + r * d + col) = make_float2(qg.x - v0, qg.y - v1);
                }
            }
        }
    }
}

// tc3's column swizzle of T and M in Lm ([CH][CH], row stride CH = 0 mod 32 banks): column s of row r is stored at
// s ^ (2 (r & 1) + 16 (r & 2) / 2), i.e. shifted by 0, 2, 16 or 18 floats for r & 3 = 0..3. A product's fragment load
// (8-byte, a 16-lane phase: rows g = 0..3, columns 4t + 2s + {0, 1}, t = 0..3, so 8 of each 16 banks per row) then
// fills all 32 banks, where tc2's rows all hit the same 8 (4-way conflicts). Column pairs (2s, 2s + 1) stay contiguous.
__device__ __forceinline__ int kda_tc3_col(int r, int s) { return s ^ (((r & 1) << 1) | ((r & 2) << 3)); }

// tc2 (kda_chunk_prep_tc2): the same two products as kda_prep_products_tc, laid out so that the tensor cores are fed.
// Why tc is slow (docs/benchmarks-gpu.md, "branch kda4"): its loop over n-tiles runs to MAXD/8 with a run-time test
// (nt < d/8) around every MMA, and the MMAs are `asm volatile`, so each MMA sits in a basic block of its own after its
// two B loads: no load is hoisted, each MMA waits out a shared-memory load latency, and the lower m-tiles do 4x the
// upper ones' work in one warp each (the warp of m-tile 3 runs 256 such serial steps per product). Here:
//   - warp w owns 8 NT = d/4 output columns (w < 4: the v / u0 half, w >= 4: the e^G k / W half) for all 64 rows,
//     so every warp does the same work (10 (m-tile, k-group) pairs of the triangle) and reads B only from its own
//     columns: product 2's B (u0 | W) is the warp's own product-1 output, written in place with no block barrier;
//   - NT = d/32 n-tiles per warp is a template parameter, so there is no test around an MMA, and the MMAs are plain
//     asm (the compiler may schedule the loads of the next k-step ahead of them); d = 128 (the model's) is inlined,
//     the other widths (the tests' small shapes) are called (kda_prep_products_tc2_call), since all four inlined
//     behind a switch on d spilled (values kept live across the switch);
//   - a k-step's B fragments (NT n-tiles) are loaded once and used by every m-tile below it, the A fragment (T or M
//     rows, one 8-byte load a row) once per (m-tile, k-step).
// Operands rounded to TF32 (as tc), fp32 accumulation; T and M come from v5's fp32 steps unchanged.
__device__ __forceinline__ void kda_mma_tf32_nv(float (&c)[4], float a0, float a1, float a2, float a3, float b0, float b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(__float_as_uint(a0)), "r"(__float_as_uint(a1)), "r"(__float_as_uint(a2)), "r"(__float_as_uint(a3)),
          "r"(__float_as_uint(b0)), "r"(__float_as_uint(b1)));
}
// X3 (tc3): 3xTF32, each operand x split into h = tf32(x) and l = tf32(x - h), acc += l_a h_b + h_a l_b + h_a h_b: the
// products then err by about 2^-21 relative instead of 2^-11 (TF32's rounding), at three MMAs a product.
template <int NT, bool X3 = false>
__device__ __forceinline__ void kda_prep_products_tc2(float* Gs, float* Ks, const float* Qs, float* Lm, const float* M, float* U0, float* W,
                                                   float* QP, float* O0, int tid) {
    constexpr int d = 32 * NT;
    // kda_chunk_prep_body's swizzled [CH][d] layout
    auto at = [](int r, int i) { return r * d + ((((i >> 2) ^ (r & 7)) << 2) | (i & 3)); };
    const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int half = warp >> 2, c0 = (warp & 3) * (8 * NT);   // this warp's columns c0 .. c0 + 8 NT - 1
    float* R = half == 0 ? Gs : Ks;
    float acc[4][NT][4];
#pragma unroll 1
    for (int p = 0; p < 2; p++) {
#pragma unroll
        for (int mt = 0; mt < 4; mt++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.0f;
#pragma unroll
        for (int q = 0; q < 4; q++)
#pragma unroll(X3 ? 1 : 2)   // X3: one k-step at a time (both unrolled, tc3 spilled 348 bytes)
            for (int s = 0; s < 2; s++) {
                // k-step s of group q: mma k = t <-> row 16q + 4t + 2s, k = t + 4 <-> row 16q + 4t + 2s + 1 (of B;
                // the same columns of T / M); B's column c0 + 8nt + g
                const int k0 = 16 * q + 4 * t + 2 * s;
                float b[NT][2], bl[X3 ? NT : 1][2];
                if constexpr (X3) {
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float x = R[at(k0 + e, c0 + 8 * nt + g)];
                            b[nt][e] = kda_tf32(x);
                            bl[nt][e] = kda_tf32(x - b[nt][e]);
                        }
                } else {
#pragma unroll
                    for (int nt = 0; nt < NT; nt++) {
                        b[nt][0] = kda_tf32(R[at(k0, c0 + 8 * nt + g)]);
                        b[nt][1] = kda_tf32(R[at(k0 + 1, c0 + 8 * nt + g)]);
                    }
                }
#pragma unroll
                for (int mt = q; mt < 4; mt++) {   // the triangle: k groups past the m-tile's diagonal block are zero
                    // rows 16 mt + g and + 8 (the same kda_tc3_col swizzle: row & 3 = g & 3)
                    const int ka = X3 ? kda_tc3_col(g, k0) : k0;
                    const float2 x0 = *reinterpret_cast<const float2*>(Lm + (16 * mt + g) * CH + ka);
                    const float2 x1 = *reinterpret_cast<const float2*>(Lm + (16 * mt + g + 8) * CH + ka);
                    const float a0 = kda_tf32(x0.x), a1 = kda_tf32(x1.x), a2 = kda_tf32(x0.y), a3 = kda_tf32(x1.y);
                    if constexpr (X3) {
                        // the two small cross terms first, then the heads' product
                        const float l0 = kda_tf32(x0.x - a0), l1 = kda_tf32(x1.x - a1), l2 = kda_tf32(x0.y - a2), l3 = kda_tf32(x1.y - a3);
#pragma unroll
                        for (int nt = 0; nt < NT; nt++) {
                            kda_mma_tf32_nv(acc[mt][nt], l0, l1, l2, l3, b[nt][0], b[nt][1]);
                            kda_mma_tf32_nv(acc[mt][nt], a0, a1, a2, a3, bl[nt][0], bl[nt][1]);
                        }
                    }
#pragma unroll
                    for (int nt = 0; nt < NT; nt++) kda_mma_tf32_nv(acc[mt][nt], a0, a1, a2, a3, b[nt][0], b[nt][1]);
                }
            }
        if (p == 0) {
            // [u0 | W] to the workspace and, in place of v / e^G k, as product 2's B (only this warp reads these columns)
            float* dst = half == 0 ? U0 : W;
            __syncwarp();
#pragma unroll
            for (int mt = 0; mt < 4; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    const int col = c0 + 8 * nt + 2 * t;
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int r = 16 * mt + g + 8 * hf;
                        const float2 x = make_float2(acc[mt][nt][2 * hf], acc[mt][nt][2 * hf + 1]);
                        *reinterpret_cast<float2*>(dst + r * d + col) = x;
                        *reinterpret_cast<float2*>(R + at(r, col)) = x;   // col even: col, col + 1 in one swizzled group
                    }
                }
            __syncthreads();   // every warp is done with T
            // M (written to the workspace by steps 2 and 4) into T's place, zero above the diagonal
            const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int y = tid; y < CH * CH / 4; y += 256) {
                const int tt = y / (CH / 4), s = 4 * (y % (CH / 4));
                float4 m4 = s <= tt ? __ldcg(reinterpret_cast<const float4*>(M + tt * CH + s)) : zero4;
                if (s + 1 > tt) m4.y = 0.0f;
                if (s + 2 > tt) m4.z = 0.0f;
                if (s + 3 > tt) m4.w = 0.0f;
                if constexpr (X3) {   // two pairs: the swizzle keeps pairs, not quads, contiguous
                    *reinterpret_cast<float2*>(Lm + tt * CH + kda_tc3_col(tt, s)) = make_float2(m4.x, m4.y);
                    *reinterpret_cast<float2*>(Lm + tt * CH + kda_tc3_col(tt, s + 2)) = make_float2(m4.z, m4.w);
                } else {
                    *reinterpret_cast<float4*>(Lm + tt * CH + s) = m4;
                }
            }
            __syncthreads();
        } else {
#pragma unroll
            for (int mt = 0; mt < 4; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    const int col = c0 + 8 * nt + 2 * t;
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int r = 16 * mt + g + 8 * hf;
                        const float v0 = acc[mt][nt][2 * hf], v1 = acc[mt][nt][2 * hf + 1];
                        if (half == 0) {
                            *reinterpret_cast<float2*>(O0 + r * d + col) = make_float2(v0, v1);
                        } else {
                            const float2 qg = *reinterpret_cast<const float2*>(Qs + at(r, col));
                            *reinterpret_cast<float2*>(QP + r * d + col) = make_float2(qg.x - v0, qg.y - v1);
                        }
                    }
                }
        }
    }
}
// the products at NT < 4 as functions of their own (see kda_prep_products_tc2)
template <int NT, bool X3>
__device__ __noinline__ void kda_prep_products_tc2_call(float* Gs, float* Ks, const float* Qs, float* Lm, const float* M, float* U0, float* W,
                                                        float* QP, float* O0, int tid) {
    kda_prep_products_tc2<NT, X3>(Gs, Ks, Qs, Lm, M, U0, W, QP, O0, tid);
}
