// Device pieces shared by the attention kernels (attention_mma.cu, attention_simt.cu):
// the kernel parameters, the tile configurations, and the element-wise masking rule.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/attention/attention.h"
#include "kernels/common/cuda_utils.cuh"

namespace pydl::cuda::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// What every attention kernel reads; passed by value. Scores are kept in base 2:
// x = (q.k * scale + mask) * log2(e), so exp is one exp2f.
struct Params {
  const void* q;
  const void* k;
  const void* v;
  int64_t q_bs, q_rs, k_bs, k_rs, v_bs, v_rs;
  const float* mask;  // null: no additive mask
  int64_t m_s0, m_s1, m_s2, m_s3;
  int m_h2;
  void* out;  // forward: (B, L, Ev) contiguous; backward: read with out_bs / out_rs
  int64_t out_bs, out_rs;
  float* lse;  // (B, L)
  const void* dout;
  int64_t dout_bs, dout_rs;
  float* dsum;        // (B, L): written by the dsum kernel, read by the backward
  float* dq_acc;      // (B, L, E) float32
  void* dk;           // (B, S, E)
  void* dv;           // (B, S, Ev)
  int B, L, S, E, Ev;
  float scale;       // softmax scale (dK and dQ carry it)
  float scale_log2;  // scale * log2(e)
  int causal;
  // 16-byte cp.async allowed (base, batch and row strides all 16-byte multiples).
  int q_al, k_al, v_al, dout_al;
};

// Tile configurations. kD: E and Ev padded (zero-filled past the real width).
// Forward (tensor cores): kWarps warps of 16 query rows each, kKeys keys per step.
// Backward (tensor cores): a block owns kKeys keys and walks the queries kRows at a time;
// three warp grids split its three products: (kRows x kKeys) scores, (kKeys x kD) dK and
// dV, (kRows x kDqCols) slices of dQ.
template <int D> struct MmaFwdConfig;
template <> struct MmaFwdConfig<32> { static constexpr int kWarps = 4, kRows = 64, kKeys = 64; };
template <> struct MmaFwdConfig<64> { static constexpr int kWarps = 4, kRows = 64, kKeys = 64; };
template <> struct MmaFwdConfig<128> { static constexpr int kWarps = 4, kRows = 64, kKeys = 64; };
template <> struct MmaFwdConfig<256> { static constexpr int kWarps = 4, kRows = 64, kKeys = 32; };

template <int D> struct MmaBwdConfig;
template <> struct MmaBwdConfig<32> {
  static constexpr int kWarps = 4, kRows = 64, kKeys = 64;
  static constexpr int kSWm = 4, kSWn = 1;  // scores: warps along rows x keys
  static constexpr int kKWm = 4, kKWn = 1;  // dK, dV: warps along keys x head dim
  static constexpr int kQWm = 4, kQWn = 1, kDqCols = 32;  // dQ slices: rows x columns
};
template <> struct MmaBwdConfig<64> {
  static constexpr int kWarps = 4, kRows = 64, kKeys = 64;
  static constexpr int kSWm = 4, kSWn = 1;
  static constexpr int kKWm = 4, kKWn = 1;
  static constexpr int kQWm = 4, kQWn = 1, kDqCols = 64;
};
template <> struct MmaBwdConfig<128> {
  static constexpr int kWarps = 8, kRows = 64, kKeys = 64;
  static constexpr int kSWm = 4, kSWn = 2;
  static constexpr int kKWm = 4, kKWn = 2;
  static constexpr int kQWm = 4, kQWn = 2, kDqCols = 128;
};
template <> struct MmaBwdConfig<256> {
  static constexpr int kWarps = 8, kRows = 32, kKeys = 32;
  static constexpr int kSWm = 2, kSWn = 4;
  static constexpr int kKWm = 2, kKWn = 4;
  static constexpr int kQWm = 2, kQWn = 4, kDqCols = 128;
};

// float32 on CUDA cores: 256 threads, 8 per query (or key) row, 32 rows and 32 keys per step.
constexpr int kSimtThreads = 256, kSimtRows = 32, kSimtKeys = 32;

template <int D, typename T> constexpr size_t mma_fwd_smem() {
  using C = MmaFwdConfig<D>;
  return static_cast<size_t>(C::kRows + 4 * C::kKeys) * (D + 8) * sizeof(T);
}
template <int D, typename T> constexpr size_t mma_bwd_smem() {
  using C = MmaBwdConfig<D>;
  return (static_cast<size_t>(2 * C::kKeys + 4 * C::kRows) * (D + 8) +
          2 * static_cast<size_t>(C::kRows) * (C::kKeys + 8)) * sizeof(T) +
         4 * C::kRows * sizeof(float);
}
template <int D> constexpr size_t simt_fwd_smem() {
  return (static_cast<size_t>(kSimtRows + 2 * kSimtKeys) * (D + 4) + kSimtRows * (kSimtKeys + 1)) *
         sizeof(float);
}
template <int D> constexpr size_t simt_bwd_smem() {
  return (static_cast<size_t>(2 * kSimtRows + 2 * kSimtKeys) * (D + 4) +
          2 * kSimtRows * (kSimtKeys + 1) + 2 * kSimtRows) * sizeof(float);
}

// The additive mask of head b at (i, j), in base 2; the caller keeps i < L and j < S.
__device__ __forceinline__ float mask_at(const Params& p, int b, int i, int j) {
  const int64_t b1 = b / p.m_h2, b2 = b % p.m_h2;
  return __ldg(p.mask + b1 * p.m_s0 + b2 * p.m_s1 + static_cast<int64_t>(i) * p.m_s2 +
               static_cast<int64_t>(j) * p.m_s3) * kLog2e;
}

// Key j is hidden from query i: past the keys, or above the diagonal under the causal mask.
__device__ __forceinline__ bool hidden(const Params& p, int i, int j) {
  return j >= p.S || (p.causal && j > i);
}

// Head b's keys that some query row in [i0, i1) may see: [0, key_end).
__device__ __forceinline__ int key_end(const Params& p, int i1) {
  if (!p.causal) return p.S;
  const int last = i1 < p.L ? i1 : p.L;  // rows i < last; row i sees keys j <= i
  return last < p.S ? last : p.S;
}

// Launchers of the kernel files; D is the padded head dim (32, 64, 128 or 256).
void mma_forward(const Params& p, DType dtype, int D, cudaStream_t stream);   // attention_mma.cu
void mma_backward(const Params& p, DType dtype, int D, cudaStream_t stream);
void simt_forward(const Params& p, int D, cudaStream_t stream);               // attention_simt.cu
void simt_backward(const Params& p, int D, cudaStream_t stream);

}  // namespace pydl::cuda::attn
