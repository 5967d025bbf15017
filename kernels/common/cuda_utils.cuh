// Shared by every CUDA kernel: launch-error checks, warp/block reductions,
// 128-bit packed loads, and float conversions for the half types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "csrc/tensor_view.h"

namespace pydl::cuda {

// Throws CudaError naming the kernel if the launch (or an earlier async op) failed.
inline void check_launch(const char* kernel) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw ::pydl::CudaError(std::string(kernel) + ": CUDA error: " + cudaGetErrorString(err));
}

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw ::pydl::CudaError(std::string(what) + ": CUDA error: " + cudaGetErrorString(err));
}

inline void check_device(const char* op, const char* arg, const TensorView& t) {
  if (t.device != Device::CUDA)
    throw ::pydl::ValueError(std::string(op) + ": " + arg + " must be on the GPU");
}

template <typename T> __device__ __forceinline__ float to_float(T v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum; `shared` holds at least 32 values. Every thread gets the result.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  v = (threadIdx.x < nwarps) ? shared[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum(v);
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  return shared[0];
}

template <typename T>
__device__ __forceinline__ T block_max(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  v = (threadIdx.x < nwarps) ? shared[threadIdx.x] : T(-INFINITY);
  if (warp == 0) v = warp_max(v);
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  return shared[0];
}

// 16-byte packed vector of T, for 128-bit loads and stores.
template <typename T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  Pack<T> r;
  *reinterpret_cast<int4*>(&r) = __ldg(reinterpret_cast<const int4*>(p));
  return r;
}

template <typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& r) {
  *reinterpret_cast<int4*>(p) = *reinterpret_cast<const int4*>(&r);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace pydl::cuda

#include <algorithm>
#include <cmath>

// Row kernels (softmax, norms, losses): accumulation types, dtype dispatch,
// online softmax statistics and chunked row access.
namespace pydl::cuda {

// Accumulation type: float for float32 and the half types, double for float64.
template <typename T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };
template <typename T> using acc_t = typename AccType<T>::type;

template <typename T> __device__ __forceinline__ acc_t<T> to_acc(T v) { return to_float(v); }
template <> __device__ __forceinline__ double to_acc<double>(double v) { return v; }
template <typename T> __device__ __forceinline__ T from_acc(acc_t<T> v) { return from_float<T>(v); }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }

__device__ __forceinline__ float acc_exp(float v) { return expf(v); }
__device__ __forceinline__ double acc_exp(double v) { return exp(v); }
__device__ __forceinline__ float acc_log(float v) { return logf(v); }
__device__ __forceinline__ double acc_log(double v) { return log(v); }
__device__ __forceinline__ float acc_rsqrt(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double acc_rsqrt(double v) { return 1.0 / sqrt(v); }

// Running max m and sum s of exp(x - m) (online softmax). A NaN input poisons s.
template <typename A> struct MaxSum {
  A m = A(-INFINITY);
  A s = A(0);
};

template <typename A>
__device__ __forceinline__ void maxsum_add(MaxSum<A>& a, A v) {
  if (v > a.m) {
    a.s = a.s * acc_exp(a.m - v) + A(1);
    a.m = v;
  } else if (v != A(-INFINITY)) {
    a.s += acc_exp(v - a.m);
  }
}

template <typename A>
__device__ __forceinline__ MaxSum<A> maxsum_merge(MaxSum<A> a, MaxSum<A> b) {
  const A m = a.m > b.m ? a.m : b.m;
  if (m == A(-INFINITY)) return {m, a.s + b.s};  // both empty (or NaN)
  return {m, a.s * acc_exp(a.m - m) + b.s * acc_exp(b.m - m)};
}

template <typename A>
__device__ __forceinline__ MaxSum<A> warp_maxsum(MaxSum<A> v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> other{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = maxsum_merge(v, other);
  }
  return v;
}

// Block-wide merge; `shared` holds at least 64 values. Every thread gets the result.
template <typename A>
__device__ __forceinline__ MaxSum<A> block_maxsum(MaxSum<A> v, A* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_maxsum(v);
  __syncthreads();
  if (lane == 0) {
    shared[warp] = v.m;
    shared[32 + warp] = v.s;
  }
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  MaxSum<A> w;
  if (threadIdx.x < nwarps) w = {shared[threadIdx.x], shared[32 + threadIdx.x]};
  if (warp == 0) w = warp_maxsum(w);
  if (threadIdx.x == 0) {
    shared[0] = w.m;
    shared[32] = w.s;
  }
  __syncthreads();
  return {shared[0], shared[32]};
}

// kN consecutive elements of a row, moved as one 128-bit access when kN == Pack<T>::N.
template <typename T, int kN> struct alignas(sizeof(T) * kN) Chunk { T v[kN]; };

// Read-only global load (kN == 1, or a 16-byte-aligned pointer).
template <typename T, int kN>
__device__ __forceinline__ Chunk<T, kN> load_chunk(const T* p) {
  Chunk<T, kN> c;
  if constexpr (kN == 1) {
    c.v[0] = *p;
  } else {
    static_assert(sizeof(Chunk<T, kN>) == 16, "a packed chunk is 16 bytes");
    *reinterpret_cast<int4*>(&c) = __ldg(reinterpret_cast<const int4*>(p));
  }
  return c;
}

template <typename T, int kN>
__device__ __forceinline__ void store_chunk(T* p, const Chunk<T, kN>& c) {
  if constexpr (kN == 1) {
    *p = c.v[0];
  } else {
    *reinterpret_cast<int4*>(p) = *reinterpret_cast<const int4*>(&c);
  }
}

inline void check_gpu_float(const char* op, const char* arg, const TensorView& t) {
  if (t.dtype != DType::Float32 && t.dtype != DType::Float64 && t.dtype != DType::Float16 &&
      t.dtype != DType::BFloat16)
    throw ::pydl::TypeError(std::string(op) + ": " + arg +
                            " must be float32, float64, float16 or bfloat16, got " + dtype_name(t.dtype));
}

}  // namespace pydl::cuda

// Dtype dispatch for the CUDA kernels: float32, float64, float16 and bfloat16.
#define PYDL_DISPATCH_CUDA_FLOAT(dtype, op, ...)                                              \
  [&] {                                                                                       \
    switch (dtype) {                                                                          \
      case ::pydl::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::pydl::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }         \
      case ::pydl::DType::Float16: { using scalar_t = __half; return __VA_ARGS__(); }         \
      case ::pydl::DType::BFloat16: { using scalar_t = __nv_bfloat16; return __VA_ARGS__(); } \
      default:                                                                                \
        throw ::pydl::TypeError(std::string(op) + ": unsupported dtype " +                   \
                                ::pydl::dtype_name(dtype) + " on the GPU");                   \
    }                                                                                         \
  }()

namespace pydl::cuda {

// The threads that share one row: a warp (kWarp: blockDim.x / 32 rows per
// block, `slot` is the warp) or the whole block (one row per block).
template <bool kWarp> struct RowGroup {
  int rank, size, slot;
  int64_t row;
  __device__ __forceinline__ RowGroup() {
    if constexpr (kWarp) {
      rank = threadIdx.x & 31;
      size = 32;
      slot = threadIdx.x >> 5;
      row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + slot;
    } else {
      rank = threadIdx.x;
      size = blockDim.x;
      slot = 0;
      row = blockIdx.x;
    }
  }
};

// Reductions over a RowGroup; `shared` holds at least 64 values (unused for a warp).
template <bool kWarp, typename A>
__device__ __forceinline__ A group_sum(A v, A* shared) {
  if constexpr (kWarp) return warp_sum(v);
  else return block_sum(v, shared);
}

template <bool kWarp, typename A>
__device__ __forceinline__ MaxSum<A> group_maxsum(MaxSum<A> v, A* shared) {
  if constexpr (kWarp) return warp_maxsum(v);
  else return block_maxsum(v, shared);
}

// Largest dynamic shared memory one block may opt into on the current device.
inline size_t max_shared_optin() {
  int dev = 0, bytes = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
             "cudaDeviceGetAttribute");
  return static_cast<size_t>(bytes);
}

// Lets `kernel` launch with `bytes` of dynamic shared memory (above 48 KiB needs an opt-in).
template <typename Kernel>
void allow_shared(Kernel kernel, size_t bytes) {
  // The 48 KiB default covers static plus dynamic shared memory together.
  cudaFuncAttributes attr{};
  check_cuda(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
  if (bytes + attr.sharedSizeBytes > 48 * 1024)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(bytes)),
               "cudaFuncSetAttribute");
}

// Launch shape of a row kernel. Rows up to kWarpRowCols wide get a warp each
// (kWarpRows rows per block) and are always staged in shared memory; wider rows
// get a block each, staged when `staged_row_bytes` fits in kMaxStagedBytes (or
// the device's opt-in limit), else read again from global memory.
struct RowPlan {
  bool warp = false, staged = false;
  int threads = 0;
  int64_t blocks = 0;
  size_t smem = 0;
};
constexpr int64_t kWarpRowCols = 1024;
constexpr int kWarpRows = 4;
constexpr size_t kMaxStagedBytes = 128 * 1024;

inline size_t staging_limit() {
  const size_t optin = max_shared_optin();
  const size_t reserve = 2048;  // static shared memory of the row kernels
  return std::min(kMaxStagedBytes, optin > reserve ? optin - reserve : 0);
}

inline RowPlan plan_rows(int64_t rows, int64_t cols, int chunk, size_t staged_row_bytes,
                         int chunks_per_thread = 4) {
  RowPlan p;
  if (cols <= kWarpRowCols && kWarpRows * staged_row_bytes <= staging_limit()) {
    p.warp = p.staged = true;
    p.threads = 32 * kWarpRows;
    p.blocks = (rows + kWarpRows - 1) / kWarpRows;
    p.smem = kWarpRows * staged_row_bytes;
    return p;
  }
  const int64_t chunks = cols / chunk;
  const int64_t want = (chunks + chunks_per_thread - 1) / chunks_per_thread;
  p.threads = static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(128, (want + 31) / 32 * 32)));
  p.blocks = rows;
  p.staged = staged_row_bytes <= staging_limit();
  p.smem = p.staged ? staged_row_bytes : 0;
  return p;
}

}  // namespace pydl::cuda
