// The Python module `attention_emu`: pydl's attention bindings (bindings/cuda_attention.cpp,
// the same validation and launch arguments as pydl._C.cuda) over the kernels of
// kernels/attention/ run by the host emulation of attention_emu.h, so that
// attention_emu_backend.py can run pydl/backend/cuda.py's attention functions on host arrays
// that present __cuda_array_interface__. Exceptions map to Python's as in pydl._C; the
// emulated device (compute capability, shared memory per block) can be changed, and the
// launches it saw read back.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "attention_emu.h"
#include "bindings/views.h"

namespace py = pybind11;

PYBIND11_MODULE(attention_emu, m) {
  pydl::bind::translate_exceptions();
  pydl::bind::register_cuda_attention(m);
  m.def(
      "set_device",
      [](int capability, size_t shared_optin) {
        emu::device().capability = capability;
        emu::device().shared_optin = shared_optin;
      },
      py::arg("capability"), py::arg("shared_optin"),
      "The emulated device: compute capability (major * 10 + minor) and the dynamic shared\n"
      "memory one block may opt into, in bytes.");
  m.def("set_context", [](const std::string& what) { emu::context() = what; },
        "What an emulation error names as running.");
  m.def(
      "launch_streams",
      [] {
        std::vector<std::uintptr_t> s;
        for (cudaStream_t x : emu::stats().streams) s.push_back(reinterpret_cast<std::uintptr_t>(x));
        emu::stats().streams.clear();
        return s;
      },
      "The streams of the kernel launches since the last call, in order.");
}
