// pydl._C.cpu: the C++ CPU kernels. Arguments are NumPy arrays allocated by
// the caller; the GIL is released while a kernel runs.
#include <pybind11/pybind11.h>

#include "bindings/views.h"
#include "csrc/cpu/kernels.h"

namespace pydl::bind {

void register_cpu(py::module_& m) {
  register_cpu_conv(m);
  register_cpu_attention(m);
  m.def(
      "softmax_forward",
      [](py::handle x, py::handle y, bool log) {
        const char* op = log ? "log_softmax" : "softmax";
        auto vx = cpu_view(x, op, "input"), vy = cpu_view(y, op, "output");
        py::gil_scoped_release nogil;
        cpu::softmax_forward(vx, vy, log);
      },
      py::arg("x"), py::arg("y"), py::arg("log") = false);
  m.def(
      "softmax_backward",
      [](py::handle y, py::handle dy, py::handle dx, bool log) {
        const char* op = log ? "log_softmax_backward" : "softmax_backward";
        auto vy = cpu_view(y, op, "output"), vdy = cpu_view(dy, op, "grad_output"),
             vdx = cpu_view(dx, op, "grad_input");
        py::gil_scoped_release nogil;
        cpu::softmax_backward(vy, vdy, vdx, log);
      },
      py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("log") = false);
  m.def(
      "layer_norm_forward",
      [](py::handle x, py::handle w, py::handle b, py::handle y, py::handle mean, py::handle rstd,
         double eps, bool rms) {
        const char* op = rms ? "rms_norm" : "layer_norm";
        auto vx = cpu_view(x, op, "input");
        auto vw = cpu_view_opt(w, op, "weight"), vb = cpu_view_opt(b, op, "bias");
        auto vy = cpu_view(y, op, "output"), vm = cpu_view(mean, op, "mean"),
             vr = cpu_view(rstd, op, "rstd");
        py::gil_scoped_release nogil;
        cpu::layer_norm_forward(vx, vw, vb, vy, vm, vr, eps, rms);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("mean"),
      py::arg("rstd"), py::arg("eps"), py::arg("rms") = false);
  m.def(
      "layer_norm_backward",
      [](py::handle x, py::handle w, py::handle mean, py::handle rstd, py::handle dy, py::handle dx,
         py::handle dw, py::handle db, bool rms) {
        const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
        auto vx = cpu_view(x, op, "input");
        auto vw = cpu_view_opt(w, op, "weight");
        auto vm = cpu_view(mean, op, "mean"), vr = cpu_view(rstd, op, "rstd");
        auto vdy = cpu_view(dy, op, "grad_output"), vdx = cpu_view(dx, op, "grad_input");
        auto vdw = cpu_view_opt(dw, op, "grad_weight"), vdb = cpu_view_opt(db, op, "grad_bias");
        py::gil_scoped_release nogil;
        cpu::layer_norm_backward(vx, vw, vm, vr, vdy, vdx, vdw, vdb, rms);
      },
      py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("dy"),
      py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("rms") = false);
  m.def(
      "cross_entropy_forward",
      [](py::handle logits, py::handle target, py::handle loss, py::handle lse, int64_t ignore_index,
         double smoothing) {
        const char* op = "cross_entropy";
        auto vx = cpu_view(logits, op, "input"), vt = cpu_view(target, op, "target");
        auto vl = cpu_view(loss, op, "loss"), vs = cpu_view(lse, op, "lse");
        py::gil_scoped_release nogil;
        cpu::cross_entropy_forward(vx, vt, vl, vs, ignore_index, smoothing);
      },
      py::arg("logits"), py::arg("target"), py::arg("loss"), py::arg("lse"),
      py::arg("ignore_index"), py::arg("label_smoothing"));
  m.def(
      "cross_entropy_backward",
      [](py::handle logits, py::handle target, py::handle lse, py::handle dloss, py::handle dlogits,
         int64_t ignore_index, double smoothing) {
        const char* op = "cross_entropy_backward";
        auto vx = cpu_view(logits, op, "input"), vt = cpu_view(target, op, "target");
        auto vs = cpu_view(lse, op, "lse"), vg = cpu_view(dloss, op, "grad_loss");
        auto vdx = cpu_view(dlogits, op, "grad_input");
        py::gil_scoped_release nogil;
        cpu::cross_entropy_backward(vx, vt, vs, vg, vdx, ignore_index, smoothing);
      },
      py::arg("logits"), py::arg("target"), py::arg("lse"), py::arg("dloss"), py::arg("dlogits"),
      py::arg("ignore_index"), py::arg("label_smoothing"));
}

}  // namespace pydl::bind
