// Host launchers for the CUDA row kernels: softmax / log_softmax, layer norm /
// RMSNorm and fused cross-entropy, forward and backward. Plain C++ (no CUDA
// headers), so the bindings include it with the host compiler.
//
// Each launcher validates its views (device, dtype, contiguity, shapes; errors
// name the op like the CPU kernels), launches on `stream` (a cudaStream_t
// passed as an integer; 0 is the legacy default stream), and turns a launch
// error into CudaError naming the kernel. None of them allocates device memory
// or synchronizes.
//
// Dtypes: inputs are float32, float64, float16 or bfloat16; half types compute
// in float32, float64 in double. Per-row statistics (layer-norm mean and rstd,
// cross-entropy loss, lse and its incoming gradient) are float32 for the half
// types and the input's dtype otherwise: see stats_dtype().
#pragma once

#include <cstdint>
#include <optional>

#include "csrc/tensor_view.h"

namespace pydl::cuda {

// Dtype of the per-row statistics for inputs of dtype `t`.
inline DType stats_dtype(DType t) {
  return (t == DType::Float16 || t == DType::BFloat16) ? DType::Float32 : t;
}

// y = softmax(x) or log_softmax(x) over the last dimension.
void softmax_forward(const TensorView& x, const TensorView& y, bool log, std::uintptr_t stream);
// dx from the forward output y and the upstream gradient dy.
void softmax_backward(const TensorView& y, const TensorView& dy, const TensorView& dx, bool log,
                      std::uintptr_t stream);

// Layer norm (rms=false) or RMSNorm (rms=true) over the last dimension.
// mean and rstd are (rows,) in stats_dtype(x); mean gets 0 for RMSNorm.
void layer_norm_forward(const TensorView& x, const std::optional<TensorView>& weight,
                        const std::optional<TensorView>& bias, const TensorView& y,
                        const TensorView& mean, const TensorView& rstd, double eps, bool rms,
                        std::uintptr_t stream);
// float32 elements of the workspace layer_norm_backward needs for dweight/dbias.
int64_t layer_norm_backward_workspace_size(int64_t rows, int64_t cols);
// dx, and (when given) dweight/dbias summed over rows through partial slots
// in `workspace` (float32, at least layer_norm_backward_workspace_size elements;
// may be absent when neither dweight nor dbias is requested).
void layer_norm_backward(const TensorView& x, const std::optional<TensorView>& weight,
                         const TensorView& mean, const TensorView& rstd, const TensorView& dy,
                         const TensorView& dx, const std::optional<TensorView>& dweight,
                         const std::optional<TensorView>& dbias,
                         const std::optional<TensorView>& workspace, bool rms,
                         std::uintptr_t stream);

// Fused log-softmax + NLL with ignore_index and label smoothing over (N, C) logits.
// loss and lse are (N,) in stats_dtype(logits); ignored rows get 0. A target
// outside [0, C) that is not ignore_index gives that row a NaN loss and lse, and
// the smallest such row index + 1 is stored in error_flag (int32, (1,), zeroed
// by the caller).
void cross_entropy_forward(const TensorView& logits, const TensorView& target, const TensorView& loss,
                           const TensorView& lse, const TensorView& error_flag, int64_t ignore_index,
                           double label_smoothing, std::uintptr_t stream);
// dlogits = dloss[row] * (softmax - (1 - s) * onehot(target) - s / C); zero rows for
// ignored and out-of-range targets. lse and dloss are (N,) in stats_dtype(logits).
void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView& lse,
                            const TensorView& dloss, const TensorView& dlogits, int64_t ignore_index,
                            double label_smoothing, std::uintptr_t stream);

}  // namespace pydl::cuda
