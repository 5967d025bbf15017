#include "bindings/views.h"

#include <pybind11/numpy.h>

namespace pydl::bind {

DType dtype_from_name(const std::string& n) {
  if (n == "float32") return DType::Float32;
  if (n == "float64") return DType::Float64;
  if (n == "float16") return DType::Float16;
  if (n == "bfloat16") return DType::BFloat16;
  if (n == "int32") return DType::Int32;
  if (n == "int64") return DType::Int64;
  if (n == "bool") return DType::Bool;
  return DType::Other;
}

TensorView cpu_view(py::handle obj, const char* op, const char* arg) {
  if (!py::isinstance<py::array>(obj))
    throw TypeError(std::string(op) + ": " + arg + " must be a NumPy array on the CPU, got " +
                    std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  TensorView v;
  v.data = const_cast<void*>(a.data());
  v.device = Device::CPU;
  v.dtype = dtype_from_name(py::str(a.dtype().attr("name")));
  const int64_t item = a.itemsize();
  v.shape.resize(a.ndim());
  v.strides.resize(a.ndim());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    v.shape[d] = a.shape(d);
    if (a.strides(d) % item != 0)
      throw ValueError(std::string(op) + ": " + arg + " has a stride that is not a whole number of elements");
    v.strides[d] = a.strides(d) / item;
  }
  return v;
}

std::optional<TensorView> cpu_view_opt(py::handle obj, const char* op, const char* arg) {
  if (obj.is_none()) return std::nullopt;
  return cpu_view(obj, op, arg);
}

TensorView cuda_view(py::handle obj, const char* op, const char* arg) {
  if (!py::hasattr(obj, "__cuda_array_interface__"))
    throw TypeError(std::string(op) + ": " + arg + " must be a GPU array (CuPy), got " +
                    std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::dict cai = obj.attr("__cuda_array_interface__");
  TensorView v;
  v.device = Device::CUDA;
  v.data = reinterpret_cast<void*>(cai["data"].cast<py::tuple>()[0].cast<uintptr_t>());
  v.dtype = dtype_from_name(py::str(obj.attr("dtype").attr("name")));
  const int64_t item = dtype_size(v.dtype);
  auto shape = cai["shape"].cast<py::tuple>();
  v.shape.resize(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) v.shape[d] = shape[d].cast<int64_t>();
  v.strides.resize(shape.size());
  py::object strides = cai.contains("strides") ? py::object(cai["strides"]) : py::object(py::none());
  if (strides.is_none()) {
    int64_t s = 1;
    for (int64_t d = static_cast<int64_t>(v.shape.size()) - 1; d >= 0; --d) {
      v.strides[d] = s;
      s *= v.shape[d];
    }
  } else {
    auto st = strides.cast<py::tuple>();
    for (size_t d = 0; d < st.size(); ++d) {
      const int64_t b = st[d].cast<int64_t>();
      if (item == 0 || b % item != 0)
        throw ValueError(std::string(op) + ": " + arg + " has a stride that is not a whole number of elements");
      v.strides[d] = b / item;
    }
  }
  return v;
}

std::optional<TensorView> cuda_view_opt(py::handle obj, const char* op, const char* arg) {
  if (obj.is_none()) return std::nullopt;
  return cuda_view(obj, op, arg);
}

}  // namespace pydl::bind
