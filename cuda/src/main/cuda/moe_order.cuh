// The order in which a row's expert outputs are added (moe_combine and the fused down + combine): the served choices
// (pos >= 0) sorted by expert index, equal experts in choice order - the CPU backend's order, so the sums match it bit
// for bit. Run by one thread; order[] gets the choice indices, the count is returned.
#pragma once

__device__ __forceinline__ int moe_choice_order(const int* ex, const int* pos, int k, int* order) {
    int n = 0;
    for (int j = 0; j < k; j++) {
        if (pos[j] < 0) continue;
        int e = ex[j], at = n++;
        while (at > 0 && ex[order[at - 1]] > e) { order[at] = order[at - 1]; at--; }
        order[at] = j;
    }
    return n;
}
