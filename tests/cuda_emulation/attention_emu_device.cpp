// The emulated device of attention_emu.h: its state, the fibers that run the CUDA threads of
// a block, the barriers between them, and gemm_current_capability (kernels/gemm/gemm.cu's,
// which the attention launchers call) answered from the emulated device.
//
// A fiber switch on x86-64 is a few instructions (the callee-saved registers and the stack
// pointer); elsewhere it is swapcontext, which also saves the signal mask (a system call per
// switch, several times slower). The fibers tell AddressSanitizer about each switch, so it
// follows them from stack to stack.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "attention_emu.h"
#include "kernels/gemm/gemm.h"

#if defined(PYDL_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(PYDL_EMU_UCONTEXT)
#define PYDL_EMU_ASM_SWITCH 1
#else
#define PYDL_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

#if PYDL_EMU_ASM_SWITCH
// pydl_emu_switch(from, to): pushes the callee-saved registers, stores the stack pointer in
// *from, loads `to` as the stack pointer, pops that context's registers and returns into it.
extern "C" void pydl_emu_switch(void** from, void* to);
asm(R"(
  .text
  .p2align 4
  .globl pydl_emu_switch
  .hidden pydl_emu_switch
  .type pydl_emu_switch, @function
pydl_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size pydl_emu_switch, .-pydl_emu_switch
  .text
)");
#endif

namespace emu {

Block* g_block = nullptr;
Thread* g_thread = nullptr;

Device& device() {
  static Device d;
  return d;
}
Stats& stats() {
  static Stats s;
  return s;
}
std::string& context() {
  static std::string c;
  return c;
}
cudaError_t& last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
size_t& optin_of(const void* kernel) {
  static std::map<const void*, size_t> m;
  return m[kernel];
}

void fail(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "EMULATION ERROR: %s\n  while running: %s\n", what.c_str(), context().c_str());
  if (g_block && g_thread)
    std::fprintf(stderr, "  in block (%u, %u, %u), thread %u\n", g_block->bid.x, g_block->bid.y, g_block->bid.z,
                 g_thread->tid.x);
  std::fflush(stderr);
  std::abort();
}

#if defined(PYDL_EMU_ASAN)
namespace {
// A sanitizer report names the case that was running.
void name_the_case() { std::fprintf(stderr, "while running: %s\n", context().c_str()); }
[[maybe_unused]] const bool g_death_callback = (__sanitizer_set_death_callback(name_the_case), true);
}  // namespace
#endif

bool in_shared(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  return g_block && g_block->smem && c >= g_block->smem && c + bytes <= g_block->smem + g_block->smem_bytes;
}

namespace {

constexpr size_t kStackBytes = 256 * 1024;

struct Stack {
  unsigned char* lo;  // above a guard page
#if !PYDL_EMU_ASM_SWITCH
  ucontext_t uc;
#endif
};

// Fiber stacks, made once and reused by every block (thread i of a block runs on stack i).
std::vector<Stack*>& stacks(size_t n) {
  static std::vector<Stack*> pool;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  while (pool.size() < n) {
    void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) fail("cannot map a fiber stack");
    mprotect(m, page, PROT_NONE);  // an overflow faults instead of writing over the next stack
    pool.push_back(new Stack{static_cast<unsigned char*>(m) + page});
  }
  return pool;
}

void* g_scheduler = nullptr;  // the scheduler's saved context
#if !PYDL_EMU_ASM_SWITCH
ucontext_t g_scheduler_uc;
#endif
#if defined(PYDL_EMU_ASAN)
const void* g_scheduler_stack = nullptr;
size_t g_scheduler_stack_size = 0;
#endif

// Saves the running context in *from and continues the one in `to`.
inline void jump(void** from, void* to) {
#if PYDL_EMU_ASM_SWITCH
  pydl_emu_switch(from, to);
#else
  swapcontext(static_cast<ucontext_t*>(*from), static_cast<ucontext_t*>(to));
#endif
}

// Back to the scheduler: the thread waits at a barrier (or has exited, `last`).
void to_scheduler(bool last) {
  Thread& t = *g_thread;
#if defined(PYDL_EMU_ASAN)
  __sanitizer_start_switch_fiber(last ? nullptr : &t.fake_stack, g_scheduler_stack, g_scheduler_stack_size);
#endif
  jump(&t.context, g_scheduler);
#if defined(PYDL_EMU_ASAN)
  __sanitizer_finish_switch_fiber(t.fake_stack, nullptr, nullptr);
#endif
  (void)last;
}

void thread_entry() {
#if defined(PYDL_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_scheduler_stack, &g_scheduler_stack_size);
#endif
  g_block->body(g_block->body_arg);
  Thread& t = *g_thread;
  if (!t.copies.empty()) fail("a thread exited with cp.async copies still in flight");
  t.done = true;
  to_scheduler(true);
  fail("an exited thread was resumed");
}

void* initial_context(Stack& s) {
#if defined(PYDL_EMU_ASAN)
  // The previous thread on this stack left it from inside thread_entry, whose frame (and the
  // switch below it) never returned: their red zones are still marked.
  constexpr size_t kTop = 16 * 1024;
  __asan_unpoison_memory_region(s.lo + kStackBytes - kTop, kTop);
#endif
#if PYDL_EMU_ASM_SWITCH
  // Six callee-saved registers, then the return address pydl_emu_switch returns to, then a
  // slot for thread_entry's own (never used) return address; 16-byte aligned at the call.
  const uintptr_t top = (reinterpret_cast<uintptr_t>(s.lo) + kStackBytes) & ~static_cast<uintptr_t>(15);
  void** sp = reinterpret_cast<void**>(top) - 8;
  for (int i = 0; i < 6; ++i) sp[i] = nullptr;
  sp[6] = reinterpret_cast<void*>(&thread_entry);
  sp[7] = nullptr;
  return sp;
#else
  getcontext(&s.uc);
  s.uc.uc_stack.ss_sp = s.lo;
  s.uc.uc_stack.ss_size = kStackBytes;
  s.uc.uc_link = nullptr;
  makecontext(&s.uc, thread_entry, 0);
  return &s.uc;
#endif
}

void resume(Thread& t, Stack& s) {
  g_thread = &t;
  t.waiting = nullptr;
#if defined(PYDL_EMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, s.lo, kStackBytes);
#endif
  jump(&g_scheduler, t.context);
#if defined(PYDL_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  (void)s;
  g_thread = nullptr;
}

bool runnable(const Thread& t) {
  return !t.done && (t.waiting == nullptr || t.waiting->generation != t.waiting_generation);
}

}  // namespace

void arrive(Barrier& bar) {
  if (++bar.arrived == bar.expected) {  // the last one through releases the others
    bar.arrived = 0;
    ++bar.generation;
    return;
  }
  Thread& t = *g_thread;
  t.waiting = &bar;
  t.waiting_generation = bar.generation;
  to_scheduler(false);
}

void run_block(Block& b) {
  const unsigned n = b.bdim.x * b.bdim.y * b.bdim.z;
  std::vector<Stack*>& pool = stacks(n);
#if !PYDL_EMU_ASM_SWITCH
  g_scheduler = &g_scheduler_uc;
#endif
  b.threads.resize(n);
  b.warps.resize((n + 31) / 32);
  b.all.expected = static_cast<int>(n);
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = b.threads[i];
    t.tid = {i % b.bdim.x, (i / b.bdim.x) % b.bdim.y, i / (b.bdim.x * b.bdim.y)};
    t.lane = static_cast<int>(i % 32);
    t.warp = static_cast<int>(i / 32);
    t.context = initial_context(*pool[i]);
    b.warps[t.warp].barrier.expected++;
  }
  g_block = &b;
  const Schedule order = device().schedule;
  const int nw = static_cast<int>(b.warps.size());
  for (;;) {
    bool progress = false;
    if (order == Schedule::ThreadByThread) {
      for (unsigned i = 0; i < n; ++i)
        if (runnable(b.threads[i])) {
          resume(b.threads[i], *pool[i]);
          progress = true;
        }
    } else {
      for (int k = 0; k < nw; ++k) {
        const int w = order == Schedule::WarpByWarp ? k : nw - 1 - k;
        const unsigned lo = 32u * w, hi = std::min(n, lo + 32u);
        for (bool again = true; again;) {
          again = false;
          for (unsigned i = lo; i < hi; ++i)
            if (runnable(b.threads[i])) {
              resume(b.threads[i], *pool[i]);
              progress = again = true;
            }
        }
      }
    }
    unsigned done = 0, at_block = 0;
    for (const Thread& t : b.threads) {
      done += t.done;
      at_block += !t.done && t.waiting == &b.all;
    }
    if (done == n) break;
    if (!progress)
      fail("deadlock: " + std::to_string(done) + " of " + std::to_string(n) + " threads exited, " +
           std::to_string(at_block) + " wait at __syncthreads, the others at a warp barrier or collective");
  }
  g_block = nullptr;
}

}  // namespace emu

namespace pydl::cuda {

// As kernels/gemm/gemm.cu: the compute capability of the current device, or -1.
int gemm_current_capability() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return major * 10 + minor;
}

}  // namespace pydl::cuda
