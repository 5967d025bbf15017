// 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) on the CPU: each 2x2 block of outputs
// comes from a 4x4 input patch with 16 multiplies per (input, output) channel pair instead of
// 36, so the GEMM work is 2.25x smaller than a direct convolution's. The forward of 3x3
// stride-1 layers and their input gradient (the same convolution of dy with the flipped,
// transposed weights) run here when both channel counts are wide enough for the GEMMs to pay.
//
//   V = B^T d B (input patch d), U = G g G^T (3x3 weight g), Y = A^T (sum_c U .* V) A
//
// The 16 products over channels are GEMMs M[xi] (OC, tiles) = U[xi] (OC, C) @ V[xi] (C, tiles),
// run on the packed micro-kernels of csrc/cpu/gemm.h. Tiles are taken NR at a time (a block,
// spanning images, so small late-stage images still fill it); a block's transformed input is
// written straight in the micro-kernel's B-panel layout (C rows of NR tiles), so nothing is
// packed per GEMM, and each MR x NR result of the 16 GEMMs goes to the output transform while
// it is still in L1. Rounding: F(2x2, 3x3)'s transforms use only 1/2 and sums, and stay within
// a few ulps of a direct convolution's float32 result.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "csrc/cpu/gemm.h"

namespace pydl::cpu::winograd {

// y (n, oc, oh, ow) = conv3x3(x (n, c, h, w)) + bias with output (oh, ow) reading
// x[oh - ph + i][ow - pw + j] (zero outside); wat(o, ci, i, j) gives the weight.
template <typename Kern, typename T, typename WAt>
void conv3x3(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t oh, int64_t ow,
             int64_t ph, int64_t pw, const T* x, WAt&& wat, const T* bias, T* y) {
  constexpr int MR = Kern::MR, NR = Kern::NR;
  const int64_t TH = (oh + 1) / 2, TW = (ow + 1) / 2, tiles = n * TH * TW;
  const int64_t Hp = 2 * TH + 2, Wp = 2 * TW + 2, plane = Hp * Wp;
  // U[xi] (OC, C) in the packed layout of pack_a at ap + xi * asize; the 16 slabs are spaced
  // 16 elements more than they hold, so that they are not a power of two apart (cache sets).
  const int64_t Mp = padded_rows<Kern>(oc), asize = Mp * c + 16;
  thread_local std::vector<T> xpad, apack;  // kept between calls: no page faults
  xpad.resize(n * c * plane);
  apack.resize(16 * asize);
  T* const xp = xpad.data();  // thread_local: other threads use this thread's buffers
  T* const ap = apack.data();
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const T* src = x + nc * h * w;
    T* dst = xp + nc * plane;
    for (int64_t r = 0; r < Hp; ++r) {
      T* d = dst + r * Wp;
      const int64_t sr = r - ph;
      std::fill(d, d + Wp, T(0));
      if (sr < 0 || sr >= h) continue;
      const int64_t q0 = std::max<int64_t>(0, pw), q1 = std::min<int64_t>(Wp, w + pw);
      for (int64_t q = q0; q < q1; ++q) d[q] = src[sr * w + q - pw];
    }
  }
  // U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], written straight into the
  // packed slabs, one MR-row panel at a time.
#pragma omp parallel for schedule(static)
  for (int64_t ip = 0; ip < Mp; ip += MR)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t r = 0; r < MR; ++r) {
        const int64_t o = ip + r;
        T g[3][3] = {}, gg[4][3];
        if (o < oc)
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) g[i][j] = wat(o, ci, i, j);
        for (int j = 0; j < 3; ++j) {
          gg[0][j] = g[0][j];
          gg[1][j] = T(0.5) * (g[0][j] + g[1][j] + g[2][j]);
          gg[2][j] = T(0.5) * (g[0][j] - g[1][j] + g[2][j]);
          gg[3][j] = g[2][j];
        }
        for (int i = 0; i < 4; ++i) {
          T* u = ap + i * 4 * asize + ip * c + ci * MR + r;
          u[0] = gg[i][0];
          u[asize] = T(0.5) * (gg[i][0] + gg[i][1] + gg[i][2]);
          u[2 * asize] = T(0.5) * (gg[i][0] - gg[i][1] + gg[i][2]);
          u[3 * asize] = gg[i][2];
        }
      }

  const int64_t blocks = (tiles + NR - 1) / NR, panels = Mp / MR;
  const int64_t threads = omp_get_max_threads();
  // Few blocks (small images): also split the output channels, at least 4 panels a part.
  const int64_t parts = std::max<int64_t>(
      1, std::min((4 * threads + blocks - 1) / blocks, panels / 4));
  const int64_t per = (panels + parts - 1) / parts;
  const int64_t KC = gemm_detail::kslice(c);
  // The 16 transformed inputs of a block, each C rows of NR tiles, not a power of two apart.
  const int64_t vs = c * NR + 16;
  constexpr int64_t GP = 8;  // row panels sharing each B panel while it is in cache
#pragma omp parallel
  {
    thread_local std::vector<T> vbuf, mbuf;
    thread_local std::vector<int64_t> src_off, dst_off, dst_h, dst_w;
    vbuf.resize(16 * vs);
    mbuf.resize(16 * GP * MR * NR);
    src_off.resize(NR), dst_off.resize(NR), dst_h.resize(NR), dst_w.resize(NR);
    T* const vb = vbuf.data();
    T* const mb = mbuf.data();
    int64_t last_block = -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < blocks * parts; ++it) {
      const int64_t blk = it / parts, part = it % parts;
      const int64_t t0 = blk * NR, nt = std::min<int64_t>(NR, tiles - t0);
      if (blk != last_block) {  // transform this block's input once per thread
        last_block = blk;
        for (int64_t t = 0; t < nt; ++t) {
          const int64_t tt = t0 + t, img = tt / (TH * TW), ty = (tt / TW) % TH, tx = tt % TW;
          src_off[t] = img * c * plane + 2 * ty * Wp + 2 * tx;
          dst_off[t] = img * oc * oh * ow + 2 * ty * ow + 2 * tx;
          dst_h[t] = 2 * ty, dst_w[t] = 2 * tx;
        }
        for (int64_t ci = 0; ci < c; ++ci) {
          T* v = vb + ci * NR;  // v[xi * vs + t]
          for (int64_t t = 0; t < nt; ++t) {
            const T* p = xp + src_off[t] + ci * plane;
            T d[4][4], e[4][4];
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j) d[i][j] = p[i * Wp + j];
            // B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
            for (int j = 0; j < 4; ++j) {
              e[0][j] = d[0][j] - d[2][j];
              e[1][j] = d[1][j] + d[2][j];
              e[2][j] = d[2][j] - d[1][j];
              e[3][j] = d[1][j] - d[3][j];
            }
            for (int i = 0; i < 4; ++i) {
              v[(i * 4 + 0) * vs + t] = e[i][0] - e[i][2];
              v[(i * 4 + 1) * vs + t] = e[i][1] + e[i][2];
              v[(i * 4 + 2) * vs + t] = e[i][2] - e[i][1];
              v[(i * 4 + 3) * vs + t] = e[i][1] - e[i][3];
            }
          }
          for (int64_t t = nt; t < NR; ++t)
            for (int xi = 0; xi < 16; ++xi) v[xi * vs + t] = T(0);
        }
      }
      const int64_t p0 = part * per, p1 = std::min(panels, p0 + per);
      for (int64_t g0 = p0; g0 < p1; g0 += GP) {
        const int64_t gn = std::min(GP, p1 - g0);
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t pc = 0; pc < c; pc += KC)
            for (int64_t gp = 0; gp < gn; ++gp)
              Kern::micro(std::min(KC, c - pc), ap + xi * asize + (g0 + gp) * MR * c + pc * MR,
                          vb + xi * vs + pc * NR, mb + (xi * GP + gp) * MR * NR, pc > 0);
        // Y = A^T m A, A^T = [1 1 1 0; 0 1 -1 -1]
        for (int64_t gp = 0; gp < gn; ++gp) {
          const int64_t ip = (g0 + gp) * MR, mr = std::min<int64_t>(MR, oc - ip);
          for (int64_t r = 0; r < mr; ++r) {
            const T add = bias ? bias[ip + r] : T(0);
            T* yo = y + (ip + r) * oh * ow;
            const T* m = mb + gp * MR * NR + r * NR;  // m[xi * GP * MR * NR + t]
            constexpr int64_t X = GP * MR * NR;
            for (int64_t t = 0; t < nt; ++t) {
              T s0[4], s1[4];
              for (int j = 0; j < 4; ++j) {
                const T m0 = m[j * X + t], m1 = m[(4 + j) * X + t];
                const T m2 = m[(8 + j) * X + t], m3 = m[(12 + j) * X + t];
                s0[j] = m0 + m1 + m2;
                s1[j] = m1 - m2 - m3;
              }
              T* o = yo + dst_off[t];
              const bool right = dst_w[t] + 1 < ow, below = dst_h[t] + 1 < oh;
              o[0] = s0[0] + s0[1] + s0[2] + add;
              if (right) o[1] = s0[1] - s0[2] - s0[3] + add;
              if (below) {
                o[ow] = s1[0] + s1[1] + s1[2] + add;
                if (right) o[ow + 1] = s1[1] - s1[2] - s1[3] + add;
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace pydl::cpu::winograd
