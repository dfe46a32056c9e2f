#!/usr/bin/env python3
# Shared-memory wavefronts of the KDA chunk prep's access sites (kda.cu kda_chunk_prep_body, kda_tc.cuh products) for
# one block at d = 128, against the conflict-free count: a static model to find bank conflicts without a GPU. A warp's
# request is split into phases of 128 bytes' worth of lanes (4-byte accesses: 32 lanes, 8-byte: 16, 16-byte: 8); a
# phase takes as many wavefronts as the most distinct 4-byte words any one bank holds among its lanes (equal words are
# broadcast). The sites mirror the kernels' index arithmetic; keep them in step when the kernels change.
# Usage: python3 cuda/bench/kda/smem_banks.py  (no arguments; prints v5 / tc2's sites, then tc3's changed ones, then
# v6's sites beside v5's and the whole fp32 prep's wavefronts per block, v5 against v6)
import math
d, CH = 128, 64
def at(t, i): return t * d + ((((i >> 2) ^ (t & 7)) << 2) | (i & 3))
GS, KS, QS, LM = 0, CH * d, 2 * CH * d, 3 * CH * d
def wavefronts(addrs, width):   # addrs: per lane a float index or None
    per = 128 // (4 * width)      # lanes per phase
    total = 0
    for p0 in range(0, 32, per):
        banks = {}
        for a in addrs[p0:p0 + per]:
            if a is None: continue
            for w in range(width):
                banks.setdefault((a + w) % 32, set()).add(a + w)
        if banks: total += max(len(v) for v in banks.values())
    return total
def ideal(addrs, width):
    n = sum(a is not None for a in addrs)
    return math.ceil(n * width / 32) if n else 0
stats = {}
def req(site, addrs, width, times=1):
    s = stats.setdefault(site, [0, 0])
    s[0] += wavefronts(addrs, width) * times
    s[1] += ideal(addrs, width) * times
# step 1: cumsum (warps 0-3), per t a load and a store
for w in range(4):
    for t in range(CH):
        a = [GS + at(t, 32 * w + l) for l in range(32)]
        req("1 cumsum ld/st", a, 1, 2)
# step 1: norms, warps 4-7, r < 4: 8 LDS.128 (then 8 LDS.128 + 8 STS.128 when t < c)
for w in range(4, 8):
    for r in range(4):
        for e in range(4):
            for half in (0, 16):
                a = []
                for l in range(32):
                    idx = (32 * w + l) - 128 + 128 * r
                    j, t = idx & 3, (idx >> 2) & 63
                    X = QS if r < 2 else KS
                    a.append(X + at(t, 32 * j + 4 * e + half))
                req("1 norms ld4 (x3: sum, rescale ld, st)", a, 4, 3)
# step 2: diagonal sub-blocks, 576 tasks over 256 threads, 8 channel steps, 10 LDS.128 each
def bt_of(p):
    bt = int((math.sqrt(8 * p + 1) - 1) / 2)
    while (bt + 1) * (bt + 2) // 2 <= p: bt += 1
    while bt * (bt + 1) // 2 > p: bt -= 1
    return bt
for base in range(0, 576, 32):
    lanes = []
    for l in range(32):
        it = base + l
        if it >= 576: lanes.append(None); continue
        qq, rest = it & 3, it >> 2
        blk, p = rest // 36, rest % 36
        bt = bt_of(p)
        t1, s1 = blk * 16 + 2 * bt, blk * 16 + 2 * (p - bt * (bt + 1) // 2)
        lanes.append((qq, t1, s1))
    for k in range(8):
        for (buf, row) in ((GS, 't'), (KS, 't'), (QS, 't'), (GS, 's'), (KS, 's')):
            for aa in range(2):
                a = [None if x is None else buf + at((x[1] if row == 't' else x[2]) + aa, 4 * x[0] + 16 * k) for x in lanes]
                req("2 diag ld4", a, 4)
    # stores of L (qq == 0 lanes), 4 entries
    for aa in range(2):
        for bb in range(2):
            a = [None if (x is None or x[0] != 0) else LM + (x[1] + aa) * CH + x[2] + bb for x in lanes]
            req("2 diag L st", a, 1)
# step 4: off-diagonal, 384 tasks, 8 channel steps: ka[4], qa[4], bs[4] (+ D)
for base in range(0, 384, 32):
    lanes = []
    for l in range(32):
        it = base + l
        qq, tile, pr = it & 3, (it >> 2) & 15, it >> 6
        bt = (0x333221 >> (4 * pr)) & 15; bs = (0x210100 >> (4 * pr)) & 15
        lanes.append((qq, bt * 16 + 4 * (tile >> 2), bs * 16 + 4 * (tile & 3)))
    for k in range(8):
        for aa in range(4):
            req("4 offdiag ld4 k,q rows", [KS + at(x[1] + aa, 4 * x[0] + 16 * k) for x in lanes], 4, 2)
            req("4 offdiag ld4 B rows", [GS + at(x[2] + aa, 4 * x[0] + 16 * k) for x in lanes], 4)
    for aa in range(4):
        req("4 offdiag L st4", [None if x[0] != 0 else LM + (x[1] + aa) * CH + x[2] for x in lanes], 4)
# step 3: elementwise (row-contiguous: 6 LDS.128 + 3 STS.128 per x)
for r in range(8):
    for w in range(8):
        a = [GS + at((w * 32 + l + r * 256) // 32, 4 * ((w * 32 + l) % 32)) for l in range(32)]
        req("3 elementwise ld4/st4", a, 4, 9)
# step 5: the solve's T row loads (broadcast) ~ 64 * 16 / 2 per warp, 2 warps; writes of T
for w in range(2):
    for t in range(CH):
        for s in range(0, t, 4):
            req("5 solve L ld4 (broadcast)", [LM + t * CH + s] * 32, 4)
        req("5 solve T st", [LM + t * CH + 32 * w + l for l in range(32)], 1)
# step 5 others: y over CH * 32 by 192 threads: Ks ld/st, Qs ld/st, E ld: row-contiguous
for y0 in range(0, CH * 32, 32):
    a = [KS + at((y0 + l) // 32, 4 * ((y0 + l) % 32)) for l in range(32)]
    req("5 e^G scaling ld4/st4", a, 4, 4)
# v5 products: lanes -> 8 columns of the 2d; tg rows; per s group of 4, 4 kk x 2 LDS.128 of R (+ 8 broadcast T loads)
for w in range(8):
    tg = w if w < 4 else 11 - w
    for s in range(0, 8 * tg + 8, 4):
        for kk in range(4):
            for hh in (0, 4):
                a = []
                for l in range(32):
                    col = 8 * l
                    R = GS if col < d else KS
                    rc = col if col < d else col - d
                    a.append(R + at(s + kk, rc + hh))
                req("v5 products R ld4 (x2 products)", a, 4, 2)
# tc2 products: per warp per product: per (q, s): NT = 4 n-tiles x 2 scalar LDS of B; per (q, s, mt >= q): 2 LDS.64 of A
for w in range(8):
    half, c0 = w >> 2, (w & 3) * 32
    R = GS if half == 0 else KS
    for q in range(4):
        for s in range(2):
            for nt in range(4):
                for e in range(2):
                    a = [R + at(16 * q + 4 * (l & 3) + 2 * s + e, c0 + 8 * nt + (l >> 2)) for l in range(32)]
                    req("tc2 products B ld (x2 products)", a, 1, 2)
            for mt in range(q, 4):
                for hf in range(2):
                    a = [LM + (16 * mt + (l >> 2) + 8 * hf) * CH + 16 * q + 4 * (l & 3) + 2 * s for l in range(32)]
                    req("tc2 products A ld2 (x2 products)", a, 2, 2)
    for mt in range(4):
        for nt in range(4):
            for hf in range(2):
                a = [R + at(16 * mt + (l >> 2) + 8 * hf, c0 + 8 * nt + 2 * (l & 3)) for l in range(32)]
                req("tc2 epilogue st2 to R / Qg ld2", a, 2, 2)
tot = [0, 0]
print("%-42s %10s %10s %6s" % ("site (one block, d = 128; v5 and tc2)", "wavefronts", "ideal", "ways"))
for k, (a, b) in sorted(stats.items(), key=lambda kv: -(kv[1][0] - kv[1][1])):
    print("%-42s %10d %10d %6.2f" % (k, a, b, a / max(b, 1)))
first = dict(stats)   # v5's and tc2's sites, for v6's comparison below
# tc3: the swizzled T / M fragment loads and the rotated norm rescale
stats.clear()
sw = lambda r, s: s ^ (((r & 1) << 1) | ((r & 2) << 3))
for w in range(8):
    for q in range(4):
        for s in range(2):
            for mt in range(q, 4):
                for hf in range(2):
                    a = []
                    for l in range(32):
                        r = 16 * mt + (l >> 2) + 8 * hf
                        a.append(LM + r * CH + sw(r, 16 * q + 4 * (l & 3) + 2 * s))
                    req("tc3 products A ld2 (x2 products)", a, 2, 2)
for w in range(4, 8):
    for r in range(4):
        for e in range(8):
            a = []
            for l in range(32):
                idx = (32 * w + l) - 128 + 128 * r
                j, t = idx & 3, (idx >> 2) & 63
                a.append(QS + at(t, 32 * j + 4 * ((e + 2 * j) & 7)))
            req("tc3 norms rescale ld4 + st4", a, 4, 2)
for t in range(CH):
    for w in range(2):
        req("tc3 solve T st (swizzled)", [LM + t * CH + sw(t, 32 * w + l) for l in range(32)], 1)
for y in range(0, 1024, 256):
    for w in range(8):
        a = []
        for l in range(32):
            yy = y + 32 * w + l
            tt, s4 = yy // 16, 4 * (yy % 16)
            a.append(LM + tt * CH + sw(tt, s4))
        req("tc3 M copy st2 x2 (swizzled)", a, 2)
        b = []
        for l in range(32):
            yy = y + 32 * w + l
            tt, s4 = yy // 16, 4 * (yy % 16)
            b.append(LM + tt * CH + sw(tt, s4 + 2))
        req("tc3 M copy st2 x2 (swizzled)", b, 2)
print("\n%-42s %10s %10s %6s" % ("tc3's changed sites", "wavefronts", "ideal", "ways"))
for k, (a, b) in stats.items():
    print("%-42s %10d %10d %6.2f" % (k, a, b, a / max(b, 1)))

# v6 (kda_chunk_prep_v6, CF in kda.cu): v5's operations with other lane-to-data maps at the norms, the diagonal step
# (kda_diag_order) and the products; every other site is v5's. Each changed site for both maps, then the prep's totals.
V5_SITES = ["1 cumsum ld/st", "1 norms ld4 (x3: sum, rescale ld, st)", "2 diag ld4", "2 diag L st", "3 elementwise ld4/st4",
            "4 offdiag ld4 k,q rows", "4 offdiag ld4 B rows", "4 offdiag L st4", "5 solve L ld4 (broadcast)", "5 solve T st",
            "5 e^G scaling ld4/st4", "v5 products R ld4 (x2 products)"]
v5 = {k: first[k] for k in V5_SITES}
def products_epilogue(cf):
    # per warp, row a: the u0 | W store into R, then the M W half's Qg load (v5: half the lanes; v6: every lane)
    for w in range(8):
        tg = w if w < 4 else 11 - w
        for a_ in range(8):
            t = 8 * tg + a_
            for hh in (0, 1):
                if cf: a = [(GS if hh == 0 else KS) + at(t, 4 * l) for l in range(32)]
                else: a = [(GS if 8 * l < d else KS) + at(t, (8 * l) % d + 4 * hh) for l in range(32)]
                req("products epilogue R st4", a, 4)
            if cf: a = [QS + at(t, 4 * l) for l in range(32)]; req("products epilogue Qg ld4", a, 4)
            else:
                for hh in (0, 1): req("products epilogue Qg ld4", [QS + at(t, 8 * l - d + 4 * hh) if 8 * l >= d else None for l in range(32)], 4)
stats.clear(); products_epilogue(False); v5.update(stats)
stats.clear(); products_epilogue(True); v6 = dict(stats)
for w in range(4, 8):   # norms: lane -> (quarter l >> 3, row l & 7)
    for r in range(4):
        for e in range(4):
            for half in (0, 16):
                a = []
                for l in range(32):
                    j, t = l >> 3, 32 * (r & 1) + 8 * (w - 4) + (l & 7)
                    a.append((QS if r < 2 else KS) + at(t, 32 * j + 4 * e + half))
                req("1 norms ld4 (x3: sum, rescale ld, st)", a, 4, 3)
# diagonal: the blocks in kda.cu's kda_diag_order (read from the source), which must be the 144 blocks of v5's
import os, re
src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../src/main/cuda/kda.cu")).read()
order = [int(x, 16) for x in re.findall(r"0x[0-9a-f]{4}", src.split("kda_diag_order[144] = {")[1].split("}")[0])]
v5blocks = []
for rest in range(144):
    blk, p = rest // 36, rest % 36
    bt = bt_of(p)
    v5blocks.append((blk * 16 + 2 * bt, blk * 16 + 2 * (p - bt * (bt + 1) // 2)))
assert sorted((o & 255, o >> 8) for o in order) == sorted(v5blocks), "kda_diag_order is not a permutation of the blocks"
for base in range(0, 576, 32):
    lanes = []
    for l in range(32):
        it = base + l
        o = order[it >> 2]
        lanes.append((it & 3, o & 255, o >> 8))
    for k in range(8):
        for (buf, row) in ((GS, 't'), (KS, 't'), (QS, 't'), (GS, 's'), (KS, 's')):
            for aa in range(2):
                req("2 diag ld4", [buf + at((x[1] if row == 't' else x[2]) + aa, 4 * x[0] + 16 * k) for x in lanes], 4)
    for aa in range(2):
        for bb in range(2):
            req("2 diag L st", [None if x[0] != 0 else LM + (x[1] + aa) * CH + x[2] + bb for x in lanes], 1)
for w in range(8):   # products: lane -> column group l of v and of e^G k
    tg = w if w < 4 else 11 - w
    for s_ in range(0, 8 * tg + 8, 4):
        for kk in range(4):
            for R in (GS, KS):
                req("v5 products R ld4 (x2 products)", [R + at(s_ + kk, 4 * l) for l in range(32)], 4, 2)
v6.update(stats)
for k in v5: v6.setdefault(k, v5[k])
print("\n%-42s %12s %12s %10s" % ("v6 against v5 (one block, d = 128)", "v5 wavefr.", "v6 wavefr.", "ideal"))
for k in sorted(v5, key=lambda k: -(v5[k][0] - v6[k][0])):
    if v5[k][0] != v6[k][0] or k.startswith("products epilogue"):
        print("%-42s %12d %12d %10d" % (k, v5[k][0], v6[k][0], v5[k][1]))
t5, t6, ti = (sum(x[i][0] for x in [v5] for i in x) , sum(v6[i][0] for i in v6), sum(v5[i][1] for i in v5))
print("%-42s %12d %12d %10d" % ("whole prep (every site above)", t5, t6, ti))
