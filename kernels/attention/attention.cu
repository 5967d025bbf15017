// Fused attention, host side: which kernel runs a problem, and the two small kernels of
// the backward around the main one.
//   float16, bfloat16  tensor cores, mma.sync (attention_mma.cu)
//   float32            CUDA cores, exact float32 FMA (attention_simt.cu)
// Each comes in four padded head dims (32, 64, 128, 256): the smallest that holds both E and
// Ev. The backward runs three kernels on the caller's stream: D = rowsum(dO * O) (one warp
// per row), the main kernel (dK, dV written, dQ added into a float32 buffer), and for the
// half types the conversion of that buffer to the output dtype.
#include <climits>

#include "kernels/attention/attention.h"
#include "kernels/attention/attention_common.cuh"
#include "kernels/gemm/gemm.h"

namespace pydl::cuda {
namespace {

using attn::Params;

int padded_head_dim(int64_t E, int64_t Ev) {
  const int64_t w = E > Ev ? E : Ev;
  for (int d : {32, 64, 128, 256})
    if (w <= d) return d;
  return 0;
}

template <int D>
AttentionTiles tiles_for(DType dtype) {
  AttentionTiles t;
  t.head_dim = D;
  if (dtype == DType::Float32) {
    t.fwd_rows = t.bwd_rows = attn::kSimtRows;
    t.fwd_keys = t.bwd_keys = attn::kSimtKeys;
    t.fwd_smem = attn::simt_fwd_smem<D>();
    t.bwd_smem = attn::simt_bwd_smem<D>();
  } else {
    t.fwd_rows = attn::MmaFwdConfig<D>::kRows;
    t.fwd_keys = attn::MmaFwdConfig<D>::kKeys;
    t.bwd_rows = attn::MmaBwdConfig<D>::kRows;
    t.bwd_keys = attn::MmaBwdConfig<D>::kKeys;
    t.fwd_smem = attn::mma_fwd_smem<D, __half>();
    t.bwd_smem = attn::mma_bwd_smem<D, __half>();
  }
  return t;
}

bool aligned_operand(const void* p, int64_t bs, int64_t rs, int64_t elem) {
  const int64_t v = 16 / elem;
  return aligned16(p) && bs % v == 0 && rs % v == 0;
}

Params make_params(const AttentionArgs& a) {
  Params p{};
  const int64_t elem = dtype_size(a.dtype);
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.q_bs = a.q_bs;
  p.q_rs = a.q_rs;
  p.k_bs = a.k_bs;
  p.k_rs = a.k_rs;
  p.v_bs = a.v_bs;
  p.v_rs = a.v_rs;
  p.mask = a.mask;
  p.m_s0 = a.mask_s0;
  p.m_s1 = a.mask_s1;
  p.m_s2 = a.mask_s2;
  p.m_s3 = a.mask_s3;
  p.m_h2 = static_cast<int>(a.mask_h2 > 0 ? a.mask_h2 : 1);
  p.out = a.out;
  p.out_bs = a.out_bs;
  p.out_rs = a.out_rs;
  p.lse = a.lse;
  p.dout = a.dout;
  p.dout_bs = a.dout_bs;
  p.dout_rs = a.dout_rs;
  p.dsum = a.dsum;
  p.dq_acc = a.dq_acc;
  p.dk = a.dk;
  p.dv = a.dv;
  p.B = static_cast<int>(a.B);
  p.L = static_cast<int>(a.L);
  p.S = static_cast<int>(a.S);
  p.E = static_cast<int>(a.E);
  p.Ev = static_cast<int>(a.Ev);
  p.scale = static_cast<float>(a.scale);
  p.scale_log2 = static_cast<float>(a.scale * 1.4426950408889634);
  p.causal = a.causal ? 1 : 0;
  p.q_al = aligned_operand(a.q, a.q_bs, a.q_rs, elem);
  p.k_al = aligned_operand(a.k, a.k_bs, a.k_rs, elem);
  p.v_al = aligned_operand(a.v, a.v_bs, a.v_rs, elem);
  p.dout_al = a.dout ? aligned_operand(a.dout, a.dout_bs, a.dout_rs, elem) : 0;
  return p;
}

void check_sizes(const char* op, const AttentionArgs& a, int64_t rows_per_block, int64_t blocks_along) {
  if (a.B >= INT_MAX || a.L >= INT_MAX || a.S >= INT_MAX)
    throw ValueError(std::string(op) + ": batch*heads and sequence lengths must each be below 2^31");
  const int64_t tiles = (blocks_along + rows_per_block - 1) / rows_per_block;
  if (tiles * a.B >= INT_MAX)
    throw ValueError(std::string(op) + ": too many (batch*heads, tile) blocks for one launch: " +
                     std::to_string(tiles * a.B));
}

// dsum[b, i] = sum_e dout[b, i, e] * out[b, i, e] in float32, one warp per row.
template <typename T>
__global__ void attention_dsum_kernel(const Params p) {
  constexpr int kRowsPerBlock = 8;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= static_cast<int64_t>(p.B) * p.L) return;  // the whole warp leaves together
  const int64_t b = row / p.L, i = row % p.L;
  const T* o = static_cast<const T*>(p.out) + b * p.out_bs + i * p.out_rs;
  const T* g = static_cast<const T*>(p.dout) + b * p.dout_bs + i * p.dout_rs;
  float acc = 0.0f;
  for (int e = lane; e < p.Ev; e += 32) acc = fmaf(to_float<T>(o[e]), to_float<T>(g[e]), acc);
  acc = warp_sum(acc);
  if (lane == 0) p.dsum[row] = acc;
}

template <typename T>
__global__ void attention_dq_convert_kernel(const float* __restrict__ acc, T* __restrict__ dq, int64_t n) {
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dq[idx] = from_float<T>(acc[idx]);
}

template <typename T>
void launch_dsum(const Params& p, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.B) * p.L;
  const int64_t blocks = (rows + 7) / 8;
  attention_dsum_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p);
  check_launch("scaled_dot_product_attention_backward (attention_dsum)");
}

template <typename T>
void launch_convert(const float* acc, void* dq, int64_t n, cudaStream_t stream) {
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
  attention_dq_convert_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(acc, static_cast<T*>(dq), n);
  check_launch("scaled_dot_product_attention_backward (attention_dq_convert)");
}

}  // namespace

AttentionTiles attention_tiles(const char* op, DType dtype, int64_t E, int64_t Ev) {
  if (dtype != DType::Float32 && dtype != DType::Float16 && dtype != DType::BFloat16)
    throw TypeError(std::string(op) + ": the fused GPU kernels take float32, float16 and bfloat16, got " +
                    dtype_name(dtype));
  if (E < 1 || Ev < 1 || E > 256 || Ev > 256)
    throw ValueError(std::string(op) + ": the fused GPU kernels take head dims 1 to 256, got E = " +
                     std::to_string(E) + ", Ev = " + std::to_string(Ev));
  switch (padded_head_dim(E, Ev)) {
    case 32: return tiles_for<32>(dtype);
    case 64: return tiles_for<64>(dtype);
    case 128: return tiles_for<128>(dtype);
    default: return tiles_for<256>(dtype);
  }
}

std::string attention_unsupported(DType dtype, int64_t E, int64_t Ev) {
  AttentionTiles t;
  try {
    t = attention_tiles("attention", dtype, E, Ev);
  } catch (const std::exception& e) {
    return e.what();
  }
  const int cc = gemm_current_capability();
  if (cc < 80) return "the fused attention kernels need compute capability 8.0 or newer";
  size_t optin = 0;
  try {
    optin = max_shared_optin();
  } catch (const std::exception& e) {
    return e.what();
  }
  const size_t need = std::max(t.fwd_smem, t.bwd_smem);
  if (need > optin)
    return "head dim " + std::to_string(t.head_dim) + " needs " + std::to_string(need) +
           " bytes of shared memory per block; the device allows " + std::to_string(optin);
  return "";
}

void attention_forward(const AttentionArgs& a, AttentionStream s) {
  const char* op = "scaled_dot_product_attention";
  const AttentionTiles t = attention_tiles(op, a.dtype, a.E, a.Ev);
  check_sizes(op, a, t.fwd_rows, a.L);
  if (a.B == 0 || a.L == 0) return;
  const Params p = make_params(a);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(s);
  if (a.dtype == DType::Float32)
    attn::simt_forward(p, t.head_dim, stream);
  else
    attn::mma_forward(p, a.dtype, t.head_dim, stream);
}

void attention_backward(const AttentionArgs& a, AttentionStream s) {
  const char* op = "scaled_dot_product_attention_backward";
  const AttentionTiles t = attention_tiles(op, a.dtype, a.E, a.Ev);
  check_sizes(op, a, t.bwd_keys, a.S);
  if (a.B == 0) return;
  const Params p = make_params(a);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(s);
  if (a.L > 0) {
    switch (a.dtype) {
      case DType::Float32: launch_dsum<float>(p, stream); break;
      case DType::Float16: launch_dsum<__half>(p, stream); break;
      default: launch_dsum<__nv_bfloat16>(p, stream); break;
    }
  }
  // With L == 0 the main kernel still runs: it writes the (zero) dK and dV.
  if (a.S > 0) {
    if (a.dtype == DType::Float32)
      attn::simt_backward(p, t.head_dim, stream);
    else
      attn::mma_backward(p, a.dtype, t.head_dim, stream);
  }
  if (a.dq != nullptr && a.L > 0) {
    const int64_t n = a.B * a.L * a.E;
    if (a.dtype == DType::Float16)
      launch_convert<__half>(a.dq_acc, a.dq, n, stream);
    else if (a.dtype == DType::BFloat16)
      launch_convert<__nv_bfloat16>(a.dq_acc, a.dq, n, stream);
  }
}

}  // namespace pydl::cuda
