// pydl._C.cpu attention_forward / attention_backward: the fused CPU attention
// kernels (csrc/cpu/attention.cpp). Arrays are allocated by the caller; the
// GIL is released while a kernel runs.
#include <pybind11/pybind11.h>

#include "bindings/views.h"
#include "csrc/cpu/kernels.h"

namespace pydl::bind {

void register_cpu_attention(py::module_& m) {
  m.def(
      "attention_forward",
      [](py::handle q, py::handle k, py::handle v, py::handle mask, py::handle out, py::handle lse,
         double scale, bool causal, double dropout_p, uint64_t seed, uint64_t offset) {
        const char* op = "scaled_dot_product_attention";
        auto vq = cpu_view(q, op, "query"), vk = cpu_view(k, op, "key"), vv = cpu_view(v, op, "value");
        auto vm = cpu_view_opt(mask, op, "attn_mask");
        auto vo = cpu_view(out, op, "output"), vl = cpu_view(lse, op, "lse");
        py::gil_scoped_release nogil;
        cpu::attention_forward(vq, vk, vv, vm, vo, vl, scale, causal, dropout_p, seed, offset);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("out"), py::arg("lse"),
      py::arg("scale"), py::arg("causal"), py::arg("dropout_p") = 0.0, py::arg("seed") = 0,
      py::arg("offset") = 0);
  m.def(
      "attention_backward",
      [](py::handle q, py::handle k, py::handle v, py::handle mask, py::handle out, py::handle lse,
         py::handle dout, py::handle dq, py::handle dk, py::handle dv, double scale, bool causal,
         double dropout_p, uint64_t seed, uint64_t offset) {
        const char* op = "scaled_dot_product_attention_backward";
        auto vq = cpu_view(q, op, "query"), vk = cpu_view(k, op, "key"), vv = cpu_view(v, op, "value");
        auto vm = cpu_view_opt(mask, op, "attn_mask");
        auto vo = cpu_view(out, op, "output"), vl = cpu_view(lse, op, "lse");
        auto vg = cpu_view(dout, op, "grad_output");
        auto vdq = cpu_view(dq, op, "grad_query"), vdk = cpu_view(dk, op, "grad_key"),
             vdv = cpu_view(dv, op, "grad_value");
        py::gil_scoped_release nogil;
        cpu::attention_backward(vq, vk, vv, vm, vo, vl, vg, vdq, vdk, vdv, scale, causal, dropout_p,
                                seed, offset);
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("out"), py::arg("lse"),
      py::arg("dout"), py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("scale"),
      py::arg("causal"), py::arg("dropout_p") = 0.0, py::arg("seed") = 0, py::arg("offset") = 0);
}

}  // namespace pydl::bind
