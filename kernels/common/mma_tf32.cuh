// TF32 tensor-core building blocks (sm_80 and newer), beside the 16-bit ones of
// kernels/common/mma_sync.cuh: float32 rounded to TF32 and mma.sync m16n8k8 with float32
// accumulation. The instructions and fragment layouts are those of
// kernels/gemm/gemm_mma_sync.cu.
//
// Fragment layouts of m16n8k8.tf32 (g = lane / 4, t = lane % 4), one 32-bit element per
// register:
//   A (16 x 8, row):  a[0] (g, t)  a[1] (g+8, t)  a[2] (g, t+4)  a[3] (g+8, t+4)
//   B (8 x 8, col):   b[0] (k t, n g)  b[1] (k t+4, n g)
//   C (16 x 8, float): as m16n8k16: c[0], c[1] (g, 2t), (g, 2t+1); c[2], c[3] (g+8, 2t), (g+8, 2t+1)
#pragma once

#include <cstdint>

namespace pydl::cuda::mma {

// float32 -> TF32 (round to nearest, ties away from zero), as the 32-bit pattern mma reads.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// c += a * b on one 16x8x8 tile of TF32 inputs.
__device__ __forceinline__ void mma_1688_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

}  // namespace pydl::cuda::mma
