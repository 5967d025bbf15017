// conv2d on the CPU: forward, gradient of the input, gradient of the weight (NCHW, groups,
// stride, padding, dilation). Each is im2col of a block of output pixels into a thread-local
// buffer followed by a packed, register-blocked GEMM (csrc/cpu/gemm.h); 1x1 stride-1 unpadded
// convolutions read the input directly as the GEMM operand. OpenMP runs over
// (image, group, pixel block) work items; the input gradient over (image, group), since
// col2im of neighbouring pixel blocks overlaps; the weight gradient gives each thread its own
// accumulator and sums them at the end.
#include <algorithm>
#include <vector>

#include <omp.h>

#include "csrc/cpu/gemm.h"
#include "csrc/cpu/kernels.h"
#include "csrc/dispatch.h"

namespace pydl::cpu {

namespace {

struct Geom {
  int64_t n, c, h, w;      // input
  int64_t oc, kh, kw;      // weight (oc, c / groups, kh, kw)
  int64_t oh, ow;          // output
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t cg() const { return c / groups; }
  int64_t ocg() const { return oc / groups; }
  int64_t k() const { return cg() * kh * kw; }
  int64_t pixels() const { return oh * ow; }
  bool direct() const {  // the input itself is the column matrix
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && oh == h && ow == w;
  }
};

constexpr int64_t kPixelBlock = 256;

// col (k, np) for output pixels [p0, p0 + np) of one image and group; x points at the
// group's first channel.
template <typename T>
void im2col(const Geom& g, const T* x, int64_t p0, int64_t np, T* col) {
  for (int64_t c = 0; c < g.cg(); ++c) {
    const T* xc = x + c * g.h * g.w;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * np;
        int64_t oh = p0 / g.ow, ow = p0 % g.ow;
        for (int64_t p = 0; p < np; ++p) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
          row[p] = (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) ? xc[ih * g.w + iw] : T(0);
          if (++ow == g.ow) { ow = 0; ++oh; }
        }
      }
    }
  }
}

// dx += col2im(col) for output pixels [p0, p0 + np).
template <typename T>
void col2im(const Geom& g, const T* col, int64_t p0, int64_t np, T* dx) {
  for (int64_t c = 0; c < g.cg(); ++c) {
    T* dc = dx + c * g.h * g.w;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * np;
        int64_t oh = p0 / g.ow, ow = p0 % g.ow;
        for (int64_t p = 0; p < np; ++p) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
          if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) dc[ih * g.w + iw] += row[p];
          if (++ow == g.ow) { ow = 0; ++oh; }
        }
      }
    }
  }
}

template <typename T>
void forward_impl(const Geom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = g.pixels(), nb = (P + kPixelBlock - 1) / kPixelBlock;
  const int64_t items = g.n * g.groups * nb, K = g.k(), M = g.ocg();
  const bool direct = g.direct();
#pragma omp parallel
  {
    std::vector<T> col(direct ? 0 : K * std::min(P, kPixelBlock));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t b = it % nb, gi = (it / nb) % g.groups, n = it / (nb * g.groups);
      const int64_t p0 = b * kPixelBlock, np = std::min(kPixelBlock, P - p0);
      const T* xg = x + (n * g.c + gi * g.cg()) * g.h * g.w;
      T* yb = y + (n * g.oc + gi * M) * P + p0;
      const T* B;
      int64_t brs, bcs;
      if (direct) {
        B = xg + p0, brs = P, bcs = 1;
      } else {
        im2col(g, xg, p0, np, col.data());
        B = col.data(), brs = np, bcs = 1;
      }
      if (bias) {
        for (int64_t m = 0; m < M; ++m) std::fill(yb + m * P, yb + m * P + np, bias[gi * M + m]);
      }
      gemm<T>(M, np, K, w + gi * M * K, K, 1, B, brs, bcs, yb, P, bias != nullptr);
    }
  }
}

template <typename T>
void backward_input_impl(const Geom& g, const T* dy, const T* w, T* dx) {
  const int64_t P = g.pixels(), K = g.k(), M = g.ocg();
  const int64_t items = g.n * g.groups;
  const bool direct = g.direct();
#pragma omp parallel
  {
    std::vector<T> col(direct ? 0 : K * std::min(P, kPixelBlock));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t gi = it % g.groups, n = it / g.groups;
      T* dxg = dx + (n * g.c + gi * g.cg()) * g.h * g.w;
      const T* dyg = dy + (n * g.oc + gi * M) * P;
      const T* wg = w + gi * M * K;
      if (direct) {  // dx (K, P) = w^T (K, M) @ dy (M, P)
        gemm<T>(K, P, M, wg, 1, K, dyg, P, 1, dxg, P, false);
        continue;
      }
      std::fill(dxg, dxg + g.cg() * g.h * g.w, T(0));
      for (int64_t p0 = 0; p0 < P; p0 += kPixelBlock) {
        const int64_t np = std::min(kPixelBlock, P - p0);
        gemm<T>(K, np, M, wg, 1, K, dyg + p0, P, 1, col.data(), np, false);
        col2im(g, col.data(), p0, np, dxg);
      }
    }
  }
}

template <typename T>
void backward_weight_impl(const Geom& g, const T* x, const T* dy, T* dw) {
  const int64_t P = g.pixels(), nb = (P + kPixelBlock - 1) / kPixelBlock;
  const int64_t items = g.n * g.groups * nb, K = g.k(), M = g.ocg();
  const int64_t wsize = g.oc * K;
  const bool direct = g.direct();
  const int nthreads = std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), items));
  std::vector<T> partial(static_cast<size_t>(nthreads - 1) * wsize);
  std::fill(dw, dw + wsize, T(0));
#pragma omp parallel num_threads(nthreads)
  {
    const int t = omp_get_thread_num();
    T* acc = t == 0 ? dw : partial.data() + (t - 1) * wsize;
    if (t > 0) std::fill(acc, acc + wsize, T(0));
    std::vector<T> col(direct ? 0 : K * std::min(P, kPixelBlock));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t b = it % nb, gi = (it / nb) % g.groups, n = it / (nb * g.groups);
      const int64_t p0 = b * kPixelBlock, np = std::min(kPixelBlock, P - p0);
      const T* xg = x + (n * g.c + gi * g.cg()) * g.h * g.w;
      const T* dyb = dy + (n * g.oc + gi * M) * P + p0;
      const T* B;
      int64_t brs, bcs;  // B (np, K) = col^T
      if (direct) {
        B = xg + p0, brs = 1, bcs = P;
      } else {
        im2col(g, xg, p0, np, col.data());
        B = col.data(), brs = 1, bcs = np;
      }
      gemm<T>(M, K, np, dyb, P, 1, B, brs, bcs, acc + gi * M * K, K, true);
    }
    // Sum the per-thread accumulators, each thread owning a slice of dw.
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < wsize; ++i) {
      T s = dw[i];
      for (int u = 0; u < nthreads - 1; ++u) s += partial[u * wsize + i];
      dw[i] = s;
    }
  }
}

Geom make_geom(const char* op, const TensorView& x, const TensorView& w, const TensorView& y,
               int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
               int64_t groups) {
  if (x.ndim() != 4 || w.ndim() != 4 || y.ndim() != 4)
    throw ValueError(std::string(op) + ": input, weight and output must be 4-D, got " +
                     shape_str(x.shape) + ", " + shape_str(w.shape) + ", " + shape_str(y.shape));
  Geom g{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3],
         y.shape[2], y.shape[3], sh, sw, ph, pw, dh, dw, groups};
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || groups < 1 || ph < 0 || pw < 0)
    throw ValueError(std::string(op) + ": stride, dilation and groups must be positive and "
                     "padding non-negative");
  if (g.c % groups || g.oc % groups || w.shape[1] != g.c / groups)
    throw ValueError(std::string(op) + ": weight " + shape_str(w.shape) + " does not fit input " +
                     shape_str(x.shape) + " with groups=" + std::to_string(groups));
  if (y.shape[0] != g.n || y.shape[1] != g.oc)
    throw ValueError(std::string(op) + ": output has shape " + shape_str(y.shape));
  if (g.oh < 1 || g.ow < 1)
    throw ValueError(std::string(op) + ": output size " + shape_str(y.shape) + " is empty");
  for (const TensorView* t : {&x, &w, &y}) check_contiguous(op, "tensor", *t);
  check_float(op, "input", x);
  check_same_dtype(op, "weight", w, x);
  check_same_dtype(op, "output", y, x);
  return g;
}

}  // namespace

void conv2d_forward(const TensorView& x, const TensorView& w, const std::optional<TensorView>& bias,
                    const TensorView& y, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                    int64_t dw, int64_t groups) {
  const char* op = "conv2d";
  Geom g = make_geom(op, x, w, y, sh, sw, ph, pw, dh, dw, groups);
  if (bias) {
    check_contiguous(op, "bias", *bias);
    check_same_dtype(op, "bias", *bias, x);
    check_shape(op, "bias", *bias, {g.oc});
  }
  if (y.numel() == 0) return;
  PYDL_DISPATCH_FLOAT(x.dtype, op, [&] {
    forward_impl<scalar_t>(g, x.ptr<scalar_t>(), w.ptr<scalar_t>(),
                           bias ? bias->ptr<scalar_t>() : nullptr, y.ptr<scalar_t>());
  });
}

void conv2d_backward_input(const TensorView& dy, const TensorView& w, const TensorView& dx,
                           int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                           int64_t groups) {
  const char* op = "conv2d_backward_input";
  Geom g = make_geom(op, dx, w, dy, sh, sw, ph, pw, dh, dw, groups);
  if (dx.numel() == 0) return;
  PYDL_DISPATCH_FLOAT(dx.dtype, op, [&] {
    backward_input_impl<scalar_t>(g, dy.ptr<scalar_t>(), w.ptr<scalar_t>(), dx.ptr<scalar_t>());
  });
}

void conv2d_backward_weight(const TensorView& x, const TensorView& dy, const TensorView& dw_out,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                            int64_t groups) {
  const char* op = "conv2d_backward_weight";
  Geom g = make_geom(op, x, dw_out, dy, sh, sw, ph, pw, dh, dw, groups);
  if (dw_out.numel() == 0) return;
  PYDL_DISPATCH_FLOAT(x.dtype, op, [&] {
    backward_weight_impl<scalar_t>(g, x.ptr<scalar_t>(), dy.ptr<scalar_t>(),
                                   dw_out.ptr<scalar_t>());
  });
}

}  // namespace pydl::cpu
