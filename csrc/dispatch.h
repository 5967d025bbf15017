// Dtype dispatch for the CPU kernels: float32 and float64 (half types are
// widened to float32 in Python before they reach the CPU kernels).
#pragma once

#include <string>

#include "csrc/tensor_view.h"

#define PYDL_DISPATCH_FLOAT(dtype, op, ...)                                           \
  [&] {                                                                               \
    switch (dtype) {                                                                  \
      case ::pydl::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }  \
      case ::pydl::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); } \
      default:                                                                        \
        throw ::pydl::TypeError(std::string(op) + ": unsupported dtype " +           \
                                ::pydl::dtype_name(dtype) + " on the CPU");           \
    }                                                                                 \
  }()
