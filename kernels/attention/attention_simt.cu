// Fused attention for float32 on CUDA cores (exact float32 FMA, no TF32): the algorithm of
// attention_mma.cu with scalar arithmetic, for inputs that must not be rounded. Correctness
// first: a 256-thread block, 8 threads per row, 32 rows and 32 keys per step, operands
// staged in shared memory with 16-byte loads (rows padded by 16 bytes, so the float4 reads
// of 8 neighbouring rows fall in different banks).
//
// Forward: a block owns 32 query rows of one head; thread (r, c) holds the scores of row
// r against keys c, c + 8, c + 16, c + 24 of each key tile, the row's online-softmax state
// (reduced over the row's 8 threads with shuffles), and output columns 4c + 32u .. + 3.
// Backward: a block owns 32 keys of one head, keeps its K and V in shared memory and walks
// the query tiles: the threads form P and dS for the (32 x 32) tile, then thread (r, c)
// adds into dK and dV of key row r (columns 4c + 32u) and into dQ of query row r, which
// goes to the float32 output with atomic adds. Causal tiles are skipped as in the
// tensor-core kernels. One kernel per padded head dim (32, 64, 128, 256).
#include "kernels/attention/attention_common.cuh"

namespace pydl::cuda::attn {
namespace {

constexpr int kThreads = kSimtThreads, BR = kSimtRows, BC = kSimtKeys;
constexpr int NJ = BC / 8;  // keys per thread in a score tile
constexpr int PL = BC + 1;  // line of the P and dS tiles
static_assert(kThreads == 8 * BR && kThreads == 8 * BC, "8 threads per row");

// Rows [row0, row0 + ROWS) of a (rows x cols) operand (row stride rs) into shared-memory
// lines of D + 4 floats; rows past `rows` and columns past `cols` (up to D) become zero.
template <int ROWS, int D>
__device__ __forceinline__ void load_rows(float* s, const float* g, int64_t rs, int row0, int rows, int cols,
                                          bool aligned) {
  constexpr int kPerRow = D / 4, kChunks = ROWS * kPerRow;
#pragma unroll
  for (int c0 = 0; c0 < kChunks; c0 += kThreads) {
    const int c = c0 + static_cast<int>(threadIdx.x);
    if (kChunks % kThreads != 0 && c >= kChunks) break;
    const int r = c / kPerRow, col = (c % kPerRow) * 4;
    const int gr = row0 + r;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (gr < rows && col < cols) {
      const float* src = g + static_cast<int64_t>(gr) * rs + col;
      if (aligned && col + 4 <= cols) {
        v = __ldg(reinterpret_cast<const float4*>(src));
      } else {
        v.x = __ldg(src);
        if (col + 1 < cols) v.y = __ldg(src + 1);
        if (col + 2 < cols) v.z = __ldg(src + 2);
        if (col + 3 < cols) v.w = __ldg(src + 3);
      }
    }
    *reinterpret_cast<float4*>(s + r * (D + 4) + col) = v;
  }
}

__device__ __forceinline__ float dot4(float acc, const float4 a, const float4 b) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}

__device__ __forceinline__ void axpy4(float4& acc, float a, const float4 x) {
  acc.x = fmaf(a, x.x, acc.x);
  acc.y = fmaf(a, x.y, acc.y);
  acc.z = fmaf(a, x.z, acc.z);
  acc.w = fmaf(a, x.w, acc.w);
}

// Writes columns col..col+3 (those below `cols`) of a contiguous float row, times `mul`.
__device__ __forceinline__ void store4(float* row, int col, int cols, const float4 v, float mul) {
  if (col < cols) row[col] = v.x * mul;
  if (col + 1 < cols) row[col + 1] = v.y * mul;
  if (col + 2 < cols) row[col + 2] = v.z * mul;
  if (col + 3 < cols) row[col + 3] = v.w * mul;
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1) attention_fwd_simt_kernel(const Params p) {
  constexpr int LINE = D + 4, NC = D / 32;  // float4 output columns per thread
  extern __shared__ float4 smem4[];
  float* sq = reinterpret_cast<float*>(smem4);  // [BR][LINE]
  float* sk = sq + BR * LINE;                   // [BC][LINE]
  float* sv = sk + BC * LINE;                   // [BC][LINE]
  float* sp = sv + BC * LINE;                   // [BR][PL]

  const int tiles = (p.L + BR - 1) / BR;
  const int b = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.B));
  const int i0 = (tiles - 1 - static_cast<int>(blockIdx.x / static_cast<unsigned>(p.B))) * BR;
  const int r = threadIdx.x >> 3, c = threadIdx.x & 7;
  const int i = i0 + r;
  const float* q = static_cast<const float*>(p.q) + b * p.q_bs;
  const float* k = static_cast<const float*>(p.k) + b * p.k_bs;
  const float* v = static_cast<const float*>(p.v) + b * p.v_bs;
  const int nkt = (key_end(p, i0 + BR) + BC - 1) / BC;
  const int ke = (p.E + 3) & ~3, kve = (p.Ev + 3) & ~3;

  load_rows<BR, D>(sq, q, p.q_rs, i0, p.L, p.E, p.q_al);
  float4 o[NC];
#pragma unroll
  for (int u = 0; u < NC; ++u) o[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float m = -INFINITY, l = 0.0f;

  for (int it = 0; it < nkt; ++it) {
    const int j0 = it * BC;
    __syncthreads();  // the previous tile is no longer read
    load_rows<BC, D>(sk, k, p.k_rs, j0, p.S, p.E, p.k_al);
    load_rows<BC, D>(sv, v, p.v_rs, j0, p.S, p.Ev, p.v_al);
    __syncthreads();

    float s[NJ];
#pragma unroll
    for (int u = 0; u < NJ; ++u) s[u] = 0.0f;
    for (int d = 0; d < ke; d += 4) {
      const float4 qv = *reinterpret_cast<const float4*>(sq + r * LINE + d);
#pragma unroll
      for (int u = 0; u < NJ; ++u)
        s[u] = dot4(s[u], qv, *reinterpret_cast<const float4*>(sk + (c + 8 * u) * LINE + d));
    }
    const bool edge = j0 + BC > p.S || (p.causal && j0 + BC - 1 > i0);
    float mx = m;
#pragma unroll
    for (int u = 0; u < NJ; ++u) {
      const int j = j0 + c + 8 * u;
      float x = s[u] * p.scale_log2;
      if (p.mask && i < p.L && j < p.S) x += mask_at(p, b, i, j);
      if (edge && hidden(p, i, j)) x = -INFINITY;
      s[u] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
    const float base = mx == -INFINITY ? 0.0f : mx;  // nothing visible yet: P = 0, no NaN
    const float alpha = exp2f(m - base);
    m = mx;
    float sum = 0.0f;
#pragma unroll
    for (int u = 0; u < NJ; ++u) {
      const float e = exp2f(s[u] - base);
      sum += e;
      sp[r * PL + c + 8 * u] = e;
    }
    l = l * alpha + sum;
#pragma unroll
    for (int u = 0; u < NC; ++u) {
      o[u].x *= alpha;
      o[u].y *= alpha;
      o[u].z *= alpha;
      o[u].w *= alpha;
    }
    __syncwarp();  // the row's P comes from the same 8 lanes
    for (int jj = 0; jj < BC; ++jj) {
      const float pj = sp[r * PL + jj];
#pragma unroll
      for (int u = 0; u < NC; ++u)
        if (4 * c + 32 * u < kve)
          axpy4(o[u], pj, *reinterpret_cast<const float4*>(sv + jj * LINE + 4 * c + 32 * u));
    }
  }

  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  l += __shfl_xor_sync(0xffffffffu, l, 4);
  if (i >= p.L) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // no visible key: zero output, lse -inf
  float* orow = static_cast<float*>(p.out) + (static_cast<int64_t>(b) * p.L + i) * p.Ev;
#pragma unroll
  for (int u = 0; u < NC; ++u) store4(orow, 4 * c + 32 * u, p.Ev, o[u], inv);
  if (c == 0) p.lse[static_cast<int64_t>(b) * p.L + i] = m == -INFINITY ? -INFINITY : (m + log2f(l)) * kLn2;
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1) attention_bwd_simt_kernel(const Params p) {
  constexpr int LINE = D + 4, NC = D / 32;
  extern __shared__ float4 smem4[];
  float* sk = reinterpret_cast<float*>(smem4);  // [BC][LINE]
  float* sv = sk + BC * LINE;                   // [BC][LINE]
  float* sq = sv + BC * LINE;                   // [BR][LINE]
  float* sdo = sq + BR * LINE;                  // [BR][LINE]
  float* sp = sdo + BR * LINE;                  // [BR][PL]
  float* sds = sp + BR * PL;                    // [BR][PL]
  float* slse = sds + BR * PL;                  // [BR], base 2, +inf: the row sees nothing
  float* sdsum = slse + BR;                     // [BR]

  const int b = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.B));
  const int j0 = static_cast<int>(blockIdx.x / static_cast<unsigned>(p.B)) * BC;
  const int r = threadIdx.x >> 3, c = threadIdx.x & 7;
  const float* q = static_cast<const float*>(p.q) + b * p.q_bs;
  const float* k = static_cast<const float*>(p.k) + b * p.k_bs;
  const float* v = static_cast<const float*>(p.v) + b * p.v_bs;
  const float* dout = static_cast<const float*>(p.dout) + b * p.dout_bs;
  const int i_start = p.causal ? (j0 / BR) * BR : 0;
  const int nqt = p.L > i_start ? (p.L - i_start + BR - 1) / BR : 0;
  const int ke = (p.E + 3) & ~3, kve = (p.Ev + 3) & ~3;

  load_rows<BC, D>(sk, k, p.k_rs, j0, p.S, p.E, p.k_al);
  load_rows<BC, D>(sv, v, p.v_rs, j0, p.S, p.Ev, p.v_al);
  float4 dk[NC], dv[NC];  // key row j0 + r, columns 4c + 32u
#pragma unroll
  for (int u = 0; u < NC; ++u) dk[u] = dv[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

  for (int it = 0; it < nqt; ++it) {
    const int i0 = i_start + it * BR;
    __syncthreads();  // the previous query tile, P and dS are no longer read
    load_rows<BR, D>(sq, q, p.q_rs, i0, p.L, p.E, p.q_al);
    load_rows<BR, D>(sdo, dout, p.dout_rs, i0, p.L, p.Ev, p.dout_al);
    if (threadIdx.x < BR) {
      const int i = i0 + threadIdx.x;
      float ls = INFINITY, d = 0.0f;  // rows past L: P = 0
      if (i < p.L) {
        const float x = p.lse[static_cast<int64_t>(b) * p.L + i];
        ls = x == -INFINITY ? INFINITY : x * kLog2e;
        d = p.dsum[static_cast<int64_t>(b) * p.L + i];
      }
      slse[threadIdx.x] = ls;
      sdsum[threadIdx.x] = d;
    }
    __syncthreads();

    // P and dS of query row r against keys c + 8u.
    {
      const int i = i0 + r;
      float s[NJ], dp[NJ];
#pragma unroll
      for (int u = 0; u < NJ; ++u) s[u] = dp[u] = 0.0f;
      for (int d = 0; d < ke; d += 4) {
        const float4 qv = *reinterpret_cast<const float4*>(sq + r * LINE + d);
#pragma unroll
        for (int u = 0; u < NJ; ++u)
          s[u] = dot4(s[u], qv, *reinterpret_cast<const float4*>(sk + (c + 8 * u) * LINE + d));
      }
      for (int d = 0; d < kve; d += 4) {
        const float4 gv = *reinterpret_cast<const float4*>(sdo + r * LINE + d);
#pragma unroll
        for (int u = 0; u < NJ; ++u)
          dp[u] = dot4(dp[u], gv, *reinterpret_cast<const float4*>(sv + (c + 8 * u) * LINE + d));
      }
      const bool edge = j0 + BC > p.S || (p.causal && j0 + BC - 1 > i0);
      const float ls = slse[r], dd = sdsum[r];
#pragma unroll
      for (int u = 0; u < NJ; ++u) {
        const int j = j0 + c + 8 * u;
        float x = s[u] * p.scale_log2;
        if (p.mask && i < p.L && j < p.S) x += mask_at(p, b, i, j);
        float pe = exp2f(x - ls);
        if (edge && hidden(p, i, j)) pe = 0.0f;
        sp[r * PL + c + 8 * u] = pe;
        sds[r * PL + c + 8 * u] = pe * (dp[u] - dd);
      }
    }
    __syncthreads();

    // dV[r] += sum_i P[i][r] dO[i], dK[r] += sum_i dS[i][r] Q[i] (key row r of the tile).
    for (int ii = 0; ii < BR; ++ii) {
      const float pv = sp[ii * PL + r], ds = sds[ii * PL + r];
#pragma unroll
      for (int u = 0; u < NC; ++u) {
        const int col = 4 * c + 32 * u;
        if (col < kve) axpy4(dv[u], pv, *reinterpret_cast<const float4*>(sdo + ii * LINE + col));
        if (col < ke) axpy4(dk[u], ds, *reinterpret_cast<const float4*>(sq + ii * LINE + col));
      }
    }

    // dQ[r] += scale * sum_j dS[r][j] K[j], added into the float32 result.
    {
      const int i = i0 + r;
      float4 dq[NC];
#pragma unroll
      for (int u = 0; u < NC; ++u) dq[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int jj = 0; jj < BC; ++jj) {
        const float ds = sds[r * PL + jj];
#pragma unroll
        for (int u = 0; u < NC; ++u)
          if (4 * c + 32 * u < ke)
            axpy4(dq[u], ds, *reinterpret_cast<const float4*>(sk + jj * LINE + 4 * c + 32 * u));
      }
      if (i < p.L) {
        float* row = p.dq_acc + (static_cast<int64_t>(b) * p.L + i) * p.E;
#pragma unroll
        for (int u = 0; u < NC; ++u) {
          const int col = 4 * c + 32 * u;
          if (col < p.E) atomicAdd(row + col, dq[u].x * p.scale);
          if (col + 1 < p.E) atomicAdd(row + col + 1, dq[u].y * p.scale);
          if (col + 2 < p.E) atomicAdd(row + col + 2, dq[u].z * p.scale);
          if (col + 3 < p.E) atomicAdd(row + col + 3, dq[u].w * p.scale);
        }
      }
    }
  }

  // Every key row of the tile is written, zero when no query sees it.
  const int j = j0 + r;
  if (j >= p.S) return;
  float* krow = static_cast<float*>(p.dk) + (static_cast<int64_t>(b) * p.S + j) * p.E;
  float* vrow = static_cast<float*>(p.dv) + (static_cast<int64_t>(b) * p.S + j) * p.Ev;
#pragma unroll
  for (int u = 0; u < NC; ++u) {
    store4(krow, 4 * c + 32 * u, p.E, dk[u], p.scale);
    store4(vrow, 4 * c + 32 * u, p.Ev, dv[u], 1.0f);
  }
}

template <int D>
void launch_forward(const Params& p, cudaStream_t stream) {
  constexpr size_t smem = simt_fwd_smem<D>();
  auto kernel = attention_fwd_simt_kernel<D>;
  allow_shared(kernel, smem);
  const int64_t blocks = static_cast<int64_t>((p.L + BR - 1) / BR) * p.B;
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(p);
  check_launch("scaled_dot_product_attention (attention_fwd_simt)");
}

template <int D>
void launch_backward(const Params& p, cudaStream_t stream) {
  constexpr size_t smem = simt_bwd_smem<D>();
  auto kernel = attention_bwd_simt_kernel<D>;
  allow_shared(kernel, smem);
  const int64_t blocks = static_cast<int64_t>((p.S + BC - 1) / BC) * p.B;
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(p);
  check_launch("scaled_dot_product_attention_backward (attention_bwd_simt)");
}

}  // namespace

void simt_forward(const Params& p, int D, cudaStream_t stream) {
  switch (D) {
    case 32: return launch_forward<32>(p, stream);
    case 64: return launch_forward<64>(p, stream);
    case 128: return launch_forward<128>(p, stream);
    case 256: return launch_forward<256>(p, stream);
    default: throw ValueError("scaled_dot_product_attention: no fused kernel for head dim " + std::to_string(D));
  }
}

void simt_backward(const Params& p, int D, cudaStream_t stream) {
  switch (D) {
    case 32: return launch_backward<32>(p, stream);
    case 64: return launch_backward<64>(p, stream);
    case 128: return launch_backward<128>(p, stream);
    case 256: return launch_backward<256>(p, stream);
    default:
      throw ValueError("scaled_dot_product_attention_backward: no fused kernel for head dim " + std::to_string(D));
  }
}

}  // namespace pydl::cuda::attn
