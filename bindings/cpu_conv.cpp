// pydl._C.cpu conv2d kernels: forward, input gradient, weight gradient (csrc/cpu/conv.cpp).
#include <pybind11/pybind11.h>

#include "bindings/views.h"
#include "csrc/cpu/kernels.h"

namespace pydl::bind {

void register_cpu_conv(py::module_& m) {
  m.def(
      "conv2d_forward",
      [](py::handle x, py::handle w, py::handle b, py::handle y, int64_t sh, int64_t sw, int64_t ph,
         int64_t pw, int64_t dh, int64_t dw, int64_t groups) {
        const char* op = "conv2d";
        auto vx = cpu_view(x, op, "input"), vw = cpu_view(w, op, "weight");
        auto vb = cpu_view_opt(b, op, "bias");
        auto vy = cpu_view(y, op, "output");
        py::gil_scoped_release nogil;
        cpu::conv2d_forward(vx, vw, vb, vy, sh, sw, ph, pw, dh, dw, groups);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("sh"), py::arg("sw"),
      py::arg("ph"), py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"));
  m.def(
      "conv2d_backward_input",
      [](py::handle dy, py::handle w, py::handle dx, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
         int64_t dh, int64_t dw, int64_t groups) {
        const char* op = "conv2d_backward_input";
        auto vdy = cpu_view(dy, op, "grad_output"), vw = cpu_view(w, op, "weight");
        auto vdx = cpu_view(dx, op, "grad_input");
        py::gil_scoped_release nogil;
        cpu::conv2d_backward_input(vdy, vw, vdx, sh, sw, ph, pw, dh, dw, groups);
      },
      py::arg("dy"), py::arg("weight"), py::arg("dx"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
      py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"));
  m.def(
      "conv2d_backward_weight",
      [](py::handle x, py::handle dy, py::handle dwt, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
         int64_t dh, int64_t dw, int64_t groups) {
        const char* op = "conv2d_backward_weight";
        auto vx = cpu_view(x, op, "input"), vdy = cpu_view(dy, op, "grad_output");
        auto vdw = cpu_view(dwt, op, "grad_weight");
        py::gil_scoped_release nogil;
        cpu::conv2d_backward_weight(vx, vdy, vdw, sh, sw, ph, pw, dh, dw, groups);
      },
      py::arg("x"), py::arg("dy"), py::arg("dweight"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
      py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"));
}

}  // namespace pydl::bind
