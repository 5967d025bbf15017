// Fused cross-entropy over (N, C) logits: log-softmax + NLL + ignore_index +
// label smoothing, forward and backward, for float32, float64, float16 and
// bfloat16 logits (half types compute in float32; loss and lse are float32 for
// them, float64 for float64 logits).
//
// Forward: one row per warp (C <= 1024, four rows per block) or per block
// (wider rows, e.g. vocabularies). Each row is read once, keeping an online
// (max, sum of exp) and the sum of the logits; the probabilities are never
// written, so the forward moves C elements per row and nothing else.
// An out-of-range target is never dereferenced: its row gets NaN and the
// smallest such row + 1 goes to error_flag for the caller to raise on.
// Backward: an elementwise grid over (row, chunk) pairs that recomputes
// softmax = exp(x - lse) from the saved lse, one read and one write per element.
// Both use 128-bit Pack accesses when C is a multiple of the pack width and the
// pointers are 16-byte aligned, scalar accesses otherwise.
#include "kernels/common/cuda_utils.cuh"
#include "kernels/rowops.h"

namespace pydl::cuda {

namespace {

// Keeps the smallest bad row + 1 in *flag (0 means none yet).
__device__ __forceinline__ void record_bad_row(int* flag, int value) {
  int old = *flag;
  while (old == 0 || old > value) {
    const int prev = atomicCAS(flag, old, value);
    if (prev == old) break;
    old = prev;
  }
}

template <typename T, int kN, bool kWarp>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ x,
                                             const int64_t* __restrict__ target,
                                             acc_t<T>* __restrict__ loss, acc_t<T>* __restrict__ lse,
                                             int* __restrict__ error_flag, int64_t rows, int cols,
                                             int64_t ignore_index, acc_t<T> smoothing) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  __shared__ A red[64];
  const RowGroup<kWarp> g;
  if (g.row >= rows) return;
  const int64_t t = target[g.row];
  if (t == ignore_index) {
    if (g.rank == 0) loss[g.row] = lse[g.row] = A(0);
    return;
  }
  if (t < 0 || t >= cols) {
    if (g.rank == 0) {
      loss[g.row] = lse[g.row] = A(NAN);
      record_bad_row(error_flag, static_cast<int>(g.row + 1));
    }
    return;
  }
  const T* xr = x + g.row * cols;
  const int chunks = cols / kN;
  MaxSum<A> ms;
  A sum_x = 0;
  for (int c = g.rank; c < chunks; c += g.size) {
    const C v = load_chunk<T, kN>(xr + static_cast<int64_t>(c) * kN);
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const A a = to_acc(v.v[i]);
      maxsum_add(ms, a);
      sum_x += a;
    }
  }
  ms = group_maxsum<kWarp>(ms, red);
  // The smoothing term is skipped when unused, so a -inf logit cannot turn 0 * inf into NaN.
  if (smoothing != A(0)) sum_x = group_sum<kWarp>(sum_x, red);
  if (g.rank == 0) {
    const A l = ms.m + acc_log(ms.s);
    A out = (A(1) - smoothing) * (l - to_acc(xr[t]));
    if (smoothing != A(0)) out += smoothing * (l - sum_x / cols);
    loss[g.row] = out;
    lse[g.row] = l;
  }
}

template <typename T, int kN>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ x,
                                              const int64_t* __restrict__ target,
                                              const acc_t<T>* __restrict__ lse,
                                              const acc_t<T>* __restrict__ dloss, T* __restrict__ dx,
                                              int64_t rows, int cols, int64_t ignore_index,
                                              acc_t<T> smoothing) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  const int chunks = cols / kN;
  const int64_t total = rows * chunks;
  const A off = smoothing / cols, hit = A(1) - smoothing;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = k / chunks;
    const int c0 = static_cast<int>(k - row * chunks) * kN;
    const int64_t i0 = row * cols + c0;
    const int64_t t = target[row];
    C o;
    if (t == ignore_index || t < 0 || t >= cols) {
#pragma unroll
      for (int i = 0; i < kN; ++i) o.v[i] = from_acc<T>(A(0));
    } else {
      const A gl = dloss[row], l = lse[row];
      const C v = load_chunk<T, kN>(x + i0);
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        A d = acc_exp(to_acc(v.v[i]) - l) - off;
        if (c0 + i == t) d -= hit;
        o.v[i] = from_acc<T>(gl * d);
      }
    }
    store_chunk(dx + i0, o);
  }
}

template <typename T, int kN>
void launch_forward(const T* x, const int64_t* target, acc_t<T>* loss, acc_t<T>* lse, int* flag,
                    int64_t rows, int64_t cols, int64_t ignore_index, double smoothing,
                    cudaStream_t stream) {
  // Nothing is staged: shared memory holds only the reduction scratch.
  const RowPlan p = plan_rows(rows, cols, kN, 0, 8);
  auto run = [&](auto kernel) {
    kernel<<<p.blocks, p.threads, 0, stream>>>(x, target, loss, lse, flag, rows,
                                               static_cast<int>(cols), ignore_index,
                                               static_cast<acc_t<T>>(smoothing));
  };
  if (p.warp) run(cross_entropy_forward_kernel<T, kN, true>);
  else run(cross_entropy_forward_kernel<T, kN, false>);
  check_launch("cross_entropy_forward_kernel");
}

template <typename T, int kN>
void launch_backward(const T* x, const int64_t* target, const acc_t<T>* lse, const acc_t<T>* dloss,
                     T* dx, int64_t rows, int64_t cols, int64_t ignore_index, double smoothing,
                     cudaStream_t stream) {
  const int64_t total = rows * (cols / kN);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65536);
  cross_entropy_backward_kernel<T, kN><<<blocks, threads, 0, stream>>>(
      x, target, lse, dloss, dx, rows, static_cast<int>(cols), ignore_index,
      static_cast<acc_t<T>>(smoothing));
  check_launch("cross_entropy_backward_kernel");
}

void check_inputs(const char* op, const TensorView& logits, const TensorView& target) {
  check_device(op, "input", logits);
  check_device(op, "target", target);
  check_gpu_float(op, "input", logits);
  check_contiguous(op, "input", logits);
  if (logits.ndim() != 2)
    throw ValueError(std::string(op) + ": input must be 2-D (rows, classes), got shape " +
                     shape_str(logits.shape));
  if (target.dtype != DType::Int64)
    throw TypeError(std::string(op) + ": target must be int64 class indices, got " +
                    dtype_name(target.dtype));
  check_contiguous(op, "target", target);
  check_shape(op, "target", target, {logits.size(0)});
  if (logits.size(1) > INT32_MAX)
    throw ValueError(std::string(op) + ": " + std::to_string(logits.size(1)) +
                     " classes is too many");
  if (logits.size(0) >= INT32_MAX)
    throw ValueError(std::string(op) + ": " + std::to_string(logits.size(0)) + " rows is too many");
}

void check_vec(const char* op, const char* arg, const TensorView& t, const TensorView& logits) {
  check_device(op, arg, t);
  check_contiguous(op, arg, t);
  check_dtype(op, arg, t, stats_dtype(logits.dtype));
  check_shape(op, arg, t, {logits.size(0)});
}

}  // namespace

void cross_entropy_forward(const TensorView& logits, const TensorView& target, const TensorView& loss,
                           const TensorView& lse, const TensorView& error_flag, int64_t ignore_index,
                           double label_smoothing, std::uintptr_t stream) {
  const char* op = "cross_entropy";
  check_inputs(op, logits, target);
  check_vec(op, "loss", loss, logits);
  check_vec(op, "lse", lse, logits);
  check_device(op, "error_flag", error_flag);
  check_dtype(op, "error_flag", error_flag, DType::Int32);
  check_shape(op, "error_flag", error_flag, {1});
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0) return;
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  PYDL_DISPATCH_CUDA_FLOAT(logits.dtype, op, [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* xp = logits.ptr<scalar_t>();
    constexpr int kP = Pack<scalar_t>::N;
    if (cols % kP == 0 && aligned16(xp))
      launch_forward<scalar_t, kP>(xp, target.ptr<int64_t>(), loss.ptr<A>(), lse.ptr<A>(),
                                   error_flag.ptr<int>(), rows, cols, ignore_index,
                                   label_smoothing, st);
    else
      launch_forward<scalar_t, 1>(xp, target.ptr<int64_t>(), loss.ptr<A>(), lse.ptr<A>(),
                                  error_flag.ptr<int>(), rows, cols, ignore_index,
                                  label_smoothing, st);
  });
}

void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView& lse,
                            const TensorView& dloss, const TensorView& dlogits, int64_t ignore_index,
                            double label_smoothing, std::uintptr_t stream) {
  const char* op = "cross_entropy_backward";
  check_inputs(op, logits, target);
  check_vec(op, "lse", lse, logits);
  check_vec(op, "grad_loss", dloss, logits);
  check_device(op, "grad_input", dlogits);
  check_contiguous(op, "grad_input", dlogits);
  check_same_dtype(op, "grad_input", dlogits, logits);
  check_shape(op, "grad_input", dlogits, logits.shape);
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0 || cols == 0) return;
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  PYDL_DISPATCH_CUDA_FLOAT(logits.dtype, op, [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* xp = logits.ptr<scalar_t>();
    scalar_t* dp = dlogits.ptr<scalar_t>();
    constexpr int kP = Pack<scalar_t>::N;
    if (cols % kP == 0 && aligned16(xp) && aligned16(dp))
      launch_backward<scalar_t, kP>(xp, target.ptr<int64_t>(), lse.ptr<A>(), dloss.ptr<A>(), dp,
                                    rows, cols, ignore_index, label_smoothing, st);
    else
      launch_backward<scalar_t, 1>(xp, target.ptr<int64_t>(), lse.ptr<A>(), dloss.ptr<A>(), dp,
                                   rows, cols, ignore_index, label_smoothing, st);
  });
}

}  // namespace pydl::cuda
