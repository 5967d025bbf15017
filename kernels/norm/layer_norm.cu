// layer_norm and RMSNorm over the last dimension, forward and backward, for
// float32, float64, float16 and bfloat16 (half types compute in float32; mean
// and rstd are float32 for them, float64 for float64 input).
//
// Forward, picked per call by plan_rows() from the row width:
//  - warp per row (cols <= 1024) or block per row, row staged in shared memory
//    (row bytes <= 128 KiB): x is read from HBM once, mean and variance come
//    from two exact passes over the staged row (no E[x^2] - E[x]^2
//    cancellation), y is written once.
//  - block per row, row too wide: the two statistics passes and the write pass
//    read x from global memory (mostly L2) three times.
// Backward: a grid sized to fill the GPU, each block looping over a strided
// set of rows. dx needs two row sums (of g = dy * w and of g * xhat), so x and
// dy are staged like the forward. dweight/dbias: every thread owns the same
// columns in every row, so it accumulates them privately in shared memory (when
// 2 * cols accumulators fit) and adds them once, at the end, into one of at
// most 512 partial slots in the workspace (block b into slot b % slots: a few
// atomic adds per address, spread over the run). Rows too wide for that add
// each row into the slot directly. A second small kernel sums the slots
// column by column.
// 128-bit Pack loads and stores when cols is a multiple of the pack width and
// all row pointers are 16-byte aligned, scalar accesses otherwise.
#include "kernels/common/cuda_utils.cuh"
#include "kernels/rowops.h"

namespace pydl::cuda {

namespace {

template <typename T, int kN, bool kWarp, bool kStaged>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                          const T* __restrict__ b, T* __restrict__ y,
                                          acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ rstd,
                                          int64_t rows, int cols, acc_t<T> eps, bool rms) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  __shared__ A red[64];
  extern __shared__ __align__(16) unsigned char smem[];
  const RowGroup<kWarp> g;
  if (g.row >= rows) return;
  const int chunks = cols / kN;
  const T* xr = x + g.row * cols;
  T* yr = y + g.row * cols;
  C* stage = reinterpret_cast<C*>(smem) + static_cast<int64_t>(g.slot) * chunks;
  auto row_chunk = [&](int c) {
    if constexpr (kStaged) return stage[c];
    else return load_chunk<T, kN>(xr + static_cast<int64_t>(c) * kN);
  };

  A sum = 0;
  for (int c = g.rank; c < chunks; c += g.size) {
    const C v = load_chunk<T, kN>(xr + static_cast<int64_t>(c) * kN);
    if constexpr (kStaged) stage[c] = v;
#pragma unroll
    for (int i = 0; i < kN; ++i) sum += to_acc(v.v[i]);
  }
  const A mu = rms ? A(0) : group_sum<kWarp>(sum, red) / cols;

  A var = 0;
  for (int c = g.rank; c < chunks; c += g.size) {
    const C v = row_chunk(c);
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const A d = to_acc(v.v[i]) - mu;
      var += d * d;
    }
  }
  var = group_sum<kWarp>(var, red) / cols;
  const A rs = acc_rsqrt(var + eps);
  if (g.rank == 0) {
    mean[g.row] = mu;
    rstd[g.row] = rs;
  }

  for (int c = g.rank; c < chunks; c += g.size) {
    const C v = row_chunk(c);
    C wv, bv, o;
    if (w) wv = load_chunk<T, kN>(w + static_cast<int64_t>(c) * kN);
    if (b) bv = load_chunk<T, kN>(b + static_cast<int64_t>(c) * kN);
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      A r = (to_acc(v.v[i]) - mu) * rs;
      if (w) r *= to_acc(wv.v[i]);
      if (b) r += to_acc(bv.v[i]);
      o.v[i] = from_acc<T>(r);
    }
    store_chunk(yr + static_cast<int64_t>(c) * kN, o);
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w (mean(g) is
// dropped for RMSNorm). `partial` (nullable, zeroed) holds `slots` partial
// slots of (2, cols): dweight partials, then dbias partials.
template <typename T, int kN, bool kStaged>
__global__ void layer_norm_backward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                           const acc_t<T>* __restrict__ mean,
                                           const acc_t<T>* __restrict__ rstd,
                                           const T* __restrict__ dy, T* __restrict__ dx,
                                           acc_t<T>* __restrict__ partial, int slots,
                                           bool partial_in_shared, int64_t rows, int cols,
                                           bool rms) {
  using A = acc_t<T>;
  using C = Chunk<T, kN>;
  __shared__ A red[64];
  extern __shared__ __align__(16) unsigned char smem[];
  const int chunks = cols / kN;
  C* stage_x = reinterpret_cast<C*>(smem);
  C* stage_g = stage_x + (kStaged ? chunks : 0);
  A* slot = partial ? partial + static_cast<int64_t>(blockIdx.x % slots) * 2 * cols : nullptr;
  A* acc = partial_in_shared ? reinterpret_cast<A*>(stage_g + (kStaged ? chunks : 0)) : nullptr;
  if (acc) {
    for (int c = threadIdx.x; c < chunks; c += blockDim.x)
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        acc[c * kN + i] = 0;
        acc[cols + c * kN + i] = 0;
      }
  }

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t off = row * cols;
    const A m = rms ? A(0) : mean[row], s = rstd[row];
    A sum_g = 0, sum_gx = 0;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const int64_t i0 = off + static_cast<int64_t>(c) * kN;
      const C xv = load_chunk<T, kN>(x + i0), gv = load_chunk<T, kN>(dy + i0);
      if constexpr (kStaged) {
        stage_x[c] = xv;
        stage_g[c] = gv;
      }
      C wv;
      if (w) wv = load_chunk<T, kN>(w + static_cast<int64_t>(c) * kN);
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        const A xhat = (to_acc(xv.v[i]) - m) * s, go = to_acc(gv.v[i]);
        const A gi = w ? go * to_acc(wv.v[i]) : go;
        sum_g += gi;
        sum_gx += gi * xhat;
        if (acc) {
          acc[c * kN + i] += go * xhat;
          acc[cols + c * kN + i] += go;
        } else if (slot) {
          atomicAdd(slot + c * kN + i, go * xhat);
          atomicAdd(slot + cols + c * kN + i, go);
        }
      }
    }
    sum_g = block_sum(sum_g, red);
    sum_gx = block_sum(sum_gx, red);
    const A mg = rms ? A(0) : sum_g / cols, mgx = sum_gx / cols;

    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const int64_t i0 = off + static_cast<int64_t>(c) * kN;
      C xv, gv, wv, o;
      if constexpr (kStaged) {
        xv = stage_x[c];
        gv = stage_g[c];
      } else {
        xv = load_chunk<T, kN>(x + i0);
        gv = load_chunk<T, kN>(dy + i0);
      }
      if (w) wv = load_chunk<T, kN>(w + static_cast<int64_t>(c) * kN);
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        const A xhat = (to_acc(xv.v[i]) - m) * s, go = to_acc(gv.v[i]);
        const A gi = w ? go * to_acc(wv.v[i]) : go;
        o.v[i] = from_acc<T>(s * (gi - mg - xhat * mgx));
      }
      store_chunk(dx + i0, o);
    }
  }

  if (acc) {
    for (int c = threadIdx.x; c < chunks; c += blockDim.x)
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        atomicAdd(slot + c * kN + i, acc[c * kN + i]);
        atomicAdd(slot + cols + c * kN + i, acc[cols + c * kN + i]);
      }
  }
}

// dweight[c] and dbias[c]: sums of the partial slots, one thread per column.
template <typename T>
__global__ void layer_norm_param_grad_kernel(const acc_t<T>* __restrict__ partial, int slots,
                                             int cols, T* __restrict__ dw, T* __restrict__ db) {
  using A = acc_t<T>;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  A sw = 0, sb = 0;
  for (int k = 0; k < slots; ++k) {
    sw += partial[static_cast<int64_t>(k) * 2 * cols + c];
    sb += partial[static_cast<int64_t>(k) * 2 * cols + cols + c];
  }
  if (dw) dw[c] = from_acc<T>(sw);
  if (db) db[c] = from_acc<T>(sb);
}

// Partial slots for dweight/dbias: at most 512, and few enough that they (sized
// as doubles whatever the dtype) stay within 32 MiB. Depends only on the shape,
// so Python can size the workspace without asking the device.
constexpr int64_t kMaxSlots = 512;
constexpr int64_t kMaxPartialValues = int64_t(4) << 20;

int64_t backward_slots(int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  return std::max<int64_t>(1, std::min({rows, kMaxSlots, kMaxPartialValues / (2 * cols)}));
}

template <typename T, int kN>
void launch_forward(const T* x, const T* w, const T* b, T* y, acc_t<T>* mean, acc_t<T>* rstd,
                    int64_t rows, int64_t cols, double eps, bool rms, cudaStream_t stream) {
  const RowPlan p = plan_rows(rows, cols, kN, cols * sizeof(T));
  auto run = [&](auto kernel) {
    allow_shared(kernel, p.smem);
    kernel<<<p.blocks, p.threads, p.smem, stream>>>(x, w, b, y, mean, rstd, rows,
                                                    static_cast<int>(cols),
                                                    static_cast<acc_t<T>>(eps), rms);
  };
  if (p.warp) run(layer_norm_forward_kernel<T, kN, true, true>);
  else if (p.staged) run(layer_norm_forward_kernel<T, kN, false, true>);
  else run(layer_norm_forward_kernel<T, kN, false, false>);
  check_launch("layer_norm_forward_kernel");
}

template <typename T, int kN>
void launch_backward(const T* x, const T* w, const acc_t<T>* mean, const acc_t<T>* rstd,
                     const T* dy, T* dx, T* dw, T* db, float* workspace, int64_t rows,
                     int64_t cols, bool rms, cudaStream_t stream) {
  using A = acc_t<T>;
  const int64_t slots = backward_slots(rows, cols);
  const int64_t chunks = cols / kN;
  const int threads = static_cast<int>(
      std::min<int64_t>(1024, std::max<int64_t>(32, ((chunks + 3) / 4 + 31) / 32 * 32)));
  int dev = 0, sms = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  // Enough blocks to fill every SM with threads, each then looping over rows.
  const int64_t blocks = std::min<int64_t>(rows, static_cast<int64_t>(sms) * (2048 / threads));
  const size_t limit = staging_limit();
  const size_t stage_bytes = 2 * cols * sizeof(T), acc_bytes = 2 * cols * sizeof(A);
  const bool staged = stage_bytes <= limit;
  A* partial = (dw || db) ? reinterpret_cast<A*>(workspace) : nullptr;
  const bool in_shared = partial && (staged ? stage_bytes : 0) + acc_bytes <= limit;
  const size_t smem = (staged ? stage_bytes : 0) + (in_shared ? acc_bytes : 0);
  if (partial)
    check_cuda(cudaMemsetAsync(partial, 0, slots * 2 * cols * sizeof(A), stream), "cudaMemsetAsync");
  auto run = [&](auto kernel) {
    allow_shared(kernel, smem);
    kernel<<<blocks, threads, smem, stream>>>(x, w, mean, rstd, dy, dx, partial,
                                              static_cast<int>(slots), in_shared, rows,
                                              static_cast<int>(cols), rms);
  };
  if (staged) run(layer_norm_backward_kernel<T, kN, true>);
  else run(layer_norm_backward_kernel<T, kN, false>);
  check_launch("layer_norm_backward_kernel");
  if (!partial) return;
  layer_norm_param_grad_kernel<T><<<(cols + 255) / 256, 256, 0, stream>>>(
      partial, static_cast<int>(slots), static_cast<int>(cols), dw, db);
  check_launch("layer_norm_param_grad_kernel");
}

void check_param(const char* op, const char* arg, const std::optional<TensorView>& p,
                 const TensorView& x) {
  if (!p) return;
  check_device(op, arg, *p);
  check_contiguous(op, arg, *p);
  check_same_dtype(op, arg, *p, x);
  check_shape(op, arg, *p, {x.size(-1)});
}

void check_like(const char* op, const char* arg, const TensorView& t, const TensorView& x,
                const std::vector<int64_t>& shape) {
  check_device(op, arg, t);
  check_contiguous(op, arg, t);
  check_same_dtype(op, arg, t, x);
  check_shape(op, arg, t, shape);
}

void check_stats(const char* op, const char* arg, const TensorView& t, const TensorView& x,
                 int64_t rows) {
  check_device(op, arg, t);
  check_contiguous(op, arg, t);
  check_dtype(op, arg, t, stats_dtype(x.dtype));
  check_shape(op, arg, t, {rows});
}

// Rows and columns of x; false when there is nothing to compute.
bool row_shape(const char* op, const TensorView& x, int64_t& rows, int64_t& cols) {
  check_device(op, "input", x);
  check_gpu_float(op, "input", x);
  check_contiguous(op, "input", x);
  if (x.ndim() == 0) throw ValueError(std::string(op) + ": input must have at least one dimension");
  cols = x.size(-1);
  rows = cols ? x.numel() / cols : 0;
  if (cols > INT32_MAX)
    throw ValueError(std::string(op) + ": last dimension " + std::to_string(cols) + " is too large");
  if (rows > INT32_MAX)
    throw ValueError(std::string(op) + ": " + std::to_string(rows) + " rows is too many");
  return x.numel() != 0;
}

template <typename T>
const T* opt_ptr(const std::optional<TensorView>& t) {
  return t ? t->ptr<T>() : nullptr;
}
template <typename T>
T* opt_mut(const std::optional<TensorView>& t) {
  return t ? t->ptr<T>() : nullptr;
}

}  // namespace

void layer_norm_forward(const TensorView& x, const std::optional<TensorView>& weight,
                        const std::optional<TensorView>& bias, const TensorView& y,
                        const TensorView& mean, const TensorView& rstd, double eps, bool rms,
                        std::uintptr_t stream) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  int64_t rows = 0, cols = 0;
  const bool work = row_shape(op, x, rows, cols);
  check_param(op, "weight", weight, x);
  check_param(op, "bias", bias, x);
  check_like(op, "output", y, x, x.shape);
  check_stats(op, "mean", mean, x, rows);
  check_stats(op, "rstd", rstd, x, rows);
  if (!work) return;
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  PYDL_DISPATCH_CUDA_FLOAT(x.dtype, op, [&] {
    using A = acc_t<scalar_t>;
    const scalar_t *xp = x.ptr<scalar_t>(), *wp = opt_ptr<scalar_t>(weight),
                   *bp = opt_ptr<scalar_t>(bias);
    scalar_t* yp = y.ptr<scalar_t>();
    constexpr int kP = Pack<scalar_t>::N;
    const bool vec = cols % kP == 0 && aligned16(xp) && aligned16(yp) && (!wp || aligned16(wp)) &&
                     (!bp || aligned16(bp));
    if (vec)
      launch_forward<scalar_t, kP>(xp, wp, bp, yp, mean.ptr<A>(), rstd.ptr<A>(), rows, cols, eps,
                                   rms, st);
    else
      launch_forward<scalar_t, 1>(xp, wp, bp, yp, mean.ptr<A>(), rstd.ptr<A>(), rows, cols, eps,
                                  rms, st);
  });
}

int64_t layer_norm_backward_workspace_size(int64_t rows, int64_t cols) {
  // Two float32 slots per partial, so float64 input can keep double partials.
  return backward_slots(rows, cols) * 2 * cols * 2;
}

void layer_norm_backward(const TensorView& x, const std::optional<TensorView>& weight,
                         const TensorView& mean, const TensorView& rstd, const TensorView& dy,
                         const TensorView& dx, const std::optional<TensorView>& dweight,
                         const std::optional<TensorView>& dbias,
                         const std::optional<TensorView>& workspace, bool rms,
                         std::uintptr_t stream) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  int64_t rows = 0, cols = 0;
  const bool work = row_shape(op, x, rows, cols);
  check_param(op, "weight", weight, x);
  check_param(op, "grad_weight", dweight, x);
  check_param(op, "grad_bias", dbias, x);
  check_stats(op, "mean", mean, x, rows);
  check_stats(op, "rstd", rstd, x, rows);
  check_like(op, "grad_output", dy, x, x.shape);
  check_like(op, "grad_input", dx, x, x.shape);
  const bool want_params = dweight || dbias;
  if (want_params) {
    if (!workspace)
      throw ValueError(std::string(op) + ": workspace is required for grad_weight or grad_bias");
    check_device(op, "workspace", *workspace);
    check_contiguous(op, "workspace", *workspace);
    check_dtype(op, "workspace", *workspace, DType::Float32);
    const int64_t need = layer_norm_backward_workspace_size(rows, cols);
    if (workspace->numel() < need)
      throw ValueError(std::string(op) + ": workspace has " + std::to_string(workspace->numel()) +
                       " elements, needs at least " + std::to_string(need));
    if (reinterpret_cast<std::uintptr_t>(workspace->data) % 8 != 0)
      throw ValueError(std::string(op) + ": workspace must be 8-byte aligned");
  }
  if (!work) {
    // No rows: the parameter gradients are sums over nothing.
    if (want_params && cols > 0) {
      const auto st = reinterpret_cast<cudaStream_t>(stream);
      const size_t bytes = static_cast<size_t>(cols) * dtype_size(x.dtype);
      if (dweight) check_cuda(cudaMemsetAsync(dweight->data, 0, bytes, st), op);
      if (dbias) check_cuda(cudaMemsetAsync(dbias->data, 0, bytes, st), op);
    }
    return;
  }
  const auto st = reinterpret_cast<cudaStream_t>(stream);
  float* ws = want_params ? workspace->ptr<float>() : nullptr;
  PYDL_DISPATCH_CUDA_FLOAT(x.dtype, op, [&] {
    using A = acc_t<scalar_t>;
    const scalar_t *xp = x.ptr<scalar_t>(), *wp = opt_ptr<scalar_t>(weight),
                   *gp = dy.ptr<scalar_t>();
    scalar_t *dp = dx.ptr<scalar_t>(), *dwp = opt_mut<scalar_t>(dweight),
             *dbp = opt_mut<scalar_t>(dbias);
    constexpr int kP = Pack<scalar_t>::N;
    const bool vec = cols % kP == 0 && aligned16(xp) && aligned16(gp) && aligned16(dp) &&
                     (!wp || aligned16(wp));
    if (vec)
      launch_backward<scalar_t, kP>(xp, wp, mean.ptr<A>(), rstd.ptr<A>(), gp, dp, dwp, dbp, ws,
                                    rows, cols, rms, st);
    else
      launch_backward<scalar_t, 1>(xp, wp, mean.ptr<A>(), rstd.ptr<A>(), gp, dp, dwp, dbp, ws,
                                   rows, cols, rms, st);
  });
}

}  // namespace pydl::cuda
