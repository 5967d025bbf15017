// softmax / log_softmax over the last dimension, forward and backward.
// One row per OpenMP iteration: a max pass, an exp-sum pass (sums in double),
// and a write pass, all over a row that stays in cache for typical widths.
#include <cmath>

#include "csrc/cpu/kernels.h"
#include "csrc/dispatch.h"

namespace pydl::cpu {

namespace {

template <typename T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = -INFINITY;
    for (int64_t c = 0; c < cols; ++c) m = xr[c] > m ? xr[c] : m;
    if (std::isinf(m) && m < 0) m = 0;  // an all -inf row gives NaN like PyTorch, not a crash
    double sum = 0;
    if (log) {
      for (int64_t c = 0; c < cols; ++c) sum += std::exp(xr[c] - m);
      const T log_sum = static_cast<T>(std::log(sum));  // (x - m) - log_sum: no rounding of m + log_sum
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) - log_sum;
    } else {
      for (int64_t c = 0; c < cols; ++c) {
        T e = std::exp(xr[c] - m);
        yr[c] = e;
        sum += e;
      }
      const T inv = static_cast<T>(1.0 / sum);
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  }
}

template <typename T>
void softmax_backward_rows(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    double dot = 0;
    if (log) {
      for (int64_t c = 0; c < cols; ++c) dot += gr[c];
      const T s = static_cast<T>(dot);
      for (int64_t c = 0; c < cols; ++c) dr[c] = gr[c] - std::exp(yr[c]) * s;
    } else {
      for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(gr[c]) * yr[c];
      const T s = static_cast<T>(dot);
      for (int64_t c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - s);
    }
  }
}

void check_rows(const char* op, const TensorView& a, const char* an, const TensorView& b,
                const char* bn) {
  check_float(op, an, a);
  check_contiguous(op, an, a);
  check_contiguous(op, bn, b);
  check_same_dtype(op, bn, b, a);
  check_shape(op, bn, b, a.shape);
}

}  // namespace

void softmax_forward(const TensorView& x, const TensorView& y, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_rows(op, x, "input", y, "output");
  if (x.ndim() == 0 || x.numel() == 0) return;
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  PYDL_DISPATCH_FLOAT(x.dtype, op, [&] {
    softmax_rows(x.ptr<scalar_t>(), y.ptr<scalar_t>(), rows, cols, log);
  });
}

void softmax_backward(const TensorView& y, const TensorView& dy, const TensorView& dx, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  check_rows(op, y, "output", dy, "grad_output");
  check_rows(op, y, "output", dx, "grad_input");
  if (y.ndim() == 0 || y.numel() == 0) return;
  const int64_t cols = y.size(-1), rows = y.numel() / cols;
  PYDL_DISPATCH_FLOAT(y.dtype, op, [&] {
    softmax_backward_rows(y.ptr<scalar_t>(), dy.ptr<scalar_t>(), dx.ptr<scalar_t>(), rows, cols, log);
  });
}

}  // namespace pydl::cpu
