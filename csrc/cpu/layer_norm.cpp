// layer_norm and RMSNorm over the last dimension, forward and backward.
// Forward: one row per OpenMP iteration, statistics in double.
// Backward: dx per row; dweight/dbias as per-thread partial sums, reduced once
// at the end, so threads never contend on the same accumulator.
#include <omp.h>

#include <cmath>
#include <vector>

#include "csrc/cpu/kernels.h"
#include "csrc/dispatch.h"

namespace pydl::cpu {

namespace {

template <typename T>
void ln_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                int64_t cols, double eps, bool rms) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double mu = 0;
    if (!rms) {
      for (int64_t c = 0; c < cols; ++c) mu += xr[c];
      mu /= cols;
    }
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = xr[c] - mu;
      var += d * d;
    }
    var /= cols;
    const double rs = 1.0 / std::sqrt(var + eps);
    mean[r] = static_cast<T>(mu);
    rstd[r] = static_cast<T>(rs);
    const T m = static_cast<T>(mu), s = static_cast<T>(rs);
    for (int64_t c = 0; c < cols; ++c) {
      T v = (xr[c] - m) * s;
      if (w) v *= w[c];
      if (b) v += b[c];
      yr[c] = v;
    }
  }
}

template <typename T>
void ln_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw,
                 T* db, int64_t rows, int64_t cols, bool rms) {
  const int nthreads = omp_get_max_threads();
  const bool want_params = dw || db;
  std::vector<double> partial(want_params ? static_cast<size_t>(nthreads) * 2 * cols : 0, 0.0);
#pragma omp parallel num_threads(nthreads) if (rows * cols >= kParallelMin)
  {
    double* pw = want_params ? partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * cols
                             : nullptr;
    double* pb = pw ? pw + cols : nullptr;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      const T* gr = dy + r * cols;
      T* dr = dx + r * cols;
      const double m = rms ? 0.0 : static_cast<double>(mean[r]);
      const double s = rstd[r];
      double sum_g = 0, sum_gx = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double xhat = (xr[c] - m) * s;
        const double g = w ? static_cast<double>(gr[c]) * w[c] : static_cast<double>(gr[c]);
        sum_g += g;
        sum_gx += g * xhat;
        if (pw) {
          pw[c] += static_cast<double>(gr[c]) * xhat;
          pb[c] += gr[c];
        }
      }
      const double mg = rms ? 0.0 : sum_g / cols, mgx = sum_gx / cols;
      for (int64_t c = 0; c < cols; ++c) {
        const double xhat = (xr[c] - m) * s;
        const double g = w ? static_cast<double>(gr[c]) * w[c] : static_cast<double>(gr[c]);
        dr[c] = static_cast<T>(s * (g - mg - xhat * mgx));
      }
    }
  }
  if (!want_params) return;
#pragma omp parallel for schedule(static) if (cols * nthreads >= kParallelMin)
  for (int64_t c = 0; c < cols; ++c) {
    double sw = 0, sb = 0;
    for (int t = 0; t < nthreads; ++t) {
      sw += partial[static_cast<size_t>(t) * 2 * cols + c];
      sb += partial[static_cast<size_t>(t) * 2 * cols + cols + c];
    }
    if (dw) dw[c] = static_cast<T>(sw);
    if (db) db[c] = static_cast<T>(sb);
  }
}

template <typename T>
const T* opt_ptr(const std::optional<TensorView>& t) {
  return t ? t->ptr<T>() : nullptr;
}
template <typename T>
T* opt_mut(const std::optional<TensorView>& t) {
  return t ? t->ptr<T>() : nullptr;
}

void check_param(const char* op, const char* arg, const std::optional<TensorView>& p,
                 const TensorView& x) {
  if (!p) return;
  check_contiguous(op, arg, *p);
  check_same_dtype(op, arg, *p, x);
  check_shape(op, arg, *p, {x.size(-1)});
}

void check_like(const char* op, const char* arg, const TensorView& t, const TensorView& x,
                const std::vector<int64_t>& shape) {
  check_contiguous(op, arg, t);
  check_same_dtype(op, arg, t, x);
  check_shape(op, arg, t, shape);
}

}  // namespace

void layer_norm_forward(const TensorView& x, const std::optional<TensorView>& weight,
                        const std::optional<TensorView>& bias, const TensorView& y,
                        const TensorView& mean, const TensorView& rstd, double eps, bool rms) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  check_float(op, "input", x);
  check_contiguous(op, "input", x);
  if (x.ndim() == 0) throw ValueError(std::string(op) + ": input must have at least one dimension");
  const int64_t cols = x.size(-1), rows = cols ? x.numel() / cols : 0;
  check_param(op, "weight", weight, x);
  check_param(op, "bias", bias, x);
  check_like(op, "output", y, x, x.shape);
  check_like(op, "mean", mean, x, {rows});
  check_like(op, "rstd", rstd, x, {rows});
  if (x.numel() == 0) return;
  PYDL_DISPATCH_FLOAT(x.dtype, op, [&] {
    ln_forward(x.ptr<scalar_t>(), opt_ptr<scalar_t>(weight), opt_ptr<scalar_t>(bias), y.ptr<scalar_t>(),
               mean.ptr<scalar_t>(), rstd.ptr<scalar_t>(), rows, cols, eps, rms);
  });
}

void layer_norm_backward(const TensorView& x, const std::optional<TensorView>& weight,
                         const TensorView& mean, const TensorView& rstd, const TensorView& dy,
                         const TensorView& dx, const std::optional<TensorView>& dweight,
                         const std::optional<TensorView>& dbias, bool rms) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  check_float(op, "input", x);
  check_contiguous(op, "input", x);
  if (x.ndim() == 0) throw ValueError(std::string(op) + ": input must have at least one dimension");
  const int64_t cols = x.size(-1), rows = cols ? x.numel() / cols : 0;
  check_param(op, "weight", weight, x);
  check_param(op, "grad_weight", dweight, x);
  check_param(op, "grad_bias", dbias, x);
  check_like(op, "mean", mean, x, {rows});
  check_like(op, "rstd", rstd, x, {rows});
  check_like(op, "grad_output", dy, x, x.shape);
  check_like(op, "grad_input", dx, x, x.shape);
  if (x.numel() == 0) return;
  PYDL_DISPATCH_FLOAT(x.dtype, op, [&] {
    ln_backward(x.ptr<scalar_t>(), opt_ptr<scalar_t>(weight), mean.ptr<scalar_t>(), rstd.ptr<scalar_t>(),
                dy.ptr<scalar_t>(), dx.ptr<scalar_t>(), opt_mut<scalar_t>(dweight),
                opt_mut<scalar_t>(dbias), rows, cols, rms);
  });
}

}  // namespace pydl::cpu
