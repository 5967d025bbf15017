// pydl._C.cuda: the fused conv kernels (filled in by kernels/conv/).
#ifdef PYDL_WITH_CUDA

#include "bindings/views.h"

namespace pydl::bind {

void register_cuda_conv(py::module_& m) {}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
