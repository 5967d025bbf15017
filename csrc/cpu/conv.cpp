// conv2d on the CPU: forward, gradient of the input, gradient of the weight (NCHW, groups,
// stride, padding, dilation), all as implicit GEMMs on the packed micro-kernels of
// csrc/cpu/gemm.h; no im2col matrix is built (but for the input gradient of layers with fewer
// input channels per group than a register tile has rows, such as an RGB stem, which goes
// through blocks of columns and col2im).
//
// Forward: C (OC/g, N*OH*OW) = W (OC/g, C/g*KH*KW) @ B (rows (channel, tap), columns output
// pixels, across images so that small late-stage images still fill the register tile), each
// finished tile scattered into the NCHW output. The weights are A as they are (row-major),
// packed only when OC/g is not a whole number of register-tile rows. The source is copied
// once into a zero-padded buffer split by stride phase, so that every tap reads it at unit
// stride from a fixed offset with no bounds to test; B's micro-panels are gathered from that
// copy. Direct mode: where an image's rows are wide, the micro-kernel reads B's rows in place
// (NR consecutive elements at a per-tap offset) with no gather at all; the columns then run
// over the padded width, and the padding columns (at most an eighth) are computed and
// dropped.
// Input gradient: the same gather GEMM run on dy, once per stride phase (ih % sh, iw % sw):
// within a phase only the taps with (phase + pad - tap * dil) % stride == 0 reach a pixel,
// at a fixed offset, so each phase is a stride-1 gather with a sub-kernel of the transposed
// weights, and no multiply is spent on the zeros a strided convolution's gradient would
// otherwise insert. Phases that no tap reaches are zero. The micro-kernel reads that
// sub-kernel from w as it is (rows C/g apart by KH*KW, columns through an offset table);
// only when C/g is not a whole number of register-tile rows are the phases packed, all in
// one pass over w.
// Weight gradient: dW^T (C/g*KH*KW, OC/g) = cols (taps, pixels) @ dy^T, reducing over every
// pixel of every image; work items own slices of taps (and, when there are few, of pixels,
// with per-item partial sums added at the end).
// OpenMP runs over (phase, group, column block, row block) work items.
#include <algorithm>
#include <vector>

#include <omp.h>

#include "csrc/cpu/conv_winograd.h"
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
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// A run of consecutive GEMM columns inside one row of one image's pixel grid.
struct Run {
  int64_t n, u, v, q, len;  // image, row, first column, offset in the panel, length
};

// Splits columns [j, j + nr) of a (images x U x V) grid into row runs; returns their count.
inline int64_t runs_of(int64_t j, int64_t nr, int64_t U, int64_t V, Run* out) {
  int64_t cnt = 0, q = 0;
  const int64_t uv = U * V;
  int64_t n = j / uv, u = (j % uv) / V, v = j % V;
  while (q < nr) {
    const int64_t len = std::min(V - v, nr - q);
    out[cnt++] = {n, u, v, q, len};
    q += len;
    v = 0;
    if (++u == U) u = 0, ++n;
  }
  return cnt;
}

// d[q] = row[w0 + q * s] for q < len where 0 <= w0 + q * s < width, zero elsewhere.
template <typename T>
__attribute__((always_inline)) inline void copy_row(const T* row, int64_t w0, int64_t s, int64_t width, int64_t len, T* d) {
  int64_t qa = w0 >= 0 ? 0 : (-w0 + s - 1) / s;
  int64_t qb = w0 >= width ? 0 : (width - w0 + s - 1) / s;
  qa = std::min(qa, len);
  qb = std::max(qa, std::min(qb, len));
  for (int64_t q = 0; q < qa; ++q) d[q] = T(0);
  if (s == 1) {
    const T* r = row + w0;
    for (int64_t q = qa; q < qb; ++q) d[q] = r[q];
  } else if (s == 2) {  // the common stride, as a constant: the loop vectorizes
    const T* r = row + w0;
    for (int64_t q = qa; q < qb; ++q) d[q] = r[2 * q];
  } else {
    for (int64_t q = qa; q < qb; ++q) d[q] = row[w0 + q * s];
  }
  for (int64_t q = qb; q < len; ++q) d[q] = T(0);
}

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols, in 16 x 16 blocks: each
// block's source lines stay in L1 while dst is written in contiguous runs, a cache line at a
// time (column by column, every store would land on a different line).
template <typename T>
void transpose(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  constexpr int64_t B = 16;
  for (int64_t j0 = 0; j0 < cols; j0 += B)
    for (int64_t i0 = 0; i0 < rows; i0 += B) {
      const int64_t i1 = std::min(rows, i0 + B), j1 = std::min(cols, j0 + B);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ldd + i] = src[i * lds + j];
    }
}

// One gather GEMM: C (M, N) = A (M, K) @ B (K, N) with K = Cs * |offh| * |offw| and
// B[(c, th, tw)][(n, u, v)] = src[n, c, u * su + offh[th], v * sv + offw[tw]] (zero outside
// the Hs x Ws plane); C[m][(n, u, v)] goes to dst[n, m, u * du + a, v * dv + b] (+ bias[m]).
template <typename T>
struct Gather {
  const T* src = nullptr;
  int64_t s_img = 0, s_ch = 0, Hs = 0, Ws = 0, su = 1, sv = 1;
  std::vector<int64_t> offh, offw;
  int64_t U = 0, V = 0;
  T* dst = nullptr;
  int64_t d_img = 0, d_ch = 0, Wd = 0, du = 1, dv = 1, a = 0, b = 0;
  const T* bias = nullptr;
  int64_t M = 0, K = 0, N = 0;
  // A packed by pack_a or, when lda > 0, read in place: rows lda apart, column k at k or, given
  // acol, at acol[k] (Kernel::micro)
  const T* apack = nullptr;
  int64_t lda = 0;
  const int64_t* acol = nullptr;
  // Direct mode (unit source strides): B read in place from a zero-padded copy of the source,
  // xp (images x channels x Hp x Wp). An image's GEMM columns are then the Hp x Wp grid's
  // first U rows, all Wp wide (t = u * Wp + v), so a panel's row k is NR consecutive elements
  // at xp + koff[k] + t; the columns with v >= V are computed and dropped.
  // Jobs outside direct mode read the same padded copy through pack_b, each panel row an
  // indexed gather at the tap's offset koff[k].
  bool direct = false;
  const T* xp = nullptr;
  int64_t xp_img = 0, Hp = 0, Wp = 0, P0h = 0, P0w = 0;
  std::vector<int64_t> koff;
  // The copy is made by its owner (jobs of one source share it): the job index, and, in the
  // owner, the stride phases copied and the channels.
  int64_t owner = -1, cs = 0;
  std::vector<int64_t> pha, phb;

  // Channels [c0, c1) of image n of the copy this job owns: cs x |pha| x |phb| planes of
  // Hp x Wp from img (the image's start).
  void copy_image(int64_t n, int64_t c0, int64_t c1, T* img) const {
    const int64_t na = pha.size(), nb = phb.size(), plane = Hp * Wp;
    for (int64_t c = c0; c < c1; ++c) {
      const T* s = src + n * s_img + c * s_ch;
      for (int64_t ia = 0; ia < na; ++ia)
        for (int64_t ib = 0; ib < nb; ++ib) {
          T* dst = img + ((c * na + ia) * nb + ib) * plane;
          for (int64_t r = 0; r < Hp; ++r) {
            T* d = dst + r * Wp;
            const int64_t sr = r * su + pha[ia] - P0h;
            if (sr < 0 || sr >= Hs) {
              std::fill(d, d + Wp, T(0));
              continue;
            }
            copy_row(s + sr * Ws, phb[ib] - P0w, sv, Ws, Wp, d);
          }
        }
    }
  }

  // A B panel outside direct mode, from the padded copy: column (n, u, v) of row k at
  // xp + koff[k] + n * xp_img + u * Wp + v, with no bounds to test (the copy holds the zeros
  // of the padding). Each row run (at most V long: 7 in a 7 x 7 image) is copied in whole
  // chunks of PACK_CHUNK elements; a chunk's tail past its run is overwritten by the next run,
  // or by the next panel row, written after it: the scratch needs PACK_CHUNK elements of slack
  // after its last panel, and the copy as many after its last image (slack()).
  static constexpr int64_t PACK_CHUNK = 8;
  // Zeros kept after a copy's last image: direct-mode panels read up to NR + Wp past its end,
  // pack_b's chunks up to PACK_CHUNK.
  int64_t slack(int64_t nr) const { return std::max(nr, PACK_CHUNK) + Wp; }
  template <int NR>
  __attribute__((always_inline)) void pack_b(int64_t k0, int64_t kc, int64_t j, int64_t nr, T* dst_panel) const {
    Run runs[NR];
    const int64_t nrun = runs_of(j, nr, U, V, runs);
    int64_t at[NR];
    for (int64_t r = 0; r < nrun; ++r) at[r] = runs[r].n * xp_img + runs[r].u * Wp + runs[r].v;
    const int64_t* ko = koff.data() + k0;
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = xp + ko[k];
      T* d = dst_panel + k * NR;
      for (int64_t r = 0; r < nrun; ++r)
        for (int64_t o = 0; o < runs[r].len; o += PACK_CHUNK)
          std::memcpy(d + runs[r].q + o, s + at[r] + o, PACK_CHUNK * sizeof(T));
      for (int64_t q = nr; q < NR; ++q) d[q] = T(0);
    }
  }

  template <int NR>
  __attribute__((always_inline)) void store(int64_t i, int64_t j, int64_t mr, int64_t nr, const T* tile) const {
    Run runs[NR];
    const int64_t nrun = runs_of(j, nr, U, V, runs);
    for (int64_t r = 0; r < mr; ++r) {
      const T* t = tile + r * NR;
      T* plane = dst + (i + r) * d_ch;
      const T add = bias ? bias[i + r] : T(0);
      for (int64_t x = 0; x < nrun; ++x) {
        const Run& R = runs[x];
        T* o = plane + R.n * d_img + (R.u * du + a) * Wd + R.v * dv + b;
        const T* tt = t + R.q;
        if (dv == 1) {
          for (int64_t q = 0; q < R.len; ++q) o[q] = tt[q] + add;
        } else {
          for (int64_t q = 0; q < R.len; ++q) o[q * dv] = tt[q] + add;
        }
      }
    }
  }
};

// Direct mode's store: columns [t, t + nr) of image n's Wp-wide grid, those with v < V kept.
template <typename T>
void store_direct(const Gather<T>& G, int64_t n, int64_t i, int64_t t, int64_t mr, int64_t nr,
                  const T* tile, int64_t NR) {
  for (int64_t q0 = 0; q0 < nr;) {
    const int64_t u = (t + q0) / G.Wp, v = (t + q0) % G.Wp;
    const int64_t len = std::min(G.Wp - v, nr - q0);
    const int64_t keep = std::min(len, std::max<int64_t>(0, G.V - v));
    if (keep > 0 && u < G.U) {
      for (int64_t r = 0; r < mr; ++r) {
        T* o = G.dst + n * G.d_img + (i + r) * G.d_ch + (u * G.du + G.a) * G.Wd + v * G.dv + G.b;
        const T* tt = tile + r * NR + q0;
        const T add = G.bias ? G.bias[i + r] : T(0);
        if (G.dv == 1) {
          for (int64_t q = 0; q < keep; ++q) o[q] = tt[q] + add;
        } else {
          for (int64_t q = 0; q < keep; ++q) o[q * G.dv] = tt[q] + add;
        }
      }
    }
    q0 += len;
  }
}

// run_block for direct mode: rows [m0, m1), columns [t0, t0 + nc) of image n, B in place in
// the image's padded copy at img.
template <typename Kern, typename T>
void run_block_direct(const Gather<T>& G, const T* img, int64_t n, int64_t m0, int64_t m1,
                      int64_t t0, int64_t nc) {
  constexpr int MR = Kern::MR, NR = Kern::NR;
  thread_local std::vector<T> tiles;
  const int64_t panels = (nc + NR - 1) / NR, rows = (m1 - m0 + MR - 1) / MR * MR;
  if (static_cast<int64_t>(tiles.size()) < rows * panels * NR) tiles.resize(rows * panels * NR);
  T* tl = tiles.data();
  const T* base = img + t0;
  const int64_t ks = gemm_detail::kslice(G.K);
  for (int64_t pc = 0; pc < G.K; pc += ks) {
    const int64_t kc = std::min(ks, G.K - pc);
    for (int64_t ip = m0; ip < m1; ip += MR)
      for (int64_t p = 0; p < panels; ++p)
        Kern::micro_off(kc, a_panel<MR>(G.apack, G.K, G.lda, G.acol, ip, pc), base + p * NR,
                        G.koff.data() + pc, tl + ((ip - m0) * panels + p * MR) * NR, pc > 0,
                        G.lda, G.acol ? G.acol + pc : nullptr);
  }
  for (int64_t ip = m0; ip < m1; ip += MR)
    for (int64_t p = 0; p < panels; ++p)
      store_direct(G, n, ip, t0 + p * NR, std::min<int64_t>(MR, G.M - ip),
                   std::min<int64_t>(NR, nc - p * NR), tl + ((ip - m0) * panels + p * MR) * NR, NR);
}

// Plans the zero-padded copies of the jobs' sources, and which jobs run in direct mode (no
// more than an eighth of the computed columns dropped). A strided source is split by stride
// phase: with e = off + P0 >= 0 a tap's offset from the padded origin, output (u, v) of tap
// (th, tw) reads plane (e_th % su, e_tw % sv) at row u + e_th / su, column v + e_tw / sv, so
// every tap is again a unit-stride run, at a fixed offset; only the phases some tap reaches
// are copied. Sets each job's owner, Hp, Wp, xp_img, direct and koff (offsets within an
// image's copy); the owners' phases and channels.
template <typename Kern, typename T>
void plan_padded(std::vector<Gather<T>>& jobs) {
  const size_t nj = jobs.size();
  std::vector<int64_t> mh(nj, -1), mw(nj, -1);
  for (size_t gj = 0; gj < nj; ++gj) {
    auto& G = jobs[gj];
    G.owner = -1;
    if (G.M <= 0 || G.N <= 0 || G.K <= 0) continue;
    G.P0h = std::max<int64_t>(0, -*std::min_element(G.offh.begin(), G.offh.end()));
    G.P0w = std::max<int64_t>(0, -*std::min_element(G.offw.begin(), G.offw.end()));
    mh[gj] = mw[gj] = 0;
    G.pha.clear(), G.phb.clear();
    for (int64_t o : G.offh) {
      mh[gj] = std::max(mh[gj], (o + G.P0h) / G.su);
      G.pha.push_back((o + G.P0h) % G.su);
    }
    for (int64_t o : G.offw) {
      mw[gj] = std::max(mw[gj], (o + G.P0w) / G.sv);
      G.phb.push_back((o + G.P0w) % G.sv);
    }
    for (auto* ph : {&G.pha, &G.phb}) {
      std::sort(ph->begin(), ph->end());
      ph->erase(std::unique(ph->begin(), ph->end()), ph->end());
    }
    G.cs = G.K / static_cast<int64_t>(G.offh.size() * G.offw.size());
  }
  // Jobs reading one unit-stride source with the same padding origin (the stride phases of
  // an input gradient) share one padded copy, as tall and wide as the largest needs.
  for (size_t gj = 0; gj < nj; ++gj) {
    auto& G = jobs[gj];
    if (mh[gj] < 0) continue;
    G.owner = gj;
    if (G.su != 1 || G.sv != 1) continue;
    for (size_t o = 0; o < gj; ++o) {
      const auto& H = jobs[o];
      if (H.owner == static_cast<int64_t>(o) && H.su == 1 && H.sv == 1 && H.src == G.src &&
          H.s_img == G.s_img && H.s_ch == G.s_ch && H.Hs == G.Hs && H.Ws == G.Ws &&
          H.cs == G.cs && H.P0h == G.P0h && H.P0w == G.P0w) {
        G.owner = o;
        break;
      }
    }
  }
  for (size_t gj = 0; gj < nj; ++gj) {  // the shared copy's plane, in its owner
    auto& G = jobs[gj];
    if (G.owner < 0) continue;
    auto& O = jobs[G.owner];
    O.Hp = std::max(O.Hp, G.U + mh[gj]);
    O.Wp = std::max(O.Wp, G.V + mw[gj]);
  }
  auto index = [](const std::vector<int64_t>& v, int64_t x) {
    return static_cast<int64_t>(std::lower_bound(v.begin(), v.end(), x) - v.begin());
  };
  for (size_t gj = 0; gj < nj; ++gj) {
    auto& G = jobs[gj];
    if (G.owner < 0) continue;
    const auto& O = jobs[G.owner];
    G.Hp = O.Hp, G.Wp = O.Wp;
    const int64_t na = O.pha.size(), nb = O.phb.size(), plane = G.Hp * G.Wp;
    G.xp_img = O.cs * na * nb * plane;
    // An image's columns are computed in whole panels: on small images the padding columns
    // and the last panel's rounding together must stay within an eighth too.
    G.direct = 8 * G.V >= 7 * G.Wp && 8 * G.U * G.V >= 7 * round_up(G.U * G.Wp, Kern::NR);
    const int64_t nth = G.offh.size(), ntw = G.offw.size();
    G.koff.resize(G.K);
    for (int64_t c = 0; c < G.cs; ++c)
      for (int64_t th = 0; th < nth; ++th)
        for (int64_t tw = 0; tw < ntw; ++tw) {
          const int64_t eh = G.offh[th] + G.P0h, ew = G.offw[tw] + G.P0w;
          const int64_t pl = (c * na + index(O.pha, eh % G.su)) * nb + index(O.phb, ew % G.sv);
          G.koff[(c * nth + th) * ntw + tw] = pl * plane + eh / G.su * G.Wp + ew / G.sv;
        }
  }
}

// The gather and scatter compiled for the ISA of the micro-kernel they feed (they are most
// of the work outside it; the rest of this file is built for the baseline target).
#define PYDL_GATHER_VARIANT(NAME, TARGET)                                                          \
  template <typename T, int NR>                                                                    \
  TARGET void pack_b_##NAME(const Gather<T>& G, int64_t k0, int64_t kc, int64_t j, int64_t nr,     \
                            T* d) {                                                                \
    G.template pack_b<NR>(k0, kc, j, nr, d);                                                       \
  }                                                                                                \
  template <typename T, int NR>                                                                    \
  TARGET void store_##NAME(const Gather<T>& G, int64_t i, int64_t j, int64_t mr, int64_t nr,       \
                           const T* t) {                                                           \
    G.template store<NR>(i, j, mr, nr, t);                                                         \
  }
PYDL_GATHER_VARIANT(avx512, __attribute__((target("avx512f"))))
PYDL_GATHER_VARIANT(avx2, __attribute__((target("avx2,fma"))))
PYDL_GATHER_VARIANT(base, )
#undef PYDL_GATHER_VARIANT

// Runs every job (their A matrices ready) over OpenMP work items.
// When every job runs in direct mode, there are images enough to share evenly between the
// threads, and an image's copy fits in a core's L2, a work item is one image: its thread
// makes that image's padded copy in a buffer of its own and runs every job over it while it
// is in cache (the copy of the whole batch never goes out to memory and back). Otherwise
// the whole batch is copied first and the items are blocks of columns (and of rows, when
// they are few), spanning images outside direct mode.
template <typename Kern, typename T>
void run_gathers(std::vector<Gather<T>>& jobs, int64_t images) {
  constexpr int MR = Kern::MR, NR = Kern::NR;
  struct Item {
    int64_t job, n, m0, m1, j0, nc;  // n: the image, in direct mode
  };
  plan_padded<Kern>(jobs);
  const int64_t threads = omp_get_max_threads();
  const int64_t nj = jobs.size();
  bool all_direct = true;
  int64_t img_total = 0;  // one image's copies, each followed by its slack
  std::vector<int64_t> at(nj, -1);  // per owner: where its image copy starts in that buffer
  for (int64_t g = 0; g < nj; ++g) {
    const auto& G = jobs[g];
    if (G.owner < 0) continue;
    all_direct = all_direct && G.direct;
    if (G.owner == g)  // each copy with its slack: the last panels read past its end
      at[g] = img_total, img_total += G.xp_img + G.slack(NR);
  }
  if (img_total == 0) return;
  const bool per_image = all_direct && images >= 2 * threads &&
                         (images % threads == 0 || images >= 4 * threads) &&
                         img_total * static_cast<int64_t>(sizeof(T)) <= (int64_t{1} << 20) * 3 / 2;
  auto blocks = [&](const Gather<T>& G, int64_t ncb) -> int64_t {
    if (G.owner < 0) return 0;
    return G.direct ? images * ((G.U * G.Wp + ncb - 1) / ncb) : (G.N + ncb - 1) / ncb;
  };
  if (per_image) {
    const int64_t ncb = round_up(128, NR);
#pragma omp parallel
    {
      thread_local std::vector<T> img;  // kept between calls: no page faults
      if (static_cast<int64_t>(img.size()) < img_total) img.resize(img_total);
      for (int64_t g = 0; g < nj; ++g)  // the slack after each copy: read, never kept
        if (at[g] >= 0) std::fill_n(img.data() + at[g] + jobs[g].xp_img, jobs[g].slack(NR), T(0));
#pragma omp for schedule(dynamic, 1)
      for (int64_t n = 0; n < images; ++n) {
        for (int64_t g = 0; g < nj; ++g)
          if (at[g] >= 0) jobs[g].copy_image(n, 0, jobs[g].cs, img.data() + at[g]);
        for (int64_t g = 0; g < nj; ++g) {
          const auto& G = jobs[g];
          if (G.owner < 0) continue;
          const int64_t nv = G.U * G.Wp;
          for (int64_t j0 = 0; j0 < nv; j0 += ncb)
            run_block_direct<Kern>(G, img.data() + at[G.owner], n, 0, G.M, j0,
                                   std::min(ncb, nv - j0));
        }
      }
    }
    return;
  }
  // The whole batch's copies, each owner's images back to back.
  thread_local std::vector<T> padded;  // kept between calls: no page faults
  {
    std::vector<int64_t> off(nj, -1);
    int64_t total = 0;
    for (int64_t g = 0; g < nj; ++g)
      if (at[g] >= 0) off[g] = total, total += images * jobs[g].xp_img + jobs[g].slack(NR);
    if (static_cast<int64_t>(padded.size()) < total) padded.resize(total);
    for (int64_t g = 0; g < nj; ++g) {
      auto& G = jobs[g];
      if (G.owner >= 0) G.xp = padded.data() + off[G.owner];
    }
    for (int64_t g = 0; g < nj; ++g) {
      if (at[g] < 0) continue;
      const auto& O = jobs[g];
      T* xp = padded.data() + off[g];
      const int64_t cs = O.cs;
#pragma omp parallel for schedule(static)
      for (int64_t nc = 0; nc < images * cs; ++nc)
        O.copy_image(nc / cs, nc % cs, nc % cs + 1, xp + nc / cs * O.xp_img);
      std::fill_n(xp + images * O.xp_img, O.slack(NR), T(0));
    }
  }
  auto count = [&](int64_t ncb) {
    int64_t c = 0;
    for (const auto& G : jobs) c += blocks(G, ncb);
    return c;
  };
  int64_t ncb = round_up(128, NR);
  while (ncb > 2 * NR && count(ncb) < 4 * threads) ncb = round_up(ncb / 2, NR);
  const int64_t col_items = count(ncb);
  if (col_items == 0) return;
  // Few column blocks (small images): also split the rows, keeping at least 4 MR panels each.
  const int64_t row_split = std::max<int64_t>(1, (4 * threads + col_items - 1) / col_items);
  std::vector<Item> items;
  int64_t kmax = 0;
  for (int64_t g = 0; g < static_cast<int64_t>(jobs.size()); ++g) {
    const auto& G = jobs[g];
    if (blocks(G, ncb) == 0) continue;
    kmax = std::max(kmax, G.K);
    const int64_t panels = (G.M + MR - 1) / MR;
    const int64_t parts = std::max<int64_t>(1, std::min(row_split, panels / 4));
    const int64_t per = (panels + parts - 1) / parts * MR;
    if (G.direct) {
      const int64_t nv = G.U * G.Wp;
      for (int64_t n = 0; n < images; ++n)
        for (int64_t j0 = 0; j0 < nv; j0 += ncb)
          for (int64_t m0 = 0; m0 < G.M; m0 += per)
            items.push_back({g, n, m0, std::min(G.M, m0 + per), j0, std::min(ncb, nv - j0)});
    } else {
      for (int64_t j0 = 0; j0 < G.N; j0 += ncb)
        for (int64_t m0 = 0; m0 < G.M; m0 += per)
          items.push_back({g, -1, m0, std::min(G.M, m0 + per), j0, std::min(ncb, G.N - j0)});
    }
  }
  const int64_t bsize = bpack_size<Kern>(kmax, ncb) + Gather<T>::PACK_CHUNK;  // pack_b's slack
#pragma omp parallel
  {
    thread_local std::vector<T> bpack;
    if (static_cast<int64_t>(bpack.size()) < bsize) bpack.resize(bsize);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < static_cast<int64_t>(items.size()); ++it) {
      const Item& I = items[it];
      const Gather<T>& G = jobs[I.job];
      if (G.direct) {
        run_block_direct<Kern>(G, G.xp + I.n * G.xp_img, I.n, I.m0, I.m1, I.j0, I.nc);
        continue;
      }
      run_block<Kern>(
          G.M, G.K, I.m0, I.m1, I.j0, I.nc, G.apack, bpack.data(),
          [&](int64_t k0, int64_t kc, int64_t j, int64_t nr, T* d) {
            if constexpr (Kern::isa == gemm_detail::Isa::avx512) pack_b_avx512<T, NR>(G, k0, kc, j, nr, d);
            else if constexpr (Kern::isa == gemm_detail::Isa::avx2) pack_b_avx2<T, NR>(G, k0, kc, j, nr, d);
            else pack_b_base<T, NR>(G, k0, kc, j, nr, d);
          },
          [&](int64_t i, int64_t j, int64_t mr, int64_t nr, const T* t) {
            if constexpr (Kern::isa == gemm_detail::Isa::avx512) store_avx512<T, NR>(G, i, j, mr, nr, t);
            else if constexpr (Kern::isa == gemm_detail::Isa::avx2) store_avx2<T, NR>(G, i, j, mr, nr, t);
            else store_base<T, NR>(G, i, j, mr, nr, t);
          },
          G.lda, G.acol);
    }
  }
}

// 3x3, stride 1, undilated, ungrouped, with channels wide enough that the GEMMs dominate
// the transforms: Winograd F(2x2, 3x3) (csrc/cpu/conv_winograd.h). PYDL_CPU_WINOGRAD=0 keeps
// such layers on the implicit GEMM (for comparison, and to test that path on them).
inline bool winograd_fits(const Geom& g) {
  static const bool enabled = [] {
    const char* v = std::getenv("PYDL_CPU_WINOGRAD");
    return !(v && std::string(v) == "0");
  }();
  return enabled && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 &&
         g.dw == 1 && g.groups == 1 && g.c >= 32 && g.oc >= 32;
}

template <typename T>
void forward_impl(const Geom& g, const T* x, const T* w, const T* bias, T* y) {
  dispatch<T>([&](auto kern) {
    using Kern = decltype(kern);
    if (winograd_fits(g)) {
      const int64_t C = g.c;
      return winograd::conv3x3<Kern>(
          g.n, g.c, g.h, g.w, g.oc, g.oh, g.ow, g.ph, g.pw, x,
          [&](int64_t o, int64_t ci, int i, int j) { return w[((o * C + ci) * 3 + i) * 3 + j]; },
          bias, y);
    }
    std::vector<Gather<T>> jobs(g.groups);
    const int64_t M = g.ocg(), K = g.k(), P = g.pixels(), asize = padded_rows<Kern>(M) * K;
    thread_local std::vector<T> abuf;  // kept between calls: no page faults for big weights
    if (M % Kern::MR) abuf.resize(g.groups * asize);
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      Gather<T>& G = jobs[gi];
      G.src = x + gi * g.cg() * g.h * g.w;
      G.s_img = g.c * g.h * g.w, G.s_ch = g.h * g.w, G.Hs = g.h, G.Ws = g.w;
      G.su = g.sh, G.sv = g.sw;
      for (int64_t i = 0; i < g.kh; ++i) G.offh.push_back(i * g.dh - g.ph);
      for (int64_t j = 0; j < g.kw; ++j) G.offw.push_back(j * g.dw - g.pw);
      G.U = g.oh, G.V = g.ow;
      G.dst = y + gi * M * P, G.d_img = g.oc * P, G.d_ch = P, G.Wd = g.ow;
      G.bias = bias ? bias + gi * M : nullptr;
      G.M = M, G.K = K, G.N = g.n * P;
      if (M % Kern::MR == 0) {  // the weights are A as they are: row-major, K apart
        G.apack = w + gi * M * K, G.lda = K;
        continue;
      }
      G.apack = abuf.data() + gi * asize;
      pack_a<Kern>(M, K, w + gi * M * K, K, 1, abuf.data() + gi * asize);
    }
    run_gathers<Kern>(jobs, g.n);
  });
}

// The taps of one stride phase of the input gradient: for each kernel index t with
// (phase + pad - t * dil) % stride == 0, its index and the dy offset (phase + pad - t*dil) / s.
inline void phase_taps(int64_t phase, int64_t pad, int64_t dil, int64_t stride, int64_t k,
                       std::vector<int64_t>& idx, std::vector<int64_t>& off) {
  for (int64_t t = 0; t < k; ++t) {
    const int64_t e = phase + pad - t * dil;
    if (((e % stride) + stride) % stride == 0) idx.push_back(t), off.push_back(e / stride);
  }
}

// dx += col2im(col) for output pixels [p0, p0 + np) of one image and group, col (K, np).
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
          if (++ow == g.ow) ow = 0, ++oh;
        }
      }
    }
  }
}

// Input gradient for few input channels per group (the stem's 3), where the gather GEMM would
// have fewer rows than one register tile: col (C/g*KH*KW, pixels) = W^T @ dy in blocks of
// pixels, scattered into dx by col2im; OpenMP over (image, group).
template <typename T>
void backward_input_col2im(const Geom& g, const T* dy, const T* w, T* dx) {
  constexpr int64_t PB = 256;
  const int64_t P = g.pixels(), K = g.k(), M = g.ocg();
#pragma omp parallel
  {
    thread_local std::vector<T> col;
    col.resize(K * std::min(P, PB));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < g.n * g.groups; ++it) {
      const int64_t gi = it % g.groups, n = it / g.groups;
      T* dxg = dx + (n * g.c + gi * g.cg()) * g.h * g.w;
      const T* dyg = dy + (n * g.oc + gi * M) * P;
      std::fill(dxg, dxg + g.cg() * g.h * g.w, T(0));
      for (int64_t p0 = 0; p0 < P; p0 += PB) {
        const int64_t np = std::min(PB, P - p0);
        gemm<T>(K, np, M, w + gi * M * K, 1, K, dyg + p0, P, 1, col.data(), np, false);
        col2im(g, col.data(), p0, np, dxg);
      }
    }
  }
}

template <typename T>
void backward_input_impl(const Geom& g, const T* dy, const T* w, T* dx) {
  dispatch<T>([&](auto kern) {
    using Kern = decltype(kern);
    if (g.cg() < Kern::MR) return backward_input_col2im(g, dy, w, dx);
    if (winograd_fits(g)) {  // dx = dy convolved with the flipped, transposed weights
      const int64_t C = g.c;
      return winograd::conv3x3<Kern>(
          g.n, g.oc, g.oh, g.ow, g.c, g.h, g.w, 2 - g.ph, 2 - g.pw, dy,
          [&](int64_t ci, int64_t o, int i, int j) {
            return w[((o * C + ci) * 3 + (2 - i)) * 3 + (2 - j)];
          },
          static_cast<const T*>(nullptr), dx);
    }
    const int64_t M = g.cg(), OCG = g.ocg(), P = g.pixels(), khw = g.kh * g.kw;
    std::vector<Gather<T>> jobs;
    thread_local std::vector<T> abuf;  // kept between calls: no page faults for big weights
    // Every phase's packed A fits in padded_rows(C/g) * OC/g * KH * KW per group.
    const int64_t asize = padded_rows<Kern>(M) * OCG * khw;
    constexpr int MR = Kern::MR;
    const bool in_place = M % MR == 0;  // A read from w as it is; packed otherwise
    if (!in_place) abuf.resize(g.sh * g.sw * g.groups * asize);
    struct Phase {
      T* ap;                   // group 0's packed A; group gi's is asize further per gi
      int64_t K;
      std::vector<int64_t> tap;  // its taps (i * kw + j) in column order
      std::vector<int64_t> acol;  // in place: where column k sits in w (for c = 0, group 0)
    };
    std::vector<Phase> phases;
    std::vector<size_t> job_phase;
    for (int64_t a = 0; a < g.sh; ++a) {
      for (int64_t b = 0; b < g.sw; ++b) {
        const int64_t U = g.h > a ? (g.h - a + g.sh - 1) / g.sh : 0;
        const int64_t V = g.w > b ? (g.w - b + g.sw - 1) / g.sw : 0;
        if (U == 0 || V == 0) continue;
        std::vector<int64_t> ti, tj, offh, offw;
        phase_taps(a, g.ph, g.dh, g.sh, g.kh, ti, offh);
        phase_taps(b, g.pw, g.dw, g.sw, g.kw, tj, offw);
        if (ti.empty() || tj.empty()) {  // no tap reaches these pixels
#pragma omp parallel for schedule(static)
          for (int64_t nc = 0; nc < g.n * g.c; ++nc)
            for (int64_t u = 0; u < U; ++u)
              for (int64_t v = 0; v < V; ++v) dx[(nc * g.h + u * g.sh + a) * g.w + v * g.sw + b] = T(0);
          continue;
        }
        const int64_t nt = ti.size() * tj.size(), K = OCG * nt;
        // A[c][(o, th, tw)] = w[gi * OCG + o, c, ti[th], tj[tw]], packed below for all phases
        T* ap = in_place ? nullptr : abuf.data() + (a * g.sw + b) * g.groups * asize;
        phases.push_back({ap, K, {}, {}});
        for (int64_t i : ti)
          for (int64_t j : tj) phases.back().tap.push_back(i * g.kw + j);
        for (int64_t gi = 0; gi < g.groups; ++gi) {
          jobs.emplace_back();
          Gather<T>& G = jobs.back();
          G.src = dy + gi * OCG * P, G.s_img = g.oc * P, G.s_ch = P, G.Hs = g.oh, G.Ws = g.ow;
          G.offh = offh, G.offw = offw, G.U = U, G.V = V;
          G.dst = dx + gi * M * g.h * g.w, G.d_img = g.c * g.h * g.w, G.d_ch = g.h * g.w;
          G.Wd = g.w, G.du = g.sh, G.dv = g.sw, G.a = a, G.b = b;
          G.M = M, G.K = K, G.N = g.n * U * V;
          if (!in_place) G.apack = phases.back().ap + gi * asize;
          job_phase.push_back(phases.size() - 1);
        }
      }
    }
    if (in_place) {
      // A[c][(o, t)] = w[gi * OCG + o][c][tap t]: rows KH * KW apart, columns at a table's
      // offsets; the micro-kernel reads the weights as they are.
      for (auto& ph : phases) {
        const int64_t nt = ph.tap.size();
        ph.acol.resize(ph.K);
        for (int64_t o = 0; o < OCG; ++o)
          for (int64_t t = 0; t < nt; ++t) ph.acol[o * nt + t] = o * M * khw + ph.tap[t];
      }
      for (size_t j = 0; j < jobs.size(); ++j) {
        Gather<T>& G = jobs[j];
        const int64_t gi = static_cast<int64_t>(j) % g.groups;
        G.apack = w + gi * OCG * M * khw, G.lda = khw;
        G.acol = phases[job_phase[j]].acol.data();
      }
    } else {
      // One pass over w packs every phase: a panel's MR channels of output channel o are
      // MR * KH * KW contiguous weights, read once and dealt out to the phases' columns
      // (packing phase by phase would read each line of w once per phase).
      const int64_t panels = (M + MR - 1) / MR;
#pragma omp parallel for schedule(static) if (g.groups * OCG * M * khw >= (1 << 16))
      for (int64_t it = 0; it < g.groups * panels; ++it) {
        const int64_t gi = it / panels, ip = it % panels * MR;
        const int64_t mr = std::min<int64_t>(MR, M - ip);
        for (int64_t o = 0; o < OCG; ++o) {
          const T* src = w + ((gi * OCG + o) * M + ip) * khw;
          for (const Phase& ph : phases) {
            const int64_t nt = ph.tap.size();
            T* d = ph.ap + gi * asize + ip * ph.K + o * nt * MR;
            for (int64_t t = 0; t < nt; ++t, d += MR) {
              const T* s = src + ph.tap[t];
              for (int64_t i = 0; i < mr; ++i) d[i] = s[i * khw];
              for (int64_t i = mr; i < MR; ++i) d[i] = T(0);
            }
          }
        }
      }
    }
    run_gathers<Kern>(jobs, g.n);
  });
}

// Weight gradient for few input channels per group (an RGB stem, depthwise layers), where the
// GEMM's packing, a transpose of every (tap, pixel) pair, costs as much as its multiplies:
// dW[o][tap] = sum over pixels of dy[o][p] * x_tap[p], as dot products along output rows with
// vector lanes across pixels, so both operands are read in place at unit stride. x is copied
// once into zero-padded planes split by stride phase (xq[n][c][a][b][u][v] =
// x[n][c][u*sh + a - ph][v*sw + b - pw]), in which every tap's source for output row oh is
// one contiguous run; dy is copied once into rows padded to whole vectors with zeros. A
// register tile of MO channels x NT taps accumulates over a band of rows before its
// horizontal sums; OpenMP runs over bands, each thread summing into its own copy of dW.
namespace wgrad_rows {

// One register tile: sums[o][t] += sum over `rows` rows and nvec vectors of dy_o * x_t, the
// rows of dy_o at dy0 + o * dy_ch + r * dy_row, those of x_t at x0[t] + r * x_row.
template <typename T, int VB, int MO, int NT>
__attribute__((always_inline)) inline void tile_rows(const T* dy0, int64_t dy_ch,
                                                     const T* const* x0, int64_t rows,
                                                     int64_t dy_row, int64_t x_row, int64_t nvec,
                                                     T* sums, int64_t ldsum) {
  constexpr int W = VB / sizeof(T);
  typedef T V __attribute__((vector_size(VB)));
  typedef T VU __attribute__((vector_size(VB), aligned(sizeof(T))));
  V acc[MO][NT];
  for (int o = 0; o < MO; ++o)
    for (int t = 0; t < NT; ++t) acc[o][t] = V{};
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy0 + r * dy_row;
    const T* xr[NT];
    for (int t = 0; t < NT; ++t) xr[t] = x0[t] + r * x_row;
    for (int64_t q = 0; q < nvec; ++q) {
      V d[MO];
      for (int o = 0; o < MO; ++o) d[o] = *reinterpret_cast<const VU*>(dyr + o * dy_ch + q * W);
      for (int t = 0; t < NT; ++t) {
        const V xv = *reinterpret_cast<const VU*>(xr[t] + q * W);
        for (int o = 0; o < MO; ++o) acc[o][t] += d[o] * xv;
      }
    }
  }
  for (int o = 0; o < MO; ++o)
    for (int t = 0; t < NT; ++t) {
      T s = T(0);
      for (int l = 0; l < W; ++l) s += acc[o][t][l];
      sums[o * ldsum + t] += s;
    }
}

#define PYDL_WGRAD_ROWS_VARIANT(NAME, TARGET, VB)                                                  \
  template <typename T, int MO, int NT>                                                            \
  TARGET void tile_rows_##NAME(const T* dy0, int64_t dy_ch, const T* const* x0, int64_t rows,       \
                               int64_t dy_row, int64_t x_row, int64_t nvec, T* sums,               \
                               int64_t ldsum) {                                                    \
    tile_rows<T, VB, MO, NT>(dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums, ldsum);              \
  }
PYDL_WGRAD_ROWS_VARIANT(avx512, __attribute__((target("avx512f"))), 64)
PYDL_WGRAD_ROWS_VARIANT(avx2, __attribute__((target("avx2,fma"))), 32)
PYDL_WGRAD_ROWS_VARIANT(base, , 16)
#undef PYDL_WGRAD_ROWS_VARIANT

template <typename T, gemm_detail::Isa I, int MO, int NT>
void call(const T* dy0, int64_t dy_ch, const T* const* x0, int64_t rows, int64_t dy_row,
          int64_t x_row, int64_t nvec, T* sums, int64_t ldsum) {
  if constexpr (I == gemm_detail::Isa::avx512)
    tile_rows_avx512<T, MO, NT>(dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums, ldsum);
  else if constexpr (I == gemm_detail::Isa::avx2)
    tile_rows_avx2<T, MO, NT>(dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums, ldsum);
  else
    tile_rows_base<T, MO, NT>(dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums, ldsum);
}

// The (mo, nt) tile variant, mo <= MO and nt <= NT, chosen at run time for the tails.
template <typename T, gemm_detail::Isa I, int MO, int NT>
void call_tail(int mo, int nt, const T* dy0, int64_t dy_ch, const T* const* x0, int64_t rows,
               int64_t dy_row, int64_t x_row, int64_t nvec, T* sums, int64_t ldsum) {
  if constexpr (MO > 1) {
    if (mo < MO)
      return call_tail<T, I, MO - 1, NT>(mo, nt, dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums,
                                         ldsum);
  }
  if constexpr (NT > 1) {
    if (nt < NT)
      return call_tail<T, I, MO, NT - 1>(mo, nt, dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums,
                                         ldsum);
  }
  call<T, I, MO, NT>(dy0, dy_ch, x0, rows, dy_row, x_row, nvec, sums, ldsum);
}

}  // namespace wgrad_rows

template <typename T, typename Kern>
void backward_weight_rows(const Geom& g, const T* x, const T* dy, T* dw) {
  constexpr gemm_detail::Isa I = Kern::isa;
  constexpr int VB = I == gemm_detail::Isa::avx512 ? 64 : I == gemm_detail::Isa::avx2 ? 32 : 16;
  constexpr int W = VB / sizeof(T);
  constexpr int MO = I == gemm_detail::Isa::avx512 ? 4 : 2;  // 4 x 6 (+ 5) of 32 zmm registers,
  constexpr int NT = I == gemm_detail::Isa::avx512 ? 6 : 5;  // 2 x 5 (+ 3) of 16 ymm or xmm
  const int64_t OW = g.ow, OH = g.oh, OWp = round_up(OW, W), nvec = OWp / W;
  // Phase planes: tap i reads plane row oh + (i*dh)/sh of phase (i*dh)%sh; columns likewise.
  const int64_t Hq = OH + (g.kh - 1) * g.dh / g.sh, Wq = OWp + (g.kw - 1) * g.dw / g.sw;
  const int64_t phases = g.sh * g.sw, plane = Hq * Wq;
  const int64_t KT = g.k(), OCG = g.ocg();
  thread_local std::vector<T> xq;  // kept between calls: no page faults
  xq.resize(g.n * g.c * phases * plane);
  T* const xqp = xq.data();  // thread_local: the other threads must use this thread's buffer
  std::vector<T> dyq(OWp == OW ? 0 : g.n * g.oc * OH * OWp);  // dy itself when rows fill vectors
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const T* src = x + nc * g.h * g.w;
    for (int64_t a = 0; a < g.sh; ++a)
      for (int64_t b = 0; b < g.sw; ++b) {
        T* dst = xqp + (nc * phases + a * g.sw + b) * plane;
        for (int64_t u = 0; u < Hq; ++u) {
          const int64_t hh = u * g.sh + a - g.ph;
          if (hh < 0 || hh >= g.h) std::fill(dst + u * Wq, dst + (u + 1) * Wq, T(0));
          else copy_row(src + hh * g.w, b - g.pw, g.sw, g.w, Wq, dst + u * Wq);
        }
      }
  }
#pragma omp parallel for schedule(static) if (OWp != OW)
  for (int64_t r = 0; r < (OWp == OW ? 0 : g.n * g.oc * OH); ++r) {
    std::copy(dy + r * OW, dy + (r + 1) * OW, dyq.data() + r * OWp);
    std::fill(dyq.data() + r * OWp + OW, dyq.data() + (r + 1) * OWp, T(0));
  }
  // Source offset of tap (c, i, j) within an image's phase planes, for output row 0.
  std::vector<int64_t> toff(KT);
  for (int64_t c = 0; c < g.cg(); ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t a = i * g.dh % g.sh, b = j * g.dw % g.sw;
        toff[(c * g.kh + i) * g.kw + j] =
            (c * phases + a * g.sw + b) * plane + (i * g.dh / g.sh) * Wq + j * g.dw / g.sw;
      }
  // Bands of output rows: long enough that the horizontal sums are a few percent of the work.
  const int64_t band = std::max<int64_t>(1, std::min(OH, (2048 + OWp - 1) / OWp));
  const int64_t bands = (OH + band - 1) / band, items = g.n * bands;
  const int64_t threads = omp_get_max_threads(), wsize = g.oc * KT;
  std::vector<T> partial(threads * wsize, T(0));
#pragma omp parallel
  {
    T* sums = partial.data() + omp_get_thread_num() * wsize;
    const T* xt[NT];
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / bands, r0 = (it % bands) * band, rows = std::min(band, OH - r0);
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const T* ximg = xqp + (n * g.c + gi * g.cg()) * phases * plane + r0 * Wq;
        const T* dyb = (OWp == OW ? dy : dyq.data()) + ((n * g.oc + gi * OCG) * OH + r0) * OWp;
        for (int64_t o0 = 0; o0 < OCG; o0 += MO) {
          const int mo = static_cast<int>(std::min<int64_t>(MO, OCG - o0));
          for (int64_t t0 = 0; t0 < KT; t0 += NT) {
            const int nt = static_cast<int>(std::min<int64_t>(NT, KT - t0));
            for (int t = 0; t < nt; ++t) xt[t] = ximg + toff[t0 + t];
            wgrad_rows::call_tail<T, I, MO, NT>(mo, nt, dyb + o0 * OH * OWp, OH * OWp, xt, rows,
                                                OWp, Wq, nvec,
                                                sums + (gi * OCG + o0) * KT + t0, KT);
          }
        }
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < wsize; ++i) {
    T s = T(0);
    for (int64_t u = 0; u < threads; ++u) s += partial[u * wsize + i];
    dw[i] = s;
  }
}

// How a weight gradient's GEMM (rows x NP pixels, for each of `sets` groups) is cut into work
// items: row blocks of at most `cap` rows (a multiple of MR) and, when those are too few for
// the threads, chunks of at least about `slice` pixels, whose partial sums are added after.
// The blocks and chunks are of equal size and, where they can be, a whole number per thread
// (9 blocks of 256 rows on two threads would leave one thread a block of work alone at the
// end; 10 blocks of 232 do not).
struct WgradSplit {
  int64_t rb, row_blocks, pchunk, psplit;
};
inline WgradSplit wgrad_split(int64_t rows, int64_t cap, int64_t mr, int64_t np, int64_t slice,
                              int64_t sets, int64_t threads) {
  int64_t blocks = (rows + cap - 1) / cap;
  int64_t psplit = std::max<int64_t>(1, (2 * threads + sets * blocks - 1) / (sets * blocks));
  psplit = std::min(psplit, (np + slice - 1) / slice);
  if (psplit == 1 && sets == 1) blocks = round_up(blocks, threads);
  const int64_t rb = round_up((rows + blocks - 1) / blocks, mr);
  const int64_t pchunk = (np + psplit - 1) / psplit;
  return {rb, (rows + rb - 1) / rb, pchunk, (np + pchunk - 1) / pchunk};
}

// Weight gradient of an ungrouped layer with no packing in its loop: x is copied once into a
// zero-padded NHWC buffer with channels rounded up to whole register tiles (Cp), and dy once
// into dy^T in NR-wide panels (OC rounded up to whole panels; panel jp holds every pixel's
// output channels [jp, jp + NR), NR contiguous per pixel). With the GEMM's rows ordered (tap,
// channel), a register tile's MR rows are MR consecutive channels of one tap, which for a
// given pixel sit side by side in the NHWC copy; so the micro-kernel reads A's columns and
// B's rows in place, each call's B one contiguous KC x NR block (were dy^T's rows OCP apart,
// a power of two in most networks, each row of a call would be its own cache lines). Work items
// own blocks of rows and, when there are few, chunks of pixels, whose partial sums are added
// at the end.
template <typename T, typename Kern>
void backward_weight_nhwc(const Geom& g, const T* x, const T* dy, T* dw) {
  constexpr int MR = Kern::MR, NR = Kern::NR;
  constexpr int64_t KC = 256;  // pixels per slice
  const int64_t C = g.c, OC = g.oc, Cp = round_up(C, MR), OCP = round_up(OC, NR);
  const int64_t Hp = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const int64_t Wp = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const int64_t P = g.pixels(), NP = g.n * P, taps = g.kh * g.kw, rows = taps * Cp;
  thread_local std::vector<T> xh_buf, dyt_buf;  // kept between calls: no page faults
  xh_buf.resize(g.n * Hp * Wp * Cp);
  dyt_buf.resize(NP * OCP);
  T* const xh = xh_buf.data();  // thread_local: the other threads must use this thread's buffers
  T* const dyt = dyt_buf.data();
  // Both copies go by (image, block of 16 channels): the block's planes are read in order
  // (16 sequential streams) and each pixel's 16 channels are written as one run (dy's blocks
  // are no wider than a panel, so that each lies in one).
  constexpr int64_t OB = NR < 16 ? NR : 16;
  const int64_t cb = (Cp + 15) / 16, ob = OCP / OB;
#pragma omp parallel for schedule(static)
  for (int64_t it = 0; it < g.n * cb; ++it) {
    const int64_t n = it / cb, c0 = it % cb * 16, c1 = std::min(Cp, c0 + 16);
    const int64_t cr = std::min(c1, C);  // real channels [c0, cr), zeros up to c1
    const int64_t q0 = std::max<int64_t>(0, g.pw), q1 = std::min(Wp, g.w + g.pw);
    for (int64_t r = 0; r < Hp; ++r) {
      T* d = xh + (n * Hp + r) * Wp * Cp;
      const int64_t hh = r - g.ph;
      const bool inside = hh >= 0 && hh < g.h && q1 > q0 && cr > c0;
      for (int64_t q = 0; q < Wp; ++q) {
        const int64_t z0 = inside && q >= q0 && q < q1 ? cr : c0;  // zeros from channel z0
        std::fill(d + q * Cp + z0, d + q * Cp + c1, T(0));
      }
      if (inside)
        transpose(x + ((n * C + c0) * g.h + hh) * g.w + q0 - g.pw, g.h * g.w, cr - c0, q1 - q0,
                  d + q0 * Cp + c0, Cp);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t it = 0; it < g.n * ob; ++it) {
    const int64_t n = it / ob, o0 = it % ob * OB, o1 = o0 + OB;
    const int64_t orl = std::min(o1, OC);  // real channels [o0, orl), zeros up to o1
    T* d = dyt + (o0 / NR * NP + n * P) * NR + o0 % NR;
    if (orl > o0) transpose(dy + (n * OC + o0) * P, P, orl - o0, P, d, int64_t{NR});
    if (orl < o1)
      for (int64_t q = 0; q < P; ++q) std::fill(d + q * NR + orl - o0, d + q * NR + o1 - o0, T(0));
  }
  // Items: blocks of rows (as many as keep the accumulators near 512 KiB) and pixel chunks.
  const auto [RB, row_blocks, pchunk, psplit] =
      wgrad_split(rows, std::max<int64_t>(MR, (1 << 17) / OCP / MR * MR), MR, NP, KC, 1,
                  omp_get_max_threads());
  const int64_t wsize = OC * C * taps, items = row_blocks * psplit;
  std::vector<T> partial(psplit > 1 ? (psplit - 1) * wsize : 0);
  const int64_t cpanels = OCP / NR;
#pragma omp parallel
  {
    thread_local std::vector<T> cbuf;
    thread_local std::vector<int64_t> aoff;
    cbuf.resize(RB * OCP);
    aoff.resize(KC);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t ps = it % psplit, rb = it / psplit;
      const int64_t r0 = rb * RB, r1 = std::min(rows, r0 + RB);
      const int64_t p0 = ps * pchunk, p1 = std::min(NP, p0 + pchunk);
      std::fill(cbuf.begin(), cbuf.begin() + (r1 - r0) * OCP, T(0));
      for (int64_t pc = p0; pc < p1; pc += KC) {
        const int64_t kc = std::min(KC, p1 - pc);
        for (int64_t k = 0; k < kc; ++k) {
          const int64_t p = pc + k, n = p / P, oh = (p % P) / g.ow, ow = p % g.ow;
          aoff[k] = ((n * Hp + oh * g.sh) * Wp + ow * g.sw) * Cp;
        }
        for (int64_t r = r0; r < r1; r += MR) {
          const int64_t t = r / Cp, c0 = r % Cp, i = t / g.kw, j = t % g.kw;
          const T* abase = xh + (i * g.dh * Wp + j * g.dw) * Cp + c0;
          for (int64_t jp = 0; jp < OCP; jp += NR)
            Kern::micro_ab(kc, abase, aoff.data(), dyt + jp * NP + pc * NR, int64_t{NR},
                           cbuf.data() + ((r - r0) / MR * cpanels + jp / NR) * MR * NR, true);
        }
      }
      T* out = ps == 0 ? dw : partial.data() + (ps - 1) * wsize;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t t = r / Cp, c = r % Cp, rr = r - r0;
        if (c >= C) continue;
        for (int64_t o = 0; o < OC; ++o)
          out[(o * C + c) * taps + t] = cbuf[((rr / MR * cpanels + o / NR) * MR + rr % MR) * NR + o % NR];
      }
    }
#pragma omp barrier
    if (psplit > 1) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < wsize; ++i) {
        T s = dw[i];
        for (int64_t u = 0; u + 1 < psplit; ++u) s += partial[u * wsize + i];
        dw[i] = s;
      }
    }
  }
}

// dW^T (taps, OC/g) = cols (taps, pixels) @ dy^T (pixels, OC/g) for every group.
template <typename T>
void backward_weight_impl(const Geom& g, const T* x, const T* dy, T* dw) {
  dispatch<T>([&](auto kern) {
    using Kern = decltype(kern);
    if (g.cg() < Kern::MR) return backward_weight_rows<T, Kern>(g, x, dy, dw);
    // 1x1 layers keep the packed path: their few multiplies per element do not pay for the
    // NHWC copy of the whole input (of which a strided one reads a quarter).
    if (g.groups == 1 && g.kh * g.kw > 1) return backward_weight_nhwc<T, Kern>(g, x, dy, dw);
    constexpr int MR = Kern::MR, NR = Kern::NR;
    constexpr int64_t KC = 256;  // pixels per slice
    const int64_t KT = g.k(), OCG = g.ocg(), P = g.pixels(), NP = g.n * P, OCP = round_up(OCG, NR);
    // Rows (taps) per item: as many as keep the item's accumulators within about 512 KiB, so
    // that dy^T, packed once per item and slice, is shared by many taps.
    const auto [RB, row_blocks, pchunk, psplit] =
        wgrad_split(KT, std::max<int64_t>(96, (1 << 17) / OCP / MR * MR), MR, NP, KC, g.groups,
                    omp_get_max_threads());
    const int64_t wsize = g.oc * KT, items = g.groups * row_blocks * psplit;
    std::vector<T> partial(psplit > 1 ? (psplit - 1) * wsize : 0);
#pragma omp parallel
    {
      thread_local std::vector<T> apack, bpack, cbuf;
      thread_local std::vector<Run> runs;
      apack.resize(RB * KC), bpack.resize(OCP * KC), cbuf.resize(RB * OCP);
      const int64_t cpanels = OCP / NR;  // cbuf holds MR x NR tiles, row panel by column panel
#pragma omp for schedule(dynamic, 1)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t ps = it % psplit, rb = (it / psplit) % row_blocks, gi = it / (psplit * row_blocks);
        const int64_t r0 = rb * RB, r1 = std::min(KT, r0 + RB), rows = round_up(r1 - r0, MR);
        const int64_t p0 = ps * pchunk, p1 = std::min(NP, p0 + pchunk);
        const T* xg = x + gi * g.cg() * g.h * g.w;
        const T* dyg = dy + gi * OCG * P;
        std::fill(cbuf.begin(), cbuf.begin() + rows * OCP, T(0));
        for (int64_t pc = p0; pc < p1; pc += KC) {
          const int64_t kc = std::min(KC, p1 - pc);
          runs.resize(kc);
          const int64_t nrun = runs_of(pc, kc, g.oh, g.ow, runs.data());
          // A: MR-tall panels of taps over the kc pixels.
          for (int64_t r = r0; r < r0 + rows; ++r) {
            T* d = apack.data() + (r - r0) / MR * MR * kc + (r - r0) % MR;
            if (r >= r1) {
              for (int64_t q = 0; q < kc; ++q) d[q * MR] = T(0);
              continue;
            }
            const int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
            const T* plane = xg + c * g.h * g.w;
            for (int64_t s = 0; s < nrun; ++s) {
              const Run& R = runs[s];
              const int64_t hh = R.u * g.sh - g.ph + i * g.dh, w0 = R.v * g.sw - g.pw + j * g.dw;
              T* dd = d + R.q * MR;
              if (hh < 0 || hh >= g.h) {
                for (int64_t q = 0; q < R.len; ++q) dd[q * MR] = T(0);
                continue;
              }
              const T* row = plane + R.n * g.c * g.h * g.w + hh * g.w;
              for (int64_t q = 0; q < R.len; ++q) {
                const int64_t ww = w0 + q * g.sw;
                dd[q * MR] = ww >= 0 && ww < g.w ? row[ww] : T(0);
              }
            }
          }
          // B: NR-wide panels of dy^T (kc pixels x OC/g).
          for (int64_t o = 0; o < OCP; ++o) {
            T* d = bpack.data() + o / NR * NR * kc + o % NR;
            if (o >= OCG) {
              for (int64_t q = 0; q < kc; ++q) d[q * NR] = T(0);
              continue;
            }
            for (int64_t s = 0; s < nrun; ++s) {
              const Run& R = runs[s];
              const T* src = dyg + R.n * g.oc * P + o * P + R.u * g.ow + R.v;
              T* dd = d + R.q * NR;
              for (int64_t q = 0; q < R.len; ++q) dd[q * NR] = src[q];
            }
          }
          for (int64_t jp = 0; jp < OCP; jp += NR)
            for (int64_t ip = 0; ip < rows; ip += MR)
              Kern::micro(kc, apack.data() + ip * kc, bpack.data() + jp * kc,
                          cbuf.data() + (ip / MR * cpanels + jp / NR) * MR * NR, true);
        }
        T* out = ps == 0 ? dw : partial.data() + (ps - 1) * wsize;
        for (int64_t o = 0; o < OCG; ++o)
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t rr = r - r0;
            out[(gi * OCG + o) * KT + r] =
                cbuf[((rr / MR * cpanels + o / NR) * MR + rr % MR) * NR + o % NR];
          }
      }
#pragma omp barrier
      if (psplit > 1) {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < wsize; ++i) {
          T s = dw[i];
          for (int64_t u = 0; u + 1 < psplit; ++u) s += partial[u * wsize + i];
          dw[i] = s;
        }
      }
    }
  });
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
    if (g.k() == 0) {  // no input channels: the output is the bias (or zero)
      scalar_t* out = y.ptr<scalar_t>();
      const scalar_t* b = bias ? bias->ptr<scalar_t>() : nullptr;
      for (int64_t i = 0; i < g.n * g.oc; ++i)
        std::fill(out + i * g.pixels(), out + (i + 1) * g.pixels(), b ? b[i % g.oc] : scalar_t(0));
      return;
    }
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
    if (g.ocg() == 0) {  // no output channels: nothing flows back
      std::fill(dx.ptr<scalar_t>(), dx.ptr<scalar_t>() + dx.numel(), scalar_t(0));
      return;
    }
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
    if (g.n == 0) {  // an empty batch: no pixel contributes
      std::fill(dw_out.ptr<scalar_t>(), dw_out.ptr<scalar_t>() + dw_out.numel(), scalar_t(0));
      return;
    }
    backward_weight_impl<scalar_t>(g, x.ptr<scalar_t>(), dy.ptr<scalar_t>(),
                                   dw_out.ptr<scalar_t>());
  });
}

}  // namespace pydl::cpu
