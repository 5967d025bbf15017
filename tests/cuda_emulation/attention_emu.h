// Host emulation of the CUDA features pydl's attention kernels use, for running
// kernels/attention/ on the CPU as rewritten by attention_emu_sources.py:
//
// - every CUDA thread is a fiber with its own stack; the threads of a block run one after
//   another on one OS thread, switching only at barriers (__syncthreads, __syncwarp, and the
//   warp collectives: shuffles, ldmatrix, mma.sync), so a barrier that not every thread
//   reaches is a deadlock, reported as an error;
// - the order in which the threads of a block run between barriers is a choice (Schedule):
//   thread by thread, or warp by warp forwards or backwards, so a missing barrier between
//   a shared-memory write and a read by another warp shows up in one of them;
// - shared memory is an exact-size allocation per launch, filled with NaN bytes (0xFF) before
//   each block: a tile element no thread writes shows up as NaN in the results;
// - ldmatrix and mma.sync m16n8k16 exchange registers between the 32 lanes as the PTX ISA
//   lays out their fragments (the products summed exactly, then added to the float
//   accumulator); ldmatrix and cp.async check alignment and that the shared-memory side lies
//   inside the block's allocation;
// - cp.async reads its source when issued and lands in shared memory at the issuing thread's
//   cp.async.wait_group (CopyLanding::AtWait: a read before the wait and barrier shows) or at
//   once (CopyLanding::AtIssue: a buffer refilled while another warp reads it shows);
// - the runtime calls of the host launchers (device attributes, the shared-memory opt-in per
//   kernel, launch errors through cudaGetLastError) answer for an emulated device whose
//   compute capability and shared-memory limit the caller sets.
//
// Not emulated: timing, the memory model across blocks (blocks run one after another, and
// atomicAdd is a plain add), the approximate exp2f of the GPU. The -m cuda tests cover those.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define PYDL_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PYDL_EMU_ASAN 1
#endif
#endif

// ---- CUDA keywords and types ---------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __restrict__ __restrict

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }

struct __half {
  uint16_t x;
};
struct __nv_bfloat16 {
  uint16_t x;
};
struct __half2 {
  __half x, y;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidConfiguration = 9 };
enum cudaDeviceAttr {
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct cudaFuncAttributes {
  size_t sharedSizeBytes = 0;
};

namespace emu {

// ---- 16-bit floats (round to nearest even, as __float2half_rn / __float2bfloat16_rn) ---------
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  float f;
  if (exp == 0x1F) {
    const uint32_t u = sign | 0x7F800000u | (man << 13);
    std::memcpy(&f, &u, 4);
    return f;
  }
  f = exp == 0 ? std::ldexp(static_cast<float>(man), -24)
               : std::ldexp(static_cast<float>(man | 0x400u), static_cast<int>(exp) - 25);
  return sign ? -f : f;
}
inline uint16_t float_to_half(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const float a = std::fabs(v);
  if (std::isnan(v)) return static_cast<uint16_t>(sign | 0x7E00u);
  if (a >= 65520.0f) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past the largest half
  if (a < std::ldexp(1.0f, -14)) {  // subnormal: multiples of 2^-24, nearest even
    const float q = std::nearbyint(std::ldexp(a, 24));
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(q));
  }
  int e;
  const float m = std::frexp(a, &e);                            // a = m 2^e, m in [0.5, 1)
  const float q = std::nearbyint(std::ldexp(m, 11));             // 11 significant bits
  uint32_t man = static_cast<uint32_t>(q), exp = static_cast<uint32_t>(e + 14);
  if (man == 2048) {
    man = 1024;
    ++exp;
  }
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  return static_cast<uint16_t>(sign | (exp << 10) | (man & 0x3FFu));
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if (std::isnan(v)) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// ---- the emulated device ---------------------------------------------------------------------
enum class Schedule { ThreadByThread, WarpByWarp, WarpByWarpReversed };
enum class CopyLanding { AtWait, AtIssue };

struct Device {
  int capability = 80;                     // major * 10 + minor
  size_t shared_optin = 163 * 1024;        // dynamic shared memory one block may opt into
  Schedule schedule = Schedule::ThreadByThread;
  CopyLanding landing = CopyLanding::AtWait;
};
Device& device();

// What the emulation saw: launches, blocks, and the streams the launches named.
struct Stats {
  long launches = 0, blocks = 0;
  std::vector<cudaStream_t> streams;
};
Stats& stats();

// Printed with every emulation error: what the caller was running.
std::string& context();
[[noreturn]] void fail(const std::string& what);

// ---- threads, warps, blocks -----------------------------------------------------------------
struct Barrier {
  int expected = 0, arrived = 0;
  uint64_t generation = 0;
};

struct PendingCopy {
  unsigned char* dst;
  unsigned char data[16];
  int group;  // -1 until committed
};

struct Thread {
  void* context = nullptr;     // the saved execution context while switched out
  void* fake_stack = nullptr;  // AddressSanitizer's, while switched out
  uint3 tid;
  int lane = 0, warp = 0;
  bool done = false;
  Barrier* waiting = nullptr;
  uint64_t waiting_generation = 0;
  std::vector<PendingCopy> copies;
  int next_group = 0;
};

// Register exchange of one warp, two slots used alternately: a lane can be at most one
// collective ahead of the slowest lane of its warp.
struct WarpSlot {
  const void* addr[32];
  uint32_t a[32][4];
  uint32_t b[32][2];
  uint64_t word[32];
};
struct Warp {
  Barrier barrier;
  WarpSlot slot[2];
  int lane_turn[32] = {};  // the slot of each lane's next collective
};

struct Block {
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  Barrier all;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  uint3 bid;
  dim3 bdim, gdim;
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
};

extern Block* g_block;
extern Thread* g_thread;

// Runs every thread of `b` to completion under device().schedule.
void run_block(Block& b);
// Blocks the calling thread at `bar` until `bar.expected` threads have arrived.
void arrive(Barrier& bar);
// Shared-memory range check of the running block.
bool in_shared(const void* p, size_t bytes);

inline Thread& self() { return *g_thread; }
inline Warp& my_warp() {
  Warp& w = g_block->warps[g_thread->warp];
  if (w.barrier.expected != 32) fail("warp collective in a warp of fewer than 32 threads");
  return w;
}
// The exchange slot of the calling lane's next collective; collective_done moves the lane on
// to the other one.
inline WarpSlot& collective_slot() {
  Warp& w = my_warp();
  return w.slot[w.lane_turn[g_thread->lane]];
}
inline void collective_done() {
  Warp& w = my_warp();
  w.lane_turn[g_thread->lane] ^= 1;
}

template <typename T>
T* shared_memory() {
  return reinterpret_cast<T*>(g_block->smem);
}

// ---- launches -------------------------------------------------------------------------------
cudaError_t& last_error();
size_t& optin_of(const void* kernel);

template <typename... Args>
struct Launch {
  void (*kernel)(Args...);
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;

  template <typename... Given>
  void operator()(Given&&... given) const {
    auto& st = stats();
    ++st.launches;
    st.streams.push_back(stream);
    const unsigned long threads = static_cast<unsigned long>(block.x) * block.y * block.z;
    if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7FFFFFFFu ||
        grid.y > 65535 || grid.z > 65535) {
      last_error() = cudaErrorInvalidConfiguration;
      return;
    }
    const void* key = reinterpret_cast<const void*>(kernel);
    if (smem > 48 * 1024 && smem > optin_of(key)) {
      last_error() = cudaErrorInvalidValue;
      return;
    }
    if (smem > device().shared_optin) {
      last_error() = cudaErrorInvalidValue;
      return;
    }
    struct Bound {
      void (*kernel)(Args...);
      std::tuple<std::decay_t<Args>...> args;
    } bound{kernel, std::tuple<std::decay_t<Args>...>(std::forward<Given>(given)...)};
    void (*body)(void*) = [](void* p) {
      Bound& b = *static_cast<Bound*>(p);
      std::apply(b.kernel, b.args);
    };
    unsigned char* smem_buf = nullptr;
    if (smem > 0 && posix_memalign(reinterpret_cast<void**>(&smem_buf), 128, smem) != 0) fail("out of memory");
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) {
          Block b;
          b.bid = {bx, by, bz};
          b.bdim = block;
          b.gdim = grid;
          b.smem = smem_buf;
          b.smem_bytes = smem;
          if (smem_buf) std::memset(smem_buf, 0xFF, smem);
          b.body = body;
          b.body_arg = &bound;
          run_block(b);
          ++st.blocks;
        }
    std::free(smem_buf);
  }
};

template <typename... Args>
Launch<Args...> launch(void (*kernel)(Args...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr) {
  return Launch<Args...>{kernel, grid, block, smem, stream};
}

// ---- warp collectives -----------------------------------------------------------------------
template <typename T>
T shfl_xor(T v, int mask) {
  static_assert(sizeof(T) <= 8, "shuffle of up to 8 bytes");
  WarpSlot& s = collective_slot();
  const int lane = g_thread->lane;
  std::memcpy(&s.word[lane], &v, sizeof(T));
  arrive(my_warp().barrier);
  T r;
  std::memcpy(&r, &s.word[lane ^ (mask & 31)], sizeof(T));
  collective_done();
  return r;
}

// ldmatrix .m8n8 .b16 (x1, x2, x4): lanes 8i..8i+7 give the row addresses of matrix i; lane l
// gets elements (row l/4, columns 2(l%4), 2(l%4)+1) of each matrix, or with .trans
// (rows 2(l%4), 2(l%4)+1, column l/4).
inline void ldmatrix(uint32_t* r, int num, bool trans, const void* p) {
  WarpSlot& s = collective_slot();
  const int lane = g_thread->lane, g = lane >> 2, t = lane & 3;
  s.addr[lane] = p;
  arrive(my_warp().barrier);
  for (int i = 0; i < num; ++i) {
    const uint16_t* rows[8];
    for (int k = 0; k < 8; ++k) {
      const void* a = s.addr[8 * i + k];
      if (reinterpret_cast<uintptr_t>(a) % 16 != 0) fail("ldmatrix row address not 16-byte aligned");
      if (!in_shared(a, 16)) fail("ldmatrix row outside the block's shared memory");
      rows[k] = static_cast<const uint16_t*>(a);
    }
    const uint16_t lo = trans ? rows[2 * t][g] : rows[g][2 * t];
    const uint16_t hi = trans ? rows[2 * t + 1][g] : rows[g][2 * t + 1];
    r[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
  collective_done();
}

// mma.sync.m16n8k16 .row.col, float accumulators; fragments (g = lane / 4, t = lane % 4):
// A a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..); B b0 (k 2t.., n g)
// b1 (k 2t+8.., n g); C c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1).
template <bool kBf16>
void mma16816(float* c, const uint32_t* a, const uint32_t* b) {
  WarpSlot& s = collective_slot();
  const int lane = g_thread->lane, g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) s.a[lane][i] = a[i];
  s.b[lane][0] = b[0];
  s.b[lane][1] = b[1];
  arrive(my_warp().barrier);
  auto value = [](uint32_t reg, int high) {
    const uint16_t h = static_cast<uint16_t>(high ? reg >> 16 : reg & 0xFFFFu);
    return static_cast<double>(kBf16 ? bf16_to_float(h) : half_to_float(h));
  };
  // A (row, k): lane 4 (row % 8) + (k % 8) / 2, register (row >= 8) + 2 (k >= 8), half k % 2.
  auto A = [&](int row, int k) { return value(s.a[4 * (row & 7) + ((k & 7) >> 1)][(row >> 3) + 2 * (k >> 3)], k & 1); };
  // B (k, n): lane 4 n + (k % 8) / 2, register (k >= 8), half k % 2.
  auto B = [&](int k, int n) { return value(s.b[4 * n + ((k & 7) >> 1)][k >> 3], k & 1); };
  for (int e = 0; e < 4; ++e) {
    const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
    double sum = 0.0;
    for (int k = 0; k < 16; ++k) sum += A(row, k) * B(k, col);
    c[e] = static_cast<float>(static_cast<double>(c[e]) + sum);
  }
  collective_done();
}

// ---- cp.async ---------------------------------------------------------------------------------
inline void cp_async16(void* dst, const void* src, int bytes) {
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0)
    fail("cp.async address not 16-byte aligned");
  if (!in_shared(dst, 16)) fail("cp.async destination outside the block's shared memory");
  if (bytes < 0 || bytes > 16) fail("cp.async source size outside 0..16");
  PendingCopy c;
  c.dst = static_cast<unsigned char*>(dst);
  std::memset(c.data, 0, 16);
  if (bytes > 0) std::memcpy(c.data, src, static_cast<size_t>(bytes));  // the sanitizer checks the source
  c.group = -1;
  if (device().landing == CopyLanding::AtIssue) std::memcpy(c.dst, c.data, 16);
  else g_thread->copies.push_back(c);
}
inline void cp_async_commit() {
  Thread& t = self();
  for (auto& c : t.copies)
    if (c.group < 0) c.group = t.next_group;
  ++t.next_group;
}
inline void cp_async_wait(int n) {
  Thread& t = self();
  size_t keep = 0;
  for (size_t i = 0; i < t.copies.size(); ++i) {
    PendingCopy& c = t.copies[i];
    if (c.group >= 0 && c.group < t.next_group - n) std::memcpy(c.dst, c.data, 16);
    else t.copies[keep++] = c;
  }
  t.copies.resize(keep);
}

}  // namespace emu

// ---- device built-ins -----------------------------------------------------------------------
#define threadIdx (::emu::g_thread->tid)
#define blockIdx (::emu::g_block->bid)
#define blockDim (::emu::g_block->bdim)
#define gridDim (::emu::g_block->gdim)

inline void __syncthreads() { ::emu::arrive(::emu::g_block->all); }
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  if (mask != 0xFFFFFFFFu) ::emu::fail("__syncwarp with a partial mask");
  ::emu::arrive(::emu::my_warp().barrier);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  if (mask != 0xFFFFFFFFu) ::emu::fail("__shfl_xor_sync with a partial mask");
  return ::emu::shfl_xor(v, lane_mask);
}
template <typename T>
T __ldg(const T* p) {
  if (sizeof(T) > 4 && reinterpret_cast<uintptr_t>(p) % alignof(T) != 0) ::emu::fail("misaligned vector load");
  return *p;
}
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}

inline __half __float2half_rn(float v) { return {::emu::float_to_half(v)}; }
inline float __half2float(__half h) { return ::emu::half_to_float(h.x); }
inline __nv_bfloat16 __float2bfloat16_rn(float v) { return {::emu::float_to_bf16(v)}; }
inline float __bfloat162float(__nv_bfloat16 h) { return ::emu::bf16_to_float(h.x); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}

// ---- the runtime calls of the host launchers ---------------------------------------------------
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int) {
  const auto& d = ::emu::device();
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *v = d.capability / 10; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = d.capability % 10; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = static_cast<int>(d.shared_optin); return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ::emu::last_error();
  ::emu::last_error() = cudaSuccess;
  return e;
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  }
  return "unknown error";
}
template <typename K>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, K) {
  attr->sharedSizeBytes = 0;  // the attention kernels declare no static shared memory
  return cudaSuccess;
}
template <typename K>
cudaError_t cudaFuncSetAttribute(K kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > ::emu::device().shared_optin)
    return ::emu::last_error() = cudaErrorInvalidValue;
  ::emu::optin_of(reinterpret_cast<const void*>(kernel)) = static_cast<size_t>(value);
  return cudaSuccess;
}

// ---- the PTX wrappers of kernels/common/mma_sync.cuh ------------------------------------------
namespace pydl::cuda::mma {
inline void cp_async16(void* smem, const void* gmem, int src_bytes) { ::emu::cp_async16(smem, gmem, src_bytes); }
inline void cp_async_commit() { ::emu::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
  ::emu::cp_async_wait(N);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ::emu::ldmatrix(r, 4, false, p); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ::emu::ldmatrix(r, 4, true, p); }
inline void ldmatrix_x2(uint32_t (&r)[2], const void* p) { ::emu::ldmatrix(r, 2, false, p); }
inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) { ::emu::ldmatrix(r, 2, true, p); }
inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], __half) {
  ::emu::mma16816<false>(c, a, b);
}
inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], __nv_bfloat16) {
  ::emu::mma16816<true>(c, a, b);
}
}  // namespace pydl::cuda::mma
