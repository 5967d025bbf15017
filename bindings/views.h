// Array -> TensorView conversion for the bindings. CPU arrays come in through
// the buffer protocol (NumPy); GPU arrays through __cuda_array_interface__
// with the dtype read from the array's `.dtype` (the interface reports
// bfloat16 only as a 2-byte void type).
#pragma once

#include <pybind11/pybind11.h>

#include <optional>

#include "csrc/tensor_view.h"

namespace pydl::bind {

namespace py = pybind11;

TensorView cpu_view(py::handle obj, const char* op, const char* arg);
std::optional<TensorView> cpu_view_opt(py::handle obj, const char* op, const char* arg);
TensorView cuda_view(py::handle obj, const char* op, const char* arg);
std::optional<TensorView> cuda_view_opt(py::handle obj, const char* op, const char* arg);
DType dtype_from_name(const std::string& name);

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
