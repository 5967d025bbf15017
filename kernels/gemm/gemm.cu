// GEMM variant selection (host code): which kernel runs a given problem.
//   simt_f32  float32 without TF32: CUDA cores, exact FMA (gemm_simt_f32.cu)
//   mma_sync  float16, bfloat16, and float32 with allow_tf32: tensor cores,
//             sm_80 and newer (gemm_mma_sync.cu)
// A forced variant that cannot run the problem is a ValueError, never a
// silent fallback, so tests know which kernel they exercised.
#include <climits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/gemm/gemm.h"

namespace pydl::cuda {

const char* gemm_variant_name(GemmVariant v) {
  switch (v) {
    case GemmVariant::SimtF32: return "simt_f32";
    case GemmVariant::MmaSync: return "mma_sync";
  }
  return "unknown";
}

GemmVariant gemm_variant_from_name(const std::string& name) {
  if (name == "simt_f32") return GemmVariant::SimtF32;
  if (name == "mma_sync") return GemmVariant::MmaSync;
  throw ValueError("gemm: unknown variant '" + name + "' (expected 'simt_f32' or 'mma_sync')");
}

std::string gemm_variant_unsupported(GemmVariant v, const GemmArgs& g, int cc) {
  switch (v) {
    case GemmVariant::SimtF32:
      if (g.dtype != DType::Float32) return "simt_f32 handles float32 only";
      return "";
    case GemmVariant::MmaSync:
      if (cc < 80) return "mma_sync needs compute capability 8.0 or newer";
      if (g.dtype == DType::Float32 && !g.allow_tf32)
        return "mma_sync rounds float32 to TF32 and needs allow_tf32=True";
      if (g.dtype != DType::Float32 && g.dtype != DType::Float16 && g.dtype != DType::BFloat16)
        return "mma_sync handles float16, bfloat16 and float32 (TF32)";
      return "";
  }
  return "unknown variant";
}

GemmVariant gemm_pick_variant(const GemmArgs& g, int cc) {
  if (g.dtype == DType::Float32 && !g.allow_tf32) return GemmVariant::SimtF32;
  return GemmVariant::MmaSync;
}

int gemm_current_capability() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return major * 10 + minor;
}

void gemm(const GemmArgs& g, GemmStream stream, const GemmVariant* forced) {
  if (g.m >= INT_MAX || g.n >= INT_MAX || g.k >= INT_MAX)
    throw ValueError("gemm: M, N and K must each be below 2^31");
  const int cc = gemm_current_capability();
  const GemmVariant v = forced ? *forced : gemm_pick_variant(g, cc);
  const std::string why = gemm_variant_unsupported(v, g, cc);
  if (!why.empty()) throw ValueError("gemm: variant " + std::string(gemm_variant_name(v)) + " cannot run: " + why);
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  switch (v) {
    case GemmVariant::SimtF32: return gemm_simt_f32(g, stream);
    case GemmVariant::MmaSync: return gemm_mma_sync(g, stream);
  }
}

}  // namespace pydl::cuda
