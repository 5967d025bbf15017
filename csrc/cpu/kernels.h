// CPU kernels (OpenMP over rows). Every tensor is a contiguous (rows, cols)
// view unless a comment says otherwise; outputs are allocated by the caller.
#pragma once

#include <optional>

#include "csrc/tensor_view.h"

namespace pydl::cpu {

// Below this many elements a row kernel runs on the calling thread: waking an
// OpenMP team costs more than the work, and far more on a busy machine.
constexpr int64_t kParallelMin = 1 << 15;

// y = softmax(x) or log_softmax(x) over the last dimension.
void softmax_forward(const TensorView& x, const TensorView& y, bool log);
// dx from the forward output y and the upstream gradient dy.
void softmax_backward(const TensorView& y, const TensorView& dy, const TensorView& dx, bool log);

// Layer norm (rms=false) or RMSNorm (rms=true) over the last dimension.
// mean and rstd are (rows,) outputs saved for the backward (mean is unused for RMSNorm).
void layer_norm_forward(const TensorView& x, const std::optional<TensorView>& weight,
                        const std::optional<TensorView>& bias, const TensorView& y,
                        const TensorView& mean, const TensorView& rstd, double eps, bool rms);
void layer_norm_backward(const TensorView& x, const std::optional<TensorView>& weight,
                         const TensorView& mean, const TensorView& rstd, const TensorView& dy,
                         const TensorView& dx, const std::optional<TensorView>& dweight,
                         const std::optional<TensorView>& dbias, bool rms);

// Fused log-softmax + NLL with ignore_index and label smoothing, one row per sample.
// loss (rows,) gets each row's loss (0 for ignored rows); lse (rows,) the row's log-sum-exp.
void cross_entropy_forward(const TensorView& logits, const TensorView& target, const TensorView& loss,
                           const TensorView& lse, int64_t ignore_index, double label_smoothing);
// dlogits = dloss[row] * (softmax - (1 - s) * onehot(target) - s / C); zero for ignored rows.
void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView& lse,
                            const TensorView& dloss, const TensorView& dlogits, int64_t ignore_index,
                            double label_smoothing);

// conv2d over NCHW arrays (weight (OC, C / groups, KH, KW)); padding is the top/left pad, and
// the output's spatial size comes from y (dy), so asymmetric "same" padding needs no extra case.
void conv2d_forward(const TensorView& x, const TensorView& w, const std::optional<TensorView>& bias,
                    const TensorView& y, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                    int64_t dw, int64_t groups);
void conv2d_backward_input(const TensorView& dy, const TensorView& w, const TensorView& dx,
                           int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                           int64_t groups);
void conv2d_backward_weight(const TensorView& x, const TensorView& dy, const TensorView& dw_out,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                            int64_t groups);

// Fused scaled-dot-product attention (csrc/cpu/attention.cpp). q (B, L, E), k (B, S, E),
// v (B, S, Ev) contiguous; mask an optional additive view (B1, B2, L, S) with B1*B2 = B and
// any strides (zero where broadcast); out (B, L, Ev) and lse (B, L) are outputs. Dropout
// draws Philox-4x32-10 at counter offset + (b*L + i)*S + j.
void attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                       const std::optional<TensorView>& mask, const TensorView& out,
                       const TensorView& lse, double scale, bool causal, double dropout_p,
                       uint64_t seed, uint64_t offset);
void attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                        const std::optional<TensorView>& mask, const TensorView& out,
                        const TensorView& lse, const TensorView& dout, const TensorView& dq,
                        const TensorView& dk, const TensorView& dv, double scale, bool causal,
                        double dropout_p, uint64_t seed, uint64_t offset);

}  // namespace pydl::cpu
