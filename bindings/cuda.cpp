// pydl._C.cuda: the CUDA kernels. Built without nvcc, the submodule still
// exists and reports no device, so `import pydl` works everywhere.
#include <pybind11/pybind11.h>

#include "bindings/views.h"
#ifdef PYDL_WITH_CUDA
#include "kernels/common/device.h"
#endif

namespace pydl::bind {

void register_cuda(py::module_& m) {
#ifdef PYDL_WITH_CUDA
  m.attr("compiled") = true;
  m.def("device_count", &pydl::cuda::device_count);
  m.def("device_capability", &pydl::cuda::device_capability, py::arg("device") = 0);
  register_cuda_gemm(m);
  register_cuda_rowops(m);
  register_cuda_attention(m);
  register_cuda_conv(m);
#else
  m.attr("compiled") = false;
  m.def("device_count", [] { return 0; });
  m.def("device_capability", [](int) { return -1; }, py::arg("device") = 0);
#endif
}

}  // namespace pydl::bind
