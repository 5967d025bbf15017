// conv2d on the GPU, host side: validates the arrays (errors name the op), plans each call
// (which kernel, how large a workspace) and turns the convolution into launches of the
// implicit GEMM (conv_implicit_gemm.cu) or the depthwise kernels (conv_depthwise.cu).
//
// Forward: per group, out (OC/g, N*OH*OW) = W (OC/g, C/g*KH*KW) @ cols, cols gathered from x.
// Input gradient: split by stride phase (ih % sh, iw % sw) like csrc/cpu/conv.cpp. Within a
//   phase only the taps r with (phase + ph - r * dh) % sh == 0 reach a pixel, and they do so
//   at output row u + (phase + ph - r * dh) / sh; those r form an arithmetic progression
//   (step sh / gcd(sh, dh)), so a phase is a stride-1 gather of dy with a sub-kernel of the
//   transposed weights, and no multiply lands on the zeros a strided convolution's gradient
//   would insert. Phases no tap reaches get zeros from the same launch (K = 0).
// Weight gradient: per group dW (OC/g, C/g*KH*KW) = dy (OC/g, pixels) @ cols^T, the pixel
//   reduction split over blocks into a float32 workspace, then reduced in a fixed order.
// Depthwise (one input channel per group) runs direct kernels instead.
#include <algorithm>
#include <climits>
#include <numeric>
#include <vector>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_launch.h"

namespace pydl::cuda {
namespace {

using conv::Core;

struct Geom {
  int64_t n, c, h, w;  // input side
  int64_t oc, kh, kw;  // weight (oc, c / groups, kh, kw)
  int64_t oh, ow;      // output side
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t cg() const { return c / groups; }
  int64_t ocg() const { return oc / groups; }
  int64_t taps() const { return kh * kw; }
};

const char* op_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward: return "conv2d";
    case ConvPass::BackwardInput: return "conv2d_backward_input";
    case ConvPass::BackwardWeight: return "conv2d_backward_weight";
  }
  return "conv2d";
}

struct ArgNames {
  const char* in;
  const char* w;
  const char* out;
};

ArgNames arg_names(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward: return {"input", "weight", "output"};
    case ConvPass::BackwardInput: return {"grad_input", "weight", "grad_output"};
    case ConvPass::BackwardWeight: return {"input", "grad_weight", "grad_output"};
  }
  return {"input", "weight", "output"};
}

bool is_gpu_float(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}

Geom make_geom(ConvPass pass, const TensorView& in, const TensorView& w, const TensorView& out,
               const ConvConfig& cfg) {
  const char* op = op_name(pass);
  const ArgNames names = arg_names(pass);
  check_device(op, names.in, in);
  check_device(op, names.w, w);
  check_device(op, names.out, out);
  if (in.ndim() != 4 || w.ndim() != 4 || out.ndim() != 4)
    throw ValueError(std::string(op) + ": " + names.in + ", " + names.w + " and " + names.out +
                     " must be 4-D, got " + shape_str(in.shape) + ", " + shape_str(w.shape) + ", " +
                     shape_str(out.shape));
  if (!is_gpu_float(in.dtype))
    throw TypeError(std::string(op) + ": " + names.in + " must be float32, float16, bfloat16 or float64, got " +
                    dtype_name(in.dtype));
  check_same_dtype(op, names.w, w, in);
  check_same_dtype(op, names.out, out, in);
  if (cfg.sh < 1 || cfg.sw < 1 || cfg.dh < 1 || cfg.dw < 1 || cfg.groups < 1 || cfg.ph < 0 || cfg.pw < 0)
    throw ValueError(std::string(op) +
                     ": stride, dilation and groups must be positive and padding non-negative");
  Geom g{in.shape[0], in.shape[1], in.shape[2], in.shape[3], w.shape[0], w.shape[2], w.shape[3],
         out.shape[2], out.shape[3], cfg.sh, cfg.sw, cfg.ph, cfg.pw, cfg.dh, cfg.dw, cfg.groups};
  if (g.c % g.groups || g.oc % g.groups || w.shape[1] != g.c / g.groups)
    throw ValueError(std::string(op) + ": " + names.w + " " + shape_str(w.shape) + " does not fit " + names.in +
                     " " + shape_str(in.shape) + " with groups=" + std::to_string(g.groups));
  if (g.kh < 1 || g.kw < 1)
    throw ValueError(std::string(op) + ": kernel size must be positive, got " + names.w + " " +
                     shape_str(w.shape));
  if (out.shape[0] != g.n || out.shape[1] != g.oc)
    throw ValueError(std::string(op) + ": " + names.out + " has shape " + shape_str(out.shape) + ", expected (" +
                     std::to_string(g.n) + ", " + std::to_string(g.oc) + ", ...)");
  if (g.oh < 1 || g.ow < 1)
    throw ValueError(std::string(op) + ": output size " + shape_str(out.shape) + " is empty");
  check_contiguous(op, names.in, in);
  check_contiguous(op, names.w, w);
  check_contiguous(op, names.out, out);
  return g;
}

// Extent of the zero-padded plane the taps can touch along one dimension.
int64_t padded_extent(int64_t in, int64_t out, int64_t s, int64_t k, int64_t d, int64_t p) {
  return std::max(in, (out - 1) * s + (k - 1) * d + 1) + 2 * p;
}

// Why the kernels cannot take `g` with their 32-bit in-image arithmetic, or "".
std::string too_large(const Geom& g) {
  constexpr int64_t kLim = INT_MAX / 2;  // headroom for the sums of in-range offsets
  const int64_t hp = padded_extent(g.h, g.oh, g.sh, g.kh, g.dh, g.ph);
  const int64_t wp = padded_extent(g.w, g.ow, g.sw, g.kw, g.dw, g.pw);
  if (hp > kLim || wp > kLim || hp * wp > kLim || std::max(g.c, g.oc) > kLim / (hp * wp))
    return "one image's channels, padded, pass 2^30 elements";
  if (g.n * g.oh * g.ow > kLim || g.n * g.h * g.w > kLim) return "the batch's pixels pass 2^30";
  if (g.cg() * g.taps() > kLim || g.ocg() * g.taps() > kLim || g.oc * g.cg() * g.taps() > kLim)
    return "the weight passes 2^30 elements";
  if ((std::max(g.ocg(), g.cg()) + conv::kMinTileM - 1) / conv::kMinTileM > 65535)
    return "more than 65535 row tiles per group";
  return "";
}

Core core_for(DType t, bool allow_tf32) {
  if (t == DType::Float32) return allow_tf32 ? Core::Tf32 : Core::Simt;
  return Core::Mma16;
}

const char* core_variant(Core c) {
  switch (c) {
    case Core::Mma16: return "implicit_mma";
    case Core::Tf32: return "implicit_tf32";
    case Core::Simt: return "implicit_simt";
  }
  return "implicit_mma";
}

bool is_depthwise(const Geom& g) { return g.cg() == 1 && g.groups == g.c; }

bool is_pointwise_gemm(ConvPass pass, const Geom& g) {
  const bool direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
                      g.oh == g.h && g.ow == g.w && g.groups == 1;
  return direct && (pass != ConvPass::BackwardWeight || g.n == 1);
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Multiprocessors of the current device. It only sizes the weight gradient's split (plan and
// launch ask the same device, so the workspace size agrees); without a device (the host
// emulation in tests/cuda_emulation) a fixed count stands in.
int sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    cudaGetLastError();
    return 132;
  }
  return std::max(sms, 1);
}

// Split of the weight gradient's pixel reduction: enough blocks for about four waves of two
// blocks per SM, each split at least kMinSplitPixels pixels, the workspace at most
// kMaxWorkspaceFloats.
constexpr int64_t kMinSplitPixels = 512;
constexpr int64_t kMaxWorkspaceFloats = int64_t{64} << 20;  // 256 MiB
constexpr int64_t kMaxSplits = 256;

struct WgradSplit {
  int splits = 1;
  int tiles_per_split = 0;
};

WgradSplit plan_wgrad_split(const Geom& g, Core core) {
  const int64_t bk = conv::tile_k(core);
  const int64_t pixels = g.n * g.oh * g.ow;
  const int64_t k_tiles = (pixels + bk - 1) / bk;
  WgradSplit s;
  if (k_tiles == 0) return s;
  const int64_t m = g.ocg(), n = g.cg() * g.taps();
  const int64_t tm = conv::tile_m(m);
  const int64_t blocks = ((m + tm - 1) / tm) * ((n + conv::kTileN - 1) / conv::kTileN) * g.groups;
  const int64_t want = (8 * static_cast<int64_t>(sm_count()) + blocks - 1) / blocks;
  const int64_t by_size = std::max<int64_t>(1, pixels / kMinSplitPixels);
  const int64_t by_ws = std::max<int64_t>(1, kMaxWorkspaceFloats / std::max<int64_t>(1, g.oc * n));
  const int64_t by_grid = std::max<int64_t>(1, (INT_MAX / 2) / g.groups);
  int64_t splits = std::max<int64_t>(1, std::min({want, by_size, by_ws, by_grid, kMaxSplits, k_tiles}));
  const int64_t per = (k_tiles + splits - 1) / splits;
  splits = (k_tiles + per - 1) / per;  // no empty split
  s.splits = static_cast<int>(splits);
  s.tiles_per_split = static_cast<int>(per);
  return s;
}

// Splits of the depthwise weight gradient: blocks for about four waves, each at least
// 2048 pixels.
int plan_depthwise_split(const Geom& g) {
  const int64_t entries = g.oc * g.taps();
  const int64_t pixels = g.n * g.oh * g.ow;
  const int64_t want = (4 * 8 * static_cast<int64_t>(sm_count()) + entries - 1) / entries;
  const int64_t by_size = std::max<int64_t>(1, pixels / 2048);
  const int64_t by_ws = std::max<int64_t>(1, kMaxWorkspaceFloats / std::max<int64_t>(1, entries));
  return static_cast<int>(std::max<int64_t>(1, std::min({want, by_size, by_ws, kMaxSplits})));
}

ConvPlan plan_geom(ConvPass pass, const Geom& g, DType dtype, bool allow_tf32) {
  ConvPlan p;
  if (dtype == DType::Float64) {
    p.variant = "interim";
    p.reason = "float64 has no tensor-core or fused kernel";
    return p;
  }
  p.reason = too_large(g);
  if (!p.reason.empty()) {
    p.variant = "interim";
    return p;
  }
  const Core core = core_for(dtype, allow_tf32);
  if (is_depthwise(g)) {
    p.variant = "depthwise";
    if (pass == ConvPass::BackwardWeight) {
      p.workspace = static_cast<int64_t>(plan_depthwise_split(g)) * g.oc * g.taps();
      p.workspace_float32 = true;
    }
    return p;
  }
  p.variant = is_pointwise_gemm(pass, g) ? "gemm" : core_variant(core);
  if (pass == ConvPass::Forward) {
    p.workspace = g.groups * g.cg() * g.taps() * round_up(g.ocg(), conv::kPackAlign);
  } else if (pass == ConvPass::BackwardInput) {
    p.workspace = g.groups * g.ocg() * g.taps() * round_up(g.cg(), conv::kPackAlign);
  } else {
    p.workspace = static_cast<int64_t>(plan_wgrad_split(g, core).splits) * g.oc * g.cg() * g.taps();
    p.workspace_float32 = true;
  }
  return p;
}

// Checks the workspace a launcher was given against the plan.
void check_workspace(const char* op, const std::optional<TensorView>& ws, const ConvPlan& plan, DType dtype) {
  if (plan.workspace == 0) return;
  if (!ws)
    throw ValueError(std::string(op) + ": needs a workspace of " + std::to_string(plan.workspace) + " elements");
  check_device(op, "workspace", *ws);
  check_dtype(op, "workspace", *ws, plan.workspace_float32 ? DType::Float32 : dtype);
  check_contiguous(op, "workspace", *ws);
  if (ws->numel() < plan.workspace)
    throw ValueError(std::string(op) + ": workspace has " + std::to_string(ws->numel()) +
                     " elements, needs " + std::to_string(plan.workspace));
  if (!aligned16(ws->data)) throw ValueError(std::string(op) + ": workspace must be 16-byte aligned");
}

[[noreturn]] void refuse(const char* op, const ConvPlan& plan) {
  if (plan.reason.rfind("float64", 0) == 0)
    throw TypeError(std::string(op) +
                    ": float64 runs on the interim path (pydl/backend/xp_conv.py), not these kernels");
  throw ValueError(std::string(op) + ": " + plan.reason + "; such calls run on the interim path");
}

conv::Depthwise depthwise_geom(const Geom& g) {
  conv::Depthwise d;
  d.N = g.n;
  d.C = static_cast<int>(g.c);
  d.H = static_cast<int>(g.h);
  d.W = static_cast<int>(g.w);
  d.mult = static_cast<int>(g.oc / g.c);
  d.OH = static_cast<int>(g.oh);
  d.OW = static_cast<int>(g.ow);
  d.KH = static_cast<int>(g.kh);
  d.KW = static_cast<int>(g.kw);
  d.sh = static_cast<int>(g.sh);
  d.sw = static_cast<int>(g.sw);
  d.ph = static_cast<int>(g.ph);
  d.pw = static_cast<int>(g.pw);
  d.dh = static_cast<int>(g.dh);
  d.dw = static_cast<int>(g.dw);
  return d;
}

int64_t pos_mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

// The taps r in [0, k) that reach phase `a` of the input gradient: r0, r0 + step, ...
struct PhaseTaps {
  int r0 = 0, step = 1, count = 0;
  int off = 0;  // output row of tap r0 for phase row u = 0: (a + p - r0 * d) / s
  int delta = 0;  // change of that row per tap: -(step * d) / s
};

PhaseTaps phase_taps(int64_t a, int64_t k, int64_t s, int64_t d, int64_t p) {
  PhaseTaps t;
  std::vector<int64_t> rs;
  for (int64_t r = 0; r < k; ++r)
    if (pos_mod(a + p - r * d, s) == 0) rs.push_back(r);
  t.count = static_cast<int>(rs.size());
  if (rs.empty()) return t;
  t.r0 = static_cast<int>(rs[0]);
  t.step = rs.size() > 1 ? static_cast<int>(rs[1] - rs[0]) : 1;
  t.off = static_cast<int>((a + p - rs[0] * d) / s);  // exact
  t.delta = static_cast<int>(-(t.step * d) / s);        // exact: step * d is a multiple of s
  return t;
}

}  // namespace

ConvPass conv_pass_from_name(const std::string& name) {
  if (name == "forward") return ConvPass::Forward;
  if (name == "backward_input") return ConvPass::BackwardInput;
  if (name == "backward_weight") return ConvPass::BackwardWeight;
  throw ValueError("conv2d: unknown pass '" + name + "' (expected 'forward', 'backward_input' or 'backward_weight')");
}

ConvPlan conv2d_plan(ConvPass pass, const TensorView& input, const TensorView& weight, const TensorView& output,
                     const ConvConfig& cfg) {
  const Geom g = make_geom(pass, input, weight, output, cfg);
  return plan_geom(pass, g, input.dtype, cfg.allow_tf32);
}

void conv2d_forward(const TensorView& x, const TensorView& w, const std::optional<TensorView>& bias,
                    const TensorView& y, const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                    std::uintptr_t stream) {
  const char* op = "conv2d";
  const Geom g = make_geom(ConvPass::Forward, x, w, y, cfg);
  if (bias) {
    check_device(op, "bias", *bias);
    check_same_dtype(op, "bias", *bias, x);
    check_contiguous(op, "bias", *bias);
    check_shape(op, "bias", *bias, {g.oc});
  }
  const ConvPlan plan = plan_geom(ConvPass::Forward, g, x.dtype, cfg.allow_tf32);
  if (plan.variant == "interim") refuse(op, plan);
  check_workspace(op, workspace, plan, x.dtype);
  if (y.numel() == 0) return;
  const auto st = reinterpret_cast<conv::Stream>(stream);

  if (plan.variant == "depthwise") {
    conv::Depthwise d = depthwise_geom(g);
    d.x = x.data;
    d.w = w.data;
    d.bias = bias ? bias->data : nullptr;
    d.out = y.data;
    conv::launch_depthwise_forward(d, x.dtype, st);
    return;
  }

  const int64_t ocg = g.ocg(), cg = g.cg(), taps = g.taps(), k = cg * taps;
  const int ld = static_cast<int>(round_up(ocg, conv::kPackAlign));
  void* packed = workspace ? workspace->data : nullptr;  // absent only when K == 0
  // A: W (OC/g, K) packed k-major: a[g][k][m] = w[g * ocg + m][k].
  conv::WeightPack pk;
  pk.w = w.data;
  pk.w_group = ocg * k;
  pk.qs = static_cast<int>(taps);
  pk.ms = static_cast<int>(k);
  pk.KW = static_cast<int>(g.kw);
  pk.dst = packed;
  pk.ld = ld;
  pk.Q = static_cast<int>(cg);
  pk.KI = static_cast<int>(g.kh);
  pk.KJ = static_cast<int>(g.kw);
  pk.M = static_cast<int>(ocg);
  pk.groups = static_cast<int>(g.groups);
  conv::launch_pack_weights(pk, x.dtype, st);

  conv::GatherGemm p;
  p.a = packed;
  p.a_group = k * ld;
  p.lda = ld;
  p.src = x.data;
  p.src_img = g.c * g.h * g.w;
  p.src_group = cg * g.h * g.w;
  p.src_ch = static_cast<int>(g.h * g.w);
  p.Hs = static_cast<int>(g.h);
  p.Ws = static_cast<int>(g.w);
  p.U = static_cast<int>(g.oh);
  p.V = static_cast<int>(g.ow);
  p.su = static_cast<int>(g.sh);
  p.sv = static_cast<int>(g.sw);
  p.h0 = static_cast<int>(-g.ph);
  p.w0 = static_cast<int>(-g.pw);
  p.di = static_cast<int>(g.dh);
  p.dj = static_cast<int>(g.dw);
  p.KI = static_cast<int>(g.kh);
  p.KJ = static_cast<int>(g.kw);
  p.dst = y.data;
  p.dst_img = g.oc * g.oh * g.ow;
  p.dst_group = ocg * g.oh * g.ow;
  p.dst_ch = static_cast<int>(g.oh * g.ow);
  p.Wd = static_cast<int>(g.ow);
  p.bias = bias ? bias->data : nullptr;
  p.M = static_cast<int>(ocg);
  p.N = static_cast<int>(g.n * g.oh * g.ow);
  p.K = static_cast<int>(k);
  p.groups = static_cast<int>(g.groups);
  p.pair_store = (reinterpret_cast<uintptr_t>(y.data) % (2 * dtype_size(x.dtype))) == 0;
  conv::launch_gather_gemm(p, x.dtype, core_for(x.dtype, cfg.allow_tf32), st);
}

void conv2d_backward_input(const TensorView& dy, const TensorView& w, const TensorView& dx,
                           const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                           std::uintptr_t stream) {
  const char* op = "conv2d_backward_input";
  const Geom g = make_geom(ConvPass::BackwardInput, dx, w, dy, cfg);
  const ConvPlan plan = plan_geom(ConvPass::BackwardInput, g, dx.dtype, cfg.allow_tf32);
  if (plan.variant == "interim") refuse(op, plan);
  check_workspace(op, workspace, plan, dx.dtype);
  if (dx.numel() == 0) return;
  const auto st = reinterpret_cast<conv::Stream>(stream);

  if (plan.variant == "depthwise") {
    conv::Depthwise d = depthwise_geom(g);
    d.dy = dy.data;
    d.w = w.data;
    d.out = dx.data;
    conv::launch_depthwise_backward_input(d, dx.dtype, st);
    return;
  }

  const int64_t ocg = g.ocg(), cg = g.cg(), taps = g.taps();
  const int ld = static_cast<int>(round_up(cg, conv::kPackAlign));
  const Core core = core_for(dx.dtype, cfg.allow_tf32);
  const int64_t esize = dtype_size(dx.dtype);
  char* ws_base = workspace ? static_cast<char*>(workspace->data) : nullptr;  // absent only when K == 0
  int64_t packed = 0;  // elements of the workspace used by earlier phases
  for (int64_t a = 0; a < g.sh; ++a) {
    const PhaseTaps th = phase_taps(a, g.kh, g.sh, g.dh, g.ph);
    const int64_t U = a < g.h ? (g.h - a + g.sh - 1) / g.sh : 0;
    for (int64_t b = 0; b < g.sw; ++b) {
      const PhaseTaps tw = phase_taps(b, g.kw, g.sw, g.dw, g.pw);
      const int64_t V = b < g.w ? (g.w - b + g.sw - 1) / g.sw : 0;
      if (U == 0 || V == 0) continue;  // no dx pixel in this phase
      const int64_t kph = ocg * th.count * tw.count;
      void* a_ptr = kph > 0 ? ws_base + packed * esize : nullptr;
      if (kph > 0) {
        // A: a[g][k = (oc, i, j)][c] = w[g * ocg + oc][c][r0 + i * step][s0 + j * step].
        conv::WeightPack pk;
        pk.w = w.data;
        pk.w_group = ocg * cg * taps;
        pk.qs = static_cast<int>(cg * taps);
        pk.ms = static_cast<int>(taps);
        pk.KW = static_cast<int>(g.kw);
        pk.r0 = th.r0;
        pk.rs = th.step;
        pk.s0 = tw.r0;
        pk.ss = tw.step;
        pk.dst = a_ptr;
        pk.ld = ld;
        pk.Q = static_cast<int>(ocg);
        pk.KI = th.count;
        pk.KJ = tw.count;
        pk.M = static_cast<int>(cg);
        pk.groups = static_cast<int>(g.groups);
        conv::launch_pack_weights(pk, dx.dtype, st);
      }
      conv::GatherGemm p;
      p.a = a_ptr;
      p.a_group = kph * ld;
      p.lda = ld;
      p.src = dy.data;
      p.src_img = g.oc * g.oh * g.ow;
      p.src_group = ocg * g.oh * g.ow;
      p.src_ch = static_cast<int>(g.oh * g.ow);
      p.Hs = static_cast<int>(g.oh);
      p.Ws = static_cast<int>(g.ow);
      p.U = static_cast<int>(U);
      p.V = static_cast<int>(V);
      p.su = 1;
      p.sv = 1;
      p.h0 = th.off;
      p.w0 = tw.off;
      p.di = th.delta;
      p.dj = tw.delta;
      p.KI = std::max(th.count, 1);
      p.KJ = std::max(tw.count, 1);
      p.dst = dx.data;
      p.dst_img = g.c * g.h * g.w;
      p.dst_group = cg * g.h * g.w;
      p.dst_ch = static_cast<int>(g.h * g.w);
      p.Wd = static_cast<int>(g.w);
      p.du = static_cast<int>(g.sh);
      p.dv = static_cast<int>(g.sw);
      p.a0 = static_cast<int>(a);
      p.b0 = static_cast<int>(b);
      p.M = static_cast<int>(cg);
      p.N = static_cast<int>(g.n * U * V);
      p.K = static_cast<int>(kph);
      p.groups = static_cast<int>(g.groups);
      p.pair_store = g.sw == 1 && (reinterpret_cast<uintptr_t>(dx.data) % (2 * esize)) == 0;
      conv::launch_gather_gemm(p, dx.dtype, core, st);
      packed += g.groups * kph * ld;
    }
  }
}

void conv2d_backward_weight(const TensorView& x, const TensorView& dy, const TensorView& dw,
                            const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                            std::uintptr_t stream) {
  const char* op = "conv2d_backward_weight";
  const Geom g = make_geom(ConvPass::BackwardWeight, x, dw, dy, cfg);
  const ConvPlan plan = plan_geom(ConvPass::BackwardWeight, g, x.dtype, cfg.allow_tf32);
  if (plan.variant == "interim") refuse(op, plan);
  check_workspace(op, workspace, plan, x.dtype);
  if (dw.numel() == 0) return;
  const auto st = reinterpret_cast<conv::Stream>(stream);
  float* ws = static_cast<float*>(workspace->data);

  if (plan.variant == "depthwise") {
    conv::Depthwise d = depthwise_geom(g);
    d.x = x.data;
    d.dy = dy.data;
    d.ws = ws;
    d.splits = plan_depthwise_split(g);
    conv::launch_depthwise_backward_weight(d, x.dtype, st);
    conv::launch_reduce_splits(ws, dw.data, dw.numel(), d.splits, x.dtype, st);
    return;
  }

  const Core core = core_for(x.dtype, cfg.allow_tf32);
  const WgradSplit split = plan_wgrad_split(g, core);
  conv::WgradGemm p;
  p.dy = dy.data;
  p.dy_img = g.oc * g.oh * g.ow;
  p.dy_group = g.ocg() * g.oh * g.ow;
  p.P = static_cast<int>(g.oh * g.ow);
  p.OW = static_cast<int>(g.ow);
  p.x = x.data;
  p.x_img = g.c * g.h * g.w;
  p.x_group = g.cg() * g.h * g.w;
  p.H = static_cast<int>(g.h);
  p.W = static_cast<int>(g.w);
  p.sh = static_cast<int>(g.sh);
  p.sw = static_cast<int>(g.sw);
  p.ph = static_cast<int>(g.ph);
  p.pw = static_cast<int>(g.pw);
  p.dh = static_cast<int>(g.dh);
  p.dw = static_cast<int>(g.dw);
  p.KH = static_cast<int>(g.kh);
  p.KW = static_cast<int>(g.kw);
  p.ws = ws;
  p.M = static_cast<int>(g.ocg());
  p.N = static_cast<int>(g.cg() * g.taps());
  p.R = static_cast<int>(g.n * g.oh * g.ow);
  p.groups = static_cast<int>(g.groups);
  p.splits = split.splits;
  p.tiles_per_split = split.tiles_per_split;
  conv::launch_wgrad_gemm(p, x.dtype, core, st);
  conv::launch_reduce_splits(ws, dw.data, dw.numel(), split.splits, x.dtype, st);
}

}  // namespace pydl::cuda
