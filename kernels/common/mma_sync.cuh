// Warp-level tensor-core building blocks for sm_80 and newer, shared by the kernel
// families that run their matrix products out of shared memory: cp.async copies into
// shared memory, ldmatrix fragment loads (plain and transposed), and mma.sync m16n8k16
// for float16 and bfloat16 with float32 accumulation. The instructions and fragment
// layouts are those of kernels/gemm/gemm_mma_sync.cu.
//
// Fragment layouts of m16n8k16 (g = lane / 4, t = lane % 4; the lower-indexed element of
// each pair sits in the low 16 bits of its register):
//   A (16 x 16, row):  a[0] (g, 2t..2t+1)  a[1] (g+8, 2t..)  a[2] (g, 2t+8..)  a[3] (g+8, 2t+8..)
//   B (16 x 8, col):   b[0] (k 2t..2t+1, n g)  b[1] (k 2t+8.., n g)
//   C (16 x 8, float): c[0], c[1] (g, 2t), (g, 2t+1);  c[2], c[3] (g+8, 2t), (g+8, 2t+1)
// So the C fragments of two neighbouring n-tiles, rounded and packed in pairs, are the
// A fragment of a 16-wide k step: the trick that keeps attention's probabilities in
// registers between its two products.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace pydl::cuda::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; bytes past `src_bytes` (0..16) are zero-filled. Both
// addresses must be 16-byte aligned; with src_bytes == 0 nothing is read.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 matrices of 16-bit elements; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// Two 8x8 matrices; lanes 0..15 give the row addresses (the others are ignored).
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}

// c += a * b on one 16x8x16 tile; the last argument only selects the input type.
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                          __half) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                          __nv_bfloat16) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two floats rounded to T (nearest even) and packed: `lo` in the low 16 bits.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, sizeof(r));
  return r;
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, sizeof(r));
  return r;
}

// acc (16 x 8*NI, float) += A (16 x K) * B (K x 8*NI), both operands in shared memory,
// K = kext, a multiple of 16. Each operand is stored either with k contiguous
// (A_KC: A[m][k] at sa[m * lda + k]; B_KC: B[k][n] at sb[n * ldb + k]) or with m / n
// contiguous (A[m][k] at sa[k * lda + m]; B[k][n] at sb[k * ldb + n]); sa points at
// A's element (0, 0) of the warp's tile, sb at B's (0, 0). Row strides must be a whole
// number of 16-byte units and every row start 16-byte aligned (ldmatrix); a stride of
// 16 bytes more than a multiple of 128 keeps every load free of bank conflicts.
template <typename T, int NI, bool A_KC, bool B_KC>
__device__ __forceinline__ void warp_mma(float (&acc)[NI][4], const T* sa, int lda, const T* sb, int ldb,
                                         int kext) {
  const int lane = threadIdx.x & 31, lr = lane & 7, lm = lane >> 3;
  for (int kk = 0; kk < kext; kk += 16) {
    uint32_t a[4];
    if constexpr (A_KC)
      ldmatrix_x4(a, sa + (lr + (lm & 1) * 8) * lda + kk + (lm >> 1) * 8);
    else
      ldmatrix_x4_trans(a, sa + (kk + lr + (lm >> 1) * 8) * lda + (lm & 1) * 8);
#pragma unroll
    for (int nj = 0; nj < NI / 2; ++nj) {
      uint32_t r[4];
      if constexpr (B_KC)
        ldmatrix_x4(r, sb + (nj * 16 + lr + (lm >> 1) * 8) * ldb + kk + (lm & 1) * 8);
      else
        ldmatrix_x4_trans(r, sb + (kk + lr + (lm & 1) * 8) * ldb + nj * 16 + (lm >> 1) * 8);
      const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
      mma_16816(acc[2 * nj], a, b0, T());
      mma_16816(acc[2 * nj + 1], a, b1, T());
    }
    if constexpr (NI % 2 == 1) {
      // The last n-tile alone: lanes 0..7 address its k 0..7, lanes 8..15 its k 8..15.
      constexpr int n0 = (NI - 1) * 8;
      uint32_t r[2];
      if constexpr (B_KC)
        ldmatrix_x2(r, sb + (n0 + lr) * ldb + kk + (lm & 1) * 8);
      else
        ldmatrix_x2_trans(r, sb + (kk + lr + (lm & 1) * 8) * ldb + n0);
      mma_16816(acc[NI - 1], a, r, T());
    }
  }
}

}  // namespace pydl::cuda::mma
