// The pieces of the implicit-GEMM convolution kernels (conv_implicit_gemm.cu): tile
// loaders that gather operand tiles from NCHW tensors into shared memory, the three cores
// that multiply the tiles (tensor cores through mma.sync for 16-bit and TF32 inputs, FMA on
// CUDA cores for float32), and the epilogues that scatter the output tile.
//
// Shared-memory tiles: both operands are kept k-major, A as [BK][BM + pad] and B as
// [BK][BN + pad] (m or n contiguous), whatever the source layout, so one fragment loader per
// core serves the three passes. The pads keep the 16-byte row alignment ldmatrix and the
// float4 reads need and spread the TF32 scalar fragment loads over all 32 banks.
//
// Tiles are BM x 128 (BM = 64 or 128, see tile_m), 256 threads per block, for every core.
//
// The loaders and epilogues address memory only through load_global / copy16 and take the
// thread index as an argument, so that they run unchanged on the host, where
// tests/cuda_emulation/ checks their index arithmetic against a direct convolution.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/common/mma_sync.cuh"
#include "kernels/common/mma_tf32.cuh"
#include "kernels/conv/conv_launch.h"

#define PYDL_CONV_HD __host__ __device__ __forceinline__
// `#pragma unroll` for the device pass of host-callable code (the host compiler warns on it).
#ifdef __CUDA_ARCH__
#define PYDL_CONV_UNROLL _Pragma("unroll")
#else
#define PYDL_CONV_UNROLL
#endif

namespace pydl::cuda::conv {

// ---- element access --------------------------------------------------------------------

// The bits a tile holds: 16-bit words for float16 / bfloat16 (data movement only), floats.
template <typename T>
using raw_t = std::conditional_t<sizeof(T) == 2, uint16_t, float>;

template <typename R>
PYDL_CONV_HD R load_global(const R* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// 16 bytes global -> shared; bytes past `bytes` (0..16) become zero, and nothing is read when
// `bytes` is 0. Asynchronous on the device (cp.async; wait with mma::cp_async_wait).
PYDL_CONV_HD void copy16(void* smem, const void* gmem, int bytes) {
#ifdef __CUDA_ARCH__
  mma::cp_async16(smem, gmem, bytes);
#else
  if (bytes > 0) std::memcpy(smem, gmem, static_cast<size_t>(bytes));
  std::memset(static_cast<char*>(smem) + bytes, 0, static_cast<size_t>(16 - bytes));
#endif
}

template <typename T>
PYDL_CONV_HD float to_f32(T v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return static_cast<float>(v);
}
template <typename T>
PYDL_CONV_HD T from_f32(float v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else return v;
}

// Two neighbouring elements p[0], p[1]; `p` must be aligned to two elements.
template <typename T>
PYDL_CONV_HD void store_pair(T* p, float v0, float v1) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  } else {
    struct alignas(4) Two { T x, y; };
    *reinterpret_cast<Two*>(p) = Two{from_f32<T>(v0), from_f32<T>(v1)};
  }
}

// ---- tile shapes -----------------------------------------------------------------------

template <Core C, int BM_>
struct Shape {
  static_assert(BM_ == 64 || BM_ == 128, "tile rows");
  static constexpr int BM = BM_, BN = kTileN, THREADS = kThreads;
  static constexpr int BK = tile_k(C);
  // Elements of padding per shared-memory row: 16 bytes for the 16-bit tiles, 8 floats for
  // TF32 (row stride = 8 banks mod 32: the scalar fragment loads are conflict-free), 4 floats
  // for the CUDA cores (16-byte rows for the float4 reads).
  static constexpr int PAD = C == Core::Simt ? 4 : 8;
  static constexpr int LA = BM + PAD, LB = BN + PAD;  // elements between k rows
};

// ---- forward / input gradient: gather GEMM --------------------------------------------

// Per-thread state of the gather GEMM's loads. A comes from the packed weights by 16-byte
// copies (cp.async); B is gathered element by element into registers (fetch_b) while the
// previous stage is multiplied, then stored to shared memory (store_b).
// B mapping: each thread owns one column n (an output pixel, fixed for the whole block, so
// its image, row and column are decoded once) and RB consecutive k rows of every tile; a
// warp reads 32 neighbouring pixels of one source row per load.
template <Core C, int BM, typename R>
struct GatherTiles {
  using S = Shape<C, BM>;
  static constexpr int VEC = 16 / static_cast<int>(sizeof(R));
  static constexpr int A_TOTAL = S::BK * S::BM / VEC;  // 16-byte copies per A tile
  static constexpr int A_CHUNKS = (A_TOTAL + S::THREADS - 1) / S::THREADS;
  static constexpr int RB = S::BK * S::BN / S::THREADS;
  static_assert(S::BM % VEC == 0, "A tile rows split into 16-byte copies");
  static_assert(S::THREADS % S::BN == 0 && S::BK % (S::THREADS / S::BN) == 0, "B tile mapping");

  const R* a = nullptr;    // this group's packed weights
  const R* src = nullptr;  // this group's channels of this thread's image
  int hb = 0, wb = 0;      // source row and column of tap (0, 0) for this thread's pixel
  int col = 0, row0 = 0, m0 = 0, tid = 0;
  bool n_ok = false;
  R reg[RB];

  PYDL_CONV_HD void init(const GatherGemm& p, int g, int m0_, int n0, int tid_) {
    tid = tid_;
    m0 = m0_;
    a = static_cast<const R*>(p.a) + g * p.a_group;
    col = tid % S::BN;
    row0 = (tid / S::BN) * RB;
    const int n = n0 + col;
    n_ok = n < p.N;
    int img = 0, u = 0, v = 0;
    if (n_ok) {
      const int uv = p.U * p.V;
      img = n / uv;
      const int rem = n - img * uv;
      u = rem / p.V;
      v = rem - u * p.V;
    }
    src = static_cast<const R*>(p.src) + g * p.src_group + img * p.src_img;
    hb = u * p.su + p.h0;
    wb = v * p.sv + p.w0;
  }

  // A tile kt -> sa ([BK][LA]); zero past K and M.
  PYDL_CONV_HD void load_a(const GatherGemm& p, R* sa, int kt) const {
    constexpr int kChunksPerRow = S::BM / VEC;
PYDL_CONV_UNROLL
    for (int c = 0; c < A_CHUNKS; ++c) {
      const int idx = tid + c * S::THREADS;
      if (A_TOTAL % S::THREADS != 0 && idx >= A_TOTAL) break;
      const int kr = idx / kChunksPerRow, mc = (idx % kChunksPerRow) * VEC;
      const int k = kt * S::BK + kr, m = m0 + mc;
      int valid = 0;
      if (k < p.K && m < p.M) valid = p.M - m < VEC ? p.M - m : VEC;
      // With nothing to read, any valid address will do: the copy only zero-fills.
      const R* from = valid > 0 ? a + static_cast<int64_t>(k) * p.lda + m : static_cast<const R*>(p.a);
      copy16(sa + kr * S::LA + mc, from, valid * static_cast<int>(sizeof(R)));
    }
  }

  // B tile kt -> registers.
  PYDL_CONV_HD void fetch_b(const GatherGemm& p, int kt) {
    const int kij = p.KI * p.KJ;
    int k = kt * S::BK + row0;
    int ch = k / kij;
    int t = k - ch * kij;
    int i = t / p.KJ;
    int j = t - i * p.KJ;
PYDL_CONV_UNROLL
    for (int e = 0; e < RB; ++e) {
      const int hs = hb + i * p.di, ws = wb + j * p.dj;
      const bool ok = n_ok && k < p.K && static_cast<unsigned>(hs) < static_cast<unsigned>(p.Hs) &&
                      static_cast<unsigned>(ws) < static_cast<unsigned>(p.Ws);
      reg[e] = ok ? load_global(src + (ch * p.src_ch + hs * p.Ws + ws)) : R(0);
      ++k;
      if (++j == p.KJ) {
        j = 0;
        if (++i == p.KI) {
          i = 0;
          ++ch;
        }
      }
    }
  }

  PYDL_CONV_HD void store_b(R* sb) const {
PYDL_CONV_UNROLL
    for (int e = 0; e < RB; ++e) sb[(row0 + e) * S::LB + col] = reg[e];
  }
};

// Writes the output tile: value(ri, cp, q) is the accumulator of row Map::row(tid, ri) and
// column Map::col(tid, cp) + q (q = 0, 1) of the tile at (m0, n0).
template <class Map, typename T, typename Value>
PYDL_CONV_HD void gather_epilogue(const GatherGemm& p, int g, int m0, int n0, int tid, const Value& value) {
  // Output offset of each of the thread's columns within the group (-1: past N).
  int64_t off[Map::kColPairs][2];
  const int uv = p.U * p.V;
PYDL_CONV_UNROLL
  for (int cp = 0; cp < Map::kColPairs; ++cp) {
PYDL_CONV_UNROLL
    for (int q = 0; q < 2; ++q) {
      const int n = n0 + Map::col(tid, cp) + q;
      off[cp][q] = -1;
      if (n < p.N) {
        const int img = n / uv, rem = n - img * uv;
        const int u = rem / p.V, v = rem - u * p.V;
        off[cp][q] = img * p.dst_img + static_cast<int64_t>(u * p.du + p.a0) * p.Wd + v * p.dv + p.b0;
      }
    }
  }
  T* dst = static_cast<T*>(p.dst) + g * p.dst_group;
  const T* bias = static_cast<const T*>(p.bias);
PYDL_CONV_UNROLL
  for (int ri = 0; ri < Map::kRows; ++ri) {
    const int m = m0 + Map::row(tid, ri);
    if (m >= p.M) continue;
    const float b = bias ? to_f32(bias[static_cast<int64_t>(g) * p.M + m]) : 0.0f;
    T* row = dst + static_cast<int64_t>(m) * p.dst_ch;
PYDL_CONV_UNROLL
    for (int cp = 0; cp < Map::kColPairs; ++cp) {
      const int64_t o0 = off[cp][0], o1 = off[cp][1];
      const float v0 = value(ri, cp, 0) + b, v1 = value(ri, cp, 1) + b;
      const bool even = ((g * p.dst_group + static_cast<int64_t>(m) * p.dst_ch + o0) & 1) == 0;
      if (p.pair_store && o0 >= 0 && o1 == o0 + 1 && even) {
        store_pair(row + o0, v0, v1);
      } else {
        if (o0 >= 0) row[o0] = from_f32<T>(v0);
        if (o1 >= 0) row[o1] = from_f32<T>(v1);
      }
    }
  }
}

// ---- weight gradient -------------------------------------------------------------------

// Column table of a weight-gradient block, one entry per tile column n0 + cl:
// {ch * H * W + i * dh * W + j * dw, i * dh, j * dw, 0}; a column past N gets row offset
// kNoRow, which puts every pixel's row below zero (row bases are above -2^29: conv2d_plan
// bounds the padded extents by 2^30), so its elements load as zero.
constexpr int kNoRow = -(1 << 30);

PYDL_CONV_HD void wgrad_table(const WgradGemm& p, int4* tab, int n0, int tid) {
  const int taps = p.KH * p.KW, hw = p.H * p.W;
  for (int cl = tid; cl < kTileN; cl += kThreads) {
    const int n = n0 + cl;
    int4 e = make_int4(0, kNoRow, 0, 0);
    if (n < p.N) {
      const int ch = n / taps, t = n - ch * taps;
      const int i = t / p.KW, j = t - i * p.KW;
      e = make_int4(ch * hw + i * p.dh * p.W + j * p.dw, i * p.dh, j * p.dw, 0);
    }
    tab[cl] = e;
  }
}

// Per-thread loads of the weight gradient. Both operands run along the reduction (pixels)
// in memory, so each thread owns one k row (a pixel, decoded once per tile) and every
// (THREADS / BK)-th m or n of it: a warp reads neighbouring pixels of one channel.
template <Core C, int BM, typename R>
struct WgradTiles {
  using S = Shape<C, BM>;
  static constexpr int STEP = S::THREADS / S::BK;
  static constexpr int RA = S::BM / STEP, RB = S::BN / STEP;
  static_assert(S::THREADS % S::BK == 0 && S::BM % STEP == 0 && S::BN % STEP == 0, "wgrad tile mapping");

  int kr = 0, mn0 = 0;
  R areg[RA], breg[RB];

  PYDL_CONV_HD void init(int tid) {
    kr = tid % S::BK;
    mn0 = tid / S::BK;
  }

  PYDL_CONV_HD void fetch(const WgradGemm& p, const int4* tab, int g, int m0, int kt) {
    const int r = kt * S::BK + kr;
    const bool r_ok = r < p.R;
    int img = 0, pix = 0, oh = 0, ow = 0;
    if (r_ok) {
      img = r / p.P;
      pix = r - img * p.P;
      oh = pix / p.OW;
      ow = pix - oh * p.OW;
    }
    const R* dyp = static_cast<const R*>(p.dy) + g * p.dy_group + img * p.dy_img + pix;
    const R* xp = static_cast<const R*>(p.x) + g * p.x_group + img * p.x_img;
    const int hb = oh * p.sh - p.ph, wb = ow * p.sw - p.pw;
    const int base = hb * p.W + wb;
PYDL_CONV_UNROLL
    for (int e = 0; e < RA; ++e) {
      const int m = m0 + mn0 + STEP * e;
      areg[e] = r_ok && m < p.M ? load_global(dyp + m * p.P) : R(0);
    }
PYDL_CONV_UNROLL
    for (int e = 0; e < RB; ++e) {
      const int4 t = tab[mn0 + STEP * e];
      const int ih = hb + t.y, iw = wb + t.z;
      const bool ok = r_ok && static_cast<unsigned>(ih) < static_cast<unsigned>(p.H) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(p.W);
      breg[e] = ok ? load_global(xp + (t.x + base)) : R(0);
    }
  }

  PYDL_CONV_HD void store(R* sa, R* sb) const {
PYDL_CONV_UNROLL
    for (int e = 0; e < RA; ++e) sa[kr * S::LA + mn0 + STEP * e] = areg[e];
PYDL_CONV_UNROLL
    for (int e = 0; e < RB; ++e) sb[kr * S::LB + mn0 + STEP * e] = breg[e];
  }
};

// Writes split s's float32 partial sums of the tile at (m0, n0), every element in range.
template <class Map, typename Value>
PYDL_CONV_HD void wgrad_epilogue(const WgradGemm& p, int g, int s, int m0, int n0, int tid, const Value& value) {
  const int64_t base = (static_cast<int64_t>(s) * p.groups + g) * p.M * p.N;
PYDL_CONV_UNROLL
  for (int ri = 0; ri < Map::kRows; ++ri) {
    const int m = m0 + Map::row(tid, ri);
    if (m >= p.M) continue;
    const int64_t row = base + static_cast<int64_t>(m) * p.N;
PYDL_CONV_UNROLL
    for (int cp = 0; cp < Map::kColPairs; ++cp) {
      const int n = n0 + Map::col(tid, cp);
      const float v0 = value(ri, cp, 0), v1 = value(ri, cp, 1);
      if (n + 1 < p.N && ((row + n) & 1) == 0) {
        store_pair(p.ws + row + n, v0, v1);
      } else {
        if (n < p.N) p.ws[row + n] = v0;
        if (n + 1 < p.N) p.ws[row + n + 1] = v1;
      }
    }
  }
}

// ---- cores -----------------------------------------------------------------------------

// Output mapping of the tensor-core cores: 8 warps as 2 (m) x 4 (n), BM / 2 x 32 per warp,
// BM / 32 x 4 mma tiles of 16 x 8; the thread holds rows g, g + 8 of each m tile and columns
// 2t, 2t + 1 of each n tile (g = lane / 4, t = lane % 4).
template <int BM>
struct MmaMap {
  static constexpr int WM = BM / 2, WN = 32, MI = WM / 16, NI = 4;
  static constexpr int kRows = 2 * MI, kColPairs = NI;
  PYDL_CONV_HD static int row(int tid, int ri) {
    const int warp = tid >> 5, lane = tid & 31;
    return (warp >> 2) * WM + (ri >> 1) * 16 + (ri & 1) * 8 + (lane >> 2);
  }
  PYDL_CONV_HD static int col(int tid, int cp) {
    const int warp = tid >> 5, lane = tid & 31;
    return (warp & 3) * WN + cp * 8 + 2 * (lane & 3);
  }
};

// Output mapping of the CUDA-core core: 16 x 16 threads, each a BM / 16 x 8 block made of
// rows 4ty..4ty+3 (and 64+4ty.. when BM is 128), columns 4tx..4tx+3 and 64+4tx..
// (conflict-free float4 reads).
template <int BM>
struct SimtMap {
  static constexpr int kRows = BM / 16, kColPairs = 4;
  PYDL_CONV_HD static int row(int tid, int ri) {
    const int ty = tid / 16;
    return (ri < 4 ? 0 : 64) + ty * 4 + (ri & 3);
  }
  PYDL_CONV_HD static int col(int tid, int cp) {
    const int tx = tid % 16;
    return (cp >> 1) * 64 + tx * 4 + (cp & 1) * 2;
  }
};

// Tensor cores on 16-bit inputs (T = __half or __nv_bfloat16): per 16-deep k step, A
// fragments by ldmatrix.trans from the m-contiguous A tile, B fragments likewise from the
// n-contiguous B tile (the fragment addressing of gemm_mma_sync.cu's column-major A and
// row-major B), then 16 mma.sync m16n8k16.
template <typename T, int BM>
struct Mma16Core {
  using S = Shape<Core::Mma16, BM>;
  using Map = MmaMap<BM>;
  float acc[Map::MI][Map::NI][4];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < Map::MI; ++i)
#pragma unroll
      for (int j = 0; j < Map::NI; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;
  }

  __device__ __forceinline__ void step(const uint16_t* sa, const uint16_t* sb) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const int lr = lane & 7, lm = lane >> 3;
#pragma unroll
    for (int kk = 0; kk < S::BK; kk += 16) {
      uint32_t af[Map::MI][4], bf[Map::NI][2];
#pragma unroll
      for (int mi = 0; mi < Map::MI; ++mi) {
        const int mb = wm * Map::WM + mi * 16;
        mma::ldmatrix_x4_trans(af[mi], sa + (kk + lr + (lm >> 1) * 8) * S::LA + mb + (lm & 1) * 8);
      }
#pragma unroll
      for (int nj = 0; nj < Map::NI / 2; ++nj) {
        const int nb = wn * Map::WN + nj * 16;
        uint32_t r[4];
        mma::ldmatrix_x4_trans(r, sb + (kk + lr + (lm & 1) * 8) * S::LB + nb + (lm >> 1) * 8);
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < Map::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < Map::NI; ++ni) mma::mma_16816(acc[mi][ni], af[mi], bf[ni], T());
    }
  }

  __device__ __forceinline__ float value(int ri, int cp, int q) const { return acc[ri >> 1][cp][(ri & 1) * 2 + q]; }
};

// Tensor cores on float32 rounded to TF32: scalar fragment loads (conversion per element),
// mma.sync m16n8k8, per 8-deep k step.
template <int BM>
struct Tf32Core {
  using S = Shape<Core::Tf32, BM>;
  using Map = MmaMap<BM>;
  float acc[Map::MI][Map::NI][4];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < Map::MI; ++i)
#pragma unroll
      for (int j = 0; j < Map::NI; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;
  }

  __device__ __forceinline__ void step(const float* sa, const float* sb) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < S::BK; kk += 8) {
      uint32_t af[Map::MI][4], bf[Map::NI][2];
      const float* a0 = sa + (kk + t) * S::LA;
      const float* a1 = sa + (kk + t + 4) * S::LA;
#pragma unroll
      for (int mi = 0; mi < Map::MI; ++mi) {
        const int mb = wm * Map::WM + mi * 16 + g;
        af[mi][0] = mma::to_tf32(a0[mb]);
        af[mi][1] = mma::to_tf32(a0[mb + 8]);
        af[mi][2] = mma::to_tf32(a1[mb]);
        af[mi][3] = mma::to_tf32(a1[mb + 8]);
      }
      const float* b0 = sb + (kk + t) * S::LB;
      const float* b1 = sb + (kk + t + 4) * S::LB;
#pragma unroll
      for (int ni = 0; ni < Map::NI; ++ni) {
        const int nb = wn * Map::WN + ni * 8 + g;
        bf[ni][0] = mma::to_tf32(b0[nb]);
        bf[ni][1] = mma::to_tf32(b1[nb]);
      }
#pragma unroll
      for (int mi = 0; mi < Map::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < Map::NI; ++ni) mma::mma_1688_tf32(acc[mi][ni], af[mi], bf[ni]);
    }
  }

  __device__ __forceinline__ float value(int ri, int cp, int q) const { return acc[ri >> 1][cp][(ri & 1) * 2 + q]; }
};

// CUDA cores, exact float32 FMA: per k, float4 shared-memory reads (four for 128 rows, three
// for 64) feed BM / 2 FMAs.
template <int BM>
struct SimtCore {
  using S = Shape<Core::Simt, BM>;
  using Map = SimtMap<BM>;
  static constexpr int kR = Map::kRows;
  float acc[kR][8];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kR; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  }

  __device__ __forceinline__ void step(const float* sa, const float* sb) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int k = 0; k < S::BK; ++k) {
      float ra[kR];
      const float4 a_lo = *reinterpret_cast<const float4*>(sa + k * S::LA + ty * 4);
      ra[0] = a_lo.x;
      ra[1] = a_lo.y;
      ra[2] = a_lo.z;
      ra[3] = a_lo.w;
      if constexpr (kR == 8) {
        const float4 a_hi = *reinterpret_cast<const float4*>(sa + k * S::LA + 64 + ty * 4);
        ra[4] = a_hi.x;
        ra[5] = a_hi.y;
        ra[6] = a_hi.z;
        ra[7] = a_hi.w;
      }
      const float4 b_lo = *reinterpret_cast<const float4*>(sb + k * S::LB + tx * 4);
      const float4 b_hi = *reinterpret_cast<const float4*>(sb + k * S::LB + 64 + tx * 4);
      const float rb[8] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
#pragma unroll
      for (int i = 0; i < kR; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
  }

  __device__ __forceinline__ float value(int ri, int cp, int q) const {
    return acc[ri][(cp >> 1) * 4 + (cp & 1) * 2 + q];
  }
};

}  // namespace pydl::cuda::conv
