// Launch descriptions shared by the convolution kernel files (kernels/conv/*.cu): what
// conv.cu plans and the kernels of conv_implicit_gemm.cu and conv_depthwise.cu run. Plain
// structs of sizes, strides and pointers, passed by value as kernel parameters; all index
// arithmetic inside one image fits 32 bits (conv2d_plan checks it), images and groups are
// stepped in 64 bits.
#pragma once

#include <cstdint>

#include "csrc/tensor_view.h"

struct CUstream_st;

namespace pydl::cuda::conv {

using Stream = CUstream_st*;

// Which unit multiplies the tiles of the implicit GEMM.
enum class Core : int {
  Mma16 = 0,  // float16 / bfloat16, mma.sync m16n8k16
  Tf32 = 1,   // float32 rounded to TF32, mma.sync m16n8k8
  Simt = 2,   // float32 FMA on CUDA cores
};

// Every core computes BM x 128 output tiles with 256 threads: BM = 128, or 64 when a group
// has at most 64 output rows (tile_m), so that narrow layers do not fill half-empty tiles.
// The K slice per pipeline stage is 64 bytes of a row for the tensor cores, 8 elements for
// the CUDA cores.
constexpr int kTileN = 128, kThreads = 256, kMinTileM = 64;
constexpr int tile_m(int64_t rows) { return rows <= 64 ? 64 : 128; }
constexpr int tile_k(Core c) { return c == Core::Mma16 ? 32 : (c == Core::Tf32 ? 16 : 8); }
// Rows of packed weights are padded to a multiple of this many elements (16-byte rows).
constexpr int kPackAlign = 8;
// Grid z covers groups (and splits) in chunks of at most this many.
constexpr int64_t kMaxGridZ = 65535;

// Forward and input gradient, one GEMM per group g: C (M, N) = A (M, K) @ B (K, N).
//  A[m][k]  = a[g * a_group + k * lda + m]: weights packed k-major (pack_weights), lda a
//             multiple of kPackAlign, 16-byte aligned.
//  B[k][n]  = src[g * src_group + img * src_img + ch * src_ch + hs * Ws + ws] with
//             k = (ch, i, j) over (K / (KI * KJ), KI, KJ), n = (img, u, v) over (., U, V),
//             hs = u * su + h0 + i * di, ws = v * sv + w0 + j * dj (di, dj may be negative),
//             zero outside [0, Hs) x [0, Ws).
//  C[m][n] + bias[g * M + m] -> dst[g * dst_group + img * dst_img + m * dst_ch
//                                    + (u * du + a0) * Wd + v * dv + b0].
// The forward reads x at (oh * sh - ph + i * dh, ow * sw - pw + j * dw); the input gradient
// runs once per stride phase (a0, b0) of dx, reading dy with unit steps (see conv.cu).
struct GatherGemm {
  const void* a = nullptr;
  int64_t a_group = 0;
  int lda = 0;
  const void* src = nullptr;
  int64_t src_img = 0, src_group = 0;
  int src_ch = 0, Hs = 0, Ws = 0;
  int U = 0, V = 0, su = 1, sv = 1, h0 = 0, w0 = 0, di = 1, dj = 1, KI = 1, KJ = 1;
  void* dst = nullptr;
  int64_t dst_img = 0, dst_group = 0;
  int dst_ch = 0, Wd = 0, du = 1, dv = 1, a0 = 0, b0 = 0;
  const void* bias = nullptr;
  int M = 0, N = 0, K = 0, groups = 1;
  int pair_store = 0;  // dst is aligned to two elements: neighbouring outputs go as one store
};

// Weight gradient, one GEMM per group g, its reduction split over blocks:
//   C (M = OC/g, N = C/g * KH * KW) = A (M, R) @ B (R, N), R = images * P, P = OH * OW.
//  A[m][r] = dy[g * dy_group + img * dy_img + m * P + p], r = (img, p), p = oh * OW + ow
//  B[r][n] = x[g * x_group + img * x_img + ch * H * W + ih * W + iw], n = (ch, i, j),
//            ih = oh * sh - ph + i * dh, iw = ow * sw - pw + j * dw, zero outside the image.
// Split s (of `splits`) reduces the K tiles [s * tiles_per_split, (s + 1) * tiles_per_split)
// and writes its float32 partial sums, every element, to ws[((s * groups + g) * M + m) * N + n].
struct WgradGemm {
  const void* dy = nullptr;
  int64_t dy_img = 0, dy_group = 0;
  int P = 0, OW = 0;
  const void* x = nullptr;
  int64_t x_img = 0, x_group = 0;
  int H = 0, W = 0;
  int sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, KH = 1, KW = 1;
  float* ws = nullptr;
  int M = 0, N = 0, R = 0, groups = 1, splits = 1, tiles_per_split = 0;
};

// Weights repacked for the gather GEMM, for one group-batched slice of taps:
//   dst[(g * Q * KI * KJ + k) * ld + m] = w[g * w_group + q * qs + m * ms + (r0 + i * rs) * KW
//                                           + s0 + j * ss]   for m < M, 0 for M <= m < ld,
// k = (q, i, j) over (Q, KI, KJ).
struct WeightPack {
  const void* w = nullptr;
  int64_t w_group = 0;
  int qs = 0, ms = 0, KW = 1, r0 = 0, rs = 1, s0 = 0, ss = 1;
  void* dst = nullptr;
  int ld = 0, Q = 0, KI = 1, KJ = 1, M = 0, groups = 1;
};

// Depthwise convolution (one input channel per group: groups == C, OC = C * mult), all
// three passes as direct kernels. The weight gradient writes float32 partial sums, one slice
// per split of the pixel reduction: ws[s * OC * KH * KW + e].
struct Depthwise {
  const void* x = nullptr;     // input (forward, weight gradient)
  const void* w = nullptr;     // weight (forward, input gradient)
  const void* dy = nullptr;    // output gradient (input and weight gradients)
  const void* bias = nullptr;  // forward, or null
  void* out = nullptr;         // y (forward) or dx (input gradient)
  float* ws = nullptr;         // weight gradient
  int64_t N = 0;
  int C = 0, H = 0, W = 0, mult = 1, OH = 0, OW = 0, KH = 1, KW = 1;
  int sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, splits = 1;
};

void launch_gather_gemm(const GatherGemm& p, DType dtype, Core core, Stream stream);
void launch_wgrad_gemm(const WgradGemm& p, DType dtype, Core core, Stream stream);
void launch_pack_weights(const WeightPack& p, DType dtype, Stream stream);
// out[i] = sum over s < splits of ws[s * total + i], rounded to dtype.
void launch_reduce_splits(const float* ws, void* out, int64_t total, int splits, DType dtype, Stream stream);
void launch_depthwise_forward(const Depthwise& p, DType dtype, Stream stream);
void launch_depthwise_backward_input(const Depthwise& p, DType dtype, Stream stream);
void launch_depthwise_backward_weight(const Depthwise& p, DType dtype, Stream stream);

}  // namespace pydl::cuda::conv
