// pydl._C.cuda.gemm: out = act(alpha * a @ b + beta * out + bias) on CuPy
// views. Validates shapes, layouts and dtypes, reads each operand's layout
// from its strides, and launches on the caller's stream with the GIL released.
#ifdef PYDL_WITH_CUDA

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/views.h"
#include "kernels/gemm/gemm.h"

namespace pydl::bind {
namespace {

using pydl::cuda::GemmArgs;
using pydl::cuda::GemmVariant;

struct MatrixLayout {
  int64_t batch = 1, rows = 0, cols = 0;
  int64_t batch_stride = 0, ld = 0;
  bool row_major = true;
};

[[noreturn]] void fail(const char* arg, const std::string& what) {
  throw ValueError(std::string("gemm: ") + arg + " " + what);
}

// Formats a shape or strides with std::to_string: in the GPU build the
// ostringstream inside shape_str crashed (a segfault in the module's iostream code).
std::string dims_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

void check_on_gpu(const char* arg, const TensorView& t) {
  if (t.device != Device::CUDA) fail(arg, "must be on the GPU");
}

// The leading dimension recorded for a dimension of extent 1 is never used to
// address memory; give it a value that keeps the aligned paths available.
int64_t unused_ld(int64_t width) { return ((width > 0 ? width : 1) + 15) / 16 * 16; }

// Reads a 2-D or 3-D matrix operand: row-major when the last dimension is
// contiguous, column-major when the second-to-last one is.
MatrixLayout read_layout(const char* arg, const TensorView& t, bool must_be_row_major) {
  if (t.ndim() != 2 && t.ndim() != 3)
    fail(arg, "must be 2-D or 3-D, got shape " + dims_str(t.shape));
  for (int64_t s : t.strides)
    if (s < 0) fail(arg, "has a negative stride");
  MatrixLayout l;
  const int64_t nd = t.ndim();
  l.rows = t.shape[nd - 2];
  l.cols = t.shape[nd - 1];
  const int64_t rs = t.strides[nd - 2], cs = t.strides[nd - 1];
  if (cs == 1 || l.cols == 1) {
    l.row_major = true;
    l.ld = l.rows > 1 ? rs : unused_ld(l.cols);
  } else if (!must_be_row_major && (rs == 1 || l.rows == 1)) {
    l.row_major = false;
    l.ld = l.cols > 1 ? cs : unused_ld(l.rows);
  } else {
    fail(arg, must_be_row_major ? "must be row-major (last stride 1), got strides " + dims_str(t.strides)
                                : "must be row-major or column-major (one of the last two strides 1), got strides " +
                                      dims_str(t.strides));
  }
  if (nd == 3) {
    l.batch = t.shape[0];
    l.batch_stride = l.batch > 1 ? t.strides[0] : 0;
  }
  return l;
}

pydl::cuda::GemmActivation parse_activation(const std::string& s) {
  if (s == "none") return pydl::cuda::GemmActivation::None;
  if (s == "relu") return pydl::cuda::GemmActivation::Relu;
  if (s == "gelu") return pydl::cuda::GemmActivation::Gelu;
  throw ValueError("gemm: activation must be 'none', 'relu' or 'gelu', got '" + s + "'");
}

GemmArgs make_args(py::handle a_obj, py::handle b_obj, py::handle out_obj, py::handle bias_obj, double alpha,
                   double beta, const std::string& activation, bool allow_tf32) {
  const TensorView a = cuda_view(a_obj, "gemm", "a");
  const TensorView b = cuda_view(b_obj, "gemm", "b");
  const TensorView out = cuda_view(out_obj, "gemm", "out");
  const std::optional<TensorView> bias = cuda_view_opt(bias_obj, "gemm", "bias");
  check_on_gpu("a", a);
  check_on_gpu("b", b);
  check_on_gpu("out", out);
  if (bias) check_on_gpu("bias", *bias);

  if (a.dtype != DType::Float32 && a.dtype != DType::Float16 && a.dtype != DType::BFloat16)
    throw TypeError(std::string("gemm: a must be float32, float16 or bfloat16, got ") + dtype_name(a.dtype));
  check_same_dtype("gemm", "b", b, a);
  check_same_dtype("gemm", "out", out, a);
  if (bias) check_same_dtype("gemm", "bias", *bias, a);

  const MatrixLayout la = read_layout("a", a, false);
  const MatrixLayout lb = read_layout("b", b, false);
  const MatrixLayout lo = read_layout("out", out, true);
  if (la.cols != lb.rows)
    fail("b", "has shape " + dims_str(b.shape) + ", which does not match a " + dims_str(a.shape) +
                  " (a is (..., M, K), b is (..., K, N))");
  const int64_t nd = std::max(a.ndim(), b.ndim());
  int64_t batch = 1;
  if (nd == 3) {
    batch = std::max(la.batch, lb.batch);
    if (la.batch != batch && la.batch != 1) fail("a", "has batch " + std::to_string(la.batch) + " but b has " +
                                                          std::to_string(lb.batch));
    if (lb.batch != batch && lb.batch != 1) fail("b", "has batch " + std::to_string(lb.batch) + " but a has " +
                                                          std::to_string(la.batch));
  }
  std::vector<int64_t> want_out = {la.rows, lb.cols};
  if (nd == 3) want_out.insert(want_out.begin(), batch);
  if (out.shape != want_out) fail("out", "must have shape " + dims_str(want_out) + ", got " + dims_str(out.shape));
  if (lo.rows > 1 && lo.ld < lo.cols) fail("out", "has rows that overlap (row stride below its width)");
  if (nd == 3 && batch > 1 && lo.batch_stride == 0) fail("out", "must not broadcast over the batch (batch stride 0)");
  if (bias) {
    if (bias->shape != std::vector<int64_t>{lb.cols})
      fail("bias", "must have shape (" + std::to_string(lb.cols) + ",), got " + dims_str(bias->shape));
    if (lb.cols > 1 && bias->strides[0] != 1) fail("bias", "must be contiguous");
  }

  GemmArgs g;
  g.dtype = a.dtype;
  g.batch = batch;
  g.m = la.rows;
  g.k = la.cols;
  g.n = lb.cols;
  g.a = a.data;
  g.a_row_major = la.row_major;
  g.lda = la.ld;
  g.a_batch_stride = la.batch > 1 ? la.batch_stride : 0;
  g.b = b.data;
  g.b_row_major = lb.row_major;
  g.ldb = lb.ld;
  g.b_batch_stride = lb.batch > 1 ? lb.batch_stride : 0;
  g.out = out.data;
  g.ldo = lo.ld;
  g.out_batch_stride = lo.batch > 1 ? lo.batch_stride : 0;
  g.bias = bias ? bias->data : nullptr;
  g.alpha = static_cast<float>(alpha);
  g.beta = static_cast<float>(beta);
  g.activation = parse_activation(activation);
  g.allow_tf32 = allow_tf32;
  return g;
}

}  // namespace

void register_cuda_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](py::handle a, py::handle b, py::handle out, py::handle bias, double alpha, double beta,
         const std::string& activation, bool allow_tf32, uintptr_t stream, std::optional<std::string> variant) {
        const GemmArgs g = make_args(a, b, out, bias, alpha, beta, activation, allow_tf32);
        std::optional<GemmVariant> forced;
        if (variant) forced = pydl::cuda::gemm_variant_from_name(*variant);
        py::gil_scoped_release release;
        pydl::cuda::gemm(g, reinterpret_cast<pydl::cuda::GemmStream>(stream), forced ? &*forced : nullptr);
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("bias") = py::none(), py::arg("alpha") = 1.0,
      py::arg("beta") = 0.0, py::arg("activation") = "none", py::arg("allow_tf32") = false,
      py::arg("stream") = 0, py::arg("variant") = py::none(),
      "out = act(alpha * (a @ b) + beta * out + bias) on CuPy views, float32 accumulation.\n"
      "a is (M, K) or (batch, M, K), b is (K, N) or (batch, K, N), each row- or column-major;\n"
      "out is row-major (M, N) or (batch, M, N). activation: 'none', 'relu' or 'gelu' (erf).\n"
      "`variant` forces a kernel ('simt_f32', 'mma_sync'); ValueError if it cannot run the inputs.");
  m.def(
      "gemm_variant",
      [](py::handle a, py::handle b, py::handle out, bool allow_tf32) {
        const GemmArgs g = make_args(a, b, out, py::none(), 1.0, 0.0, "none", allow_tf32);
        return std::string(pydl::cuda::gemm_variant_name(
            pydl::cuda::gemm_pick_variant(g, pydl::cuda::gemm_current_capability())));
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("allow_tf32") = false,
      "The kernel gemm() would pick for these arrays: 'simt_f32' or 'mma_sync'.");
  m.def(
      "gemm_variants", [] { return std::vector<std::string>{"simt_f32", "mma_sync"}; },
      "Every gemm kernel variant compiled into this build.");
}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
