// Depthwise convolution (groups == C, one input channel per group, OC = C * mult): direct
// kernels for the three passes, since as a GEMM each group would have K = KH * KW and a tile
// of at most mult rows. All accumulate in float32.
//  forward: one thread per output element, KH * KW taps read from the input plane.
//  input gradient: one thread per input element; for each tap only the output pixel that
//    reaches it through the stride (if any) is read, so no multiply lands on the zeros a
//    strided convolution's gradient would insert.
//  weight gradient: one block per (weight element, split of the pixels); each block sums
//    dy * x over its pixels and writes the float32 partial sum to the workspace, which
//    launch_reduce_splits (conv_implicit_gemm.cu) adds up in a fixed order.
// Taps outside the image are skipped (zero padding). Element indices are 64-bit; offsets
// inside one image plane are 32-bit (conv2d_plan checks they fit).
#include <algorithm>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/conv/conv_elementwise.cuh"

namespace pydl::cuda::conv {
namespace {

constexpr int kBlock = 256;

template <typename T>
__global__ void __launch_bounds__(kBlock) conv_depthwise_forward_kernel(const Depthwise p, int64_t total) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x)
    depthwise_forward_element<T>(p, idx);
}

template <typename T>
__global__ void __launch_bounds__(kBlock) conv_depthwise_backward_input_kernel(const Depthwise p, int64_t total) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x)
    depthwise_backward_input_element<T>(p, idx);
}

// Block (e, s) writes the partial sum of weight element e over split s of the pixels.
template <typename T>
__global__ void __launch_bounds__(kBlock) conv_depthwise_backward_weight_kernel(const Depthwise p, int chunk) {
  __shared__ float red[32];
  const int e = static_cast<int>(blockIdx.x), split = static_cast<int>(blockIdx.y);
  float acc = depthwise_backward_weight_share<T>(p, e, split, chunk, threadIdx.x, blockDim.x);
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) p.ws[static_cast<int64_t>(split) * p.C * p.mult * p.KH * p.KW + e] = acc;
}

unsigned grid_for(int64_t total) {
  return static_cast<unsigned>(std::clamp<int64_t>((total + kBlock - 1) / kBlock, 1, int64_t{1} << 20));
}

template <typename Launch>
void by_dtype(DType dtype, const char* op, Launch&& launch) {
  switch (dtype) {
    case DType::Float32: return launch(float());
    case DType::Float16: return launch(__half());
    case DType::BFloat16: return launch(__nv_bfloat16());
    default:
      throw TypeError(std::string(op) + ": unsupported dtype " + dtype_name(dtype) + " for the depthwise kernel");
  }
}

}  // namespace

void launch_depthwise_forward(const Depthwise& p, DType dtype, Stream stream) {
  const int64_t total = p.N * p.C * p.mult * p.OH * p.OW;
  if (total <= 0) return;
  by_dtype(dtype, "conv2d", [&](auto tag) {
    using T = decltype(tag);
    conv_depthwise_forward_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(p, total);
    check_launch("conv_depthwise_forward_kernel");
  });
}

void launch_depthwise_backward_input(const Depthwise& p, DType dtype, Stream stream) {
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total <= 0) return;
  by_dtype(dtype, "conv2d_backward_input", [&](auto tag) {
    using T = decltype(tag);
    conv_depthwise_backward_input_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(p, total);
    check_launch("conv_depthwise_backward_input_kernel");
  });
}

void launch_depthwise_backward_weight(const Depthwise& p, DType dtype, Stream stream) {
  const int64_t entries = static_cast<int64_t>(p.C) * p.mult * p.KH * p.KW;
  if (entries <= 0) return;
  const int64_t pixels = p.N * p.OH * p.OW;
  const int chunk = static_cast<int>(std::max<int64_t>(1, (pixels + p.splits - 1) / p.splits));
  by_dtype(dtype, "conv2d_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    conv_depthwise_backward_weight_kernel<T>
        <<<dim3(static_cast<unsigned>(entries), static_cast<unsigned>(p.splits)), kBlock, 0, stream>>>(p, chunk);
    check_launch("conv_depthwise_backward_weight_kernel");
  });
}

}  // namespace pydl::cuda::conv
