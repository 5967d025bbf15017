// Array -> TensorView conversion for the bindings. CPU arrays come in through
// the buffer protocol (NumPy); GPU arrays through __cuda_array_interface__
// with the dtype read from the array's `.dtype` (the interface reports
// bfloat16 only as a 2-byte void type).
#pragma once

#include <pybind11/pybind11.h>

#include <exception>
#include <optional>
#include <string>

#include "csrc/tensor_view.h"

namespace pydl::bind {

namespace py = pybind11;

TensorView cpu_view(py::handle obj, const char* op, const char* arg);
std::optional<TensorView> cpu_view_opt(py::handle obj, const char* op, const char* arg);
TensorView cuda_view(py::handle obj, const char* op, const char* arg);
std::optional<TensorView> cuda_view_opt(py::handle obj, const char* op, const char* arg);
DType dtype_from_name(const std::string& name);

// pydl's C++ exceptions as Python's (ValueError, TypeError, IndexError; CudaError as
// RuntimeError), for the module being defined: call it in each PYBIND11_MODULE.
inline void translate_exceptions() {
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pydl::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const pydl::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const pydl::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const pydl::CudaError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
}

void register_cpu(py::module_& m);
void register_cpu_attention(py::module_& m);
void register_cuda(py::module_& m);
void register_cpu_conv(py::module_& m);
// Defined only in builds with CUDA kernels (bindings/cuda_*.cpp).
void register_cuda_gemm(py::module_& m);
void register_cuda_rowops(py::module_& m);
void register_cuda_attention(py::module_& m);
void register_cuda_conv(py::module_& m);

}  // namespace pydl::bind
