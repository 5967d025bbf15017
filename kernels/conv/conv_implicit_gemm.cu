// Implicit-GEMM convolution kernels (NCHW), no column matrix in memory: each 256-thread
// block computes a BM x 128 tile of an output GEMM and gathers its operand tiles straight
// from the tensors into shared memory (zero for padding and tails). BM is 128, or 64 when a
// group has at most 64 output rows (tile_m: 64-channel layers do not fill half-empty tiles).
//
//  gather GEMM (forward, and the input gradient once per stride phase):
//    C (M, N) = A (M, K) @ B (K, N) per group (grid z); A the weights, repacked k-major by
//    pack_weights_kernel so that 16-byte cp.async copies fill its tiles; B gathered from the
//    image (forward: x, columns are output pixels over N * OH * OW, so small late-stage
//    images still fill the tiles; input gradient: dy, columns are the pixels of one stride
//    phase of dx, rows only the taps that reach that phase). Bias is added and the tile
//    written in NCHW by the epilogue.
//  weight-gradient GEMM:
//    dW (OC/g, C/g*KH*KW) = dy (OC/g, pixels) @ cols^T, reduced over N * OH * OW pixels in
//    splits (grid z = groups x splits) that each write float32 partial sums to a workspace;
//    reduce_splits_kernel adds them in a fixed order (deterministic) and rounds to the dtype.
//
// Cores (conv_tiles.cuh), chosen per call by dtype: Mma16 for float16 / bfloat16
// (mma.sync m16n8k16, float32 accumulation), Tf32 for float32 with allow_tf32 (m16n8k8),
// Simt for float32 otherwise (exact FMA). Why the tensor-core paths are fast: the gathers
// for stage k+1 are issued into registers (and the weights' cp.async copies into the other
// shared buffer) before the tensor cores work on stage k, so global latency hides behind the
// math; two shared buffers need one barrier per stage; ldmatrix feeds the fragments.
#include <algorithm>
#include <type_traits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/conv/conv_elementwise.cuh"

namespace pydl::cuda::conv {
namespace {

template <typename T, Core C, int BM>
struct CoreOf;
template <int BM>
struct CoreOf<__half, Core::Mma16, BM> {
  using type = Mma16Core<__half, BM>;
};
template <int BM>
struct CoreOf<__nv_bfloat16, Core::Mma16, BM> {
  using type = Mma16Core<__nv_bfloat16, BM>;
};
template <int BM>
struct CoreOf<float, Core::Tf32, BM> {
  using type = Tf32Core<BM>;
};
template <int BM>
struct CoreOf<float, Core::Simt, BM> {
  using type = SimtCore<BM>;
};

template <typename T, Core C, int BM>
__global__ void __launch_bounds__(kThreads, 2) conv_gather_gemm_kernel(const GatherGemm p, int z0) {
  using S = Shape<C, BM>;
  using R = raw_t<T>;
  using CoreT = typename CoreOf<T, C, BM>::type;
  __shared__ __align__(16) R sa[2][S::BK * S::LA];
  __shared__ __align__(16) R sb[2][S::BK * S::LB];

  const int tid = threadIdx.x;
  const int g = z0 + static_cast<int>(blockIdx.z);
  const int m0 = static_cast<int>(blockIdx.y) * S::BM, n0 = static_cast<int>(blockIdx.x) * S::BN;
  GatherTiles<C, BM, R> ld;
  ld.init(p, g, m0, n0, tid);
  CoreT core;
  core.zero();

  const int k_tiles = (p.K + S::BK - 1) / S::BK;
  if (k_tiles > 0) {
    ld.load_a(p, sa[0], 0);
    mma::cp_async_commit();
    ld.fetch_b(p, 0);
    ld.store_b(sb[0]);
    mma::cp_async_wait<0>();
    __syncthreads();
    for (int kt = 0; kt < k_tiles; ++kt) {
      const int cur = kt & 1;
      const bool more = kt + 1 < k_tiles;
      // Stage cur ^ 1 was last read before the barrier that ended the previous step.
      if (more) {
        ld.load_a(p, sa[cur ^ 1], kt + 1);
        mma::cp_async_commit();
        ld.fetch_b(p, kt + 1);
      }
      core.step(sa[cur], sb[cur]);
      if (more) {
        ld.store_b(sb[cur ^ 1]);
        mma::cp_async_wait<0>();
      }
      __syncthreads();
    }
  }
  gather_epilogue<typename CoreT::Map, T>(p, g, m0, n0, tid,
                                          [&](int ri, int cp, int q) { return core.value(ri, cp, q); });
}

template <typename T, Core C, int BM>
__global__ void __launch_bounds__(kThreads, 2) conv_wgrad_gemm_kernel(const WgradGemm p, int z0) {
  using S = Shape<C, BM>;
  using R = raw_t<T>;
  using CoreT = typename CoreOf<T, C, BM>::type;
  __shared__ __align__(16) R sa[2][S::BK * S::LA];
  __shared__ __align__(16) R sb[2][S::BK * S::LB];
  __shared__ int4 tab[S::BN];

  const int tid = threadIdx.x;
  const int z = z0 + static_cast<int>(blockIdx.z);
  const int g = z / p.splits, s = z - g * p.splits;
  const int m0 = static_cast<int>(blockIdx.y) * S::BM, n0 = static_cast<int>(blockIdx.x) * S::BN;
  wgrad_table(p, tab, n0, tid);
  __syncthreads();
  WgradTiles<C, BM, R> ld;
  ld.init(tid);
  CoreT core;
  core.zero();

  const int k_tiles = (p.R + S::BK - 1) / S::BK;
  const int kt0 = s * p.tiles_per_split;
  const int kt1 = min(k_tiles, kt0 + p.tiles_per_split);
  if (kt0 < kt1) {
    ld.fetch(p, tab, g, m0, kt0);
    ld.store(sa[0], sb[0]);
    __syncthreads();
    for (int kt = kt0; kt < kt1; ++kt) {
      const int cur = (kt - kt0) & 1;
      const bool more = kt + 1 < kt1;
      if (more) ld.fetch(p, tab, g, m0, kt + 1);
      core.step(sa[cur], sb[cur]);
      if (more) ld.store(sa[cur ^ 1], sb[cur ^ 1]);
      __syncthreads();
    }
  }
  wgrad_epilogue<typename CoreT::Map>(p, g, s, m0, n0, tid,
                                      [&](int ri, int cp, int q) { return core.value(ri, cp, q); });
}

template <typename R>
__global__ void conv_pack_weights_kernel(const WeightPack p, int64_t total) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    static_cast<R*>(p.dst)[e] = pack_weight_element<R>(p, e);
}

template <typename T>
__global__ void conv_reduce_splits_kernel(const float* __restrict__ ws, T* __restrict__ out, int64_t total,
                                          int splits) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(reduce_splits_element(ws, total, splits, i));
}

// Blocks for a grid-stride loop over `total` elements.
unsigned stride_blocks(int64_t total, int threads) {
  return static_cast<unsigned>(std::clamp<int64_t>((total + threads - 1) / threads, 1, int64_t{1} << 20));
}

template <typename T, Core C, int BM>
void run_gather(const GatherGemm& p, Stream stream) {
  using S = Shape<C, BM>;
  const unsigned gx = static_cast<unsigned>((p.N + S::BN - 1) / S::BN);
  const unsigned gy = static_cast<unsigned>((p.M + S::BM - 1) / S::BM);
  for (int64_t z0 = 0; z0 < p.groups; z0 += kMaxGridZ) {
    const unsigned gz = static_cast<unsigned>(std::min<int64_t>(kMaxGridZ, p.groups - z0));
    conv_gather_gemm_kernel<T, C, BM><<<dim3(gx, gy, gz), S::THREADS, 0, stream>>>(p, static_cast<int>(z0));
    check_launch("conv_gather_gemm_kernel");
  }
}

template <typename T, Core C, int BM>
void run_wgrad(const WgradGemm& p, Stream stream) {
  using S = Shape<C, BM>;
  const unsigned gx = static_cast<unsigned>((p.N + S::BN - 1) / S::BN);
  const unsigned gy = static_cast<unsigned>((p.M + S::BM - 1) / S::BM);
  const int64_t zs = static_cast<int64_t>(p.groups) * p.splits;
  for (int64_t z0 = 0; z0 < zs; z0 += kMaxGridZ) {
    const unsigned gz = static_cast<unsigned>(std::min<int64_t>(kMaxGridZ, zs - z0));
    conv_wgrad_gemm_kernel<T, C, BM><<<dim3(gx, gy, gz), S::THREADS, 0, stream>>>(p, static_cast<int>(z0));
    check_launch("conv_wgrad_gemm_kernel");
  }
}

[[noreturn]] void no_core(const char* op, DType dtype, Core core) {
  const char* name = core == Core::Mma16 ? "mma16" : core == Core::Tf32 ? "tf32" : "simt";
  throw ValueError(std::string(op) + ": the implicit GEMM has no " + name + " core for dtype " + dtype_name(dtype));
}

template <Core C>
using CoreTag = std::integral_constant<Core, C>;

// Runs Run<T, core, BM> for the dtype, core and tile rows of a launch; false if no core fits.
template <template <typename, Core, int> class Run, typename P>
bool dispatch(const P& p, DType dtype, Core core, Stream stream) {
  const bool narrow = tile_m(p.M) == 64;
  auto go = [&](auto dtype_tag, auto core_tag) {
    using T = decltype(dtype_tag);
    constexpr Core kC = decltype(core_tag)::value;
    if (narrow)
      Run<T, kC, 64>::run(p, stream);
    else
      Run<T, kC, 128>::run(p, stream);
  };
  if (dtype == DType::Float16 && core == Core::Mma16) {
    go(__half(), CoreTag<Core::Mma16>());
  } else if (dtype == DType::BFloat16 && core == Core::Mma16) {
    go(__nv_bfloat16(), CoreTag<Core::Mma16>());
  } else if (dtype == DType::Float32 && core == Core::Tf32) {
    go(float(), CoreTag<Core::Tf32>());
  } else if (dtype == DType::Float32 && core == Core::Simt) {
    go(float(), CoreTag<Core::Simt>());
  } else {
    return false;
  }
  return true;
}

template <typename T, Core C, int BM>
struct GatherRun {
  static void run(const GatherGemm& p, Stream stream) { run_gather<T, C, BM>(p, stream); }
};
template <typename T, Core C, int BM>
struct WgradRun {
  static void run(const WgradGemm& p, Stream stream) { run_wgrad<T, C, BM>(p, stream); }
};

}  // namespace

void launch_gather_gemm(const GatherGemm& p, DType dtype, Core core, Stream stream) {
  if (p.M <= 0 || p.N <= 0 || p.groups <= 0) return;
  if (!dispatch<GatherRun>(p, dtype, core, stream)) no_core("conv2d", dtype, core);
}

void launch_wgrad_gemm(const WgradGemm& p, DType dtype, Core core, Stream stream) {
  if (p.M <= 0 || p.N <= 0 || p.groups <= 0) return;
  if (!dispatch<WgradRun>(p, dtype, core, stream)) no_core("conv2d_backward_weight", dtype, core);
}

void launch_pack_weights(const WeightPack& p, DType dtype, Stream stream) {
  const int64_t total = static_cast<int64_t>(p.groups) * p.Q * p.KI * p.KJ * p.ld;
  if (total <= 0) return;
  const unsigned blocks = stride_blocks(total, 256);
  if (dtype_size(dtype) == 2)
    conv_pack_weights_kernel<uint16_t><<<blocks, 256, 0, stream>>>(p, total);
  else
    conv_pack_weights_kernel<float><<<blocks, 256, 0, stream>>>(p, total);
  check_launch("conv_pack_weights_kernel");
}

void launch_reduce_splits(const float* ws, void* out, int64_t total, int splits, DType dtype, Stream stream) {
  if (total <= 0) return;
  const unsigned blocks = stride_blocks(total, 256);
  switch (dtype) {
    case DType::Float16:
      conv_reduce_splits_kernel<__half><<<blocks, 256, 0, stream>>>(ws, static_cast<__half*>(out), total, splits);
      break;
    case DType::BFloat16:
      conv_reduce_splits_kernel<__nv_bfloat16>
          <<<blocks, 256, 0, stream>>>(ws, static_cast<__nv_bfloat16*>(out), total, splits);
      break;
    case DType::Float32:
      conv_reduce_splits_kernel<float><<<blocks, 256, 0, stream>>>(ws, static_cast<float*>(out), total, splits);
      break;
    default: throw TypeError(std::string("conv2d_backward_weight: unsupported dtype ") + dtype_name(dtype));
  }
  check_launch("conv_reduce_splits_kernel");
}

}  // namespace pydl::cuda::conv
