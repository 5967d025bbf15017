// Tensor-core GEMM through mma.sync (sm_80 and newer):
// out = act(alpha * A @ B + beta * out + bias), float32 accumulation.
// Variant "mma_sync": float16 and bfloat16 (m16n8k16), and float32 inputs
// rounded to TF32 (m16n8k8) when allow_tf32 is set. It is the tensor-core
// path everywhere except on Hopper with TMA-friendly operands (see gemm_wgmma.cu).
//
// A 128-thread block (2x2 warps, 64x64 per warp) computes a 128x128 tile.
// K slices of 64 bytes per row (32 half-precision or 16 float elements) are
// copied to shared memory by cp.async, four stages deep, so three slices are
// in flight while the tensor cores work on the fourth. Tiles keep the layout
// they have in global memory, padded by 16 bytes per line so that ldmatrix
// (plain or .trans, depending on which dimension is contiguous) and the TF32
// scalar fragment loads hit 8 different 16-byte bank groups. The copies are
// 16-byte cp.async with zero fill at the tails when the pointers and leading
// dimensions are 16-byte aligned, plain element loads otherwise.
#include <atomic>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_common.cuh"

namespace pydl::cuda {
namespace {

using gemm_detail::Epilogue;

constexpr int kBM = 128, kBN = 128, kThreads = 128, kStages = 4;
constexpr int kWarpM = 64, kWarpN = 64;
constexpr int kMi = kWarpM / 16, kNi = kWarpN / 8;  // mma tiles per warp

// Shared-memory tile of one operand: `outer` lines of `inner` contiguous
// elements, each line padded by `pad` elements.
template <typename T, bool K_CONTIG, int MN>
struct TileShape {
  static constexpr int kBK = 64 / static_cast<int>(sizeof(T));
  static constexpr int kPad = K_CONTIG ? 16 / static_cast<int>(sizeof(T)) : 8;
  static constexpr int kInner = K_CONTIG ? kBK : MN;
  static constexpr int kOuter = K_CONTIG ? MN : kBK;
  static constexpr int kLine = kInner + kPad;  // elements between lines
  static constexpr int kElems = kOuter * kLine;
};

template <typename T>
struct MmaTraits;  // element type -> raw storage and mma shape

template <>
struct MmaTraits<__half> {
  static constexpr int kK = 16;
};
template <>
struct MmaTraits<__nv_bfloat16> {
  static constexpr int kK = 16;
};
template <>
struct MmaTraits<float> {
  static constexpr int kK = 8;
};

__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                    __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], float) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(gemm_detail::smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(gemm_detail::smem_addr(p)));
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// Copies one operand's K slice into shared memory. The slice is `outer` lines
// (rows of the contiguous dimension) starting at (line0, col0) of a matrix
// with `lines` x `cols` logical extent; out-of-range elements become zero.
template <typename T, typename Shape, bool ALIGNED>
__device__ __forceinline__ void load_tile(T* smem, const T* g, int64_t ld, int64_t line0, int64_t col0,
                                          int64_t lines, int64_t cols) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kChunksPerLine = Shape::kInner / kVec;
  constexpr int kChunks = Shape::kOuter * kChunksPerLine;
  static_assert(kChunks % kThreads == 0, "tile chunks must split evenly over the block");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int c = threadIdx.x + i * kThreads;
    const int line = c / kChunksPerLine;
    const int col = (c % kChunksPerLine) * kVec;
    const int64_t gl = line0 + line, gc = col0 + col;
    int valid = 0;
    if (gl < lines && gc < cols) valid = static_cast<int>(cols - gc < kVec ? cols - gc : kVec);
    T* dst = smem + line * Shape::kLine + col;
    if constexpr (ALIGNED) {
      const T* src = valid > 0 ? g + gl * ld + gc : g;
      gemm_detail::cp_async16(dst, src, valid * static_cast<int>(sizeof(T)));
    } else {
      using Raw = std::conditional_t<sizeof(T) == 2, uint16_t, uint32_t>;
      const Raw* src = reinterpret_cast<const Raw*>(g + gl * ld + gc);
      Raw* d = reinterpret_cast<Raw*>(dst);
#pragma unroll
      for (int e = 0; e < kVec; ++e) d[e] = e < valid ? src[e] : Raw(0);
    }
  }
}

template <typename T, bool A_ROW, bool B_ROW, bool ALIGNED>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_mma_sync_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int M, int N, int K,
                         int64_t lda, int64_t ldb, int64_t ldo, int64_t a_bs, int64_t b_bs, int64_t o_bs,
                         int pair_store, Epilogue ep) {
  using AShape = TileShape<T, A_ROW, kBM>;
  using BShape = TileShape<T, !B_ROW, kBN>;
  constexpr int kBK = AShape::kBK;
  constexpr int kMmaK = MmaTraits<T>::kK;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* smem_a = reinterpret_cast<T*>(smem_raw);
  T* smem_b = smem_a + kStages * AShape::kElems;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 1, wn = warp & 1;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  a += blockIdx.z * a_bs;
  b += blockIdx.z * b_bs;
  out += blockIdx.z * o_bs;

  auto load_stage = [&](int stage, int kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * kBK;
    T* sa = smem_a + stage * AShape::kElems;
    T* sb = smem_b + stage * BShape::kElems;
    if (A_ROW)
      load_tile<T, AShape, ALIGNED>(sa, a, lda, m0, k0, M, K);
    else
      load_tile<T, AShape, ALIGNED>(sa, a, lda, k0, m0, K, M);
    if (B_ROW)
      load_tile<T, BShape, ALIGNED>(sb, b, ldb, k0, n0, K, N);
    else
      load_tile<T, BShape, ALIGNED>(sb, b, ldb, n0, k0, N, K);
  };

  float acc[kMi][kNi][4];
#pragma unroll
  for (int i = 0; i < kMi; ++i)
#pragma unroll
    for (int j = 0; j < kNi; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

  const int k_tiles = (K + kBK - 1) / kBK;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_stage(s, s);
    gemm_detail::cp_async_commit();
  }

  const int g = lane >> 2, t = lane & 3;      // mma fragment coordinates
  const int lr = lane & 7, lm = lane >> 3;    // ldmatrix: line within and index of the 8x8 matrix

  for (int kt = 0; kt < k_tiles; ++kt) {
    gemm_detail::cp_async_wait<kStages - 2>();
    __syncthreads();
    {
      const int nk = kt + kStages - 1;
      if (nk < k_tiles) load_stage(nk % kStages, nk);
      gemm_detail::cp_async_commit();
    }
    const T* sa = smem_a + (kt % kStages) * AShape::kElems;
    const T* sb = smem_b + (kt % kStages) * BShape::kElems;

#pragma unroll
    for (int kk = 0; kk < kBK; kk += kMmaK) {
      uint32_t af[kMi][4], bf[kNi][2];
      if constexpr (sizeof(T) == 2) {
#pragma unroll
        for (int mi = 0; mi < kMi; ++mi) {
          const int mb = wm * kWarpM + mi * 16;
          if (A_ROW)
            ldmatrix_x4(af[mi], sa + (mb + lr + (lm & 1) * 8) * AShape::kLine + kk + (lm >> 1) * 8);
          else
            ldmatrix_x4_trans(af[mi], sa + (kk + lr + (lm >> 1) * 8) * AShape::kLine + mb + (lm & 1) * 8);
        }
#pragma unroll
        for (int nj = 0; nj < kNi / 2; ++nj) {
          const int nb = wn * kWarpN + nj * 16;
          uint32_t r[4];
          if (B_ROW)
            ldmatrix_x4_trans(r, sb + (kk + lr + (lm & 1) * 8) * BShape::kLine + nb + (lm >> 1) * 8);
          else
            ldmatrix_x4(r, sb + (nb + lr + (lm >> 1) * 8) * BShape::kLine + kk + (lm & 1) * 8);
          bf[2 * nj][0] = r[0];
          bf[2 * nj][1] = r[1];
          bf[2 * nj + 1][0] = r[2];
          bf[2 * nj + 1][1] = r[3];
        }
      } else {
        // TF32: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (k t, n g), b1 (k t+4, n g).
        auto at = [&](int m, int k) -> float {
          return A_ROW ? sa[m * AShape::kLine + k] : sa[k * AShape::kLine + m];
        };
        auto bt = [&](int k, int n) -> float {
          return B_ROW ? sb[k * BShape::kLine + n] : sb[n * BShape::kLine + k];
        };
#pragma unroll
        for (int mi = 0; mi < kMi; ++mi) {
          const int mb = wm * kWarpM + mi * 16 + g;
          af[mi][0] = to_tf32(at(mb, kk + t));
          af[mi][1] = to_tf32(at(mb + 8, kk + t));
          af[mi][2] = to_tf32(at(mb, kk + t + 4));
          af[mi][3] = to_tf32(at(mb + 8, kk + t + 4));
        }
#pragma unroll
        for (int ni = 0; ni < kNi; ++ni) {
          const int nb = wn * kWarpN + ni * 8 + g;
          bf[ni][0] = to_tf32(bt(kk + t, nb));
          bf[ni][1] = to_tf32(bt(kk + t + 4, nb));
        }
      }
#pragma unroll
      for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
        for (int ni = 0; ni < kNi; ++ni) mma(acc[mi][ni], af[mi], bf[ni], T());
    }
  }
  gemm_detail::cp_async_wait<0>();

  // c0, c1 at (g, 2t), (g, 2t+1); c2, c3 at (g+8, 2t), (g+8, 2t+1).
#pragma unroll
  for (int mi = 0; mi < kMi; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = m0 + wm * kWarpM + mi * 16 + g + h * 8;
      if (row >= M) continue;
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni) {
        const int64_t col = n0 + wn * kWarpN + ni * 8 + 2 * t;
        const float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (pair_store && col + 1 < N) {
          gemm_detail::store_output_pair<T>(out, ldo, row, col, v0, v1, ep);
        } else {
          if (col < N) gemm_detail::store_output<T>(out, ldo, row, col, v0, ep);
          if (col + 1 < N) gemm_detail::store_output<T>(out, ldo, row, col + 1, v1, ep);
        }
      }
    }
  }
}

template <typename T, bool A_ROW, bool B_ROW, bool ALIGNED>
void launch(const GemmArgs& g, cudaStream_t stream) {
  using AShape = TileShape<T, A_ROW, kBM>;
  using BShape = TileShape<T, !B_ROW, kBN>;
  constexpr size_t smem = kStages * (AShape::kElems + BShape::kElems) * sizeof(T);
  auto kernel = gemm_mma_sync_kernel<T, A_ROW, B_ROW, ALIGNED>;
  // The attribute is per device; remember the devices it was set on.
  static std::atomic<uint64_t> configured{0};
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "gemm_mma_sync");
  const uint64_t bit = dev < 64 ? (uint64_t{1} << dev) : 0;
  if (!bit || !(configured.load() & bit)) {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
               "gemm_mma_sync");
    configured.fetch_or(bit);
  }
  const T* a = static_cast<const T*>(g.a);
  const T* b = static_cast<const T*>(g.b);
  T* out = static_cast<T*>(g.out);
  const int pair = (reinterpret_cast<uintptr_t>(out) % (2 * sizeof(T)) == 0) && g.ldo % 2 == 0 &&
                   g.out_batch_stride % 2 == 0;
  const Epilogue ep = gemm_detail::make_epilogue(g);
  for (int64_t z0 = 0; z0 < g.batch; z0 += gemm_detail::kMaxGridZ) {
    const int64_t nz = std::min<int64_t>(gemm_detail::kMaxGridZ, g.batch - z0);
    const dim3 grid(static_cast<unsigned>((g.n + kBN - 1) / kBN), static_cast<unsigned>((g.m + kBM - 1) / kBM),
                    static_cast<unsigned>(nz));
    kernel<<<grid, kThreads, smem, stream>>>(a + z0 * g.a_batch_stride, b + z0 * g.b_batch_stride,
                                             out + z0 * g.out_batch_stride, static_cast<int>(g.m),
                                             static_cast<int>(g.n), static_cast<int>(g.k), g.lda, g.ldb, g.ldo,
                                             g.a_batch_stride, g.b_batch_stride, g.out_batch_stride, pair, ep);
    check_launch("gemm_mma_sync");
  }
}

template <typename T, bool A_ROW, bool B_ROW>
void launch_aligned(const GemmArgs& g, cudaStream_t stream) {
  constexpr int64_t v = 16 / sizeof(T);
  const bool aligned = aligned16(g.a) && aligned16(g.b) && g.lda % v == 0 && g.ldb % v == 0 &&
                       g.a_batch_stride % v == 0 && g.b_batch_stride % v == 0;
  if (aligned)
    launch<T, A_ROW, B_ROW, true>(g, stream);
  else
    launch<T, A_ROW, B_ROW, false>(g, stream);
}

template <typename T>
void launch_layout(const GemmArgs& g, cudaStream_t stream) {
  if (g.a_row_major && g.b_row_major) return launch_aligned<T, true, true>(g, stream);
  if (g.a_row_major) return launch_aligned<T, true, false>(g, stream);
  if (g.b_row_major) return launch_aligned<T, false, true>(g, stream);
  return launch_aligned<T, false, false>(g, stream);
}

}  // namespace

void gemm_mma_sync(const GemmArgs& g, cudaStream_t stream) {
  switch (g.dtype) {
    case DType::Float16: return launch_layout<__half>(g, stream);
    case DType::BFloat16: return launch_layout<__nv_bfloat16>(g, stream);
    case DType::Float32: return launch_layout<float>(g, stream);
    default: throw ValueError("gemm: mma_sync supports float16, bfloat16 and float32 (TF32)");
  }
}

}  // namespace pydl::cuda
