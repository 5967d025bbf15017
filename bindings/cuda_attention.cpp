// pydl._C.cuda fused attention (kernels/attention/): attention_forward, attention_backward,
// and the queries attention_unsupported / attention_tiles the backend uses to pick between
// these kernels and the interim path. Arrays are CuPy arrays allocated by the caller
// (outputs and workspaces included); `stream` is the cudaStream_t to launch on, as an
// integer. Inputs need only a contiguous last dimension (their other strides are passed
// down); outputs and workspaces must be contiguous. Errors name the op; the GIL is
// released while the kernels are launched.
#ifdef PYDL_WITH_CUDA

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/views.h"
#include "kernels/attention/attention.h"

namespace pydl::bind {
namespace {

using pydl::cuda::AttentionArgs;

constexpr const char* kFwd = "scaled_dot_product_attention";
constexpr const char* kBwd = "scaled_dot_product_attention_backward";

[[noreturn]] void fail(const char* op, const std::string& what) { throw ValueError(std::string(op) + ": " + what); }

bool last_dim_contiguous(const TensorView& t) {
  return t.numel() == 0 || t.shape.back() <= 1 || t.strides.back() == 1;
}

// A 3-D input of dtype `dtype` whose last dimension is contiguous.
void check_input(const char* op, const char* name, const TensorView& t, DType dtype) {
  if (t.ndim() != 3)
    fail(op, std::string(name) + " must be 3-D (batch*heads, seq, dim), got shape " + shape_str(t.shape));
  if (t.dtype != dtype)
    throw TypeError(std::string(op) + ": " + name + " has dtype " + dtype_name(t.dtype) + ", query has " +
                    dtype_name(dtype));
  if (!last_dim_contiguous(t))
    fail(op, std::string(name) + " must be contiguous in its last dimension, got strides " + shape_str(t.strides));
}

void check_output(const char* op, const char* name, const TensorView& t, DType dtype,
                  const std::vector<int64_t>& shape) {
  if (t.dtype != dtype)
    throw TypeError(std::string(op) + ": " + name + " must be " + dtype_name(dtype) + ", got " + dtype_name(t.dtype));
  check_shape(op, name, t, shape);
  check_contiguous(op, name, t);
}

// Query, key, value and mask: shapes, dtypes, layouts, into the launch arguments.
AttentionArgs read_inputs(const char* op, py::handle q_obj, py::handle k_obj, py::handle v_obj,
                          py::handle mask_obj, double scale, bool causal) {
  const TensorView q = cuda_view(q_obj, op, "query");
  const TensorView k = cuda_view(k_obj, op, "key");
  const TensorView v = cuda_view(v_obj, op, "value");
  if (q.dtype != DType::Float32 && q.dtype != DType::Float16 && q.dtype != DType::BFloat16)
    throw TypeError(std::string(op) + ": the fused GPU kernels take float32, float16 and bfloat16, got " +
                    dtype_name(q.dtype));
  check_input(op, "query", q, q.dtype);
  check_input(op, "key", k, q.dtype);
  check_input(op, "value", v, q.dtype);
  AttentionArgs a;
  a.dtype = q.dtype;
  a.B = q.shape[0];
  a.L = q.shape[1];
  a.E = q.shape[2];
  a.S = k.shape[1];
  a.Ev = v.shape[2];
  if (k.shape[0] != a.B || v.shape[0] != a.B)
    fail(op, "query, key and value must have the same batch size, got " + shape_str(q.shape) + ", " +
                 shape_str(k.shape) + ", " + shape_str(v.shape));
  if (k.shape[2] != a.E)
    fail(op, "query and key head dims differ: " + shape_str(q.shape) + " vs " + shape_str(k.shape));
  if (v.shape[1] != a.S)
    fail(op, "key and value lengths differ: " + shape_str(k.shape) + " vs " + shape_str(v.shape));
  // Validates the dtype and head dims (1 to 256).
  pydl::cuda::attention_tiles(op, a.dtype, a.E, a.Ev);
  a.q = q.data;
  a.q_bs = q.strides[0];
  a.q_rs = q.strides[1];
  a.k = k.data;
  a.k_bs = k.strides[0];
  a.k_rs = k.strides[1];
  a.v = v.data;
  a.v_bs = v.strides[0];
  a.v_rs = v.strides[1];
  a.scale = scale;
  a.causal = causal;
  const std::optional<TensorView> mask = cuda_view_opt(mask_obj, op, "attn_mask");
  if (mask) {
    if (mask->dtype != DType::Float32)
      throw TypeError(std::string(op) + ": attn_mask must be an additive float32 view, got " +
                      dtype_name(mask->dtype));
    if (mask->ndim() != 4 || mask->shape[2] != a.L || mask->shape[3] != a.S ||
        mask->shape[0] * mask->shape[1] != a.B || (a.B > 0 && mask->shape[1] < 1))
      fail(op, "attn_mask view must be (B1, B2, L, S) with B1*B2 = " + std::to_string(a.B) + ", L = " +
                   std::to_string(a.L) + ", S = " + std::to_string(a.S) + "; got " + shape_str(mask->shape));
    a.mask = static_cast<const float*>(mask->data);
    a.mask_h2 = mask->shape[1];
    a.mask_s0 = mask->strides[0];
    a.mask_s1 = mask->strides[1];
    a.mask_s2 = mask->strides[2];
    a.mask_s3 = mask->strides[3];
  }
  return a;
}

}  // namespace

void register_cuda_attention(py::module_& m) {
  m.def(
      "attention_forward",
      [](py::handle q, py::handle k, py::handle v, py::handle mask, py::handle out, py::handle lse, double scale,
         bool causal, std::uintptr_t stream) {
        AttentionArgs a = read_inputs(kFwd, q, k, v, mask, scale, causal);
        const TensorView vo = cuda_view(out, kFwd, "output");
        const TensorView vl = cuda_view(lse, kFwd, "lse");
        check_output(kFwd, "output", vo, a.dtype, {a.B, a.L, a.Ev});
        check_output(kFwd, "lse", vl, DType::Float32, {a.B, a.L});
        a.out = vo.data;
        a.out_bs = a.L * a.Ev;
        a.out_rs = a.Ev;
        a.lse = static_cast<float*>(vl.data);
        py::gil_scoped_release nogil;
        pydl::cuda::attention_forward(a, reinterpret_cast<pydl::cuda::AttentionStream>(stream));
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("out"), py::arg("lse"),
      py::arg("scale"), py::arg("causal"), py::arg("stream") = 0,
      "Fused attention forward on CuPy arrays: q (B, L, E), k (B, S, E), v (B, S, Ev) of one dtype\n"
      "(float32, float16, bfloat16), last dimension contiguous; mask None or an additive float32\n"
      "view (B1, B2, L, S). Writes out (B, L, Ev) and lse (B, L) float32 (-inf where no key is\n"
      "visible), both contiguous.");
  m.def(
      "attention_backward",
      [](py::handle q, py::handle k, py::handle v, py::handle mask, py::handle out, py::handle lse,
         py::handle dout, py::handle dq, py::handle dk, py::handle dv, py::handle dq_acc, py::handle dsum,
         double scale, bool causal, std::uintptr_t stream) {
        AttentionArgs a = read_inputs(kBwd, q, k, v, mask, scale, causal);
        const TensorView vo = cuda_view(out, kBwd, "output");
        const TensorView vg = cuda_view(dout, kBwd, "grad_output");
        const TensorView vl = cuda_view(lse, kBwd, "lse");
        check_input(kBwd, "output", vo, a.dtype);
        check_input(kBwd, "grad_output", vg, a.dtype);
        check_shape(kBwd, "output", vo, {a.B, a.L, a.Ev});
        check_shape(kBwd, "grad_output", vg, {a.B, a.L, a.Ev});
        check_output(kBwd, "lse", vl, DType::Float32, {a.B, a.L});
        const TensorView vdk = cuda_view(dk, kBwd, "grad_key");
        const TensorView vdv = cuda_view(dv, kBwd, "grad_value");
        check_output(kBwd, "grad_key", vdk, a.dtype, {a.B, a.S, a.E});
        check_output(kBwd, "grad_value", vdv, a.dtype, {a.B, a.S, a.Ev});
        const TensorView vws = cuda_view(dsum, kBwd, "dsum");
        check_output(kBwd, "dsum", vws, DType::Float32, {a.B, a.L});
        const TensorView vdq = cuda_view(dq, kBwd, "grad_query");
        check_output(kBwd, "grad_query", vdq, a.dtype, {a.B, a.L, a.E});
        const std::optional<TensorView> vacc = cuda_view_opt(dq_acc, kBwd, "dq_acc");
        if (vacc) {
          check_output(kBwd, "dq_acc", *vacc, DType::Float32, {a.B, a.L, a.E});
          if (a.dtype == DType::Float32)
            fail(kBwd, "dq_acc must be None for float32 (grad_query, zero-filled, takes the sums)");
          a.dq_acc = static_cast<float*>(vacc->data);
          a.dq = vdq.data;
        } else {
          if (a.dtype != DType::Float32)
            fail(kBwd, std::string("a zero-filled float32 dq_acc workspace is needed for ") + dtype_name(a.dtype));
          a.dq_acc = static_cast<float*>(vdq.data);  // must hold zeros; dQ is added into it
          a.dq = nullptr;
        }
        a.out = vo.data;
        a.out_bs = vo.strides[0];
        a.out_rs = vo.strides[1];
        a.lse = static_cast<float*>(vl.data);
        a.dout = vg.data;
        a.dout_bs = vg.strides[0];
        a.dout_rs = vg.strides[1];
        a.dsum = static_cast<float*>(vws.data);
        a.dk = vdk.data;
        a.dv = vdv.data;
        py::gil_scoped_release nogil;
        pydl::cuda::attention_backward(a, reinterpret_cast<pydl::cuda::AttentionStream>(stream));
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("out"), py::arg("lse"),
      py::arg("dout"), py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("dq_acc"), py::arg("dsum"),
      py::arg("scale"), py::arg("causal"), py::arg("stream") = 0,
      "Fused attention backward: writes dq (B, L, E), dk (B, S, E), dv (B, S, Ev), contiguous, from\n"
      "the forward's out and lse and grad_output (last dimension contiguous). dsum: a float32\n"
      "(B, L) workspace. dq_acc: a zero-filled float32 (B, L, E) workspace for float16 and\n"
      "bfloat16; None for float32, where dq itself must be zero-filled and takes the sums.");
  m.def(
      "attention_unsupported",
      [](const std::string& dtype, int64_t E, int64_t Ev) {
        return pydl::cuda::attention_unsupported(dtype_from_name(dtype), E, Ev);
      },
      py::arg("dtype"), py::arg("E"), py::arg("Ev"),
      "Empty when the fused kernels run this dtype ('float32', 'float16', 'bfloat16') and head\n"
      "dims on the current device; otherwise the reason they cannot.");
  m.def(
      "attention_tiles",
      [](const std::string& dtype, int64_t E, int64_t Ev) {
        const pydl::cuda::AttentionTiles t =
            pydl::cuda::attention_tiles("attention_tiles", dtype_from_name(dtype), E, Ev);
        py::dict d;
        d["head_dim"] = t.head_dim;
        d["fwd_rows"] = t.fwd_rows;
        d["fwd_keys"] = t.fwd_keys;
        d["bwd_rows"] = t.bwd_rows;
        d["bwd_keys"] = t.bwd_keys;
        d["fwd_smem"] = t.fwd_smem;
        d["bwd_smem"] = t.bwd_smem;
        return d;
      },
      py::arg("dtype"), py::arg("E"), py::arg("Ev"),
      "The tile shapes of the fused kernels for this dtype and head dims: padded head dim,\n"
      "forward query rows per block and keys per step, backward query rows per step and keys\n"
      "per block, dynamic shared memory of each (bytes).");
}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
