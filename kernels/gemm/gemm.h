// Host launchers for the GPU matrix multiply:
//   out[z] = act(alpha * A[z] @ B[z] + beta * out[z] + bias)
// with float32 accumulation. Each operand is row-major or column-major with
// its own leading dimension and batch stride (0 broadcasts it over the batch).
// The bindings validate shapes and dtypes; these functions only pick and launch.
#pragma once

#include <cstdint>
#include <string>

#include "csrc/tensor_view.h"

// cudaStream_t without the CUDA headers, so the bindings compile with a plain C++ compiler.
struct CUstream_st;

namespace pydl::cuda {

using GemmStream = CUstream_st*;

enum class GemmActivation : int { None = 0, Relu = 1, Gelu = 2 };

enum class GemmVariant : int {
  SimtF32,  // float32 on CUDA cores, exact FMA
  MmaSync,  // tensor cores through mma.sync (sm_80+): f16, bf16, tf32
};

struct GemmArgs {
  DType dtype = DType::Float32;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  // A is (M, K): row-major means K is the contiguous dimension, and lda is
  // the stride between rows; column-major means M is contiguous and lda is
  // the stride between columns.
  const void* a = nullptr;
  bool a_row_major = true;
  int64_t lda = 0, a_batch_stride = 0;
  // B is (K, N): row-major means N is contiguous.
  const void* b = nullptr;
  bool b_row_major = true;
  int64_t ldb = 0, b_batch_stride = 0;
  // out is (M, N), always row-major.
  void* out = nullptr;
  int64_t ldo = 0, out_batch_stride = 0;
  const void* bias = nullptr;  // (N,) or null
  float alpha = 1.0f, beta = 0.0f;
  GemmActivation activation = GemmActivation::None;
  bool allow_tf32 = false;
};

const char* gemm_variant_name(GemmVariant v);
// Parses "simt_f32", "mma_sync"; throws ValueError naming gemm otherwise.
GemmVariant gemm_variant_from_name(const std::string& name);
// Empty when `v` can run `args` on a device of compute capability `cc`
// (major * 10 + minor); otherwise the reason it cannot.
std::string gemm_variant_unsupported(GemmVariant v, const GemmArgs& args, int cc);
// The variant gemm() picks for `args` on the current device.
GemmVariant gemm_pick_variant(const GemmArgs& args, int cc);
// Compute capability of the current device, or -1.
int gemm_current_capability();

void gemm_simt_f32(const GemmArgs& args, GemmStream stream);
void gemm_mma_sync(const GemmArgs& args, GemmStream stream);

// Picks (or checks the forced variant) and launches; throws on a bad choice.
void gemm(const GemmArgs& args, GemmStream stream, const GemmVariant* forced);

}  // namespace pydl::cuda
