// Host launchers of the fused GPU attention (forward and backward):
//   out = softmax(q k^T * scale + mask, causal) v,  lse = log-sum-exp of each score row
// for q (B, L, E), k (B, S, E), v (B, S, Ev), B = batch * heads. The L x S scores are
// never written to memory. The bindings validate shapes, dtypes and layouts; these
// functions pick the kernel and launch it on the caller's stream. Nothing here allocates
// device memory: outputs and workspaces come from the caller.
#pragma once

#include <cstdint>
#include <string>

#include "csrc/tensor_view.h"

// cudaStream_t without the CUDA headers, so the bindings compile with a plain C++ compiler.
struct CUstream_st;

namespace pydl::cuda {

using AttentionStream = CUstream_st*;

// Every pointer and stride the kernels need. Strides are in elements. Inputs need only a
// contiguous last dimension; outputs and workspaces are contiguous.
struct AttentionArgs {
  DType dtype = DType::Float32;  // of q, k, v, out, dout, dq, dk, dv
  int64_t B = 0, L = 0, S = 0, E = 0, Ev = 0;
  const void* q = nullptr;
  int64_t q_bs = 0, q_rs = 0;
  const void* k = nullptr;
  int64_t k_bs = 0, k_rs = 0;
  const void* v = nullptr;
  int64_t v_bs = 0, v_rs = 0;
  // Additive float32 mask viewed as (B1, mask_h2, L, S): head b reads [b / h2, b % h2].
  const float* mask = nullptr;
  int64_t mask_h2 = 1;
  int64_t mask_s0 = 0, mask_s1 = 0, mask_s2 = 0, mask_s3 = 0;
  double scale = 1.0;
  bool causal = false;  // key j is visible to query i only when j <= i (top-left aligned)

  // Forward: out (B, L, Ev), lse (B, L) float32, -inf on rows with no visible key.
  // Backward: out and lse are the forward's (out with any batch / row strides).
  void* out = nullptr;
  int64_t out_bs = 0, out_rs = 0;
  float* lse = nullptr;

  // Backward only.
  const void* dout = nullptr;  // (B, L, Ev), any batch / row strides
  int64_t dout_bs = 0, dout_rs = 0;
  float* dsum = nullptr;    // workspace (B, L): rowsum(dout * out)
  float* dq_acc = nullptr;  // (B, L, E) float32, zero-filled by the caller; dQ is added into it
  void* dq = nullptr;       // (B, L, E) in dtype; null when dq_acc is the result (float32)
  void* dk = nullptr;       // (B, S, E)
  void* dv = nullptr;       // (B, S, Ev)
};

// Tile shape of the kernels that run `dtype` at head dims (E, Ev).
struct AttentionTiles {
  int head_dim = 0;                  // E and Ev padded to this instantiation
  int fwd_rows = 0, fwd_keys = 0;    // forward: query rows per block, keys per step
  int bwd_rows = 0, bwd_keys = 0;    // backward: query rows per step, keys per block
  size_t fwd_smem = 0, bwd_smem = 0;  // dynamic shared memory, bytes
};

// Throws ValueError naming `op` when no fused kernel covers the dtype or head dims.
AttentionTiles attention_tiles(const char* op, DType dtype, int64_t E, int64_t Ev);

// Empty when the fused kernels can run `dtype` at head dims (E, Ev) on the current device
// (dtype, head dims, compute capability, shared memory); otherwise the reason.
std::string attention_unsupported(DType dtype, int64_t E, int64_t Ev);

void attention_forward(const AttentionArgs& a, AttentionStream stream);
void attention_backward(const AttentionArgs& a, AttentionStream stream);

}  // namespace pydl::cuda
