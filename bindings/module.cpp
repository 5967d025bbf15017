// pydl._C: one compiled module. Submodule `cpu` holds the C++ CPU kernels,
// `cuda` the CUDA kernels (empty but importable when built without nvcc).
#include <pybind11/pybind11.h>

#include <omp.h>

#include "bindings/views.h"
#include "csrc/cpu/gemm.h"
#include "pydl_build_config.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydl compiled kernels";
  pydl::bind::translate_exceptions();

  m.def("build_info", [] {
    py::dict d;
#ifdef PYDL_WITH_CUDA
    d["cuda_compiled"] = true;
#else
    d["cuda_compiled"] = false;
#endif
    d["cuda_archs"] = PYDL_BUILD_CUDA_ARCHS;
    d["cuda_version"] = PYDL_BUILD_CUDA_VERSION;
    d["compiler"] = PYDL_BUILD_CXX_COMPILER;
    d["openmp_threads"] = omp_get_max_threads();
    // The micro-kernels the CPU kernels run on this machine (PYDL_CPU_ISA caps the choice).
    static const char* const isa_names[] = {"sse2", "avx2", "avx512"};
    d["cpu_kernels"] = isa_names[static_cast<int>(pydl::cpu::gemm_detail::cpu_isa())];
    return d;
  });

  auto cpu = m.def_submodule("cpu", "C++ CPU kernels");
  pydl::bind::register_cpu(cpu);
  auto cuda = m.def_submodule("cuda", "CUDA kernels");
  pydl::bind::register_cuda(cuda);
}
