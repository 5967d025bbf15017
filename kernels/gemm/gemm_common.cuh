// Device pieces shared by the GEMM variants: the fused epilogue
// (alpha, beta, bias, activation) and cp.async wrappers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/gemm/gemm.h"

namespace pydl::cuda::gemm_detail {

// What every kernel needs to finish a tile; passed by value as a kernel parameter.
struct Epilogue {
  float alpha;
  float beta;
  const void* bias;  // (N,) of the output type, or null
  int activation;    // GemmActivation
};

inline Epilogue make_epilogue(const GemmArgs& a) {
  return Epilogue{a.alpha, a.beta, a.bias, static_cast<int>(a.activation)};
}

__device__ __forceinline__ float apply_activation(float v, int act) {
  if (act == static_cast<int>(GemmActivation::Relu)) return v > 0.0f ? v : 0.0f;
  if (act == static_cast<int>(GemmActivation::Gelu)) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  return v;
}

// act(alpha * acc + beta * old + bias[col]) for one output element at (row, col)
// of a row-major `out` with leading dimension ldo; beta == 0 never reads `out`.
template <typename T>
__device__ __forceinline__ void store_output(T* out, int64_t ldo, int64_t row, int64_t col, float acc,
                                             const Epilogue& ep) {
  T* p = out + row * ldo + col;
  float v = ep.alpha * acc;
  if (ep.beta != 0.0f) v += ep.beta * to_float<T>(*p);
  if (ep.bias) v += to_float<T>(static_cast<const T*>(ep.bias)[col]);
  *p = from_float<T>(apply_activation(v, ep.activation));
}

// Two neighbouring columns (col, col + 1), both in range; `out + row*ldo + col`
// must be aligned to 2 elements.
template <typename T>
__device__ __forceinline__ void store_output_pair(T* out, int64_t ldo, int64_t row, int64_t col, float acc0,
                                                  float acc1, const Epilogue& ep) {
  T* p = out + row * ldo + col;
  float v0 = ep.alpha * acc0, v1 = ep.alpha * acc1;
  if constexpr (sizeof(T) == 4) {
    if (ep.beta != 0.0f) {
      const float2 o = *reinterpret_cast<const float2*>(p);
      v0 += ep.beta * o.x;
      v1 += ep.beta * o.y;
    }
  } else {
    if (ep.beta != 0.0f) {
      v0 += ep.beta * to_float<T>(p[0]);
      v1 += ep.beta * to_float<T>(p[1]);
    }
  }
  if (ep.bias) {
    const T* bias = static_cast<const T*>(ep.bias);
    v0 += to_float<T>(bias[col]);
    v1 += to_float<T>(bias[col + 1]);
  }
  v0 = apply_activation(v0, ep.activation);
  v1 = apply_activation(v1, ep.activation);
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  } else {
    struct alignas(4) Two { T x, y; };
    *reinterpret_cast<Two*>(p) = Two{from_float<T>(v0), from_float<T>(v1)};
  }
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; bytes past `src_bytes` (0..16) are zero-filled.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Grid z covers the batch in chunks of at most this many (the grid's z limit).
constexpr int64_t kMaxGridZ = 65535;

}  // namespace pydl::cuda::gemm_detail
