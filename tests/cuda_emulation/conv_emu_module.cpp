// The Python module `conv_emu`: pydl's conv bindings (bindings/cuda_conv.cpp, the same
// validation and planning of kernels/conv/conv.cu) over the emulated launchers of
// conv_launchers_emulated.cu, so that conv_emu_backend.py can run pydl/backend/cuda.py's conv
// functions on host arrays that present __cuda_array_interface__. Exceptions map to Python's
// as in pydl._C.
#include <pybind11/pybind11.h>

#include "bindings/views.h"

namespace py = pybind11;

PYBIND11_MODULE(conv_emu, m) {
  pydl::bind::translate_exceptions();
  pydl::bind::register_cuda_conv(m);
}
