// Fused attention on tensor cores (mma.sync m16n8k16, sm_80 and newer) for float16 and
// bfloat16, float32 accumulation; the L x S scores never leave the chip.
//
// Forward (FlashAttention-2 order): a block owns 64 query rows of one head (16 per warp)
// and walks the key/value tiles, each copied into shared memory by cp.async one tile ahead
// of its use (two buffers). S = Q K^T comes from ldmatrix fragments of Q and K; the online
// softmax (running max and sum per row, in base 2) runs on the S fragments in registers;
// P is rounded to the input type and repacked in registers as the A operand of O += P V,
// whose V fragments come through ldmatrix.trans. Only O and the per-row log-sum-exp are
// written. Causal attention stops at the last key tile any row of the block can see, and
// masks element-wise only the tiles that cross the diagonal.
//
// Backward: a block owns a tile of keys of one head; K and V stay in shared memory while
// the block walks the query tiles (Q, dO, lse and D = rowsum(dO * O) copied one tile
// ahead). Per query tile it recomputes P = exp(S - lse), forms dP = dO V^T and
// dS = P (dP - D), stores P and dS (rounded to the input type) in shared memory, adds
// P^T dO and dS^T Q into dV and dK (registers, written once at the end) and dS K into the
// float32 dQ workspace with atomic adds. Causal attention starts at the first query tile
// that can see the block's keys.
//
// One kernel per padded head dim (32, 64, 128, 256; the real widths are zero-filled up to
// it): attention_common.cuh holds the tile shapes, chosen so that the accumulators stay in
// registers and the buffers fit the shared memory of an A100. Operand rows in shared
// memory are padded by 16 bytes so every ldmatrix is free of bank conflicts. Operands
// whose base or strides are not 16-byte multiples are copied with 2-byte loads instead.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/attention/attention_common.cuh"
#include "kernels/common/mma_sync.cuh"

namespace pydl::cuda::attn {
namespace {

using namespace ::pydl::cuda::mma;

// Rows [row0, row0 + ROWS) of an operand with `rows` rows of `cols` elements (row stride
// rs, contiguous rows) into shared-memory lines of D + 8 elements; rows past `rows` and
// columns past `cols` (up to D) become zero.
template <typename T, int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_tile(T* s, const T* g, int64_t rs, int row0, int rows, int cols,
                                          bool aligned) {
  constexpr int kVec = 8, kPerRow = D / kVec, kChunks = ROWS * kPerRow;
  static_assert(sizeof(T) == 2, "16-bit elements");
#pragma unroll
  for (int c0 = 0; c0 < kChunks; c0 += THREADS) {
    const int c = c0 + static_cast<int>(threadIdx.x);
    if (kChunks % THREADS != 0 && c >= kChunks) break;
    const int r = c / kPerRow, col = (c % kPerRow) * kVec;
    const int gr = row0 + r;
    int valid = 0;
    if (gr < rows && col < cols) valid = cols - col < kVec ? cols - col : kVec;
    T* dst = s + r * (D + 8) + col;
    if (aligned) {
      const T* src = valid > 0 ? g + static_cast<int64_t>(gr) * rs + col : g;
      cp_async16(dst, src, valid * static_cast<int>(sizeof(T)));
    } else {
      union {
        uint4 v;
        uint16_t e[kVec];
      } u;
      u.v = make_uint4(0u, 0u, 0u, 0u);
      if (valid > 0) {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(g + static_cast<int64_t>(gr) * rs + col);
#pragma unroll
        for (int e = 0; e < kVec; ++e)
          if (e < valid) u.e[e] = src[e];
      }
      *reinterpret_cast<uint4*>(dst) = u.v;
    }
  }
}

template <typename T>
__device__ __forceinline__ void store_pair(T* p, float a, float b, bool pair_ok, bool second) {
  if (pair_ok && second) {
    *reinterpret_cast<uint32_t*>(p) = pack2<T>(a, b);
  } else {
    p[0] = from_float<T>(a);
    if (second) p[1] = from_float<T>(b);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(MmaFwdConfig<D>::kWarps * 32, 1)
    attention_fwd_mma_kernel(const Params p) {
  using C = MmaFwdConfig<D>;
  constexpr int kThreads = C::kWarps * 32, BR = C::kRows, BC = C::kKeys, LINE = D + 8;
  constexpr int NS = BC / 8;  // score n-tiles of a warp
  constexpr int NO = D / 8;   // output n-tiles of a warp
  static_assert(BR == 16 * C::kWarps && BC % 16 == 0 && D % 16 == 0, "tile shape");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sq = reinterpret_cast<T*>(smem_raw);  // [BR][LINE]
  T* sk = sq + BR * LINE;                  // [2][BC][LINE]
  T* sv = sk + 2 * BC * LINE;              // [2][BC][LINE]

  const int tiles = (p.L + BR - 1) / BR;
  const int b = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.B));
  // The last query tiles see the most keys under the causal mask: launch them first.
  const int i0 = (tiles - 1 - static_cast<int>(blockIdx.x / static_cast<unsigned>(p.B))) * BR;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int lr = lane & 7, lm = lane >> 3;
  const T* q = static_cast<const T*>(p.q) + b * p.q_bs;
  const T* k = static_cast<const T*>(p.k) + b * p.k_bs;
  const T* v = static_cast<const T*>(p.v) + b * p.v_bs;

  const int nkt = (key_end(p, i0 + BR) + BC - 1) / BC;
  const int ke = (p.E + 15) & ~15, kve = (p.Ev + 15) & ~15;  // reduction widths, <= D

  load_tile<T, BR, D, kThreads>(sq, q, p.q_rs, i0, p.L, p.E, p.q_al);
  if (nkt > 0) {
    load_tile<T, BC, D, kThreads>(sk, k, p.k_rs, 0, p.S, p.E, p.k_al);
    load_tile<T, BC, D, kThreads>(sv, v, p.v_rs, 0, p.S, p.Ev, p.v_al);
  }
  cp_async_commit();

  float o[NO][4];
#pragma unroll
  for (int n = 0; n < NO; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8
  const int wrow = i0 + warp * 16;                           // the warp's first query row

  for (int it = 0; it < nkt; ++it) {
    const int st = it & 1, j0 = it * BC;
    if (it + 1 < nkt) {
      load_tile<T, BC, D, kThreads>(sk + (st ^ 1) * BC * LINE, k, p.k_rs, j0 + BC, p.S, p.E, p.k_al);
      load_tile<T, BC, D, kThreads>(sv + (st ^ 1) * BC * LINE, v, p.v_rs, j0 + BC, p.S, p.Ev, p.v_al);
    }
    cp_async_commit();
    cp_async_wait<1>();  // Q and this tile have landed
    __syncthreads();
    const T* skt = sk + st * BC * LINE;
    const T* svt = sv + st * BC * LINE;

    float s[NS][4];
#pragma unroll
    for (int n = 0; n < NS; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    warp_mma<T, NS, true, true>(s, sq + warp * 16 * LINE, LINE, skt, LINE, ke);

    // Scores in base 2; hidden keys (past S, above the diagonal) become -inf.
    const bool edge = j0 + BC > p.S || (p.causal && j0 + BC - 1 > wrow);
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = wrow + g + (e >> 1) * 8, j = j0 + n * 8 + 2 * t + (e & 1);
        float x = s[n][e] * p.scale_log2;
        if (p.mask && i < p.L && j < p.S) x += mask_at(p, b, i, j);
        if (edge && hidden(p, i, j)) x = -INFINITY;
        s[n][e] = x;
      }

    // Online softmax: a row's 8 * NS columns of this tile sit in the 4 threads of a quad.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = m[h];
#pragma unroll
      for (int n = 0; n < NS; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      // A row with nothing visible yet keeps max -inf; exp2(-inf - 0) = 0, never -inf - -inf.
      const float base = mx == -INFINITY ? 0.0f : mx;
      const float alpha = exp2f(m[h] - base);
      m[h] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < NS; ++n) {
        s[n][2 * h] = exp2f(s[n][2 * h] - base);
        s[n][2 * h + 1] = exp2f(s[n][2 * h + 1] - base);
        sum += s[n][2 * h] + s[n][2 * h + 1];
      }
      l[h] = l[h] * alpha + sum;  // this thread's columns; the quad is summed at the end
#pragma unroll
      for (int n = 0; n < NO; ++n) {
        o[n][2 * h] *= alpha;
        o[n][2 * h + 1] *= alpha;
      }
    }

    // O += P V: the S fragments of key columns 16kt..16kt+15 are P's A fragment.
#pragma unroll
    for (int kt = 0; kt < BC / 16; ++kt) {
      const uint32_t a[4] = {pack2<T>(s[2 * kt][0], s[2 * kt][1]), pack2<T>(s[2 * kt][2], s[2 * kt][3]),
                             pack2<T>(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                             pack2<T>(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int nj = 0; nj < NO / 2; ++nj) {
        if (nj * 16 >= kve) break;  // columns past Ev are zero: skip them
        uint32_t r[4];
        ldmatrix_x4_trans(r, svt + (kt * 16 + lr + (lm & 1) * 8) * LINE + nj * 16 + (lm >> 1) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_16816(o[2 * nj], a, b0, T());
        mma_16816(o[2 * nj + 1], a, b1, T());
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  cp_async_wait<0>();

  T* out = static_cast<T*>(p.out);
  const bool pair_ok = (p.Ev & 1) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = l[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int i = wrow + g + h * 8;
    if (i >= p.L) continue;
    // No visible key: zero output and lse -inf, as the CPU kernel gives.
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    T* orow = out + (static_cast<int64_t>(b) * p.L + i) * p.Ev;
#pragma unroll
    for (int n = 0; n < NO; ++n) {
      const int col = n * 8 + 2 * t;
      if (col < p.Ev) store_pair<T>(orow + col, o[n][2 * h] * inv, o[n][2 * h + 1] * inv, pair_ok, col + 1 < p.Ev);
    }
    if (t == 0)
      p.lse[static_cast<int64_t>(b) * p.L + i] = m[h] == -INFINITY ? -INFINITY : (m[h] + log2f(sum)) * kLn2;
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(MmaBwdConfig<D>::kWarps * 32, 1)
    attention_bwd_mma_kernel(const Params p) {
  using C = MmaBwdConfig<D>;
  constexpr int kThreads = C::kWarps * 32, BR = C::kRows, BC = C::kKeys;
  constexpr int LINE = D + 8, PLINE = BC + 8;
  constexpr int NS = BC / C::kSWn / 8;   // score n-tiles of a warp
  constexpr int KW = D / C::kKWn;        // dK / dV columns of a warp
  constexpr int NK = KW / 8;
  constexpr int QW = C::kDqCols / C::kQWn;  // dQ columns of a warp per slice
  constexpr int NQ = QW / 8;
  static_assert(C::kSWm * 16 == BR && C::kSWm * C::kSWn == C::kWarps && NS * 8 * C::kSWn == BC, "scores");
  static_assert(C::kKWm * 16 == BC && C::kKWm * C::kKWn == C::kWarps && NK * 8 * C::kKWn == D, "dK, dV");
  static_assert(C::kQWm * 16 == BR && C::kQWm * C::kQWn == C::kWarps && NQ * 8 * C::kQWn == C::kDqCols &&
                    D % C::kDqCols == 0 && QW % 16 == 0,
                "dQ");
  static_assert(BR % 16 == 0 && BC % 16 == 0, "tile shape");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sk = reinterpret_cast<T*>(smem_raw);  // [BC][LINE]
  T* sv = sk + BC * LINE;                  // [BC][LINE]
  T* sq = sv + BC * LINE;                  // [2][BR][LINE]
  T* sdo = sq + 2 * BR * LINE;             // [2][BR][LINE]
  T* sp = sdo + 2 * BR * LINE;             // [BR][PLINE]
  T* sds = sp + BR * PLINE;                // [BR][PLINE]
  float* slse = reinterpret_cast<float*>(sds + BR * PLINE);  // [2][BR], base 2, +inf: row sees nothing
  float* sdsum = slse + 2 * BR;                              // [2][BR]

  const int b = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.B));
  const int j0 = static_cast<int>(blockIdx.x / static_cast<unsigned>(p.B)) * BC;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const T* q = static_cast<const T*>(p.q) + b * p.q_bs;
  const T* k = static_cast<const T*>(p.k) + b * p.k_bs;
  const T* v = static_cast<const T*>(p.v) + b * p.v_bs;
  const T* dout = static_cast<const T*>(p.dout) + b * p.dout_bs;
  const float* lse = p.lse + static_cast<int64_t>(b) * p.L;
  const float* dsum = p.dsum + static_cast<int64_t>(b) * p.L;

  // Causal: query rows below j0 see none of these keys.
  const int i_start = p.causal ? (j0 / BR) * BR : 0;
  const int nqt = p.L > i_start ? (p.L - i_start + BR - 1) / BR : 0;
  const int ke = (p.E + 15) & ~15, kve = (p.Ev + 15) & ~15;

  auto load_queries = [&](int it, int st) {
    const int i0 = i_start + it * BR;
    load_tile<T, BR, D, kThreads>(sq + st * BR * LINE, q, p.q_rs, i0, p.L, p.E, p.q_al);
    load_tile<T, BR, D, kThreads>(sdo + st * BR * LINE, dout, p.dout_rs, i0, p.L, p.Ev, p.dout_al);
    for (int r = threadIdx.x; r < BR; r += kThreads) {
      const int i = i0 + r;
      float ls = INFINITY, d = 0.0f;  // rows past L: P = 0
      if (i < p.L) {
        const float x = lse[i];
        ls = x == -INFINITY ? INFINITY : x * kLog2e;  // a row with no visible key has P = 0
        d = dsum[i];
      }
      slse[st * BR + r] = ls;
      sdsum[st * BR + r] = d;
    }
  };

  load_tile<T, BC, D, kThreads>(sk, k, p.k_rs, j0, p.S, p.E, p.k_al);
  load_tile<T, BC, D, kThreads>(sv, v, p.v_rs, j0, p.S, p.Ev, p.v_al);
  if (nqt > 0) load_queries(0, 0);
  cp_async_commit();

  float dk[NK][4], dv[NK][4];
#pragma unroll
  for (int n = 0; n < NK; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;

  const int swm = warp / C::kSWn, swn = warp % C::kSWn;
  const int kwm = warp / C::kKWn, kwn = warp % C::kKWn;
  const int qwm = warp / C::kQWn, qwn = warp % C::kQWn;

  for (int it = 0; it < nqt; ++it) {
    const int st = it & 1, i0 = i_start + it * BR;
    if (it + 1 < nqt) load_queries(it + 1, st ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const T* sqt = sq + st * BR * LINE;
    const T* sdot = sdo + st * BR * LINE;
    const float* lse_t = slse + st * BR;
    const float* dsum_t = sdsum + st * BR;

    // P and dS of the warp's (16 x 8 NS) piece of the (BR x BC) tile, into shared memory.
    {
      const int r0 = swm * 16, c0 = swn * NS * 8;
      float s[NS][4], dp[NS][4];
#pragma unroll
      for (int n = 0; n < NS; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
      warp_mma<T, NS, true, true>(s, sqt + r0 * LINE, LINE, sk + c0 * LINE, LINE, ke);
      warp_mma<T, NS, true, true>(dp, sdot + r0 * LINE, LINE, sv + c0 * LINE, LINE, kve);
      const bool edge = j0 + BC > p.S || (p.causal && j0 + BC - 1 > i0 + r0);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = r0 + g + h * 8, i = i0 + r;
        const float ls = lse_t[r], d = dsum_t[r];
#pragma unroll
        for (int n = 0; n < NS; ++n) {
          const int c = c0 + n * 8 + 2 * t;
          float pr[2], ds[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = j0 + c + e;
            float x = s[n][2 * h + e] * p.scale_log2;
            if (p.mask && i < p.L && j < p.S) x += mask_at(p, b, i, j);
            float pe = exp2f(x - ls);
            if (edge && hidden(p, i, j)) pe = 0.0f;
            pr[e] = pe;
            ds[e] = pe * (dp[n][2 * h + e] - d);
          }
          *reinterpret_cast<uint32_t*>(sp + r * PLINE + c) = pack2<T>(pr[0], pr[1]);
          *reinterpret_cast<uint32_t*>(sds + r * PLINE + c) = pack2<T>(ds[0], ds[1]);
        }
      }
    }
    __syncthreads();

    // dV += P^T dO and dK += dS^T Q for the warp's (16 x KW) piece of (BC x D).
    {
      const int k0 = kwm * 16, c0 = kwn * KW;
      warp_mma<T, NK, false, false>(dv, sp + k0, PLINE, sdot + c0, LINE, BR);
      warp_mma<T, NK, false, false>(dk, sds + k0, PLINE, sqt + c0, LINE, BR);
    }

    // dQ += scale * dS K, (16 x QW) per warp and slice, added into the float32 workspace.
#pragma unroll
    for (int c0 = 0; c0 < D; c0 += C::kDqCols) {
      const int cw = c0 + qwn * QW;
      if (cw >= ke) break;
      const int r0 = qwm * 16;
      float acc[NQ][4];
#pragma unroll
      for (int n = 0; n < NQ; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
      warp_mma<T, NQ, true, false>(acc, sds + r0 * PLINE, PLINE, sk + cw, LINE, BC);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = i0 + r0 + g + h * 8;
        if (i >= p.L) continue;
        float* row = p.dq_acc + (static_cast<int64_t>(b) * p.L + i) * p.E;
#pragma unroll
        for (int n = 0; n < NQ; ++n) {
          const int col = cw + n * 8 + 2 * t;
          if (col < p.E) atomicAdd(row + col, acc[n][2 * h] * p.scale);
          if (col + 1 < p.E) atomicAdd(row + col + 1, acc[n][2 * h + 1] * p.scale);
        }
      }
    }
    __syncthreads();  // P, dS and this query buffer are free for the next step
  }
  cp_async_wait<0>();

  // Every key row of the tile is written, zero when no query sees it.
  T* dk_out = static_cast<T*>(p.dk);
  T* dv_out = static_cast<T*>(p.dv);
  const int k0 = kwm * 16, c0 = kwn * KW;
  const bool k_pair = (p.E & 1) == 0, v_pair = (p.Ev & 1) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int j = j0 + k0 + g + h * 8;
    if (j >= p.S) continue;
    T* krow = dk_out + (static_cast<int64_t>(b) * p.S + j) * p.E;
    T* vrow = dv_out + (static_cast<int64_t>(b) * p.S + j) * p.Ev;
#pragma unroll
    for (int n = 0; n < NK; ++n) {
      const int col = c0 + n * 8 + 2 * t;
      if (col < p.E)
        store_pair<T>(krow + col, dk[n][2 * h] * p.scale, dk[n][2 * h + 1] * p.scale, k_pair, col + 1 < p.E);
      if (col < p.Ev) store_pair<T>(vrow + col, dv[n][2 * h], dv[n][2 * h + 1], v_pair, col + 1 < p.Ev);
    }
  }
}

template <typename T, int D>
void launch_forward(const Params& p, cudaStream_t stream) {
  using C = MmaFwdConfig<D>;
  constexpr size_t smem = mma_fwd_smem<D, T>();
  auto kernel = attention_fwd_mma_kernel<T, D>;
  allow_shared(kernel, smem);
  const int64_t blocks = static_cast<int64_t>((p.L + C::kRows - 1) / C::kRows) * p.B;
  kernel<<<static_cast<unsigned>(blocks), C::kWarps * 32, smem, stream>>>(p);
  check_launch("scaled_dot_product_attention (attention_fwd_mma)");
}

template <typename T, int D>
void launch_backward(const Params& p, cudaStream_t stream) {
  using C = MmaBwdConfig<D>;
  constexpr size_t smem = mma_bwd_smem<D, T>();
  auto kernel = attention_bwd_mma_kernel<T, D>;
  allow_shared(kernel, smem);
  const int64_t blocks = static_cast<int64_t>((p.S + C::kKeys - 1) / C::kKeys) * p.B;
  kernel<<<static_cast<unsigned>(blocks), C::kWarps * 32, smem, stream>>>(p);
  check_launch("scaled_dot_product_attention_backward (attention_bwd_mma)");
}

template <typename T>
void forward_dim(const Params& p, int D, cudaStream_t stream) {
  switch (D) {
    case 32: return launch_forward<T, 32>(p, stream);
    case 64: return launch_forward<T, 64>(p, stream);
    case 128: return launch_forward<T, 128>(p, stream);
    case 256: return launch_forward<T, 256>(p, stream);
    default: throw ValueError("scaled_dot_product_attention: no fused kernel for head dim " + std::to_string(D));
  }
}

template <typename T>
void backward_dim(const Params& p, int D, cudaStream_t stream) {
  switch (D) {
    case 32: return launch_backward<T, 32>(p, stream);
    case 64: return launch_backward<T, 64>(p, stream);
    case 128: return launch_backward<T, 128>(p, stream);
    case 256: return launch_backward<T, 256>(p, stream);
    default:
      throw ValueError("scaled_dot_product_attention_backward: no fused kernel for head dim " + std::to_string(D));
  }
}

}  // namespace

void mma_forward(const Params& p, DType dtype, int D, cudaStream_t stream) {
  if (dtype == DType::Float16) return forward_dim<__half>(p, D, stream);
  if (dtype == DType::BFloat16) return forward_dim<__nv_bfloat16>(p, D, stream);
  throw TypeError("scaled_dot_product_attention: the tensor-core kernels take float16 and bfloat16");
}

void mma_backward(const Params& p, DType dtype, int D, cudaStream_t stream) {
  if (dtype == DType::Float16) return backward_dim<__half>(p, D, stream);
  if (dtype == DType::BFloat16) return backward_dim<__nv_bfloat16>(p, D, stream);
  throw TypeError("scaled_dot_product_attention_backward: the tensor-core kernels take float16 and bfloat16");
}

}  // namespace pydl::cuda::attn
