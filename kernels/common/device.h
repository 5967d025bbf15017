// Host-side queries of the CUDA runtime, safe to call with no driver or GPU.
#pragma once

namespace pydl::cuda {

// Number of visible GPUs; 0 when the driver or the device is missing.
int device_count();
// Compute capability as major * 10 + minor, or -1 if the device cannot be queried.
int device_capability(int device);

}  // namespace pydl::cuda
