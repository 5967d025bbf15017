// softmax / log_softmax over the last dimension, forward and backward, for
// float32, float64, float16 and bfloat16 (half types compute in float32).
//
// Variants, picked per call by plan_rows() from the row width:
//  - warp per row (cols <= 1024): four rows per 128-thread block, each row
//    staged in shared memory; the many-short-rows case needs no block syncs.
//  - block per row, row staged (row bytes <= 128 KiB): the forward reads x from
//    HBM once, keeping an online (max, sum of exp) while copying the row into
//    shared memory, then writes y once from there: one read and one write per
//    element, the floor for this op.
//  - block per row, row too wide to stage: the online pass reads x, a second
//    pass reads it again (mostly from L2) and writes y.
// Every variant has a 128-bit path (whole Packs, chosen when cols is a multiple
// of the pack width and the base pointers are 16-byte aligned, so every row
// start is aligned) and a scalar path for anything else.
// Backward stages y and dy the same way: one dot product per row, then dx.
#include "kernels/common/cuda_utils.cuh"
#include "kernels/rowops.h"

namespace pydl::cuda {

namespace {

template <typename T, int kN, bool kWarp, bool kStaged>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                       int cols, bool log) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  __shared__ A red[64];
  extern __shared__ __align__(16) unsigned char smem[];
  const RowGroup<kWarp> g;
  if (g.row >= rows) return;
  const int chunks = cols / kN;
  const T* xr = x + g.row * cols;
  T* yr = y + g.row * cols;
  C* stage = reinterpret_cast<C*>(smem) + static_cast<int64_t>(g.slot) * chunks;

  MaxSum<A> ms;
  for (int c = g.rank; c < chunks; c += g.size) {
    const C v = load_chunk<T, kN>(xr + static_cast<int64_t>(c) * kN);
    if constexpr (kStaged) stage[c] = v;
#pragma unroll
    for (int i = 0; i < kN; ++i) maxsum_add(ms, to_acc(v.v[i]));
  }
  ms = group_maxsum<kWarp>(ms, red);
  // An all -inf row has m = -inf and s = 0: both formulas give NaN, like PyTorch.
  // log_softmax is (x - m) - log(s): adding m and log(s) first would round away low bits of x.
  const A log_s = acc_log(ms.s), inv = A(1) / ms.s;

  for (int c = g.rank; c < chunks; c += g.size) {
    C v;
    if constexpr (kStaged) v = stage[c];
    else v = load_chunk<T, kN>(xr + static_cast<int64_t>(c) * kN);
    C o;
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const A a = to_acc(v.v[i]);
      o.v[i] = from_acc<T>(log ? (a - ms.m) - log_s : acc_exp(a - ms.m) * inv);
    }
    store_chunk(yr + static_cast<int64_t>(c) * kN, o);
  }
}

// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
template <typename T, int kN, bool kWarp, bool kStaged>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                        T* __restrict__ dx, int64_t rows, int cols, bool log) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  __shared__ A red[64];
  extern __shared__ __align__(16) unsigned char smem[];
  const RowGroup<kWarp> g;
  if (g.row >= rows) return;
  const int chunks = cols / kN;
  const int64_t off = g.row * cols;
  C* stage_y = reinterpret_cast<C*>(smem) + static_cast<int64_t>(g.slot) * 2 * chunks;
  C* stage_g = stage_y + chunks;

  A dot = 0;
  for (int c = g.rank; c < chunks; c += g.size) {
    const int64_t i0 = off + static_cast<int64_t>(c) * kN;
    const C yv = load_chunk<T, kN>(y + i0), gv = load_chunk<T, kN>(dy + i0);
    if constexpr (kStaged) {
      stage_y[c] = yv;
      stage_g[c] = gv;
    }
#pragma unroll
    for (int i = 0; i < kN; ++i) dot += log ? to_acc(gv.v[i]) : to_acc(gv.v[i]) * to_acc(yv.v[i]);
  }
  dot = group_sum<kWarp>(dot, red);

  for (int c = g.rank; c < chunks; c += g.size) {
    const int64_t i0 = off + static_cast<int64_t>(c) * kN;
    C yv, gv;
    if constexpr (kStaged) {
      yv = stage_y[c];
      gv = stage_g[c];
    } else {
      yv = load_chunk<T, kN>(y + i0);
      gv = load_chunk<T, kN>(dy + i0);
    }
    C o;
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const A a = to_acc(yv.v[i]), b = to_acc(gv.v[i]);
      o.v[i] = from_acc<T>(log ? b - acc_exp(a) * dot : a * (b - dot));
    }
    store_chunk(dx + i0, o);
  }
}

template <typename T, int kN>
void launch_forward(const T* x, T* y, int64_t rows, int64_t cols, bool log, cudaStream_t stream) {
  const RowPlan p = plan_rows(rows, cols, kN, cols * sizeof(T));
  auto run = [&](auto kernel) {
    allow_shared(kernel, p.smem);
    kernel<<<p.blocks, p.threads, p.smem, stream>>>(x, y, rows, static_cast<int>(cols), log);
  };
  if (p.warp) run(softmax_forward_kernel<T, kN, true, true>);
  else if (p.staged) run(softmax_forward_kernel<T, kN, false, true>);
  else run(softmax_forward_kernel<T, kN, false, false>);
  check_launch("softmax_forward_kernel");
}

template <typename T, int kN>
void launch_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols, bool log,
                     cudaStream_t stream) {
  const RowPlan p = plan_rows(rows, cols, kN, 2 * cols * sizeof(T));
  auto run = [&](auto kernel) {
    allow_shared(kernel, p.smem);
    kernel<<<p.blocks, p.threads, p.smem, stream>>>(y, dy, dx, rows, static_cast<int>(cols), log);
  };
  if (p.warp) run(softmax_backward_kernel<T, kN, true, true>);
  else if (p.staged) run(softmax_backward_kernel<T, kN, false, true>);
  else run(softmax_backward_kernel<T, kN, false, false>);
  check_launch("softmax_backward_kernel");
}

void check_rows(const char* op, const TensorView& a, const char* an, const TensorView& b,
                const char* bn) {
  check_device(op, an, a);
  check_device(op, bn, b);
  check_gpu_float(op, an, a);
  check_contiguous(op, an, a);
  check_contiguous(op, bn, b);
  check_same_dtype(op, bn, b, a);
  check_shape(op, bn, b, a.shape);
}

// Rows and columns of a contiguous view reduced over its last dimension.
bool row_shape(const char* op, const TensorView& t, int64_t& rows, int64_t& cols) {
  if (t.ndim() == 0 || t.numel() == 0) return false;
  cols = t.size(-1);
  rows = t.numel() / cols;
  if (cols > INT32_MAX)
    throw ValueError(std::string(op) + ": last dimension " + std::to_string(cols) + " is too large");
  if (rows > INT32_MAX)
    throw ValueError(std::string(op) + ": " + std::to_string(rows) + " rows is too many");
  return true;
}

}  // namespace

void softmax_forward(const TensorView& x, const TensorView& y, bool log, std::uintptr_t stream) {
  const char* op = log ? "log_softmax" : "softmax";
  check_rows(op, x, "input", y, "output");
  int64_t rows = 0, cols = 0;
  if (!row_shape(op, x, rows, cols)) return;
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  PYDL_DISPATCH_CUDA_FLOAT(x.dtype, op, [&] {
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* yp = y.ptr<scalar_t>();
    constexpr int kP = Pack<scalar_t>::N;
    if (cols % kP == 0 && aligned16(xp) && aligned16(yp))
      launch_forward<scalar_t, kP>(xp, yp, rows, cols, log, st);
    else
      launch_forward<scalar_t, 1>(xp, yp, rows, cols, log, st);
  });
}

void softmax_backward(const TensorView& y, const TensorView& dy, const TensorView& dx, bool log,
                      std::uintptr_t stream) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  check_rows(op, y, "output", dy, "grad_output");
  check_rows(op, y, "output", dx, "grad_input");
  int64_t rows = 0, cols = 0;
  if (!row_shape(op, y, rows, cols)) return;
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  PYDL_DISPATCH_CUDA_FLOAT(y.dtype, op, [&] {
    const scalar_t* yp = y.ptr<scalar_t>();
    const scalar_t* gp = dy.ptr<scalar_t>();
    scalar_t* dp = dx.ptr<scalar_t>();
    constexpr int kP = Pack<scalar_t>::N;
    if (cols % kP == 0 && aligned16(yp) && aligned16(gp) && aligned16(dp))
      launch_backward<scalar_t, kP>(yp, gp, dp, rows, cols, log, st);
    else
      launch_backward<scalar_t, 1>(yp, gp, dp, rows, cols, log, st);
  });
}

}  // namespace pydl::cuda
