// pydl._C.cuda conv2d kernels (kernels/conv/): forward, input gradient, weight gradient, and
// the plan that names the kernel a call runs and the workspace it needs. Arguments are CuPy
// arrays allocated by the caller (outputs and workspaces included) and `stream`, the
// cudaStream_t to launch on as an integer (cupy.cuda.get_current_stream().ptr). The
// launchers validate the arrays and raise errors naming the op; the GIL is released while
// they run. Compiled only into CUDA builds (register_cuda calls it under PYDL_WITH_CUDA).
#ifdef PYDL_WITH_CUDA

#include <pybind11/pybind11.h>

#include "bindings/views.h"
#include "kernels/conv/conv.h"

namespace pydl::bind {

namespace {

cuda::ConvConfig config(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups,
                        bool allow_tf32) {
  cuda::ConvConfig c;
  c.sh = sh;
  c.sw = sw;
  c.ph = ph;
  c.pw = pw;
  c.dh = dh;
  c.dw = dw;
  c.groups = groups;
  c.allow_tf32 = allow_tf32;
  return c;
}

}  // namespace

void register_cuda_conv(py::module_& m) {
  m.def(
      "conv2d_plan",
      [](const std::string& pass, py::handle input, py::handle weight, py::handle output, int64_t sh, int64_t sw,
         int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups, bool allow_tf32) {
        const cuda::ConvPass ps = cuda::conv_pass_from_name(pass);
        const char* op = ps == cuda::ConvPass::Forward         ? "conv2d"
                         : ps == cuda::ConvPass::BackwardInput ? "conv2d_backward_input"
                                                               : "conv2d_backward_weight";
        const char* in_name = ps == cuda::ConvPass::BackwardInput ? "grad_input" : "input";
        const char* w_name = ps == cuda::ConvPass::BackwardWeight ? "grad_weight" : "weight";
        const char* out_name = ps == cuda::ConvPass::Forward ? "output" : "grad_output";
        auto vi = cuda_view(input, op, in_name), vw = cuda_view(weight, op, w_name),
             vo = cuda_view(output, op, out_name);
        const cuda::ConvPlan p =
            cuda::conv2d_plan(ps, vi, vw, vo, config(sh, sw, ph, pw, dh, dw, groups, allow_tf32));
        return py::make_tuple(p.variant, p.workspace, p.workspace_float32 ? "float32" : "input", p.reason);
      },
      py::arg("pass_"), py::arg("input"), py::arg("weight"), py::arg("output"), py::arg("sh"), py::arg("sw"),
      py::arg("ph"), py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"), py::arg("allow_tf32") = false,
      "(variant, workspace elements, workspace dtype ('float32' or 'input': the input's), reason) of a\n"
      "conv2d pass ('forward', 'backward_input', 'backward_weight'). `input` is x (or dx), `output`\n"
      "y (or dy), `weight` the weight (or dweight). variant: 'gemm', 'implicit_mma', 'implicit_tf32',\n"
      "'implicit_simt', 'depthwise', or 'interim' (not covered; `reason` says why).");
  m.def(
      "conv2d_forward",
      [](py::handle x, py::handle w, py::handle b, py::handle y, py::handle workspace, int64_t sh, int64_t sw,
         int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups, bool allow_tf32, std::uintptr_t stream) {
        const char* op = "conv2d";
        auto vx = cuda_view(x, op, "input"), vw = cuda_view(w, op, "weight"), vy = cuda_view(y, op, "output");
        auto vb = cuda_view_opt(b, op, "bias"), vws = cuda_view_opt(workspace, op, "workspace");
        const cuda::ConvConfig c = config(sh, sw, ph, pw, dh, dw, groups, allow_tf32);
        py::gil_scoped_release nogil;
        cuda::conv2d_forward(vx, vw, vb, vy, vws, c, stream);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), py::arg("workspace"), py::arg("sh"),
      py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"),
      py::arg("allow_tf32") = false, py::arg("stream") = 0,
      "y = conv2d(x, weight) + bias (NCHW), (top, left) padding; workspace as conv2d_plan says.");
  m.def(
      "conv2d_backward_input",
      [](py::handle dy, py::handle w, py::handle dx, py::handle workspace, int64_t sh, int64_t sw, int64_t ph,
         int64_t pw, int64_t dh, int64_t dw, int64_t groups, bool allow_tf32, std::uintptr_t stream) {
        const char* op = "conv2d_backward_input";
        auto vdy = cuda_view(dy, op, "grad_output"), vw = cuda_view(w, op, "weight"),
             vdx = cuda_view(dx, op, "grad_input");
        auto vws = cuda_view_opt(workspace, op, "workspace");
        const cuda::ConvConfig c = config(sh, sw, ph, pw, dh, dw, groups, allow_tf32);
        py::gil_scoped_release nogil;
        cuda::conv2d_backward_input(vdy, vw, vdx, vws, c, stream);
      },
      py::arg("dy"), py::arg("weight"), py::arg("dx"), py::arg("workspace"), py::arg("sh"), py::arg("sw"),
      py::arg("ph"), py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"), py::arg("allow_tf32") = false,
      py::arg("stream") = 0, "dx of conv2d from dy; workspace as conv2d_plan says.");
  m.def(
      "conv2d_backward_weight",
      [](py::handle x, py::handle dy, py::handle dweight, py::handle workspace, int64_t sh, int64_t sw, int64_t ph,
         int64_t pw, int64_t dh, int64_t dw, int64_t groups, bool allow_tf32, std::uintptr_t stream) {
        const char* op = "conv2d_backward_weight";
        auto vx = cuda_view(x, op, "input"), vdy = cuda_view(dy, op, "grad_output"),
             vdw = cuda_view(dweight, op, "grad_weight");
        auto vws = cuda_view_opt(workspace, op, "workspace");
        const cuda::ConvConfig c = config(sh, sw, ph, pw, dh, dw, groups, allow_tf32);
        py::gil_scoped_release nogil;
        cuda::conv2d_backward_weight(vx, vdy, vdw, vws, c, stream);
      },
      py::arg("x"), py::arg("dy"), py::arg("dweight"), py::arg("workspace"), py::arg("sh"), py::arg("sw"),
      py::arg("ph"), py::arg("pw"), py::arg("dh"), py::arg("dw"), py::arg("groups"), py::arg("allow_tf32") = false,
      py::arg("stream") = 0,
      "dweight of conv2d from x and dy (float32 workspace of partial sums, as conv2d_plan says).");
}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
