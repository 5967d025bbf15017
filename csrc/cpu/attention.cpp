// Fused scaled-dot-product attention on the CPU, forward and backward.
//
// Forward: one OpenMP work item per (batch*head, tile of BQ query rows). The
// item walks the key tiles, computes the BQ x BKF score tile, folds it into an
// online softmax (running max m and sum l per row) and accumulates P V into a
// BQ x Ev buffer. Only the per-row log-sum-exp leaves the kernel; the L x S
// score matrix is never stored. Causal tiles that lie wholly above the diagonal
// are skipped.
// Backward (FlashAttention-2 order): work items are (batch*head, chunk of key
// tiles). Each key tile keeps its dK, dV accumulators in cache while the item
// walks the query tiles, recomputing P from the saved log-sum-exp; dQ goes to a
// per-item buffer that is summed afterwards when a head is split in chunks.
// Dropout draws Philox-4x32-10 at counter offset + (b*L + i)*S + j, the same
// stream as pydl/backend/rng.py, so a NumPy reference rebuilds the mask.
//
// Variants: every tile loop is compiled three times, for AVX-512 (64-byte vectors),
// AVX2+FMA and the baseline target, chosen at run time from the CPU's features
// (PYDL_CPU_ISA caps the choice, as for the GEMM of csrc/cpu/gemm.h). The matrix
// products are register-blocked 4 x 2-vector micro-kernels over buffers whose
// widths are padded to two of the widest vectors, so no product needs a tail loop.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "csrc/cpu/gemm.h"
#include "csrc/cpu/kernels.h"
#include "csrc/dispatch.h"

namespace pydl::cpu {

namespace {

constexpr int64_t BQ = 64;  // query rows per tile
constexpr int64_t BK = 64;  // keys per tile
// Keys per forward tile: a row's online-softmax step (its maximum, rescaling its output row)
// and each accumulator load and store of the P V product serve twice the keys of BK;
// 2-8% faster than 64 at seq 256-4096, head_dim 64 and 128.
constexpr int64_t BKF = 128;

// VB: vector bytes, 16 (baseline SSE2), 32 (AVX2) or 64 (AVX-512).
template <typename T, int VB>
struct Vec {
  static constexpr int W = VB / sizeof(T);
  typedef T v __attribute__((vector_size(VB), aligned(sizeof(T))));
};

// Row widths are padded to two of the widest vectors, so every variant's micro-kernels see
// whole vector pairs.
template <typename T>
constexpr int64_t kPad = 128 / sizeof(T);

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Rows [m, m + R) of C[:, n : n + 2 vectors] (= or +=) sum_k A[m*am + k*ak] * B[k*ldb + n:]:
// R x 2 vector accumulators held in registers over the whole K.
template <typename T, int VB, int R>
__attribute__((always_inline)) inline void gemm_block(int64_t K, const T* A, int64_t am,
                                                      int64_t ak, const T* B, int64_t ldb, T* C,
                                                      int64_t ldc, bool accumulate) {
  using V = typename Vec<T, VB>::v;
  constexpr int W = Vec<T, VB>::W;
  V c[R][2];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 2; ++j) {
      c[r][j] = V{};
      if (accumulate) std::memcpy(&c[r][j], C + r * ldc + j * W, sizeof(V));
    }
  for (int64_t k = 0; k < K; ++k, B += ldb) {
    V b0, b1;
    std::memcpy(&b0, B, sizeof(V));
    std::memcpy(&b1, B + W, sizeof(V));
    const T* ak_ = A + k * ak;
    for (int r = 0; r < R; ++r) {
      const T s = ak_[r * am];
      c[r][0] += s * b0;
      c[r][1] += s * b1;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 2; ++j) std::memcpy(C + r * ldc + j * W, &c[r][j], sizeof(V));
}

// C[m, :N] (= or +=) sum_k A[m*am + k*ak] * B[k*ldb + :N], N a multiple of two vectors. Rows
// go R at a time, R as many as the vector registers hold accumulators for (8 x 2 of AVX-512's
// 32, 6 x 2 of AVX2's 16, 4 x 2 of SSE2's 16), then 4 and 1 at a time.
template <typename T, int VB>
__attribute__((always_inline)) inline void gemm_acc(int64_t M, int64_t N, int64_t K, const T* A,
                                                    int64_t am, int64_t ak, const T* B, int64_t ldb,
                                                    T* C, int64_t ldc, bool accumulate) {
  constexpr int W = Vec<T, VB>::W, R = VB == 64 ? 8 : VB == 32 ? 6 : 4;
  int64_t m = 0;
  for (; m + R <= M; m += R)
    for (int64_t n = 0; n < N; n += 2 * W)
      gemm_block<T, VB, R>(K, A + m * am, am, ak, B + n, ldb, C + m * ldc + n, ldc, accumulate);
  if constexpr (R > 4)
    for (; m + 4 <= M; m += 4)
      for (int64_t n = 0; n < N; n += 2 * W)
        gemm_block<T, VB, 4>(K, A + m * am, am, ak, B + n, ldb, C + m * ldc + n, ldc, accumulate);
  for (; m < M; ++m)
    for (int64_t n = 0; n < N; n += 2 * W)
      gemm_block<T, VB, 1>(K, A + m * am, am, ak, B + n, ldb, C + m * ldc + n, ldc, accumulate);
}


// row[c] = exp(row[c] - mx) for c < n (n a multiple of the vector width); returns the sum.
// float: a Cephes-style polynomial (relative error ~1e-7) in vectors; exp(-inf) = 0.
template <int VB>
__attribute__((always_inline)) inline float exp_shift_sum_float(float* row, int64_t n, float mx) {
  using V = typename Vec<float, VB>::v;
  typedef int32_t VI __attribute__((vector_size(VB), aligned(4)));
  constexpr int W = Vec<float, VB>::W;
  V acc{};
  for (int64_t c = 0; c < n; c += W) {
    V x;
    std::memcpy(&x, row + c, sizeof(V));
    x -= mx;
    const VI dead = x < -87.3f;
    x = dead ? V{} - 87.3f : x;
    V fx = x * 1.44269504088896341f + 0.5f;
    VI ix = __builtin_convertvector(fx, VI);
    ix -= (__builtin_convertvector(ix, V) > fx) ? VI{} + 1 : VI{};  // floor
    fx = __builtin_convertvector(ix, V);
    x -= fx * 0.693359375f;
    x -= fx * -2.12194440e-4f;
    V y = V{} + 1.9875691500E-4f;
    y = y * x + 1.3981999507E-3f;
    y = y * x + 8.3334519073E-3f;
    y = y * x + 4.1665795894E-2f;
    y = y * x + 1.6666665459E-1f;
    y = y * x + 5.0000001201E-1f;
    y = y * (x * x) + x + 1.0f;
    VI bits = (ix + 127) << 23;
    V pow2;
    std::memcpy(&pow2, &bits, sizeof(V));
    y *= pow2;
    y = dead ? V{} : y;
    std::memcpy(row + c, &y, sizeof(V));
    acc += y;
  }
  float sum = 0;
  for (int i = 0; i < W; ++i) sum += acc[i];
  return sum;
}

template <typename T, int VB>
__attribute__((always_inline)) inline T exp_shift_sum(T* row, int64_t n, T mx) {
  if constexpr (std::is_same_v<T, float>) return exp_shift_sum_float<VB>(row, n, mx);
  T sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    const T e = std::exp(row[c] - mx);
    row[c] = e;
    sum += e;
  }
  return sum;
}


// ---- Philox-4x32-10, as pydl/backend/rng.py defines it ---------------------------------------
inline uint32_t philox_word(uint64_t seed, uint64_t counter) {
  const uint64_t block = counter >> 2;
  uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = static_cast<uint64_t>(c0) * 0xD2511F53u;
    const uint64_t p1 = static_cast<uint64_t>(c2) * 0xCD9E8D57u;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = static_cast<uint32_t>(p1);
    c2 = n2;
    c3 = static_cast<uint32_t>(p0);
  }
  switch (counter & 3) {
    case 0: return c0;
    case 1: return c1;
    case 2: return c2;
    default: return c3;
  }
}

struct Dropout {
  double p = 0;
  uint64_t seed = 0, offset = 0;
  uint32_t threshold = 0;  // keep when (u32 >> 8) >= threshold
  bool active() const { return p > 0; }
};

// Multiply row r of a score tile (columns j0..j0+n) by keep / (1 - p).
template <typename T>
inline void apply_dropout(const Dropout& d, int64_t b, int64_t i, int64_t j0, int64_t n, int64_t L,
                          int64_t S, T* row) {
  const T scale = static_cast<T>(1.0 / (1.0 - d.p));
  const uint64_t base = d.offset + (static_cast<uint64_t>(b) * L + i) * S + j0;
  for (int64_t c = 0; c < n; ++c) {
    const uint32_t u = philox_word(d.seed, base + c) >> 8;
    row[c] = u >= d.threshold ? row[c] * scale : T(0);
  }
}

struct Problem {
  int64_t B, L, S, E, Ev, EP, EvP;
  int64_t H2;  // the mask's second batch dim: b = b1 * H2 + b2
  double scale;
  bool causal;
  const TensorView* mask;
  Dropout drop;
};

// Scores of query rows i0..i0+bq against keys j0..j0+bk into s (bq x BKP), masked (additive
// mask, causal, keys past S: -inf). kt holds the key tile transposed and already scaled.
template <typename T, int VB>
__attribute__((always_inline)) inline void score_tile(const Problem& P, int64_t b, const T* q,
                                                      int64_t i0, int64_t bq, int64_t j0, int64_t bk,
                                                      const T* kt, int64_t ldk, T* s) {
  const int64_t BKP = round_up(bk, kPad<T>);
  gemm_acc<T, VB>(bq, BKP, P.E, q + i0 * P.E, P.E, 1, kt, ldk, s, BKP, false);
  const T ninf = -std::numeric_limits<T>::infinity();
  const T* mp = nullptr;
  int64_t ms_i = 0, ms_j = 0;
  if (P.mask) {
    const TensorView& m = *P.mask;
    const int64_t b1 = b / P.H2, b2 = b % P.H2;
    mp = m.ptr<T>() + b1 * m.strides[0] + b2 * m.strides[1];
    ms_i = m.strides[2];
    ms_j = m.strides[3];
  }
  for (int64_t r = 0; r < bq; ++r) {
    T* row = s + r * BKP;
    const int64_t i = i0 + r;
    if (mp) {
      const T* mr = mp + i * ms_i + j0 * ms_j;
      for (int64_t c = 0; c < bk; ++c) row[c] += mr[c * ms_j];
    }
    if (P.causal)
      for (int64_t c = std::max<int64_t>(0, i + 1 - j0); c < bk; ++c) row[c] = ninf;
    for (int64_t c = bk; c < BKP; ++c) row[c] = ninf;
  }
}

// Pack rows r0..r0+n of a (rows x cols) matrix transposed and times `mul` into out
// (cols x ldo), zero-padded.
template <typename T>
inline void pack_transposed(const T* src, int64_t r0, int64_t n, int64_t cols, T* out, int64_t ldo,
                            T mul = T(1)) {
  for (int64_t r = 0; r < n; ++r) {
    const T* s = src + (r0 + r) * cols;
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + r] = s[c] * mul;
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = n; r < ldo; ++r) out[c * ldo + r] = T(0);
}

// max(init, row[0..n)), n a multiple of the vector width.
template <typename T, int VB>
__attribute__((always_inline)) inline T row_max(const T* row, int64_t n, T init) {
  using V = typename Vec<T, VB>::v;
  constexpr int W = Vec<T, VB>::W;
  V m = V{} + init;
  for (int64_t c = 0; c < n; c += W) {
    V x;
    std::memcpy(&x, row + c, sizeof(V));
    m = x > m ? x : m;
  }
  T r = init;
  for (int i = 0; i < W; ++i) r = m[i] > r ? m[i] : r;
  return r;
}

// Pack rows r0..r0+n of a (rows x cols) matrix into out (n x ldo), zero-padded columns.
template <typename T>
inline void pack_rows(const T* src, int64_t r0, int64_t n, int64_t cols, T* out, int64_t ldo) {
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(out + r * ldo, src + (r0 + r) * cols, cols * sizeof(T));
    for (int64_t c = cols; c < ldo; ++c) out[r * ldo + c] = T(0);
  }
}

template <typename T>
struct FwdScratch {
  std::vector<T> vp, s, o, m, l;
  void resize(const Problem& P) {
    const int64_t BKP = round_up(BKF, kPad<T>);
    vp.resize(P.Ev == P.EvP ? 0 : BKF * P.EvP);
    s.resize(BQ * BKP);
    o.resize(BQ * P.EvP);
    m.resize(BQ);
    l.resize(BQ);
  }
};

template <typename T, int VB>
__attribute__((always_inline)) inline void forward_item(const Problem& P, int64_t b, int64_t i0,
                                                        const T* q, const T* kt, const T* v, T* out,
                                                        T* lse, FwdScratch<T>& w) {
  // kt: this head's keys transposed and scaled, one contiguous (E x BKF) block per key tile
  // (a row stride of S would put every row of a tile in the same cache sets).
  const int64_t bq = std::min(BQ, P.L - i0);
  const T ninf = -std::numeric_limits<T>::infinity();
  std::fill(w.o.begin(), w.o.begin() + bq * P.EvP, T(0));
  std::fill(w.m.begin(), w.m.end(), ninf);
  std::fill(w.l.begin(), w.l.end(), T(0));
  const int64_t j_end = P.causal ? std::min(P.S, i0 + bq) : P.S;
  for (int64_t j0 = 0; j0 < j_end; j0 += BKF) {
    const int64_t bk = std::min(BKF, P.S - j0);
    const int64_t BKP = round_up(bk, kPad<T>);
    score_tile<T, VB>(P, b, q, i0, bq, j0, bk, kt + j0 * P.E, BKF, w.s.data());
    for (int64_t r = 0; r < bq; ++r) {
      T* row = w.s.data() + r * BKP;
      const T mx = row_max<T, VB>(row, BKP, w.m[r]);
      T* orow = w.o.data() + r * P.EvP;
      if (mx == ninf) {  // nothing to attend yet in this row
        for (int64_t c = 0; c < BKP; ++c) row[c] = T(0);
        continue;
      }
      const T alpha = std::exp(w.m[r] - mx);
      const T sum = exp_shift_sum<T, VB>(row, BKP, mx);
      w.l[r] = w.l[r] * alpha + sum;
      w.m[r] = mx;
      if (alpha != T(1))
        for (int64_t c = 0; c < P.EvP; ++c) orow[c] *= alpha;
      if (P.drop.active()) apply_dropout(P.drop, b, i0 + r, j0, bk, P.L, P.S, row);
    }
    const T* vt = v + j0 * P.Ev;  // used in place when Ev is a whole number of vector pairs
    if (P.Ev != P.EvP) {
      pack_rows(v, j0, bk, P.Ev, w.vp.data(), P.EvP);
      vt = w.vp.data();
    }
    gemm_acc<T, VB>(bq, P.EvP, bk, w.s.data(), BKP, 1, vt, P.EvP, w.o.data(), P.EvP, true);
  }
  for (int64_t r = 0; r < bq; ++r) {
    T* dst = out + (i0 + r) * P.Ev;
    const T* orow = w.o.data() + r * P.EvP;
    if (w.m[r] == ninf) {  // a row with no key to attend: zero output, like PyTorch
      for (int64_t c = 0; c < P.Ev; ++c) dst[c] = T(0);
      lse[i0 + r] = ninf;
      continue;
    }
    const T inv = T(1) / w.l[r];
    for (int64_t c = 0; c < P.Ev; ++c) dst[c] = orow[c] * inv;
    lse[i0 + r] = w.m[r] + std::log(w.l[r]);
  }
}

// Keys per backward tile. Each key tile's sweep over the query tiles streams the head's q,
// dO and dQ partial sums (and their padded copies); once those outgrow a core's L2 (about
// 4 MiB of them: sequences of 2048 at head_dim 128, 4096 at 64), tiles of 128 keys halve
// that traffic (seq 4096, head_dim 128: 12% faster); below it 64-key tiles are a few percent
// faster.
template <typename T>
int64_t backward_keys(const Problem& P) {
  const int64_t streamed = P.L * (P.E + 2 * P.EP + P.Ev + P.EvP) * static_cast<int64_t>(sizeof(T));
  return streamed > (int64_t{4} << 20) ? 128 : BK;
}

template <typename T>
struct BwdScratch {
  std::vector<T> qp, dop, kp, kt, vt, s, dp, dk, dv, dq, dsum;
  void resize(const Problem& P, int64_t bkb) {
    const int64_t BKP = round_up(bkb, kPad<T>);
    qp.resize(P.L * P.EP);
    dop.resize(P.L * P.EvP);
    kp.resize(bkb * P.EP);
    kt.resize(P.E * BKP);
    vt.resize(P.Ev * BKP);
    s.resize(BQ * BKP);
    dp.resize(BQ * BKP);
    dk.resize(bkb * P.EP);
    dv.resize(bkb * P.EvP);
    dsum.resize(P.L);
  }
};

// Gradients of head b from the key tiles t0..t1 (in units of bkb keys); dq_acc is (L x EP).
template <typename T, int VB>
__attribute__((always_inline)) inline void backward_item(const Problem& P, int64_t b, int64_t t0,
                                                         int64_t t1, const T* q, const T* k,
                                                         const T* v, const T* o, const T* lse,
                                                         const T* dout, T* dk_out, T* dv_out,
                                                         T* dq_acc, int64_t bkb, BwdScratch<T>& w) {
  pack_rows(q, 0, P.L, P.E, w.qp.data(), P.EP);
  pack_rows(dout, 0, P.L, P.Ev, w.dop.data(), P.EvP);
  for (int64_t i = 0; i < P.L; ++i) {
    T d = 0;
    for (int64_t c = 0; c < P.Ev; ++c) d += dout[i * P.Ev + c] * o[i * P.Ev + c];
    w.dsum[i] = d;
  }
  const T sc = static_cast<T>(P.scale);
  const T ninf = -std::numeric_limits<T>::infinity();
  std::vector<T> keep(P.drop.active() ? bkb : 0);  // a row's keep / (1 - p) factors
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t j0 = t * bkb, bk = std::min(bkb, P.S - j0);
    const int64_t BKP = round_up(bk, kPad<T>);
    pack_transposed(k, j0, bk, P.E, w.kt.data(), BKP, sc);
    pack_transposed(v, j0, bk, P.Ev, w.vt.data(), BKP);
    pack_rows(k, j0, bk, P.E, w.kp.data(), P.EP);
    std::fill(w.dk.begin(), w.dk.end(), T(0));
    std::fill(w.dv.begin(), w.dv.end(), T(0));
    const int64_t i_start = P.causal ? j0 / BQ * BQ : 0;
    for (int64_t i0 = i_start; i0 < P.L; i0 += BQ) {
      const int64_t bq = std::min(BQ, P.L - i0);
      score_tile<T, VB>(P, b, q, i0, bq, j0, bk, w.kt.data(), BKP, w.s.data());
      // s <- P = exp(s - lse); dp <- dO V^T
      for (int64_t r = 0; r < bq; ++r) {
        T* row = w.s.data() + r * BKP;
        const T ls = lse[i0 + r];
        if (ls == ninf) {
          for (int64_t c = 0; c < BKP; ++c) row[c] = T(0);
        } else {
          exp_shift_sum<T, VB>(row, BKP, ls);
        }
      }
      gemm_acc<T, VB>(bq, BKP, P.Ev, dout + i0 * P.Ev, P.Ev, 1, w.vt.data(), BKP, w.dp.data(), BKP,
                  false);
      if (P.drop.active()) {
        // dV uses the dropped, rescaled P; dP picks up the same factor.
        T* pd = keep.data();
        for (int64_t r = 0; r < bq; ++r) {
          T* prow = w.s.data() + r * BKP;
          T* dprow = w.dp.data() + r * BKP;
          for (int64_t c = 0; c < bk; ++c) pd[c] = T(1);
          apply_dropout(P.drop, b, i0 + r, j0, bk, P.L, P.S, pd);
          for (int64_t c = 0; c < bk; ++c) dprow[c] *= pd[c];
          // dV += (P*Z)^T dO, row by row since Z differs per row
          for (int64_t c = 0; c < bk; ++c) {
            const T pz = prow[c] * pd[c];
            if (pz == T(0)) continue;
            T* dvr = w.dv.data() + c * P.EvP;
            const T* dor = w.dop.data() + (i0 + r) * P.EvP;
            for (int64_t e = 0; e < P.EvP; ++e) dvr[e] += pz * dor[e];
          }
        }
      } else {
        gemm_acc<T, VB>(bk, P.EvP, bq, w.s.data(), 1, BKP, w.dop.data() + i0 * P.EvP, P.EvP,
                    w.dv.data(), P.EvP, true);
      }
      // dS = P * (dP - D) * scale, into dp
      for (int64_t r = 0; r < bq; ++r) {
        const T* prow = w.s.data() + r * BKP;
        T* dprow = w.dp.data() + r * BKP;
        const T d = w.dsum[i0 + r];
        for (int64_t c = 0; c < BKP; ++c) dprow[c] = prow[c] * (dprow[c] - d) * sc;
      }
      gemm_acc<T, VB>(bq, P.EP, bk, w.dp.data(), BKP, 1, w.kp.data(), P.EP, dq_acc + i0 * P.EP, P.EP,
                  true);
      gemm_acc<T, VB>(bk, P.EP, bq, w.dp.data(), 1, BKP, w.qp.data() + i0 * P.EP, P.EP, w.dk.data(),
                  P.EP, true);
    }
    for (int64_t r = 0; r < bk; ++r) {
      std::memcpy(dk_out + (j0 + r) * P.E, w.dk.data() + r * P.EP, P.E * sizeof(T));
      std::memcpy(dv_out + (j0 + r) * P.Ev, w.dv.data() + r * P.EvP, P.Ev * sizeof(T));
    }
  }
}

// Each tile loop compiled for one ISA: VB-byte vectors under the given target.
#define PYDL_ATTN_VARIANT(T, NAME, TARGET, VB)                                                     \
  TARGET void forward_item_##NAME(const Problem& P, int64_t b, int64_t i0, const T* q,             \
                                  const T* k, const T* v, T* out, T* lse, FwdScratch<T>& w) {      \
    forward_item<T, VB>(P, b, i0, q, k, v, out, lse, w);                                           \
  }                                                                                                \
  TARGET void backward_item_##NAME(const Problem& P, int64_t b, int64_t t0, int64_t t1,            \
                                   const T* q, const T* k, const T* v, const T* o, const T* lse,   \
                                   const T* dout, T* dk, T* dv, T* dq, int64_t bkb,                \
                                   BwdScratch<T>& w) {                                             \
    backward_item<T, VB>(P, b, t0, t1, q, k, v, o, lse, dout, dk, dv, dq, bkb, w);                 \
  }
#define PYDL_ATTN_VARIANTS(T)                                                     \
  PYDL_ATTN_VARIANT(T, avx512, __attribute__((target("avx512f"))), 64)            \
  PYDL_ATTN_VARIANT(T, avx2, __attribute__((target("avx2,fma"))), 32)             \
  PYDL_ATTN_VARIANT(T, base, , 16)

PYDL_ATTN_VARIANTS(float)
PYDL_ATTN_VARIANTS(double)
#undef PYDL_ATTN_VARIANTS
#undef PYDL_ATTN_VARIANT

// The widest variant this CPU runs (PYDL_CPU_ISA caps it, as for the GEMM).
inline gemm_detail::Isa attn_isa() { return gemm_detail::cpu_isa(); }

void check_qkv(const char* op, const TensorView& q, const TensorView& k, const TensorView& v) {
  check_float(op, "query", q);
  const std::pair<const char*, const TensorView*> args[] = {{"query", &q}, {"key", &k}, {"value", &v}};
  for (const auto& [n, t] : args) {
    check_contiguous(op, n, *t);
    if (t->ndim() != 3)
      throw ValueError(std::string(op) + ": " + n + " must be 3-D (batch*heads, seq, dim), got " +
                       shape_str(t->shape));
  }
  check_same_dtype(op, "key", k, q);
  check_same_dtype(op, "value", v, q);
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0))
    throw ValueError(std::string(op) + ": query, key and value must have the same batch size, got " +
                     shape_str(q.shape) + ", " + shape_str(k.shape) + ", " + shape_str(v.shape));
  if (k.size(2) != q.size(2))
    throw ValueError(std::string(op) + ": query and key head dims differ: " + shape_str(q.shape) +
                     " vs " + shape_str(k.shape));
  if (v.size(1) != k.size(1))
    throw ValueError(std::string(op) + ": key and value lengths differ: " + shape_str(k.shape) +
                     " vs " + shape_str(v.shape));
}

Problem make_problem(const char* op, const TensorView& q, const TensorView& k, const TensorView& v,
                     const std::optional<TensorView>& mask, double scale, bool causal,
                     double dropout_p, uint64_t seed, uint64_t offset) {
  check_qkv(op, q, k, v);
  Problem P;
  P.B = q.size(0);
  P.L = q.size(1);
  P.S = k.size(1);
  P.E = q.size(2);
  P.Ev = v.size(2);
  const int64_t vw = 128 / dtype_size(q.dtype);  // kPad: two of the widest vectors
  P.EP = round_up(P.E, vw);
  P.EvP = round_up(P.Ev, vw);
  P.scale = scale;
  P.causal = causal;
  P.mask = nullptr;
  P.H2 = 1;
  if (mask) {
    check_same_dtype(op, "attn_mask", *mask, q);
    if (mask->ndim() != 4 || mask->size(2) != P.L || mask->size(3) != P.S ||
        mask->size(0) * mask->size(1) != P.B)
      throw ValueError(std::string(op) + ": attn_mask view must be (B1, B2, L, S) with B1*B2 = " +
                       std::to_string(P.B) + ", L = " + std::to_string(P.L) + ", S = " +
                       std::to_string(P.S) + "; got " + shape_str(mask->shape));
    P.H2 = mask->size(1);
  }
  if (!(dropout_p >= 0.0 && dropout_p < 1.0))
    throw ValueError(std::string(op) + ": dropout_p must be in [0, 1), got " + std::to_string(dropout_p));
  P.drop.p = dropout_p;
  P.drop.seed = seed;
  P.drop.offset = offset;
  P.drop.threshold = static_cast<uint32_t>(std::ceil(dropout_p * 16777216.0));
  return P;
}

template <typename T>
void run_forward(const Problem& P, const TensorView& q, const TensorView& k, const TensorView& v,
                 const TensorView& out, const TensorView& lse) {
  const T *qp = q.ptr<T>(), *kp = k.ptr<T>(), *vp = v.ptr<T>();
  // Every query tile of a head reads all its keys: transpose and scale them once per head.
  const int64_t ktiles = (P.S + BKF - 1) / BKF;
  const int64_t SP = ktiles * BKF;
  std::vector<T> kt_all(static_cast<size_t>(P.B * P.E * SP));
  T *op_ = out.ptr<T>(), *lp = lse.ptr<T>();
  const int64_t tiles = (P.L + BQ - 1) / BQ;
  const gemm_detail::Isa isa = attn_isa();
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t bt = 0; bt < P.B * ktiles; ++bt) {
      const int64_t b = bt / ktiles, j0 = bt % ktiles * BKF;
      pack_transposed(kp + b * P.S * P.E, j0, std::min(BKF, P.S - j0), P.E,
                      kt_all.data() + b * P.E * SP + j0 * P.E, BKF, static_cast<T>(P.scale));
    }
    FwdScratch<T> w;
    w.resize(P);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < P.B * tiles; ++item) {
      // Causal: longest tiles first, so the dynamic schedule balances.
      const int64_t t = P.causal ? tiles - 1 - item % tiles : item % tiles;
      const int64_t b = item / tiles;
      const T* qb = qp + b * P.L * P.E;
      const T* kb = kt_all.data() + b * P.E * SP;
      const T* vb = vp + b * P.S * P.Ev;
      T* ob = op_ + b * P.L * P.Ev;
      if (isa == gemm_detail::Isa::avx512)
        forward_item_avx512(P, b, t * BQ, qb, kb, vb, ob, lp + b * P.L, w);
      else if (isa == gemm_detail::Isa::avx2)
        forward_item_avx2(P, b, t * BQ, qb, kb, vb, ob, lp + b * P.L, w);
      else
        forward_item_base(P, b, t * BQ, qb, kb, vb, ob, lp + b * P.L, w);
    }
  }
}

template <typename T>
void run_backward(const Problem& P, const TensorView& q, const TensorView& k, const TensorView& v,
                  const TensorView& out, const TensorView& lse, const TensorView& dout,
                  const TensorView& dq, const TensorView& dk, const TensorView& dv) {
  const int64_t bkb = backward_keys<T>(P), ktiles = (P.S + bkb - 1) / bkb;
  // Split a head's key tiles in chunks when there are fewer heads than threads.
  const int64_t threads = omp_get_max_threads();
  int64_t chunks = P.B >= 2 * threads ? 1 : (2 * threads + P.B - 1) / P.B;
  chunks = std::max<int64_t>(1, std::min(chunks, ktiles));
  const int64_t per = (ktiles + chunks - 1) / chunks;
  chunks = std::max<int64_t>(1, (ktiles + per - 1) / per);
  std::vector<T> dq_acc(static_cast<size_t>(P.B * chunks * P.L * P.EP), T(0));
  const gemm_detail::Isa isa = attn_isa();
#pragma omp parallel
  {
    BwdScratch<T> w;
    w.resize(P, bkb);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < P.B * chunks; ++item) {
      const int64_t b = item / chunks, c = item % chunks;
      const int64_t t0 = c * per, t1 = std::min(ktiles, t0 + per);
      const T* qb = q.ptr<T>() + b * P.L * P.E;
      const T* kb = k.ptr<T>() + b * P.S * P.E;
      const T* vb = v.ptr<T>() + b * P.S * P.Ev;
      const T* ob = out.ptr<T>() + b * P.L * P.Ev;
      const T* gb = dout.ptr<T>() + b * P.L * P.Ev;
      const T* lb = lse.ptr<T>() + b * P.L;
      T* acc = dq_acc.data() + item * P.L * P.EP;
      T* dkb = dk.ptr<T>() + b * P.S * P.E;
      T* dvb = dv.ptr<T>() + b * P.S * P.Ev;
      if (isa == gemm_detail::Isa::avx512)
        backward_item_avx512(P, b, t0, t1, qb, kb, vb, ob, lb, gb, dkb, dvb, acc, bkb, w);
      else if (isa == gemm_detail::Isa::avx2)
        backward_item_avx2(P, b, t0, t1, qb, kb, vb, ob, lb, gb, dkb, dvb, acc, bkb, w);
      else
        backward_item_base(P, b, t0, t1, qb, kb, vb, ob, lb, gb, dkb, dvb, acc, bkb, w);
    }
#pragma omp for schedule(static)
    for (int64_t row = 0; row < P.B * P.L; ++row) {
      const int64_t b = row / P.L, i = row % P.L;
      T* dst = dq.ptr<T>() + row * P.E;
      for (int64_t e = 0; e < P.E; ++e) {
        T s = 0;
        for (int64_t c = 0; c < chunks; ++c) s += dq_acc[((b * chunks + c) * P.L + i) * P.EP + e];
        dst[e] = s;
      }
    }
  }
}

}  // namespace

void attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                       const std::optional<TensorView>& mask, const TensorView& out,
                       const TensorView& lse, double scale, bool causal, double dropout_p,
                       uint64_t seed, uint64_t offset) {
  const char* op = "scaled_dot_product_attention";
  Problem P = make_problem(op, q, k, v, mask, scale, causal, dropout_p, seed, offset);
  if (mask) P.mask = &*mask;
  check_contiguous(op, "output", out);
  check_same_dtype(op, "output", out, q);
  check_shape(op, "output", out, {P.B, P.L, P.Ev});
  check_contiguous(op, "lse", lse);
  check_same_dtype(op, "lse", lse, q);
  check_shape(op, "lse", lse, {P.B, P.L});
  if (P.B == 0 || P.L == 0) return;
  PYDL_DISPATCH_FLOAT(q.dtype, op, [&] { run_forward<scalar_t>(P, q, k, v, out, lse); });
}

void attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                        const std::optional<TensorView>& mask, const TensorView& out,
                        const TensorView& lse, const TensorView& dout, const TensorView& dq,
                        const TensorView& dk, const TensorView& dv, double scale, bool causal,
                        double dropout_p, uint64_t seed, uint64_t offset) {
  const char* op = "scaled_dot_product_attention_backward";
  Problem P = make_problem(op, q, k, v, mask, scale, causal, dropout_p, seed, offset);
  if (mask) P.mask = &*mask;
  const std::tuple<const char*, const TensorView*, std::vector<int64_t>> args[] = {
      {"output", &out, {P.B, P.L, P.Ev}}, {"grad_output", &dout, {P.B, P.L, P.Ev}},
      {"lse", &lse, {P.B, P.L}},          {"grad_query", &dq, q.shape},
      {"grad_key", &dk, k.shape},         {"grad_value", &dv, v.shape}};
  for (const auto& [n, t, want] : args) {
    check_contiguous(op, n, *t);
    check_same_dtype(op, n, *t, q);
    check_shape(op, n, *t, want);
  }
  if (P.B == 0) return;
  PYDL_DISPATCH_FLOAT(q.dtype, op, [&] {
    run_backward<scalar_t>(P, q, k, v, out, lse, dout, dq, dk, dv);
  });
}

}  // namespace pydl::cpu
