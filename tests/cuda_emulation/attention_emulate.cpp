// Host emulation of pydl's fused CUDA attention: runs the launchers of kernels/attention/
// (attention_forward, attention_backward: dsum, the main kernels, the dQ conversion) with
// every kernel executed thread by thread by attention_emu.h, on sources rewritten by
// attention_emu_sources.py, and compares every result with a direct float64 attention.
//
// Each case runs float32 (the CUDA-core kernels), float16 and bfloat16 (the tensor-core
// kernels): the output, the log-sum-exp and the three input gradients, with inputs laid out
// with padded rows, gaps between batch entries and misaligned starts (the gaps filled with
// NaN), outputs and workspaces filled with NaN before each call, and the inputs checked to be
// left as they were. Every tensor is an allocation of exactly the bytes it spans, so with
// AddressSanitizer any access outside a tensor fails the run
// (tests/test_attention_kernel_emulation.py builds it so):
//
//   python tests/cuda_emulation/attention_emu_sources.py GEN
//   g++ -std=c++17 -O1 -g -IGEN -Itests/cuda_emulation -I. -fsanitize=address,undefined
//       tests/cuda_emulation/attention_emulate.cpp tests/cuda_emulation/attention_emu_device.cpp
//       GEN/kernels/attention/*.cpp csrc/tensor_view.cpp -o attention_emulate
//   ./attention_emulate                  # the listed cases
//   ./attention_emulate random 40        # 40 random ones instead
//   options: --schedule thread|warp|warp-reversed  --copies wait|issue  --every K (every K-th
//            case)  --seed N (of the inputs and the random cases)
//
// Tolerance, as tests/test_cuda_attention_fused.py's: |err| <= 2 eps |ref| +
// 4 w eps max(max |ref|, 1), eps the input type's (P and dS are rounded to it before their
// products), w = max(sqrt(E), E |scale|) widened here to sqrt(Ev) and at least 2 (see width());
// the three gradients share one magnitude, the largest of them. The log-sum-exp:
// 8 w eps(float32), relative and absolute.
// Prints one line per failure and a summary; the exit status is 0 when every case matches.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention_emu.h"
#include "kernels/attention/attention.h"

namespace {

using pydl::DType;

// ---- tensors ---------------------------------------------------------------------------------

// How an input (B, R, C) lies in memory: row stride C + row_pad, batch stride
// R (C + row_pad) + batch_pad, first element `offset` elements past a 16-byte boundary.
struct Layout {
  const char* name;
  int64_t row_pad, batch_pad, offset;
};
const Layout kContiguous{"contiguous", 0, 0, 0};
const Layout kAligned{"padded", 8, 16, 0};     // strides ≠ width, every row 16-byte aligned
const Layout kUnaligned{"unaligned", 3, 1, 1};  // the element-wise copy path

double eps_of(DType dt) {
  return std::ldexp(1.0, dt == DType::Float16 ? -10 : dt == DType::BFloat16 ? -7 : -23);
}
const char* name_of(DType dt) {
  return dt == DType::Float16 ? "float16" : dt == DType::BFloat16 ? "bfloat16" : "float32";
}

// Exactly `bytes` of host memory, 16-byte aligned, so AddressSanitizer sees any overrun.
struct Buf {
  unsigned char* p = nullptr;
  size_t bytes = 0;
  explicit Buf(size_t b = 0) : bytes(b) {
    if (posix_memalign(reinterpret_cast<void**>(&p), 16, b ? b : 1) != 0) std::abort();
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { std::free(p); }
  void poison() { std::memset(p, 0xFF, bytes); }  // NaN in every float format
};

// A (B, R, C) tensor of dtype dt laid out by `lay`; `val` holds its values as doubles.
struct Tensor {
  DType dt;
  int64_t B, R, C, rs, bs, off;
  Buf buf;
  std::vector<double> val;
  Tensor(DType d, int64_t b, int64_t r, int64_t c, const Layout& lay = kContiguous)
      : dt(d), B(b), R(r), C(c), rs(c + lay.row_pad), bs(r * (c + lay.row_pad) + lay.batch_pad), off(lay.offset),
        buf(span(b, r, c, lay) * pydl::dtype_size(d)), val(static_cast<size_t>(b * r * c), 0.0) {
    buf.poison();  // the gaps stay NaN
  }
  static size_t span(int64_t b, int64_t r, int64_t c, const Layout& lay) {
    if (b == 0 || r == 0 || c == 0) return 0;
    const int64_t rs = c + lay.row_pad, bs = r * rs + lay.batch_pad;
    return static_cast<size_t>(lay.offset + (b - 1) * bs + (r - 1) * rs + c);
  }
  int64_t at(int64_t b, int64_t r, int64_t c) const { return off + b * bs + r * rs + c; }
  size_t flat(int64_t b, int64_t r, int64_t c) const { return static_cast<size_t>((b * R + r) * C + c); }
  void* first() const { return buf.p + off * pydl::dtype_size(dt); }
  void set(int64_t b, int64_t r, int64_t c, float f) {
    const int64_t i = at(b, r, c);
    if (dt == DType::Float16) {
      const uint16_t h = emu::float_to_half(f);
      std::memcpy(buf.p + 2 * i, &h, 2);
    } else if (dt == DType::BFloat16) {
      const uint16_t h = emu::float_to_bf16(f);
      std::memcpy(buf.p + 2 * i, &h, 2);
    } else {
      std::memcpy(buf.p + 4 * i, &f, 4);
    }
    val[flat(b, r, c)] = get(b, r, c);
  }
  double get(int64_t b, int64_t r, int64_t c) const {
    const int64_t i = at(b, r, c);
    if (dt == DType::Float32) {
      float f;
      std::memcpy(&f, buf.p + 4 * i, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, buf.p + 2 * i, 2);
    return dt == DType::Float16 ? emu::half_to_float(h) : emu::bf16_to_float(h);
  }
  void randomize(std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) set(b, r, c, nd(rng));
  }
  void copy_values_from(const Tensor& o) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) set(b, r, c, static_cast<float>(o.get(b, r, c)));
  }
  std::vector<unsigned char> bytes() const { return std::vector<unsigned char>(buf.p, buf.p + buf.bytes); }
};

// ---- masks -------------------------------------------------------------------------------------

// The additive float32 mask as the kernels read it: (B1, H2, L, S) through strides s0..s3,
// zero where it is broadcast.
enum class MaskKind { None, BoolLS, Full, PerHead, PerBatch, Keys, Rows, PaddedRows, AllHidden };
const char* name_of(MaskKind k) {
  switch (k) {
    case MaskKind::None: return "none";
    case MaskKind::BoolLS: return "bool (L, S)";
    case MaskKind::Full: return "(B1, H2, L, S)";
    case MaskKind::PerHead: return "(H2, L, S)";
    case MaskKind::PerBatch: return "(B1, 1, L, S)";
    case MaskKind::Keys: return "(S,)";
    case MaskKind::Rows: return "(L, 1)";
    case MaskKind::PaddedRows: return "(B1, H2, L, S) padded rows";
    case MaskKind::AllHidden: return "all hidden";
  }
  return "?";
}

struct Mask {
  int64_t h2 = 1, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  Buf buf;
  explicit Mask(size_t n) : buf(n * 4) { buf.poison(); }
  const float* data() const { return reinterpret_cast<const float*>(buf.p); }
  double at(int64_t b, int64_t i, int64_t j) const {
    return data()[(b / h2) * s0 + (b % h2) * s1 + i * s2 + j * s3];
  }
};

Mask* make_mask(MaskKind kind, int64_t b1, int64_t h2, int64_t L, int64_t S, std::mt19937& rng) {
  int64_t d0 = b1, d1 = h2, d2 = L, d3 = S, pad = 0;  // the stored shape (1 where broadcast)
  switch (kind) {
    case MaskKind::None: return nullptr;
    case MaskKind::BoolLS: case MaskKind::AllHidden: d0 = d1 = 1; break;
    case MaskKind::PerHead: d0 = 1; break;
    case MaskKind::PerBatch: d1 = 1; break;
    case MaskKind::Keys: d0 = d1 = d2 = 1; break;
    case MaskKind::Rows: d0 = d1 = 1; d3 = 1; break;
    case MaskKind::PaddedRows: pad = 3; break;
    case MaskKind::Full: break;
  }
  const int64_t rs = d3 + pad;
  auto* m = new Mask(static_cast<size_t>(std::max<int64_t>(1, d0 * d1 * d2 * rs)));
  m->h2 = h2;
  m->s3 = d3 > 1 ? 1 : 0;
  m->s2 = d2 > 1 ? rs : 0;
  m->s1 = d1 > 1 ? d2 * rs : 0;
  m->s0 = d0 > 1 ? d1 * d2 * rs : 0;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  float* v = reinterpret_cast<float*>(m->buf.p);
  for (int64_t a = 0; a < d0; ++a)
    for (int64_t c = 0; c < d1; ++c)
      for (int64_t i = 0; i < d2; ++i)
        for (int64_t j = 0; j < d3; ++j) {
          float x;
          if (kind == MaskKind::AllHidden) x = -INFINITY;
          else if (kind == MaskKind::BoolLS) x = (ud(rng) > 0.3f && i != 5) ? 0.0f : -INFINITY;  // row 5 sees nothing
          else x = (i == 7 && d2 > 7) || (j == 3 && d3 > 3) ? -INFINITY : nd(rng);  // row 7 and key 3 hidden
          v[((a * d1 + c) * d2 + i) * rs + j] = x;
        }
  return m;
}

// ---- the float64 reference -----------------------------------------------------------------------

struct Problem {
  int64_t B, L, S, E, Ev;
  double scale;
  bool causal;
  const Mask* mask;
};

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

Reference reference(const Problem& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout) {
  Reference r;
  r.out.assign(p.B * p.L * p.Ev, 0.0);
  r.lse.assign(p.B * p.L, -INFINITY);
  r.dq.assign(p.B * p.L * p.E, 0.0);
  r.dk.assign(p.B * p.S * p.E, 0.0);
  r.dv.assign(p.B * p.S * p.Ev, 0.0);
  std::vector<double> x(p.S), pr(p.S), dp(p.S);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t i = 0; i < p.L; ++i) {
      double m = -INFINITY;
      for (int64_t j = 0; j < p.S; ++j) {
        double s = 0.0;
        for (int64_t e = 0; e < p.E; ++e) s += q.val[q.flat(b, i, e)] * k.val[k.flat(b, j, e)];
        s *= p.scale;
        if (p.mask) s += p.mask->at(b, i, j);
        if (p.causal && j > i) s = -INFINITY;
        x[j] = s;
        m = std::max(m, s);
      }
      if (m == -INFINITY) continue;  // no visible key: zero output and gradients, lse -inf
      double sum = 0.0;
      for (int64_t j = 0; j < p.S; ++j) sum += (pr[j] = std::exp(x[j] - m));
      for (int64_t j = 0; j < p.S; ++j) pr[j] /= sum;
      r.lse[b * p.L + i] = m + std::log(sum);
      for (int64_t j = 0; j < p.S; ++j)
        for (int64_t e = 0; e < p.Ev; ++e) r.out[(b * p.L + i) * p.Ev + e] += pr[j] * v.val[v.flat(b, j, e)];
      double d = 0.0;
      for (int64_t j = 0; j < p.S; ++j) {
        double g = 0.0;
        for (int64_t e = 0; e < p.Ev; ++e) g += dout.val[dout.flat(b, i, e)] * v.val[v.flat(b, j, e)];
        dp[j] = g;
        d += pr[j] * g;
      }
      for (int64_t j = 0; j < p.S; ++j) {
        const double ds = pr[j] * (dp[j] - d);
        for (int64_t e = 0; e < p.E; ++e) {
          r.dq[(b * p.L + i) * p.E + e] += p.scale * ds * k.val[k.flat(b, j, e)];
          r.dk[(b * p.S + j) * p.E + e] += p.scale * ds * q.val[q.flat(b, i, e)];
        }
        for (int64_t e = 0; e < p.Ev; ++e) r.dv[(b * p.S + j) * p.Ev + e] += pr[j] * dout.val[dout.flat(b, i, e)];
      }
    }
  return r;
}

// ---- comparison ----------------------------------------------------------------------------------

int g_failures = 0;
double g_worst[5] = {0, 0, 0, 0, 0};  // out, lse, dq, dk, dv: the largest error / bound seen
const char* kQuantity[5] = {"out", "lse", "dq", "dk", "dv"};

void report(const std::string& label, const std::string& what) {
  ++g_failures;
  std::printf("FAIL %s: %s\n", label.c_str(), what.c_str());
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// got: a contiguous (B, R, C) result of dtype dt.
void compare(int which, const std::string& label, const Tensor& got, const std::vector<double>& ref, double w,
             double mag) {
  const double eps = eps_of(got.dt);
  double worst = 0.0;
  size_t where = 0;
  for (int64_t b = 0; b < got.B; ++b)
    for (int64_t r = 0; r < got.R; ++r)
      for (int64_t c = 0; c < got.C; ++c) {
        const size_t i = got.flat(b, r, c);
        const double g = got.get(b, r, c);
        const double bound = 2 * eps * std::fabs(ref[i]) + 4 * w * eps * std::max(mag, 1.0);
        const double ratio = std::isnan(g) ? INFINITY : std::fabs(g - ref[i]) / bound;
        if (ratio > worst) {
          worst = ratio;
          where = i;
        }
      }
  g_worst[which] = std::max(g_worst[which], std::isinf(worst) ? 0.0 : worst);
  if (worst > 1.0) {
    const int64_t b = where / (got.R * got.C), r = where / got.C % got.R, c = where % got.C;
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%s at (%ld, %ld, %ld): got %.8g, expected %.8g (error / bound %.3g)",
                  kQuantity[which], static_cast<long>(b), static_cast<long>(r), static_cast<long>(c),
                  got.get(b, r, c), ref[where], worst);
    report(label, buf);
  }
}

void compare_lse(const std::string& label, const float* got, const std::vector<double>& ref, double w) {
  const double tol = 8 * w * std::ldexp(1.0, -23);
  double worst = 0.0;
  size_t where = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double ratio;
    if (std::isinf(ref[i])) ratio = (std::isinf(got[i]) && got[i] < 0) ? 0.0 : INFINITY;
    else ratio = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - ref[i]) / (tol + tol * std::fabs(ref[i]));
    if (ratio > worst) {
      worst = ratio;
      where = i;
    }
  }
  g_worst[1] = std::max(g_worst[1], std::isinf(worst) ? 0.0 : worst);
  if (worst > 1.0) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "lse at %zu: got %.9g, expected %.9g", where, got[where], ref[where]);
    report(label, buf);
  }
}

// The error growth of the products: the dot products are E and Ev long; at the tiniest head
// dims the sums over keys (softmax, P V, dS K) take over, hence the floor of 2.
double width(int64_t E, int64_t Ev, double scale) {
  return std::max({std::sqrt(static_cast<double>(std::max(E, Ev))), 2.0, E * std::fabs(scale)});
}

// ---- one case -----------------------------------------------------------------------------------

struct Case {
  int64_t b1, h2, L, S, E, Ev;
  bool causal;
  MaskKind mask;
  const Layout* lay[5];  // q, k, v, dout, and the forward's output as the backward reads it
  double scale;          // NaN: 1 / sqrt(E)
  unsigned dtypes;       // bit 0 float32, 1 float16, 2 bfloat16
};

CUstream_st* const kStream = reinterpret_cast<CUstream_st*>(0x5eed);
long g_cases = 0;

void run(const Case& c, DType dt, std::mt19937& rng) {
  const int64_t B = c.b1 * c.h2;
  const double scale = std::isnan(c.scale) ? 1.0 / std::sqrt(static_cast<double>(c.E)) : c.scale;
  char buf[320];
  std::snprintf(buf, sizeof(buf), "%s B=%ldx%ld L=%ld S=%ld E=%ld Ev=%ld%s mask=%s scale=%g layouts=%s,%s,%s,%s,%s",
                name_of(dt), static_cast<long>(c.b1), static_cast<long>(c.h2), static_cast<long>(c.L),
                static_cast<long>(c.S), static_cast<long>(c.E), static_cast<long>(c.Ev), c.causal ? " causal" : "",
                name_of(c.mask), scale, c.lay[0]->name, c.lay[1]->name, c.lay[2]->name, c.lay[3]->name,
                c.lay[4]->name);
  const std::string label(buf);
  emu::context() = label;
  ++g_cases;

  Tensor q(dt, B, c.L, c.E, *c.lay[0]), k(dt, B, c.S, c.E, *c.lay[1]), v(dt, B, c.S, c.Ev, *c.lay[2]),
      dout(dt, B, c.L, c.Ev, *c.lay[3]);
  q.randomize(rng);
  k.randomize(rng);
  v.randomize(rng);
  dout.randomize(rng);
  std::unique_ptr<Mask> mask(make_mask(c.mask, c.b1, c.h2, c.L, c.S, rng));
  const Problem p{B, c.L, c.S, c.E, c.Ev, scale, c.causal, mask.get()};
  const Reference ref = reference(p, q, k, v, dout);
  const double w = width(c.E, c.Ev, scale);
  const auto before = std::vector<std::vector<unsigned char>>{q.bytes(), k.bytes(), v.bytes(), dout.bytes()};

  pydl::cuda::AttentionArgs a;
  a.dtype = dt;
  a.B = B;
  a.L = c.L;
  a.S = c.S;
  a.E = c.E;
  a.Ev = c.Ev;
  a.q = q.first();
  a.q_bs = q.bs;
  a.q_rs = q.rs;
  a.k = k.first();
  a.k_bs = k.bs;
  a.k_rs = k.rs;
  a.v = v.first();
  a.v_bs = v.bs;
  a.v_rs = v.rs;
  if (mask) {
    a.mask = mask->data();
    a.mask_h2 = c.h2;
    a.mask_s0 = mask->s0;
    a.mask_s1 = mask->s1;
    a.mask_s2 = mask->s2;
    a.mask_s3 = mask->s3;
  }
  a.scale = scale;
  a.causal = c.causal;
  emu::stats().streams.clear();
  try {
    Tensor out(dt, B, c.L, c.Ev);
    Buf lse(static_cast<size_t>(B * c.L) * 4);
    lse.poison();
    a.out = out.first();
    a.out_bs = c.L * c.Ev;
    a.out_rs = c.Ev;
    a.lse = reinterpret_cast<float*>(lse.p);
    pydl::cuda::attention_forward(a, kStream);
    compare(0, label, out, ref.out, w, max_abs(ref.out));
    compare_lse(label, a.lse, ref.lse, w);

    // The backward reads the forward's output through its own layout.
    Tensor o2(dt, B, c.L, c.Ev, *c.lay[4]);
    o2.copy_values_from(out);
    Buf dsum(static_cast<size_t>(B * c.L) * 4), acc(dt == DType::Float32 ? 0 : static_cast<size_t>(B * c.L * c.E) * 4);
    dsum.poison();
    Tensor dq(dt, B, c.L, c.E), dk(dt, B, c.S, c.E), dv(dt, B, c.S, c.Ev);
    std::memset(acc.p, 0, acc.bytes);
    a.out = o2.first();
    a.out_bs = o2.bs;
    a.out_rs = o2.rs;
    a.dout = dout.first();
    a.dout_bs = dout.bs;
    a.dout_rs = dout.rs;
    a.dsum = reinterpret_cast<float*>(dsum.p);
    if (dt == DType::Float32) {  // dQ is summed straight into the (zero-filled) result
      std::memset(dq.buf.p, 0, dq.buf.bytes);
      a.dq_acc = reinterpret_cast<float*>(dq.first());
      a.dq = nullptr;
    } else {
      a.dq_acc = reinterpret_cast<float*>(acc.p);
      a.dq = dq.first();
    }
    a.dk = dk.first();
    a.dv = dv.first();
    pydl::cuda::attention_backward(a, kStream);
    const double gmag = std::max({max_abs(ref.dq), max_abs(ref.dk), max_abs(ref.dv)});
    compare(2, label, dq, ref.dq, w, gmag);
    compare(3, label, dk, ref.dk, w, gmag);
    compare(4, label, dv, ref.dv, w, gmag);
  } catch (const std::exception& e) {
    report(label, std::string("exception: ") + e.what());
  }
  const auto after = std::vector<std::vector<unsigned char>>{q.bytes(), k.bytes(), v.bytes(), dout.bytes()};
  if (before != after) report(label, "an input was written to");
  for (cudaStream_t s : emu::stats().streams)
    if (s != kStream) report(label, "a kernel was launched on another stream than the caller's");
}

// ---- the cases ----------------------------------------------------------------------------------

constexpr unsigned kAll = 7, kF32 = 1, kHalf = 2, kBf16 = 4;
const Layout* const Cn = &kContiguous;
const Layout* const Al = &kAligned;
const Layout* const Un = &kUnaligned;

Case plain(int64_t b, int64_t L, int64_t S, int64_t E, int64_t Ev, bool causal, unsigned dtypes = kAll) {
  return Case{1, b, L, S, E, Ev, causal, MaskKind::None, {Cn, Cn, Cn, Cn, Cn}, NAN, dtypes};
}

std::vector<Case> listed() {
  std::vector<Case> cs;
  // Head dims in every padded width (32, 64, 128, 256), multiples of 8 and not; L, S prime.
  const int64_t dims[] = {1, 7, 16, 24, 33, 48, 64, 80, 100, 128, 130, 200, 256};
  for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); ++i)
    cs.push_back(plain(2, 37, 43, dims[i], dims[i], i % 2 == 1));
  // E != Ev, in both directions, across widths.
  cs.push_back(plain(1, 70, 33, 20, 72, false));
  cs.push_back(plain(1, 33, 130, 130, 7, true));
  cs.push_back(plain(2, 29, 31, 64, 1, false));
  cs.push_back(plain(1, 41, 23, 3, 32, true));
  cs.push_back(plain(1, 19, 27, 256, 100, false));
  // Lengths: 1, tile multiples and one past, many tiles, L != S both ways under the causal mask.
  cs.push_back(plain(1, 1, 1, 16, 16, false));
  cs.push_back(plain(2, 1, 67, 64, 64, true));
  cs.push_back(plain(2, 67, 1, 64, 64, true));
  cs.push_back(plain(1, 64, 128, 64, 64, true));
  cs.push_back(plain(1, 65, 129, 32, 32, true));
  cs.push_back(plain(1, 131, 67, 64, 48, true));
  cs.push_back(plain(1, 67, 131, 64, 64, true));
  cs.push_back(plain(1, 97, 97, 256, 256, true, kHalf | kF32));
  cs.push_back(plain(1, 63, 127, 128, 96, true, kHalf | kBf16));
  cs.push_back(plain(1, 33, 300, 64, 64, true, kHalf | kF32));  // key tiles no row sees
  cs.push_back(plain(2, 150, 263, 64, 64, true, kHalf | kF32));  // many tiles both ways
  cs.push_back(plain(1, 129, 200, 128, 120, false, kBf16 | kF32));
  cs.push_back(plain(1, 70, 101, 256, 256, false, kAll));
  cs.push_back(plain(2, 0, 5, 16, 16, false));                   // no queries: dK, dV are zero
  cs.push_back(plain(2, 6, 0, 16, 16, true));                    // no keys: out zero, lse -inf
  // Masks: every broadcast pattern over (2, 3) heads, rows and keys nobody sees.
  const MaskKind kinds[] = {MaskKind::BoolLS, MaskKind::Full,       MaskKind::PerHead,  MaskKind::PerBatch,
                            MaskKind::Keys,   MaskKind::PaddedRows, MaskKind::Rows,     MaskKind::AllHidden};
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); ++i)
    cs.push_back(Case{2, 3, 53, 71, 48, 40, i % 2 == 0, kinds[i], {Cn, Cn, Cn, Cn, Cn}, NAN,
                      i % 3 == 2 ? kAll : kF32 | (i % 2 ? kHalf : kBf16)});
  // Layouts: padded rows (16-byte aligned or not), batch gaps, misaligned starts.
  cs.push_back(Case{1, 2, 45, 61, 24, 24, true, MaskKind::BoolLS, {Un, Un, Un, Un, Un}, NAN, kAll});
  cs.push_back(Case{1, 2, 45, 61, 100, 100, true, MaskKind::None, {Al, Al, Al, Al, Al}, NAN, kAll});
  cs.push_back(Case{1, 2, 45, 61, 64, 40, false, MaskKind::Full, {Un, Al, Cn, Al, Un}, NAN, kAll});
  cs.push_back(Case{1, 2, 37, 29, 7, 130, false, MaskKind::None, {Al, Un, Al, Un, Al}, NAN, kHalf | kF32});
  // Scales: zero, large, negative.
  cs.push_back(Case{1, 1, 40, 40, 64, 64, false, MaskKind::None, {Cn, Cn, Cn, Cn, Cn}, 0.0, kAll});
  cs.push_back(Case{1, 1, 50, 60, 64, 64, true, MaskKind::None, {Cn, Cn, Cn, Cn, Cn}, 3.0, kAll});
  cs.push_back(Case{1, 2, 30, 35, 16, 16, false, MaskKind::Keys, {Cn, Cn, Cn, Cn, Cn}, -0.7, kAll});
  return cs;
}

std::vector<Case> random_cases(int n, std::mt19937& rng) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const Layout* lays[] = {Cn, Cn, Al, Un};
  std::vector<Case> cs;
  while (static_cast<int>(cs.size()) < n) {
    Case c{};
    c.b1 = pick(1, 2);
    c.h2 = pick(1, 2);
    const int64_t longest = pick(0, 4) == 0 ? 200 : 80;
    c.L = pick(1, longest);
    c.S = pick(1, longest);
    const int64_t widths[] = {8, 24, 40, 72, 136, 256};
    const int64_t wmax = widths[pick(0, 5)];
    c.E = pick(1, wmax);
    c.Ev = pick(1, wmax);
    c.causal = pick(0, 1);
    c.mask = static_cast<MaskKind>(pick(0, 7));
    for (auto& l : c.lay) l = lays[pick(0, 3)];
    c.scale = pick(0, 3) == 0 ? 0.1 * pick(-20, 20) : NAN;
    c.dtypes = 1u << pick(0, 2);
    cs.push_back(c);
  }
  return cs;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Case> cases;
  unsigned seed = 20240601;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--seed") seed = static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
  std::mt19937 rng(seed);
  int every = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "random") {
      cases = random_cases(std::atoi(value().c_str()), rng);
    } else if (arg == "--schedule") {
      const std::string s = value();
      emu::device().schedule = s == "warp" ? emu::Schedule::WarpByWarp
                               : s == "warp-reversed" ? emu::Schedule::WarpByWarpReversed
                                                      : emu::Schedule::ThreadByThread;
    } else if (arg == "--copies") {
      emu::device().landing = value() == "issue" ? emu::CopyLanding::AtIssue : emu::CopyLanding::AtWait;
    } else if (arg == "--seed") {
      value();  // read above, before the random cases are drawn
    } else if (arg == "--every") {
      every = std::max(1, std::atoi(value().c_str()));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  if (cases.empty()) cases = listed();
  for (size_t i = 0; i < cases.size(); i += every)
    for (int d = 0; d < 3; ++d)
      if (cases[i].dtypes & (1u << d))
        run(cases[i], d == 0 ? DType::Float32 : d == 1 ? DType::Float16 : DType::BFloat16, rng);
  std::printf("worst error / bound:");
  for (int i = 0; i < 5; ++i) std::printf(" %s %.3f", kQuantity[i], g_worst[i]);
  std::printf("\n%ld cases, %ld launches, %ld blocks, %d failures\n", g_cases, emu::stats().launches,
              emu::stats().blocks, g_failures);
  return g_failures ? 1 : 0;
}
