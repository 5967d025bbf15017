// Host emulation of pydl's CUDA convolution kernels: runs the public launchers of
// kernels/conv/conv.cu (validation, planning, stride-phase decomposition, weight packing,
// split planning) on host memory, with the kernel launches emulated by
// conv_launchers_emulated.cu, and compares every pass with a direct float64 convolution.
// Outputs and workspaces are NaN-poisoned before each call; the thread-to-output maps are
// checked to cover each tile element exactly once. Build with AddressSanitizer to catch any
// read or write outside the tensors (tests/test_conv_kernel_emulation.py does):
//
//   nvcc -std=c++17 -O1 -g -I. --expt-relaxed-constexpr -Xcompiler -fsanitize=address \
//        -Xlinker -lasan tests/cuda_emulation/conv_emulate.cu \
//        tests/cuda_emulation/conv_launchers_emulated.cu kernels/conv/conv.cu \
//        csrc/tensor_view.cpp -o conv_emulate
//   ./conv_emulate             # the listed geometries; ./conv_emulate random N: N random ones
// The exit status is 0 when every case matches.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/conv/conv_tiles.cuh"

namespace pydl::cuda::conv {
int emulated_launch_count();
void check_output_maps();
}  // namespace pydl::cuda::conv

// ---- the test driver ------------------------------------------------------------------

namespace {

using namespace pydl;

struct Cfg {
  int n, c, h, w, oc, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
  int oh() const { return (h + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  int ow() const { return (w + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
};

// Host memory owned exactly (no rounding up of the size), so AddressSanitizer sees overruns.
struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  Buf() = default;
  explicit Buf(size_t b) : bytes(b) {
    if (posix_memalign(&p, 16, b ? b : 1) != 0) std::abort();
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; }
  ~Buf() { std::free(p); }
};

TensorView view(void* data, DType dt, std::vector<int64_t> shape) {
  TensorView v;
  v.data = data;
  v.dtype = dt;
  v.device = Device::CUDA;
  v.shape = shape;
  v.strides.resize(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    v.strides[d] = s;
    s *= shape[d];
  }
  return v;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Values rounded to dtype, stored in dtype, returned as doubles.
struct Tensor {
  std::vector<int64_t> shape;
  DType dt;
  Buf buf;
  std::vector<double> val;
  Tensor(std::vector<int64_t> s, DType d) : shape(s), dt(d), buf(numel(s) * dtype_size(d)), val(numel(s)) {}
  void randomize(std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (size_t i = 0; i < val.size(); ++i) set(i, nd(rng));
  }
  void set(size_t i, float f) {
    if (dt == DType::Float16) {
      const __half h = __float2half_rn(f);
      std::memcpy(static_cast<char*>(buf.p) + 2 * i, &h, 2);
      val[i] = __half2float(h);
    } else if (dt == DType::BFloat16) {
      const __nv_bfloat16 h = __float2bfloat16_rn(f);
      std::memcpy(static_cast<char*>(buf.p) + 2 * i, &h, 2);
      val[i] = __bfloat162float(h);
    } else {
      static_cast<float*>(buf.p)[i] = f;
      val[i] = f;
    }
  }
  double get(size_t i) const {
    if (dt == DType::Float16) {
      __half h;
      std::memcpy(&h, static_cast<const char*>(buf.p) + 2 * i, 2);
      return __half2float(h);
    }
    if (dt == DType::BFloat16) {
      __nv_bfloat16 h;
      std::memcpy(&h, static_cast<const char*>(buf.p) + 2 * i, 2);
      return __bfloat162float(h);
    }
    return static_cast<const float*>(buf.p)[i];
  }
  void poison() { std::memset(buf.p, 0xFF, buf.bytes); }  // NaN in every float format
  TensorView tv() { return view(buf.p, dt, shape); }
};

// Direct float64 convolution on (top, left) padding; returns y, dx, dw (and |.| magnitudes).
void reference(const Cfg& c, const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* b,
               const std::vector<double>& dy, std::vector<double>& y, std::vector<double>& dx,
               std::vector<double>& dw, bool absolute) {
  const int cg = c.c / c.groups, ocg = c.oc / c.groups, OH = c.oh(), OW = c.ow();
  y.assign(static_cast<size_t>(c.n) * c.oc * OH * OW, 0.0);
  dx.assign(static_cast<size_t>(c.n) * c.c * c.h * c.w, 0.0);
  dw.assign(static_cast<size_t>(c.oc) * cg * c.kh * c.kw, 0.0);
  auto A = [&](double v) { return absolute ? std::fabs(v) : v; };
  for (int n = 0; n < c.n; ++n)
    for (int o = 0; o < c.oc; ++o) {
      const int g = o / ocg;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const size_t yi = ((static_cast<size_t>(n) * c.oc + o) * OH + oh) * OW + ow;
          double acc = b ? A((*b)[o]) : 0.0;
          for (int ci = 0; ci < cg; ++ci)
            for (int i = 0; i < c.kh; ++i)
              for (int j = 0; j < c.kw; ++j) {
                const int ih = oh * c.sh - c.pt + i * c.dh, iw = ow * c.sw - c.pl + j * c.dw;
                if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                const int ch = g * cg + ci;
                const size_t xi = ((static_cast<size_t>(n) * c.c + ch) * c.h + ih) * c.w + iw;
                const size_t wi = ((static_cast<size_t>(o) * cg + ci) * c.kh + i) * c.kw + j;
                acc += A(x[xi]) * A(w[wi]);
                dx[xi] += A(dy[yi]) * A(w[wi]);
                dw[wi] += A(dy[yi]) * A(x[xi]);
              }
          y[yi] = acc;
        }
    }
}

double eps_of(DType dt, bool tf32) {
  if (dt == DType::Float16) return std::ldexp(1.0, -10);
  if (dt == DType::BFloat16) return std::ldexp(1.0, -7);
  return tf32 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -23);
}

int g_failures = 0;

void compare(const char* what, const std::string& name, const Tensor& out, const std::vector<double>& ref,
             const std::vector<double>& mag, double eps) {
  // Spacing of the dtype's subnormals.
  const double tiny = std::ldexp(1.0, out.dt == DType::Float16 ? -24 : out.dt == DType::BFloat16 ? -133 : -149);
  double worst = 0.0;
  size_t where = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double got = out.get(i);
    // The emulated product is exact (float64 over dtype-exact inputs), so only the final
    // rounding to dtype (absolute below the normal range: tiny) and float32 partial sums remain.
    const double bound = eps * std::fabs(ref[i]) + 1e-5 * mag[i] + tiny;
    const double err = std::isnan(got) ? INFINITY : std::fabs(got - ref[i]);
    if (err / bound > worst) {
      worst = err / bound;
      where = i;
    }
  }
  if (worst > 1.0) {
    ++g_failures;
    std::printf("FAIL %s %s: element %zu got %.6g expected %.6g (error / bound %.3g)\n", name.c_str(), what, where,
                out.get(where), ref[where], worst);
  }
}

void run_case(const Cfg& c, DType dt, bool tf32, bool bias, std::mt19937& rng) {
  const int cg = c.c / c.groups, OH = c.oh(), OW = c.ow();
  const char* dtn = dt == DType::Float16 ? "float16" : dt == DType::BFloat16 ? "bfloat16" : tf32 ? "tf32" : "float32";
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%s n%d c%d %dx%d oc%d k%dx%d s%d,%d p%d,%d,%d,%d d%d,%d g%d%s", dtn, c.n, c.c, c.h,
                c.w, c.oc, c.kh, c.kw, c.sh, c.sw, c.pt, c.pl, c.pb, c.pr, c.dh, c.dw, c.groups, bias ? " bias" : "");
  const std::string name(buf);

  Tensor x({c.n, c.c, c.h, c.w}, dt), w({c.oc, cg, c.kh, c.kw}, dt), b({c.oc}, dt), dy({c.n, c.oc, OH, OW}, dt);
  x.randomize(rng);
  w.randomize(rng);
  b.randomize(rng);
  dy.randomize(rng);
  std::vector<double> ry, rdx, rdw, my, mdx, mdw;
  reference(c, x.val, w.val, bias ? &b.val : nullptr, dy.val, ry, rdx, rdw, false);
  reference(c, x.val, w.val, bias ? &b.val : nullptr, dy.val, my, mdx, mdw, true);

  cuda::ConvConfig cfg;
  cfg.sh = c.sh;
  cfg.sw = c.sw;
  cfg.ph = c.pt;
  cfg.pw = c.pl;
  cfg.dh = c.dh;
  cfg.dw = c.dw;
  cfg.groups = c.groups;
  cfg.allow_tf32 = tf32;
  const double eps = eps_of(dt, false);  // the emulated product is exact, TF32 or not

  auto workspace = [&](cuda::ConvPass pass, Tensor& in, Tensor& wt, Tensor& out) {
    const cuda::ConvPlan plan = cuda::conv2d_plan(pass, in.tv(), wt.tv(), out.tv(), cfg);
    if (plan.variant == "interim") {
      std::printf("FAIL %s: planned interim (%s)\n", name.c_str(), plan.reason.c_str());
      ++g_failures;
    }
    Tensor ws({plan.workspace}, plan.workspace_float32 ? DType::Float32 : dt);
    ws.poison();
    return ws;
  };
  try {
    Tensor y({c.n, c.oc, OH, OW}, dt);
    y.poison();
    Tensor ws = workspace(cuda::ConvPass::Forward, x, w, y);
    std::optional<TensorView> bv;
    if (bias) bv = b.tv();
    cuda::conv2d_forward(x.tv(), w.tv(), bv, y.tv(), ws.tv(), cfg, 0);
    compare("forward", name, y, ry, my, eps);

    Tensor dx({c.n, c.c, c.h, c.w}, dt);
    dx.poison();
    Tensor ws2 = workspace(cuda::ConvPass::BackwardInput, dx, w, dy);
    cuda::conv2d_backward_input(dy.tv(), w.tv(), dx.tv(), ws2.tv(), cfg, 0);
    compare("input gradient", name, dx, rdx, mdx, eps);

    Tensor dw({c.oc, cg, c.kh, c.kw}, dt);
    dw.poison();
    Tensor ws3 = workspace(cuda::ConvPass::BackwardWeight, x, dw, dy);
    cuda::conv2d_backward_weight(x.tv(), dy.tv(), dw.tv(), ws3.tv(), cfg, 0);
    compare("weight gradient", name, dw, rdw, mdw, eps);
  } catch (const std::exception& e) {
    ++g_failures;
    std::printf("FAIL %s: %s\n", name.c_str(), e.what());
  }
}

// Padding (p, p) on both sides, or 'same' (total d * (k - 1), the odd one at the end).
Cfg make(int n, int c, int h, int w, int oc, int kh, int kw, int s, int p, int d, int groups, bool same = false) {
  Cfg g{n, c, h, w, oc, kh, kw, s, s, p, p, p, p, d, d, groups};
  if (same) {
    g.pt = d * (kh - 1) / 2;
    g.pb = d * (kh - 1) - g.pt;
    g.pl = d * (kw - 1) / 2;
    g.pr = d * (kw - 1) - g.pl;
  }
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  pydl::cuda::conv::check_output_maps();

  std::vector<Cfg> cases = {
      make(2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1),         // odd sizes, channels 3 -> 5
      make(1, 1, 5, 5, 1, 1, 1, 1, 0, 1, 1),         // everything 1
      make(2, 17, 11, 13, 17, 3, 3, 2, 1, 1, 1),     // stride 2, 17 channels
      make(1, 5, 13, 10, 3, 7, 7, 2, 3, 1, 1),       // 7x7 stem-like
      make(2, 4, 9, 9, 6, 5, 5, 1, 2, 1, 2),         // 5x5, groups 2
      make(2, 6, 9, 9, 6, 3, 3, 1, 2, 2, 6),         // depthwise, dilation 2
      make(1, 4, 8, 7, 8, 3, 3, 2, 1, 1, 4),         // depthwise, multiplier 2, stride 2
      make(2, 4, 9, 8, 4, 4, 4, 1, 0, 1, 2, true),   // 'same', even window (asymmetric padding)
      make(2, 6, 10, 9, 8, 3, 3, 1, 0, 2, 2, true),  // 'same', dilation 2
      make(1, 8, 12, 12, 16, 1, 1, 1, 0, 1, 1),      // 1x1 direct (GEMM in Python, implicit here)
      make(3, 8, 7, 9, 12, 1, 1, 2, 0, 1, 2),        // 1x1 stride 2, grouped
      make(2, 6, 11, 9, 9, 3, 2, 3, 1, 2, 3),        // stride 3, dilation 2, uneven window
      make(1, 2, 4, 4, 3, 3, 3, 3, 0, 1, 1),         // stride 3 larger than what the taps reach
      make(1, 3, 3, 3, 2, 3, 3, 1, 2, 3, 1),         // padding larger than the image
      make(2, 20, 6, 6, 130, 3, 3, 1, 1, 1, 1),      // two row tiles (130 > 128), K = 180
      make(2, 40, 9, 9, 24, 3, 3, 1, 1, 1, 1),       // columns over two tiles (162), K = 360
      make(2, 3, 33, 35, 4, 3, 3, 1, 1, 1, 1),       // weight gradient split over pixels
      make(1, 9, 17, 17, 10, 5, 5, 2, 2, 1, 1),      // stride 2 phases with 5x5
      make(1, 70, 6, 5, 3, 3, 3, 2, 1, 1, 1),        // input gradient with 128-row tiles, phases
      make(2, 130, 5, 4, 66, 3, 3, 1, 1, 1, 2),      // 128-row tiles in all passes, grouped
  };
  // Mixed strides and dilations per dimension.
  {
    Cfg g{2, 4, 11, 9, 6, 3, 5, 2, 1, 1, 2, 1, 2, 1, 2, 2};
    cases.push_back(g);
  }
  std::mt19937 rng(1234);
  // "random N": N random small geometries instead of the list above.
  if (argc > 2 && std::string(argv[1]) == "random") {
    cases.clear();
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    while (static_cast<int>(cases.size()) < std::atoi(argv[2])) {
      Cfg g{};
      g.n = pick(1, 3);
      const bool wide = pick(0, 5) == 0;  // past 64 rows: the 128-row tiles
      const int cg = wide ? pick(1, 140) : pick(1, 6), ocg = wide ? pick(60, 140) : pick(1, 6);
      g.groups = pick(1, 3);
      g.c = cg * g.groups;
      g.oc = ocg * g.groups;
      if (pick(0, 3) == 0) {  // depthwise
        g.groups = g.c = pick(1, 5);
        g.oc = g.c * pick(1, 3);
      }
      g.h = pick(1, wide ? 6 : 12);
      g.w = pick(1, wide ? 6 : 12);
      g.kh = pick(1, 5);
      g.kw = pick(1, 5);
      g.sh = pick(1, 3);
      g.sw = pick(1, 3);
      g.dh = pick(1, 3);
      g.dw = pick(1, 3);
      g.pt = pick(0, 3);
      g.pb = pick(0, 3);
      g.pl = pick(0, 3);
      g.pr = pick(0, 3);
      if (g.oh() >= 1 && g.ow() >= 1) cases.push_back(g);
    }
  }
  const struct {
    pydl::DType dt;
    bool tf32;
  } kinds[] = {{pydl::DType::Float32, false}, {pydl::DType::Float32, true}, {pydl::DType::Float16, false},
               {pydl::DType::BFloat16, false}};
  int runs = 0;
  for (const Cfg& c : cases)
    for (const auto& k : kinds)
      for (bool bias : {false, true}) {
        run_case(c, k.dt, k.tf32, bias, rng);
        ++runs;
      }
  std::printf("%d cases, %d launches, %d failures\n", runs, pydl::cuda::conv::emulated_launch_count(), g_failures);
  return g_failures ? 1 : 0;
}
