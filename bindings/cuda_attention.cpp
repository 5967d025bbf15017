// pydl._C.cuda: the fused attention kernels (filled in by kernels/attention/).
#ifdef PYDL_WITH_CUDA

#include "bindings/views.h"

namespace pydl::bind {

void register_cuda_attention(py::module_& m) {}

}  // namespace pydl::bind

#endif  // PYDL_WITH_CUDA
