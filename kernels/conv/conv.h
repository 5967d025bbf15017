// Host API of the CUDA convolution kernels (NCHW conv2d: forward, input gradient, weight
// gradient; stride, padding, dilation, groups). Plain C++ (no CUDA headers), so the bindings
// include it with the host compiler.
//
// `input` is always the NCHW input side (x, or the input gradient dx), `output` the NCHW
// output side (y, or the output gradient dy), `weight` (OC, C / groups, KH, KW). Padding is
// (top, left); the bottom and right padding follow from the output size, as on the CPU.
//
// conv2d_plan validates the arrays and names the variant a call runs and the workspace it
// needs (Python allocates it through CuPy and passes it down; nothing here allocates):
//   "gemm"          1x1, stride 1, no padding, groups 1 (and, for the weight gradient, one
//                   image): a plain GEMM; Python calls pydl's GEMM on the arrays themselves.
//                   The launchers also run such calls, through the implicit GEMM.
//   "implicit_mma"  float16 / bfloat16 implicit GEMM on tensor cores (mma.sync m16n8k16)
//   "implicit_tf32" float32 rounded to TF32 on tensor cores (mma.sync m16n8k8), allow_tf32
//   "implicit_simt" float32 on CUDA cores, exact FMA
//   "depthwise"     one input channel per group (groups == C): a direct kernel
//   "interim"       not covered (float64, index ranges past 32 bits, grids past their
//                   limits): Python runs pydl/backend/xp_conv.py; `reason` says why, and
//                   the launchers refuse such calls with a TypeError or ValueError.
// Workspaces: forward and input gradient of the implicit GEMM take the weights repacked
// (input dtype); the weight gradient takes float32 partial sums, one slice per split of
// the pixel reduction. Every launcher runs on `stream` (a cudaStream_t as an integer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "csrc/tensor_view.h"

namespace pydl::cuda {

enum class ConvPass : int { Forward = 0, BackwardInput = 1, BackwardWeight = 2 };

// Parses "forward", "backward_input", "backward_weight"; ValueError otherwise.
ConvPass conv_pass_from_name(const std::string& name);

struct ConvConfig {
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  bool allow_tf32 = false;
};

struct ConvPlan {
  std::string variant;
  std::string reason;             // why the call is "interim"; empty otherwise
  int64_t workspace = 0;          // elements
  bool workspace_float32 = false; // float32 (weight gradient) or the input's dtype
};

ConvPlan conv2d_plan(ConvPass pass, const TensorView& input, const TensorView& weight,
                     const TensorView& output, const ConvConfig& cfg);

// y = conv2d(x, weight) + bias; workspace as conv2d_plan says (may be absent when it needs none).
void conv2d_forward(const TensorView& x, const TensorView& weight, const std::optional<TensorView>& bias,
                    const TensorView& y, const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                    std::uintptr_t stream);
// dx from dy (the transposed convolution of dy with weight).
void conv2d_backward_input(const TensorView& dy, const TensorView& weight, const TensorView& dx,
                           const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                           std::uintptr_t stream);
// dweight (same dtype as x) from x and dy, summed over every image and output pixel.
void conv2d_backward_weight(const TensorView& x, const TensorView& dy, const TensorView& dweight,
                            const std::optional<TensorView>& workspace, const ConvConfig& cfg,
                            std::uintptr_t stream);

}  // namespace pydl::cuda
