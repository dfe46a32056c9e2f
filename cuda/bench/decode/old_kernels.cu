// The kernels as they were before the tiled GEMVs (copies of gemv.cu and moe.cu at that commit), under old_ names:
// the harness's baseline, timed beside the new ones in the same run.
#define gemv_bf16 old_gemv_bf16
#define moe_route old_moe_route
#define moe_group old_moe_group
#define moe_gate_up old_moe_gate_up
#define moe_down old_moe_down
#define moe_combine old_moe_combine
#include "gemv_old.cu"
#include "moe_old.cu"
