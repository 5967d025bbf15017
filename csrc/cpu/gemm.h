// Single-threaded packed GEMM for the CPU kernels: C (M, N) = or += A (M, K) @ B (K, N), with
// A and B at any element strides and C row-major (row stride ldc). Callers run it inside their
// own OpenMP work items. Blocks of A (MC x KC) and B (KC x N) are packed into thread-local,
// zero-padded panels; an MR x NR register tile accumulates over a KC slice. The microkernel is
// written once with GCC vector types and compiled twice: for AVX2/FMA (chosen at run time by
// __builtin_cpu_supports, since the wheel is built without -march) and for the baseline ISA.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pydl::cpu {

namespace gemm_detail {

template <typename T> struct Tile;
template <> struct Tile<float> { static constexpr int MR = 6, NR = 16; };
template <> struct Tile<double> { static constexpr int MR = 6, NR = 8; };

constexpr int64_t KC = 256, MC = 96, NC = 2048;

// tile (MR x NR) = sum_k a[k][0..MR) x b[k][0..NR) over kc packed steps.
template <typename T>
inline __attribute__((always_inline)) void micro_body(int64_t kc, const T* __restrict a,
                                                      const T* __restrict b, T* __restrict tile) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR, W = 32 / sizeof(T), NV = NR / W;
  typedef T V __attribute__((vector_size(32)));
  typedef T VU __attribute__((vector_size(32), aligned(sizeof(T))));  // unaligned loads/stores
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) acc[i][j] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const VU*>(b + k * NR + j * W);
    for (int i = 0; i < MR; ++i) {
      const T ai = a[k * MR + i];
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<VU*>(tile + i * NR + j * W) = acc[i][j];
}

template <typename T>
__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const T* a, const T* b, T* tile) {
  micro_body<T>(kc, a, b, tile);
}

template <typename T>
void micro_generic(int64_t kc, const T* a, const T* b, T* tile) {
  micro_body<T>(kc, a, b, tile);
}

inline bool has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

}  // namespace gemm_detail

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B,
          int64_t brs, int64_t bcs, T* C, int64_t ldc, bool accumulate) {
  using namespace gemm_detail;
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  auto micro = has_avx2() ? &micro_avx2<T> : &micro_generic<T>;
  thread_local std::vector<T> apack, bpack;
  const int64_t ncmax = std::min(N, NC), kcmax = std::min(K, KC);
  apack.resize(((std::min(M, MC) + MR - 1) / MR) * MR * kcmax);
  bpack.resize(((ncmax + NR - 1) / NR) * NR * kcmax);
  alignas(64) T tile[MR * NR];
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool acc = accumulate || pc > 0;
      // Pack B (kc, nc) into NR-wide panels, zero-padded at the right edge.
      for (int64_t jp = 0; jp < nc; jp += NR) {
        T* dst = bpack.data() + jp * kc;
        const int64_t nr = std::min<int64_t>(NR, nc - jp);
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + (pc + k) * brs + (jc + jp) * bcs;
          T* d = dst + k * NR;
          if (bcs == 1) {
            for (int64_t j = 0; j < nr; ++j) d[j] = src[j];
          } else {
            for (int64_t j = 0; j < nr; ++j) d[j] = src[j * bcs];
          }
          for (int64_t j = nr; j < NR; ++j) d[j] = T(0);
        }
      }
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        // Pack A (mc, kc) into MR-tall panels.
        for (int64_t ip = 0; ip < mc; ip += MR) {
          T* dst = apack.data() + ip * kc;
          const int64_t mr = std::min<int64_t>(MR, mc - ip);
          for (int64_t k = 0; k < kc; ++k) {
            const T* src = A + (ic + ip) * ars + (pc + k) * acs;
            T* d = dst + k * MR;
            for (int64_t i = 0; i < mr; ++i) d[i] = src[i * ars];
            for (int64_t i = mr; i < MR; ++i) d[i] = T(0);
          }
        }
        for (int64_t jp = 0; jp < nc; jp += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jp);
          for (int64_t ip = 0; ip < mc; ip += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ip);
            micro(kc, apack.data() + ip * kc, bpack.data() + jp * kc, tile);
            T* c = C + (ic + ip) * ldc + jc + jp;
            for (int64_t i = 0; i < mr; ++i) {
              T* ci = c + i * ldc;
              const T* ti = tile + i * NR;
              if (acc) {
                for (int64_t j = 0; j < nr; ++j) ci[j] += ti[j];
              } else {
                for (int64_t j = 0; j < nr; ++j) ci[j] = ti[j];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace pydl::cpu
