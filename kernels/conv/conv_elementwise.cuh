// Per-element bodies of the convolution's simple kernels: the weight repacking of the
// implicit GEMM, the reduction of split partial sums, and the three depthwise kernels. The
// kernels (conv_implicit_gemm.cu, conv_depthwise.cu) call them in grid-stride loops; they are
// host-callable so that the emulation in tests/cuda_emulation/ runs the same index arithmetic on
// the CPU.
#pragma once

#include "kernels/conv/conv_tiles.cuh"

namespace pydl::cuda::conv {

// Element e of the packed weights (see WeightPack), e < groups * Q * KI * KJ * ld.
template <typename R>
PYDL_CONV_HD R pack_weight_element(const WeightPack& p, int64_t e) {
  const int kij = p.KI * p.KJ, K = p.Q * kij;
  const int m = static_cast<int>(e % p.ld);
  const int64_t t = e / p.ld;
  const int k = static_cast<int>(t % K);
  const int64_t g = t / K;
  if (m >= p.M) return R(0);
  const int q = k / kij, r = k - q * kij;
  const int i = r / p.KJ, j = r - i * p.KJ;
  return static_cast<const R*>(p.w)[g * p.w_group + q * p.qs + m * p.ms + (p.r0 + i * p.rs) * p.KW + p.s0 + j * p.ss];
}

// sum over s < splits of ws[s * total + i], in order.
PYDL_CONV_HD float reduce_splits_element(const float* ws, int64_t total, int splits, int64_t i) {
  float s = 0.0f;
  for (int k = 0; k < splits; ++k) s += ws[k * total + i];
  return s;
}

// Output element idx of the depthwise forward, idx < N * OC * OH * OW.
template <typename T>
PYDL_CONV_HD void depthwise_forward_element(const Depthwise& p, int64_t idx) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* bias = static_cast<const T*>(p.bias);
  const int oc_n = p.C * p.mult, plane = p.OH * p.OW;
  const int64_t pl = idx / plane;  // img * OC + oc
  const int pix = static_cast<int>(idx - pl * plane);
  const int oc = static_cast<int>(pl % oc_n);
  const int64_t img = pl / oc_n;
  const int oh = pix / p.OW, ow = pix - oh * p.OW;
  const T* xp = x + (img * p.C + oc / p.mult) * p.H * p.W;
  const T* wp = w + static_cast<int64_t>(oc) * p.KH * p.KW;
  const int h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
  float acc = 0.0f;
  for (int r = 0; r < p.KH; ++r) {
    const int ih = h0 + r * p.dh;
    if (static_cast<unsigned>(ih) >= static_cast<unsigned>(p.H)) continue;
    for (int s = 0; s < p.KW; ++s) {
      const int iw = w0 + s * p.dw;
      if (static_cast<unsigned>(iw) >= static_cast<unsigned>(p.W)) continue;
      acc = fmaf(to_f32(load_global(xp + ih * p.W + iw)), to_f32(load_global(wp + r * p.KW + s)), acc);
    }
  }
  if (bias) acc += to_f32(load_global(bias + oc));
  static_cast<T*>(p.out)[idx] = from_f32<T>(acc);
}

// Input-gradient element idx of the depthwise convolution, idx < N * C * H * W. Output row
// oh reaches input row ih through tap r when oh * sh - ph + r * dh == ih: only those are read.
template <typename T>
PYDL_CONV_HD void depthwise_backward_input_element(const Depthwise& p, int64_t idx) {
  const T* dy = static_cast<const T*>(p.dy);
  const T* w = static_cast<const T*>(p.w);
  const int oc_n = p.C * p.mult, plane = p.H * p.W, oplane = p.OH * p.OW;
  const int64_t pl = idx / plane;  // img * C + c
  const int pix = static_cast<int>(idx - pl * plane);
  const int c = static_cast<int>(pl % p.C);
  const int64_t img = pl / p.C;
  const int ih = pix / p.W, iw = pix - ih * p.W;
  float acc = 0.0f;
  for (int jm = 0; jm < p.mult; ++jm) {
    const int oc = c * p.mult + jm;
    const T* dyp = dy + (img * oc_n + oc) * oplane;
    const T* wp = w + static_cast<int64_t>(oc) * p.KH * p.KW;
    for (int r = 0; r < p.KH; ++r) {
      const int th = ih + p.ph - r * p.dh;
      if (th < 0) break;  // decreases with r
      const int oh = th / p.sh;
      if (oh * p.sh != th || oh >= p.OH) continue;
      for (int s = 0; s < p.KW; ++s) {
        const int tw = iw + p.pw - s * p.dw;
        if (tw < 0) break;
        const int ow = tw / p.sw;
        if (ow * p.sw != tw || ow >= p.OW) continue;
        acc = fmaf(to_f32(load_global(dyp + oh * p.OW + ow)), to_f32(load_global(wp + r * p.KW + s)), acc);
      }
    }
  }
  static_cast<T*>(p.out)[idx] = from_f32<T>(acc);
}

// Thread `tid` of `nthreads`' share of weight element e = oc * KH * KW + tap over the pixels
// [split * chunk, (split + 1) * chunk) of N * OH * OW; the block adds the shares.
template <typename T>
PYDL_CONV_HD float depthwise_backward_weight_share(const Depthwise& p, int e, int split, int chunk, int tid,
                                                   int nthreads) {
  const T* x = static_cast<const T*>(p.x);
  const T* dy = static_cast<const T*>(p.dy);
  const int oc_n = p.C * p.mult, taps = p.KH * p.KW, plane = p.H * p.W, oplane = p.OH * p.OW;
  const int oc = e / taps, tap = e - oc * taps;
  const int r = tap / p.KW, s = tap - r * p.KW;
  const int c = oc / p.mult;
  const int64_t pixels = p.N * oplane;
  const int64_t begin = static_cast<int64_t>(split) * chunk;
  const int64_t end = begin + chunk < pixels ? begin + chunk : pixels;
  float acc = 0.0f;
  for (int64_t q = begin + tid; q < end; q += nthreads) {
    const int64_t img = q / oplane;
    const int pix = static_cast<int>(q - img * oplane);
    const int oh = pix / p.OW, ow = pix - oh * p.OW;
    const int ih = oh * p.sh - p.ph + r * p.dh, iw = ow * p.sw - p.pw + s * p.dw;
    if (static_cast<unsigned>(ih) >= static_cast<unsigned>(p.H) ||
        static_cast<unsigned>(iw) >= static_cast<unsigned>(p.W))
      continue;
    const float g = to_f32(load_global(dy + (img * oc_n + oc) * oplane + pix));
    acc = fmaf(g, to_f32(load_global(x + (img * p.C + c) * plane + ih * p.W + iw)), acc);
  }
  return acc;
}

}  // namespace pydl::cuda::conv
