// Four fp32 values as four bf16 (round to nearest even, as f32_to_bf16) in one 8-byte store: the bf16 GEMM operands
// that the norms and SwiGLU write beside their fp32 outputs (CudaBackend's bf16 operand copies).
#pragma once
#include <cuda_bf16.h>

__device__ __forceinline__ uint2 bf16x4(float4 v) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    return make_uint2(*reinterpret_cast<unsigned*>(&lo), *reinterpret_cast<unsigned*>(&hi));
}

// The inverse: four bf16 in one 8-byte load, widened to fp32 (exact).
__device__ __forceinline__ float4 bf16x4_in(uint2 v) {
    float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&v.x));
    float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&v.y));
    return make_float4(a.x, a.y, b.x, b.y);
}
