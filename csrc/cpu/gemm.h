// Single-threaded packed GEMM for the CPU kernels: C (M, N) = or += A (M, K) @ B (K, N).
// Callers run it inside their own OpenMP work items.
//
// A is packed once into zero-padded MR-tall panels; B is packed one NR-wide, KC-deep panel at a
// time, and every row panel's MR x NR register tile accumulates over it, so that C is written
// once per tile (the tiles of a column panel wait in a small buffer between KC slices). The micro-kernel is written once with GCC vector types
// and compiled three times: AVX-512 (8 x 32 floats / 8 x 16 doubles, 16 zmm accumulators),
// AVX2+FMA (6 x 16 / 6 x 8) and the baseline SSE2 (6 x 8 / 6 x 4). The wheel is built without -march, so the
// variant is chosen at run time from the CPU's features; PYDL_CPU_ISA=avx2 or generic caps it
// (tests use that to check the narrower kernels on a wider CPU).
//
// Two entry points:
//   gemm()       A and B at any element strides, C row-major.
//   run_block()  the loop nest over one block of columns, with A packed once by the caller
//                (pack_a) and B and C reached through functors: pack_b writes a B micro-panel
//                straight from the caller's layout (the convolutions gather it from the input
//                image, so no im2col buffer exists) and store receives each finished tile.
// dispatch() calls a generic lambda with the kernel type of the chosen ISA.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace pydl::cpu {

namespace gemm_detail {

constexpr int64_t KC = 512, MC = 96, NC = 256;

// The depth of the KC slices a K-long product is walked in: as few as KC allows, of equal
// depth (K = 576 is two slices of 288, not 512 and a 64-deep tail that would pay a tile's
// load and store for little work).
inline int64_t kslice(int64_t K) {
  const int64_t n = (K + KC - 1) / KC;
  return n > 1 ? (K + n - 1) / n : K;
}

// Element i of A's column k, by how A is laid out (AM): 0, a packed panel, at a[k * MR + i];
// 1, a row-major A (a weight matrix used as it is, rows a multiple of MR), at a[i * lda + k];
// 2, rows lda apart with columns at a table's offsets (the transposed weights of an input
// gradient read in place), at a[i * lda + acol[k]].
template <typename T, int MR, int AM>
inline __attribute__((always_inline)) T a_at(const T* __restrict a, int64_t lda,
                                             const int64_t* __restrict acol, int64_t k, int i) {
  return AM == 2 ? a[i * lda + acol[k]] : AM == 1 ? a[i * lda + k] : a[k * MR + i];
}

// tile (MR x NR, row-major) = (accumulate ? tile : 0) + sum_k a[k][0..MR) x b[k][0..NR) over
// kc steps.
template <typename T, int VB, int MR, int NR, int AM>
inline __attribute__((always_inline)) void micro_body(int64_t kc, const T* __restrict a,
                                                      int64_t lda, const int64_t* acol,
                                                      const T* __restrict b, T* __restrict tile,
                                                      bool accumulate) {
  constexpr int W = VB / sizeof(T), NV = NR / W;
  typedef T V __attribute__((vector_size(VB)));
  typedef T VU __attribute__((vector_size(VB), aligned(sizeof(T))));  // unaligned loads/stores
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j)
      acc[i][j] = accumulate ? *reinterpret_cast<const VU*>(tile + i * NR + j * W) : V{};
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const VU*>(b + k * NR + j * W);
    for (int i = 0; i < MR; ++i) {
      const T ai = a_at<T, MR, AM>(a, lda, acol, k, i);
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<VU*>(tile + i * NR + j * W) = acc[i][j];
}

// The same product with B read in place: row k of the kc x NR panel starts at base + koff[k]
// (NR contiguous elements), so a convolution over a zero-padded image needs no packing.
template <typename T, int VB, int MR, int NR, int AM>
inline __attribute__((always_inline)) void micro_off_body(int64_t kc, const T* __restrict a,
                                                          int64_t lda, const int64_t* acol,
                                                          const T* base, const int64_t* koff,
                                                          T* __restrict tile, bool accumulate) {
  constexpr int W = VB / sizeof(T), NV = NR / W;
  typedef T V __attribute__((vector_size(VB)));
  typedef T VU __attribute__((vector_size(VB), aligned(sizeof(T))));
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j)
      acc[i][j] = accumulate ? *reinterpret_cast<const VU*>(tile + i * NR + j * W) : V{};
  for (int64_t k = 0; k < kc; ++k) {
    const T* b = base + koff[k];
    V bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const VU*>(b + j * W);
    for (int i = 0; i < MR; ++i) {
      const T ai = a_at<T, MR, AM>(a, lda, acol, k, i);
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<VU*>(tile + i * NR + j * W) = acc[i][j];
}

// The same product with A and B both read in place: column k of the MR x kc panel is MR
// contiguous elements at abase + aoff[k] (a convolution's channels at one pixel of an NHWC
// copy), row k of B is NR contiguous elements at b + k * ldb.
template <typename T, int VB, int MR, int NR>
inline __attribute__((always_inline)) void micro_ab_body(int64_t kc, const T* abase,
                                                         const int64_t* aoff, const T* b,
                                                         int64_t ldb, T* __restrict tile,
                                                         bool accumulate) {
  constexpr int W = VB / sizeof(T), NV = NR / W;
  typedef T V __attribute__((vector_size(VB)));
  typedef T VU __attribute__((vector_size(VB), aligned(sizeof(T))));
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j)
      acc[i][j] = accumulate ? *reinterpret_cast<const VU*>(tile + i * NR + j * W) : V{};
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = abase + aoff[k];
    V bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const VU*>(b + k * ldb + j * W);
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<VU*>(tile + i * NR + j * W) = acc[i][j];
}

template <typename T>
__attribute__((target("avx512f"))) void micro_ab_avx512(int64_t kc, const T* abase,
                                                        const int64_t* aoff, const T* b,
                                                        int64_t ldb, T* tile, bool acc) {
  micro_ab_body<T, 64, 8, 128 / sizeof(T)>(kc, abase, aoff, b, ldb, tile, acc);
}

template <typename T>
__attribute__((target("avx2,fma"))) void micro_ab_avx2(int64_t kc, const T* abase,
                                                       const int64_t* aoff, const T* b,
                                                       int64_t ldb, T* tile, bool acc) {
  micro_ab_body<T, 32, 6, 64 / sizeof(T)>(kc, abase, aoff, b, ldb, tile, acc);
}

template <typename T>
void micro_ab_generic(int64_t kc, const T* abase, const int64_t* aoff, const T* b, int64_t ldb,
                      T* tile, bool acc) {
  micro_ab_body<T, 16, 6, 32 / sizeof(T)>(kc, abase, aoff, b, ldb, tile, acc);
}

template <typename T, int AM>
__attribute__((target("avx512f")))
void micro_off_avx512(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                      const T* base, const int64_t* koff, T* tile, bool acc) {
  micro_off_body<T, 64, 8, 128 / sizeof(T), AM>(kc, a, lda, acol, base, koff, tile, acc);
}

template <typename T, int AM>
__attribute__((target("avx2,fma")))
void micro_off_avx2(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                    const T* base, const int64_t* koff, T* tile, bool acc) {
  micro_off_body<T, 32, 6, 64 / sizeof(T), AM>(kc, a, lda, acol, base, koff, tile, acc);
}

template <typename T, int AM>
void micro_off_generic(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                       const T* base, const int64_t* koff, T* tile, bool acc) {
  micro_off_body<T, 16, 6, 32 / sizeof(T), AM>(kc, a, lda, acol, base, koff, tile, acc);
}

template <typename T, int AM>
__attribute__((target("avx512f")))
void micro_avx512(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                  const T* b, T* tile, bool accumulate) {
  micro_body<T, 64, 8, 128 / sizeof(T), AM>(kc, a, lda, acol, b, tile, accumulate);
}

template <typename T, int AM>
__attribute__((target("avx2,fma")))
void micro_avx2(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                const T* b, T* tile, bool accumulate) {
  micro_body<T, 32, 6, 64 / sizeof(T), AM>(kc, a, lda, acol, b, tile, accumulate);
}

template <typename T, int AM>
void micro_generic(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                   const T* b, T* tile, bool accumulate) {
  micro_body<T, 16, 6, 32 / sizeof(T), AM>(kc, a, lda, acol, b, tile, accumulate);
}

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

inline Isa cpu_isa() {
  static const Isa isa = [] {
    Isa best = Isa::generic;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
    if (best == Isa::avx2 && __builtin_cpu_supports("avx512f")) best = Isa::avx512;
    if (const char* cap = std::getenv("PYDL_CPU_ISA")) {
      const std::string s(cap);
      const Isa want = s == "generic" ? Isa::generic : s == "avx2" ? Isa::avx2 : best;
      if (static_cast<int>(want) < static_cast<int>(best)) best = want;
    }
    return best;
  }();
  return isa;
}

}  // namespace gemm_detail

// The register tile and micro-kernel of one ISA.
template <typename T, gemm_detail::Isa I>
struct Kernel {
  static constexpr gemm_detail::Isa isa = I;
  static constexpr int MR = I == gemm_detail::Isa::avx512 ? 8 : 6;
  static constexpr int NR =
      (I == gemm_detail::Isa::avx512 ? 128 : I == gemm_detail::Isa::avx2 ? 64 : 32) / sizeof(T);
  // tile = (accumulate ? tile : 0) + a (kc x MR panel) x b (kc x NR panel); lda > 0: the
  // panel is MR rows of A in place, lda apart, column k at k or, given acol, at acol[k]
  // (a_at), instead of a packed panel
  static void micro(int64_t kc, const T* a, const T* b, T* tile, bool accumulate = false,
                    int64_t lda = 0, const int64_t* acol = nullptr) {
    if (acol) micro_am<2>(kc, a, lda, acol, b, tile, accumulate);
    else if (lda) micro_am<1>(kc, a, lda, nullptr, b, tile, accumulate);
    else micro_am<0>(kc, a, 0, nullptr, b, tile, accumulate);
  }
  // tile = (accumulate ? tile : 0) + a (kc x MR panel, as in micro) x B, B's row k at
  // base + koff[k]
  static void micro_off(int64_t kc, const T* a, const T* base, const int64_t* koff, T* tile,
                        bool accumulate, int64_t lda = 0, const int64_t* acol = nullptr) {
    if (acol) micro_off_am<2>(kc, a, lda, acol, base, koff, tile, accumulate);
    else if (lda) micro_off_am<1>(kc, a, lda, nullptr, base, koff, tile, accumulate);
    else micro_off_am<0>(kc, a, 0, nullptr, base, koff, tile, accumulate);
  }
  template <int AM>
  static void micro_am(int64_t kc, const T* a, int64_t lda, const int64_t* acol, const T* b,
                       T* tile, bool accumulate) {
    if constexpr (I == gemm_detail::Isa::avx512)
      gemm_detail::micro_avx512<T, AM>(kc, a, lda, acol, b, tile, accumulate);
    else if constexpr (I == gemm_detail::Isa::avx2)
      gemm_detail::micro_avx2<T, AM>(kc, a, lda, acol, b, tile, accumulate);
    else gemm_detail::micro_generic<T, AM>(kc, a, lda, acol, b, tile, accumulate);
  }
  template <int AM>
  static void micro_off_am(int64_t kc, const T* a, int64_t lda, const int64_t* acol,
                           const T* base, const int64_t* koff, T* tile, bool accumulate) {
    if constexpr (I == gemm_detail::Isa::avx512)
      gemm_detail::micro_off_avx512<T, AM>(kc, a, lda, acol, base, koff, tile, accumulate);
    else if constexpr (I == gemm_detail::Isa::avx2)
      gemm_detail::micro_off_avx2<T, AM>(kc, a, lda, acol, base, koff, tile, accumulate);
    else gemm_detail::micro_off_generic<T, AM>(kc, a, lda, acol, base, koff, tile, accumulate);
  }
  // tile = (accumulate ? tile : 0) + A x B, A's column k at abase + aoff[k] (MR elements),
  // B's row k at b + k * ldb (NR elements)
  static void micro_ab(int64_t kc, const T* abase, const int64_t* aoff, const T* b, int64_t ldb,
                       T* tile, bool accumulate) {
    if constexpr (I == gemm_detail::Isa::avx512)
      gemm_detail::micro_ab_avx512<T>(kc, abase, aoff, b, ldb, tile, accumulate);
    else if constexpr (I == gemm_detail::Isa::avx2)
      gemm_detail::micro_ab_avx2<T>(kc, abase, aoff, b, ldb, tile, accumulate);
    else gemm_detail::micro_ab_generic<T>(kc, abase, aoff, b, ldb, tile, accumulate);
  }
};

// f(Kernel<T, isa>{}) for the ISA this CPU runs.
template <typename T, typename F>
decltype(auto) dispatch(F&& f) {
  using gemm_detail::Isa;
  switch (gemm_detail::cpu_isa()) {
    case Isa::avx512: return f(Kernel<T, Isa::avx512>{});
    case Isa::avx2: return f(Kernel<T, Isa::avx2>{});
    default: return f(Kernel<T, Isa::generic>{});
  }
}

// Rows of A rounded up to whole MR panels.
template <typename Kern>
inline int64_t padded_rows(int64_t M) { return (M + Kern::MR - 1) / Kern::MR * Kern::MR; }

// Packs A (M, K) for run_block: MR-tall panels, each holding every k (element [k * MR + r] of
// the panel at ip * K), zero rows below M; out has padded_rows(M) * K elements. pack_a_with
// reads A[m][k] through at(m, k), pack_a at element strides (ars, acs). Large matrices are
// packed by the OpenMP team (callers call it outside their own parallel regions).
template <typename Kern, typename T, typename At>
void pack_a_with(int64_t M, int64_t K, At&& at, T* out) {
  constexpr int MR = Kern::MR;
  const int64_t Mp = padded_rows<Kern>(M);
#pragma omp parallel for schedule(static) if (Mp * K >= (1 << 18))
  for (int64_t ip = 0; ip < Mp; ip += MR) {
    T* dst = out + ip * K;
    const int64_t mr = std::max<int64_t>(0, std::min<int64_t>(MR, M - ip));
    for (int64_t k = 0; k < K; ++k) {
      T* d = dst + k * MR;
      for (int64_t i = 0; i < mr; ++i) d[i] = at(ip + i, k);
      for (int64_t i = mr; i < MR; ++i) d[i] = T(0);
    }
  }
}

template <typename Kern, typename T>
void pack_a(int64_t M, int64_t K, const T* A, int64_t ars, int64_t acs, T* out) {
  pack_a_with<Kern>(M, K, [&](int64_t m, int64_t k) { return A[m * ars + k * acs]; }, out);
}

// Where the micro-kernels read A's rows [ip, ip + MR) from column k0 on (Kernel::micro):
// packed panels of K columns, rows lda apart, or, with a column table (advanced by the caller
// instead), rows lda apart from the table's base.
template <int MR, typename T>
inline const T* a_panel(const T* a, int64_t K, int64_t lda, const int64_t* acol, int64_t ip,
                        int64_t k0) {
  return acol ? a + ip * lda : lda ? a + ip * lda + k0 : a + ip * K + k0 * MR;
}

// Scratch elements run_block needs for B, for column blocks of at most nc columns.
template <typename Kern>
inline int64_t bpack_size(int64_t K, int64_t nc) {
  return std::min(K, gemm_detail::KC) * ((nc + Kern::NR - 1) / Kern::NR * Kern::NR);
}

// One block of C (M, N) = A (M, K) @ B (K, N), A packed by pack_a (or, with lda > 0, A of a
// multiple of MR rows used in place: a_panel): rows [m0, m1) (m0 a multiple of MR), columns
// [j0, j0 + nc). K is walked in KC slices: each slice of B is packed
// (NR-wide panels) and every (row panel, column panel) tile accumulates over it in a buffer,
// so each finished tile is stored exactly once (no read-modify-write of C between slices),
// and each A panel slice, once in L1, serves every column panel.
//   pack_b(k0, kc, j, nr, dst): dst[k * NR + jj] = B[k0 + k][j + jj] for jj < nr, zero up to NR.
//   store(i, j, mr, nr, tile): the MR x NR tile (row stride NR) for C rows [i, i + mr),
//     columns [j, j + nr).
// bpack: scratch of bpack_size<Kern>(K, nc) elements.
template <typename Kern, typename T, typename PackB, typename Store>
void run_block(int64_t M, int64_t K, int64_t m0, int64_t m1, int64_t j0, int64_t nc,
               const T* apack, T* bpack, PackB&& pack_b, Store&& store, int64_t lda = 0,
               const int64_t* acol = nullptr) {
  constexpr int MR = Kern::MR, NR = Kern::NR;
  thread_local std::vector<T> tiles;
  const int64_t panels = (nc + NR - 1) / NR, rows = (m1 - m0 + MR - 1) / MR * MR;
  if (static_cast<int64_t>(tiles.size()) < rows * panels * NR) tiles.resize(rows * panels * NR);
  T* tl = tiles.data();
  const int64_t ks = gemm_detail::kslice(K);
  for (int64_t pc = 0; pc < K; pc += ks) {
    const int64_t kc = std::min(ks, K - pc);
    for (int64_t p = 0; p < panels; ++p)
      pack_b(pc, kc, j0 + p * NR, std::min<int64_t>(NR, nc - p * NR), bpack + p * NR * kc);
    for (int64_t ip = m0; ip < m1; ip += MR)
      for (int64_t p = 0; p < panels; ++p)
        Kern::micro(kc, a_panel<MR>(apack, K, lda, acol, ip, pc), bpack + p * NR * kc,
                    tl + ((ip - m0) * panels + p * MR) * NR, pc > 0, lda,
                    acol ? acol + pc : nullptr);
  }
  for (int64_t ip = m0; ip < m1; ip += MR)
    for (int64_t p = 0; p < panels; ++p)
      store(ip, j0 + p * NR, std::min<int64_t>(MR, M - ip), std::min<int64_t>(NR, nc - p * NR),
            static_cast<const T*>(tl + ((ip - m0) * panels + p * MR) * NR));
}

// Store functor for a row-major C (row stride ldc): writes, or adds when accumulate.
template <typename Kern, typename T>
struct StoreRowMajor {
  T* C;
  int64_t ldc;
  bool accumulate;
  void operator()(int64_t i, int64_t j, int64_t mr, int64_t nr, const T* tile) const {
    for (int64_t r = 0; r < mr; ++r) {
      T* c = C + (i + r) * ldc + j;
      const T* t = tile + r * Kern::NR;
      if (!accumulate) {
        for (int64_t q = 0; q < nr; ++q) c[q] = t[q];
      } else {
        for (int64_t q = 0; q < nr; ++q) c[q] += t[q];
      }
    }
  }
};

// pack_b functor for a strided B (K, N).
template <typename Kern, typename T>
struct PackStrided {
  const T* B;
  int64_t brs, bcs;
  void operator()(int64_t k0, int64_t kc, int64_t j, int64_t nr, T* dst) const {
    constexpr int NR = Kern::NR;
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + (k0 + k) * brs + j * bcs;
      T* d = dst + k * NR;
      if (bcs == 1) {
        for (int64_t q = 0; q < nr; ++q) d[q] = src[q];
      } else {
        for (int64_t q = 0; q < nr; ++q) d[q] = src[q * bcs];
      }
      for (int64_t q = nr; q < NR; ++q) d[q] = T(0);
    }
  }
};

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B,
          int64_t brs, int64_t bcs, T* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  dispatch<T>([&](auto kern) {
    using Kern = decltype(kern);
    thread_local std::vector<T> apack, bpack;
    apack.resize(padded_rows<Kern>(M) * K);
    bpack.resize(bpack_size<Kern>(K, std::min(N, gemm_detail::NC)));
    pack_a<Kern>(M, K, A, ars, acs, apack.data());
    for (int64_t jc = 0; jc < N; jc += gemm_detail::NC)
      run_block<Kern>(M, K, 0, M, jc, std::min(gemm_detail::NC, N - jc), apack.data(), bpack.data(),
                      PackStrided<Kern, T>{B, brs, bcs}, StoreRowMajor<Kern, T>{C, ldc, accumulate});
  });
}

}  // namespace pydl::cpu
