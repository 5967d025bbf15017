// float32 GEMM on CUDA cores: out = act(alpha * A @ B + beta * out + bias),
// exact float32 FMA, no tensor cores. Variant "simt_f32", chosen for float32
// unless allow_tf32 is set.
//
// A 256-thread block computes a 128x128 tile of out in steps of 8 along K.
// Each thread holds an 8x8 register tile (two 4-row by two 4-column strips,
// so the shared-memory reads of a warp are broadcast or conflict-free), and
// does 64 FMAs per 4 shared-memory vector loads. The next K slice is fetched
// into registers while the current one is used, then stored to the other of
// two shared buffers: one barrier per K step. A is kept K-major in shared
// memory whatever its layout in global memory (B N-major), so the inner loop
// is the same for all four layout combinations. 16-byte global loads are used
// when the base pointer and leading dimension allow, element loads otherwise
// and at the tails.
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_common.cuh"

namespace pydl::cuda {
namespace {

using gemm_detail::Epilogue;

constexpr int kBM = 128, kBN = 128, kBK = 8, kThreads = 256;
constexpr int kPad = 4;  // keeps the transposed stores conflict-free and rows 16-byte aligned

// Four consecutive elements along the contiguous dimension of a matrix with
// `rows` x `cols` logical extent (row r, columns c..c+3), zero outside.
template <bool VEC>
__device__ __forceinline__ float4 load4(const float* base, int64_t ld, int64_t r, int64_t c, int64_t rows,
                                        int64_t cols) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (r >= rows) return v;
  const float* p = base + r * ld + c;
  if (VEC && c + 3 < cols) return __ldg(reinterpret_cast<const float4*>(p));
  if (c + 0 < cols) v.x = __ldg(p + 0);
  if (c + 1 < cols) v.y = __ldg(p + 1);
  if (c + 2 < cols) v.z = __ldg(p + 2);
  if (c + 3 < cols) v.w = __ldg(p + 3);
  return v;
}

template <bool A_ROW, bool B_ROW, bool VEC>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_simt_f32_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                         int M, int N, int K, int64_t lda, int64_t ldb, int64_t ldo, int64_t a_bs, int64_t b_bs,
                         int64_t o_bs, Epilogue ep) {
  __shared__ __align__(16) float As[2][kBK][kBM + kPad];
  __shared__ __align__(16) float Bs[2][kBK][kBN + kPad];

  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  a += blockIdx.z * a_bs;
  b += blockIdx.z * b_bs;
  out += blockIdx.z * o_bs;

  // Which 4-element chunk of each K slice this thread fetches.
  // Row-major A (K contiguous): row m = tid/2, k = (tid%2)*4. Column-major: k = tid/32, m = (tid%32)*4.
  const int a_r = A_ROW ? tid / 2 : tid / 32;
  const int a_c = A_ROW ? (tid % 2) * 4 : (tid % 32) * 4;
  // Row-major B (N contiguous): k = tid/32, n = (tid%32)*4. Column-major: n = tid/2, k = (tid%2)*4.
  const int b_r = B_ROW ? tid / 32 : tid / 2;
  const int b_c = B_ROW ? (tid % 32) * 4 : (tid % 2) * 4;

  auto fetch_a = [&](int64_t k0) -> float4 {
    if (A_ROW) return load4<VEC>(a, lda, m0 + a_r, k0 + a_c, M, K);
    return load4<VEC>(a, lda, k0 + a_r, m0 + a_c, K, M);
  };
  auto fetch_b = [&](int64_t k0) -> float4 {
    if (B_ROW) return load4<VEC>(b, ldb, k0 + b_r, n0 + b_c, K, N);
    return load4<VEC>(b, ldb, n0 + b_r, k0 + b_c, N, K);
  };
  auto stash = [&](int buf, float4 va, float4 vb) {
    if (A_ROW) {
      As[buf][a_c + 0][a_r] = va.x;
      As[buf][a_c + 1][a_r] = va.y;
      As[buf][a_c + 2][a_r] = va.z;
      As[buf][a_c + 3][a_r] = va.w;
    } else {
      *reinterpret_cast<float4*>(&As[buf][a_r][a_c]) = va;
    }
    if (B_ROW) {
      *reinterpret_cast<float4*>(&Bs[buf][b_r][b_c]) = vb;
    } else {
      Bs[buf][b_c + 0][b_r] = vb.x;
      Bs[buf][b_c + 1][b_r] = vb.y;
      Bs[buf][b_c + 2][b_r] = vb.z;
      Bs[buf][b_c + 3][b_r] = vb.w;
    }
  };

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  const int k_tiles = (K + kBK - 1) / kBK;
  stash(0, fetch_a(0), fetch_b(0));
  __syncthreads();

  for (int kt = 0; kt < k_tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < k_tiles;
    float4 next_a = make_float4(0.f, 0.f, 0.f, 0.f), next_b = next_a;
    if (more) {
      next_a = fetch_a(static_cast<int64_t>(kt + 1) * kBK);
      next_b = fetch_b(static_cast<int64_t>(kt + 1) * kBK);
    }
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      float ra[8], rb[8];
      const float4 a_lo = *reinterpret_cast<const float4*>(&As[cur][k][ty * 4]);
      const float4 a_hi = *reinterpret_cast<const float4*>(&As[cur][k][64 + ty * 4]);
      const float4 b_lo = *reinterpret_cast<const float4*>(&Bs[cur][k][tx * 4]);
      const float4 b_hi = *reinterpret_cast<const float4*>(&Bs[cur][k][64 + tx * 4]);
      ra[0] = a_lo.x; ra[1] = a_lo.y; ra[2] = a_lo.z; ra[3] = a_lo.w;
      ra[4] = a_hi.x; ra[5] = a_hi.y; ra[6] = a_hi.z; ra[7] = a_hi.w;
      rb[0] = b_lo.x; rb[1] = b_lo.y; rb[2] = b_lo.z; rb[3] = b_lo.w;
      rb[4] = b_hi.x; rb[5] = b_hi.y; rb[6] = b_hi.z; rb[7] = b_hi.w;
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    if (more) stash(cur ^ 1, next_a, next_b);
    __syncthreads();
  }

  // Rows ty*4+i and 64+ty*4+i, columns tx*4+j and 64+tx*4+j.
  const bool vec_out = VEC && (ldo % 4 == 0);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    if (row >= M) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t col = n0 + h * 64 + tx * 4;
      if (vec_out && col + 3 < N) {
        float4* p = reinterpret_cast<float4*>(out + row * ldo + col);
        float v[4];
        float4 old = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ep.beta != 0.0f) old = *p;
        const float o[4] = {old.x, old.y, old.z, old.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float x = ep.alpha * acc[i][h * 4 + j];
          if (ep.beta != 0.0f) x += ep.beta * o[j];
          if (ep.bias) x += static_cast<const float*>(ep.bias)[col + j];
          v[j] = gemm_detail::apply_activation(x, ep.activation);
        }
        *p = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < N) gemm_detail::store_output<float>(out, ldo, row, col + j, acc[i][h * 4 + j], ep);
      }
    }
  }
}

template <bool A_ROW, bool B_ROW, bool VEC>
void launch(const GemmArgs& g, cudaStream_t stream) {
  const float* a = static_cast<const float*>(g.a);
  const float* b = static_cast<const float*>(g.b);
  float* out = static_cast<float*>(g.out);
  const Epilogue ep = gemm_detail::make_epilogue(g);
  for (int64_t z0 = 0; z0 < g.batch; z0 += gemm_detail::kMaxGridZ) {
    const int64_t nz = std::min<int64_t>(gemm_detail::kMaxGridZ, g.batch - z0);
    const dim3 grid(static_cast<unsigned>((g.n + kBN - 1) / kBN), static_cast<unsigned>((g.m + kBM - 1) / kBM),
                    static_cast<unsigned>(nz));
    gemm_simt_f32_kernel<A_ROW, B_ROW, VEC><<<grid, kThreads, 0, stream>>>(
        a + z0 * g.a_batch_stride, b + z0 * g.b_batch_stride, out + z0 * g.out_batch_stride,
        static_cast<int>(g.m), static_cast<int>(g.n), static_cast<int>(g.k), g.lda, g.ldb, g.ldo,
        g.a_batch_stride, g.b_batch_stride, g.out_batch_stride, ep);
    check_launch("gemm_simt_f32");
  }
}

template <bool A_ROW, bool B_ROW>
void launch_aligned(const GemmArgs& g, cudaStream_t stream) {
  // Vector loads need every row start 16-byte aligned (batch offsets included).
  const bool vec = aligned16(g.a) && aligned16(g.b) && aligned16(g.out) && g.lda % 4 == 0 && g.ldb % 4 == 0 &&
                   g.a_batch_stride % 4 == 0 && g.b_batch_stride % 4 == 0 && g.out_batch_stride % 4 == 0;
  if (vec)
    launch<A_ROW, B_ROW, true>(g, stream);
  else
    launch<A_ROW, B_ROW, false>(g, stream);
}

}  // namespace

void gemm_simt_f32(const GemmArgs& g, cudaStream_t stream) {
  if (g.a_row_major && g.b_row_major) return launch_aligned<true, true>(g, stream);
  if (g.a_row_major) return launch_aligned<true, false>(g, stream);
  if (g.b_row_major) return launch_aligned<false, true>(g, stream);
  return launch_aligned<false, false>(g, stream);
}

}  // namespace pydl::cuda
