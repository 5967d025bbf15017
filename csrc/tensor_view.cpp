#include "csrc/tensor_view.h"


namespace pydl {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
    default: return "unsupported dtype";
  }
}

int64_t dtype_size(DType t) {
  switch (t) {
    case DType::Float64: case DType::Int64: return 8;
    case DType::Float32: case DType::Int32: return 4;
    case DType::Float16: case DType::BFloat16: return 2;
    case DType::Bool: return 1;
    default: return 0;
  }
}

bool TensorView::is_contiguous() const {
  if (numel() == 0) return true;  // empty arrays may carry any strides
  int64_t expect = 1;
  for (int64_t d = ndim() - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) out += ",";
  return out + ")";
}

void check_contiguous(const char* op, const char* arg, const TensorView& t) {
  if (!t.is_contiguous())
    throw ValueError(std::string(op) + ": " + arg + " must be contiguous");
}

void check_dtype(const char* op, const char* arg, const TensorView& t, DType want) {
  if (t.dtype != want)
    throw TypeError(std::string(op) + ": " + arg + " must be " + dtype_name(want) +
                    ", got " + dtype_name(t.dtype));
}

void check_same_dtype(const char* op, const char* arg, const TensorView& t, const TensorView& ref) {
  if (t.dtype != ref.dtype)
    throw TypeError(std::string(op) + ": " + arg + " has dtype " + dtype_name(t.dtype) +
                    ", expected " + dtype_name(ref.dtype));
}

void check_shape(const char* op, const char* arg, const TensorView& t,
                 const std::vector<int64_t>& want) {
  if (t.shape != want)
    throw ValueError(std::string(op) + ": " + arg + " has shape " + shape_str(t.shape) +
                     ", expected " + shape_str(want));
}

void check_float(const char* op, const char* arg, const TensorView& t) {
  if (t.dtype != DType::Float32 && t.dtype != DType::Float64)
    throw TypeError(std::string(op) + ": " + arg + " must be float32 or float64, got " +
                    dtype_name(t.dtype));
}

}  // namespace pydl
