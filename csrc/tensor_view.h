// TensorView: what the compiled kernels see of an array. The memory belongs to
// the caller (a NumPy or CuPy array allocated in Python); a view never owns or
// allocates it. Errors are C++ exceptions that the bindings turn into Python
// exceptions naming the op.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pydl {

enum class DType : int { Float32, Float64, Float16, BFloat16, Int32, Int64, Bool, Other };
enum class Device : int { CPU, CUDA };

const char* dtype_name(DType t);
int64_t dtype_size(DType t);

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::Other;
  Device device = Device::CPU;
  std::vector<int64_t> shape;    // elements
  std::vector<int64_t> strides;  // elements, not bytes

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
  int64_t size(int64_t d) const { return shape[d < 0 ? d + ndim() : d]; }
  bool is_contiguous() const;
  template <typename T> T* ptr() const { return static_cast<T*>(data); }
};

// Exception types the bindings map to ValueError, TypeError, IndexError and RuntimeError.
struct ValueError : std::runtime_error { using std::runtime_error::runtime_error; };
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct IndexError : std::runtime_error { using std::runtime_error::runtime_error; };
// A CUDA runtime error, raised right after the launch that caused it (RuntimeError in Python).
struct CudaError : std::runtime_error { using std::runtime_error::runtime_error; };

// Checks shared by every op; `op` names the op in the message.
void check_contiguous(const char* op, const char* arg, const TensorView& t);
void check_dtype(const char* op, const char* arg, const TensorView& t, DType want);
void check_same_dtype(const char* op, const char* arg, const TensorView& t, const TensorView& ref);
void check_shape(const char* op, const char* arg, const TensorView& t,
                 const std::vector<int64_t>& want);
void check_float(const char* op, const char* arg, const TensorView& t);
std::string shape_str(const std::vector<int64_t>& s);

}  // namespace pydl
