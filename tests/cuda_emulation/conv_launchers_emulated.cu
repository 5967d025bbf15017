// The launchers of kernels/conv/conv_launch.h, emulated on the host: each kernel launch
// becomes a loop that calls the very same tile loaders, epilogues and element functions
// (kernels/conv/conv_tiles.cuh, conv_elementwise.cuh) thread by thread, on host memory.
// Linked in place of conv_implicit_gemm.cu and conv_depthwise.cu by the emulation programs
// of this folder (conv_emulate.cu, and the Python module conv_emu_module.cpp).
//
// What it cannot check is the device-only part: cp.async timing, ldmatrix / mma.sync
// fragments (the tile product is taken directly here), barriers. Shared-memory tiles are
// refilled with NaN before every stage, so a tile cell the loaders fail to write shows up in
// the result.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/conv/conv_elementwise.cuh"

namespace pydl::cuda::conv {
namespace {

template <Core C, int BM>
using MapOf = std::conditional_t<C == Core::Simt, SimtMap<BM>, MmaMap<BM>>;

template <class Map, int BM>
void check_map(const char* name) {
  std::vector<int> count(BM * kTileN, 0);
  for (int tid = 0; tid < kThreads; ++tid)
    for (int ri = 0; ri < Map::kRows; ++ri)
      for (int cp = 0; cp < Map::kColPairs; ++cp)
        for (int q = 0; q < 2; ++q) {
          const int r = Map::row(tid, ri), c = Map::col(tid, cp) + q;
          if (r < 0 || r >= BM || c < 0 || c >= kTileN) {
            std::printf("map %s: thread %d element (%d, %d, %d) -> (%d, %d) outside the tile\n", name, tid, ri, cp,
                        q, r, c);
            std::exit(1);
          }
          ++count[r * kTileN + c];
        }
  for (int i = 0; i < BM * kTileN; ++i)
    if (count[i] != 1) {
      std::printf("map %s: tile element (%d, %d) covered %d times\n", name, i / kTileN, i % kTileN, count[i]);
      std::exit(1);
    }
}

template <typename R>
R nan_bits() {
  if constexpr (sizeof(R) == 2) return R(0x7FFF);  // a NaN as float16 and as bfloat16
  else return std::nanf("");
}

template <typename T>
double value_of(raw_t<T> r) {
  if constexpr (sizeof(T) == 2) {
    T t;
    std::memcpy(&t, &r, 2);
    return to_f32(t);
  } else {
    return r;
  }
}

template <typename T, Core C, int BM>
void emulate_gather(const GatherGemm& p) {
  using S = Shape<C, BM>;
  using R = raw_t<T>;
  using Map = MapOf<C, BM>;
  std::vector<R> sa(S::BK * S::LA), sb(S::BK * S::LB);
  std::vector<GatherTiles<C, BM, R>> ld(S::THREADS);
  std::vector<double> acc(S::BM * S::BN);
  const int k_tiles = (p.K + S::BK - 1) / S::BK;
  for (int g = 0; g < p.groups; ++g)
    for (int m0 = 0; m0 < p.M; m0 += S::BM)
      for (int n0 = 0; n0 < p.N; n0 += S::BN) {
        for (int t = 0; t < S::THREADS; ++t) ld[t].init(p, g, m0, n0, t);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int kt = 0; kt < k_tiles; ++kt) {
          std::fill(sa.begin(), sa.end(), nan_bits<R>());
          std::fill(sb.begin(), sb.end(), nan_bits<R>());
          for (int t = 0; t < S::THREADS; ++t) ld[t].load_a(p, sa.data(), kt);
          for (int t = 0; t < S::THREADS; ++t) {
            ld[t].fetch_b(p, kt);
            ld[t].store_b(sb.data());
          }
          for (int k = 0; k < S::BK; ++k)
            for (int m = 0; m < S::BM; ++m) {
              const double a = value_of<T>(sa[k * S::LA + m]);
              for (int n = 0; n < S::BN; ++n) acc[m * S::BN + n] += a * value_of<T>(sb[k * S::LB + n]);
            }
        }
        for (int t = 0; t < S::THREADS; ++t)
          gather_epilogue<Map, T>(p, g, m0, n0, t, [&](int ri, int cp, int q) {
            return static_cast<float>(acc[Map::row(t, ri) * S::BN + Map::col(t, cp) + q]);
          });
      }
}

template <typename T, Core C, int BM>
void emulate_wgrad(const WgradGemm& p) {
  using S = Shape<C, BM>;
  using R = raw_t<T>;
  using Map = MapOf<C, BM>;
  std::vector<R> sa(S::BK * S::LA), sb(S::BK * S::LB);
  std::vector<int4> tab(S::BN);
  std::vector<WgradTiles<C, BM, R>> ld(S::THREADS);
  std::vector<double> acc(S::BM * S::BN);
  const int k_tiles = (p.R + S::BK - 1) / S::BK;
  for (int g = 0; g < p.groups; ++g)
    for (int s = 0; s < p.splits; ++s)
      for (int m0 = 0; m0 < p.M; m0 += S::BM)
        for (int n0 = 0; n0 < p.N; n0 += S::BN) {
          for (int t = 0; t < S::THREADS; ++t) wgrad_table(p, tab.data(), n0, t);
          for (int t = 0; t < S::THREADS; ++t) ld[t].init(t);
          std::fill(acc.begin(), acc.end(), 0.0);
          const int kt0 = s * p.tiles_per_split, kt1 = std::min(k_tiles, kt0 + p.tiles_per_split);
          for (int kt = kt0; kt < kt1; ++kt) {
            std::fill(sa.begin(), sa.end(), nan_bits<R>());
            std::fill(sb.begin(), sb.end(), nan_bits<R>());
            for (int t = 0; t < S::THREADS; ++t) {
              ld[t].fetch(p, tab.data(), g, m0, kt);
              ld[t].store(sa.data(), sb.data());
            }
            for (int k = 0; k < S::BK; ++k)
              for (int m = 0; m < S::BM; ++m) {
                const double a = value_of<T>(sa[k * S::LA + m]);
                for (int n = 0; n < S::BN; ++n) acc[m * S::BN + n] += a * value_of<T>(sb[k * S::LB + n]);
              }
          }
          for (int t = 0; t < S::THREADS; ++t)
            wgrad_epilogue<Map>(p, g, s, m0, n0, t, [&](int ri, int cp, int q) {
              return static_cast<float>(acc[Map::row(t, ri) * S::BN + Map::col(t, cp) + q]);
            });
        }
}

template <typename F>
void by_dtype(DType dtype, F&& f) {
  if (dtype == DType::Float16) f(__half());
  else if (dtype == DType::BFloat16) f(__nv_bfloat16());
  else f(float());
}

template <typename T, typename F>
void by_core(Core core, F&& f) {
  if constexpr (sizeof(T) == 2) {
    f(std::integral_constant<Core, Core::Mma16>());
  } else {
    if (core == Core::Tf32) f(std::integral_constant<Core, Core::Tf32>());
    else f(std::integral_constant<Core, Core::Simt>());
  }
}

// The tile rows the launchers pick (tile_m), as a template argument.
template <typename F>
void by_tile(int rows, F&& f) {
  if (tile_m(rows) == 64) f(std::integral_constant<int, 64>());
  else f(std::integral_constant<int, 128>());
}

int g_launches = 0;

}  // namespace

int emulated_launch_count() { return g_launches; }

void check_output_maps() {
  check_map<MmaMap<128>, 128>("mma 128");
  check_map<MmaMap<64>, 64>("mma 64");
  check_map<SimtMap<128>, 128>("simt 128");
  check_map<SimtMap<64>, 64>("simt 64");
}

// The launchers, emulated.
void launch_gather_gemm(const GatherGemm& p, DType dtype, Core core, Stream) {
  ++g_launches;
  if (p.M <= 0 || p.N <= 0 || p.groups <= 0) return;
  by_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    by_core<T>(core, [&](auto c) {
      by_tile(p.M, [&](auto bm) { emulate_gather<T, decltype(c)::value, decltype(bm)::value>(p); });
    });
  });
}

void launch_wgrad_gemm(const WgradGemm& p, DType dtype, Core core, Stream) {
  ++g_launches;
  if (p.M <= 0 || p.N <= 0 || p.groups <= 0) return;
  by_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    by_core<T>(core, [&](auto c) {
      by_tile(p.M, [&](auto bm) { emulate_wgrad<T, decltype(c)::value, decltype(bm)::value>(p); });
    });
  });
}

void launch_pack_weights(const WeightPack& p, DType dtype, Stream) {
  ++g_launches;
  const int64_t total = static_cast<int64_t>(p.groups) * p.Q * p.KI * p.KJ * p.ld;
  for (int64_t e = 0; e < total; ++e) {
    if (dtype_size(dtype) == 2) static_cast<uint16_t*>(p.dst)[e] = pack_weight_element<uint16_t>(p, e);
    else static_cast<float*>(p.dst)[e] = pack_weight_element<float>(p, e);
  }
}

void launch_reduce_splits(const float* ws, void* out, int64_t total, int splits, DType dtype, Stream) {
  ++g_launches;
  by_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < total; ++i)
      static_cast<T*>(out)[i] = from_f32<T>(reduce_splits_element(ws, total, splits, i));
  });
}

void launch_depthwise_forward(const Depthwise& p, DType dtype, Stream) {
  ++g_launches;
  const int64_t total = p.N * p.C * p.mult * p.OH * p.OW;
  by_dtype(dtype, [&](auto tag) {
    for (int64_t i = 0; i < total; ++i) depthwise_forward_element<decltype(tag)>(p, i);
  });
}

void launch_depthwise_backward_input(const Depthwise& p, DType dtype, Stream) {
  ++g_launches;
  const int64_t total = p.N * p.C * p.H * p.W;
  by_dtype(dtype, [&](auto tag) {
    for (int64_t i = 0; i < total; ++i) depthwise_backward_input_element<decltype(tag)>(p, i);
  });
}

void launch_depthwise_backward_weight(const Depthwise& p, DType dtype, Stream) {
  ++g_launches;
  const int64_t entries = static_cast<int64_t>(p.C) * p.mult * p.KH * p.KW;
  const int64_t pixels = p.N * p.OH * p.OW;
  const int chunk = static_cast<int>(std::max<int64_t>(1, (pixels + p.splits - 1) / p.splits));
  by_dtype(dtype, [&](auto tag) {
    for (int s = 0; s < p.splits; ++s)
      for (int64_t e = 0; e < entries; ++e) {
        float sum = 0.0f;
        for (int t = 0; t < 256; ++t)
          sum += depthwise_backward_weight_share<decltype(tag)>(p, static_cast<int>(e), s, chunk, t, 256);
        p.ws[s * entries + e] = sum;
      }
  });
}

}  // namespace pydl::cuda::conv

