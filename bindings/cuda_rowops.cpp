// pydl._C.cuda row kernels: softmax, layer norm / RMSNorm, fused cross-entropy.
// Arguments are CuPy arrays allocated by the caller (outputs, workspace and
// error flag included) and `stream`, the cudaStream_t to launch on as an
// integer (cupy.cuda.get_current_stream().ptr). The launchers validate the
// arrays and raise errors naming the op; the GIL is released while they run.
// Compiled only into CUDA builds (register_cuda calls it under PYDL_WITH_CUDA).
#ifdef PYDL_WITH_CUDA
#include <pybind11/pybind11.h>

#include "bindings/views.h"
#include "kernels/rowops.h"

namespace pydl::bind {

void register_cuda_rowops(py::module_& m) {
  m.def(
      "softmax_forward",
      [](py::handle x, py::handle y, bool log, std::uintptr_t stream) {
        const char* op = log ? "log_softmax" : "softmax";
        auto vx = cuda_view(x, op, "input"), vy = cuda_view(y, op, "output");
        py::gil_scoped_release nogil;
        cuda::softmax_forward(vx, vy, log, stream);
      },
      py::arg("x"), py::arg("y"), py::arg("log") = false, py::arg("stream") = 0);
  m.def(
      "softmax_backward",
      [](py::handle y, py::handle dy, py::handle dx, bool log, std::uintptr_t stream) {
        const char* op = log ? "log_softmax_backward" : "softmax_backward";
        auto vy = cuda_view(y, op, "output"), vdy = cuda_view(dy, op, "grad_output"),
             vdx = cuda_view(dx, op, "grad_input");
        py::gil_scoped_release nogil;
        cuda::softmax_backward(vy, vdy, vdx, log, stream);
      },
      py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("log") = false, py::arg("stream") = 0);
  m.def(
      "layer_norm_forward",
      [](py::handle x, py::handle w, py::handle b, py::handle y, py::handle mean, py::handle rstd,
         double eps, bool rms, std::uintptr_t stream) {
        const char* op = rms ? "rms_norm" : "layer_norm";
        auto vx = cuda_view(x, op, "input");
        auto vw = cuda_view_opt(w, op, "weight"), vb = cuda_view_opt(b, op, "bias");
        auto vy = cuda_view(y, op, "output"), vm = cuda_view(mean, op, "mean"),
             vr = cuda_view(rstd, op, "rstd");
        py::gil_scoped_release nogil;
        cuda::layer_norm_forward(vx, vw, vb, vy, vm, vr, eps, rms, stream);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("mean"),
      py::arg("rstd"), py::arg("eps"), py::arg("rms") = false, py::arg("stream") = 0);
  m.def("layer_norm_backward_workspace_size", &cuda::layer_norm_backward_workspace_size,
        "float32 elements of the workspace layer_norm_backward needs for dweight/dbias",
        py::arg("rows"), py::arg("cols"));
  m.def(
      "layer_norm_backward",
      [](py::handle x, py::handle w, py::handle mean, py::handle rstd, py::handle dy, py::handle dx,
         py::handle dw, py::handle db, py::handle workspace, bool rms, std::uintptr_t stream) {
        const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
        auto vx = cuda_view(x, op, "input");
        auto vw = cuda_view_opt(w, op, "weight");
        auto vm = cuda_view(mean, op, "mean"), vr = cuda_view(rstd, op, "rstd");
        auto vdy = cuda_view(dy, op, "grad_output"), vdx = cuda_view(dx, op, "grad_input");
        auto vdw = cuda_view_opt(dw, op, "grad_weight"), vdb = cuda_view_opt(db, op, "grad_bias");
        auto vws = cuda_view_opt(workspace, op, "workspace");
        py::gil_scoped_release nogil;
        cuda::layer_norm_backward(vx, vw, vm, vr, vdy, vdx, vdw, vdb, vws, rms, stream);
      },
      py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("dy"),
      py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("workspace"),
      py::arg("rms") = false, py::arg("stream") = 0);
  m.def(
      "cross_entropy_forward",
      [](py::handle logits, py::handle target, py::handle loss, py::handle lse,
         py::handle error_flag, int64_t ignore_index, double smoothing, std::uintptr_t stream) {
        const char* op = "cross_entropy";
        auto vx = cuda_view(logits, op, "input"), vt = cuda_view(target, op, "target");
        auto vl = cuda_view(loss, op, "loss"), vs = cuda_view(lse, op, "lse");
        auto vf = cuda_view(error_flag, op, "error_flag");
        py::gil_scoped_release nogil;
        cuda::cross_entropy_forward(vx, vt, vl, vs, vf, ignore_index, smoothing, stream);
      },
      py::arg("logits"), py::arg("target"), py::arg("loss"), py::arg("lse"),
      py::arg("error_flag"), py::arg("ignore_index"), py::arg("label_smoothing"),
      py::arg("stream") = 0);
  m.def(
      "cross_entropy_backward",
      [](py::handle logits, py::handle target, py::handle lse, py::handle dloss, py::handle dlogits,
         int64_t ignore_index, double smoothing, std::uintptr_t stream) {
        const char* op = "cross_entropy_backward";
        auto vx = cuda_view(logits, op, "input"), vt = cuda_view(target, op, "target");
        auto vs = cuda_view(lse, op, "lse"), vg = cuda_view(dloss, op, "grad_loss");
        auto vdx = cuda_view(dlogits, op, "grad_input");
        py::gil_scoped_release nogil;
        cuda::cross_entropy_backward(vx, vt, vs, vg, vdx, ignore_index, smoothing, stream);
      },
      py::arg("logits"), py::arg("target"), py::arg("lse"), py::arg("dloss"), py::arg("dlogits"),
      py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("stream") = 0);
}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
