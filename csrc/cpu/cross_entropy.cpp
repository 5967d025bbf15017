// Fused cross-entropy: log-softmax + NLL + ignore_index + label smoothing.
// Forward reads each row of logits once (online max and sum of exponentials)
// and never writes the probabilities; backward recomputes them from the saved
// log-sum-exp while writing the gradient.
#include <atomic>
#include <cmath>

#include "csrc/cpu/kernels.h"
#include "csrc/dispatch.h"

namespace pydl::cpu {

namespace {

template <typename T>
void ce_forward(const T* x, const int64_t* target, T* loss, T* lse, int64_t rows, int64_t cols,
                int64_t ignore_index, double smoothing, std::atomic<int64_t>& bad_row) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const int64_t t = target[r];
    if (t == ignore_index) {
      loss[r] = 0;
      lse[r] = 0;
      continue;
    }
    if (t < 0 || t >= cols) {
      int64_t none = -1;
      bad_row.compare_exchange_strong(none, r);
      loss[r] = NAN;
      continue;
    }
    // Online softmax: running max m and sum s of exp(x - m), one read of the row.
    double m = -INFINITY, s = 0, sum_x = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double v = xr[c];
      sum_x += v;
      if (v > m) {
        s = (m == -INFINITY ? 0.0 : s * std::exp(m - v)) + 1.0;
        m = v;
      } else if (v > -INFINITY) {  // exp(-inf) adds nothing; exp(-inf - -inf) would be NaN
        s += std::exp(v - m);
      }
    }
    const double l = m + std::log(s);
    lse[r] = static_cast<T>(l);
    const double nll = l - xr[t];
    double out = (1.0 - smoothing) * nll;
    if (smoothing > 0) out += smoothing * (l - sum_x / cols);  // -mean over classes of log p
    loss[r] = static_cast<T>(out);
  }
}

template <typename T>
void ce_backward(const T* x, const int64_t* target, const T* lse, const T* dloss, T* dx, int64_t rows,
                 int64_t cols, int64_t ignore_index, double smoothing) {
  const double off = smoothing / cols;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* dr = dx + r * cols;
    const int64_t t = target[r];
    if (t == ignore_index || t < 0 || t >= cols) {
      for (int64_t c = 0; c < cols; ++c) dr[c] = 0;
      continue;
    }
    const double g = dloss[r], l = lse[r];
    for (int64_t c = 0; c < cols; ++c) dr[c] = static_cast<T>(g * (std::exp(xr[c] - l) - off));
    dr[t] -= static_cast<T>(g * (1.0 - smoothing));
  }
}

void check_inputs(const char* op, const TensorView& logits, const TensorView& target) {
  check_float(op, "input", logits);
  check_contiguous(op, "input", logits);
  if (logits.ndim() != 2)
    throw ValueError(std::string(op) + ": input must be 2-D (rows, classes), got shape " +
                     shape_str(logits.shape));
  if (target.dtype != DType::Int64)
    throw TypeError(std::string(op) + ": target must be int64 class indices, got " +
                    dtype_name(target.dtype));
  check_contiguous(op, "target", target);
  check_shape(op, "target", target, {logits.size(0)});
}

void check_vec(const char* op, const char* arg, const TensorView& t, const TensorView& logits) {
  check_contiguous(op, arg, t);
  check_same_dtype(op, arg, t, logits);
  check_shape(op, arg, t, {logits.size(0)});
}

}  // namespace

void cross_entropy_forward(const TensorView& logits, const TensorView& target, const TensorView& loss,
                           const TensorView& lse, int64_t ignore_index, double label_smoothing) {
  const char* op = "cross_entropy";
  check_inputs(op, logits, target);
  check_vec(op, "loss", loss, logits);
  check_vec(op, "lse", lse, logits);
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0) return;
  std::atomic<int64_t> bad_row{-1};
  PYDL_DISPATCH_FLOAT(logits.dtype, op, [&] {
    ce_forward(logits.ptr<scalar_t>(), target.ptr<int64_t>(), loss.ptr<scalar_t>(), lse.ptr<scalar_t>(),
               rows, cols, ignore_index, label_smoothing, bad_row);
  });
  const int64_t r = bad_row.load();
  if (r >= 0)
    throw IndexError(std::string(op) + ": target " + std::to_string(target.ptr<int64_t>()[r]) +
                     " at position " + std::to_string(r) + " is out of range for " +
                     std::to_string(cols) + " classes");
}

void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView& lse,
                            const TensorView& dloss, const TensorView& dlogits, int64_t ignore_index,
                            double label_smoothing) {
  const char* op = "cross_entropy_backward";
  check_inputs(op, logits, target);
  check_vec(op, "lse", lse, logits);
  check_vec(op, "grad_loss", dloss, logits);
  check_contiguous(op, "grad_input", dlogits);
  check_same_dtype(op, "grad_input", dlogits, logits);
  check_shape(op, "grad_input", dlogits, logits.shape);
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0) return;
  PYDL_DISPATCH_FLOAT(logits.dtype, op, [&] {
    ce_backward(logits.ptr<scalar_t>(), target.ptr<int64_t>(), lse.ptr<scalar_t>(), dloss.ptr<scalar_t>(),
                dlogits.ptr<scalar_t>(), rows, cols, ignore_index, label_smoothing);
  });
}

}  // namespace pydl::cpu
