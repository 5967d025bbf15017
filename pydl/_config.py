"""Settings read from the environment, in one place.

PYDL_DEVICE      default device for new tensors ("cpu" or "cuda"); default "cpu".
PYDL_ALLOW_TF32  "1" lets float32 matrix products use TF32 tensor cores on the GPU
                 (default off: float32 stays exact float32, as in PyTorch).
PYDL_NUM_THREADS OpenMP threads for the CPU kernels (OpenMP's default otherwise).
PYDL_CPU_ISA     "avx2" or "generic" caps the CPU kernels' micro-kernels (AVX-512, AVX2, SSE2)
                 below the widest the CPU has; read by the compiled module (csrc/cpu/gemm.h).
PYDL_CPU_WINOGRAD "0" keeps 3x3 stride-1 convolutions on the CPU's implicit GEMM instead of
                 Winograd F(2x2, 3x3); read by the compiled module (csrc/cpu/conv.cpp).
PYDL_CUDA_INTERIM a comma list of op families ("attention", "conv") that run on the GPU through
                 the interim blockwise paths (pydl/backend/xp_*.py, products on pydl's GEMM)
                 instead of their fused kernels; for comparison and as a fallback.
"""
import os

DEVICE = os.environ.get("PYDL_DEVICE", "cpu")
NUM_THREADS = os.environ.get("PYDL_NUM_THREADS")
if NUM_THREADS:
    os.environ.setdefault("OMP_NUM_THREADS", NUM_THREADS)
# Idle OpenMP threads sleep instead of spinning: the CPU kernels are short and share the
# cores with NumPy's BLAS and PyTorch, and spinning threads starve them (read when the
# compiled module loads OpenMP, so it must be set before that).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ALLOW_TF32 = os.environ.get("PYDL_ALLOW_TF32", "0") == "1"
CUDA_INTERIM = frozenset(f.strip() for f in os.environ.get("PYDL_CUDA_INTERIM", "").split(",")
                         if f.strip())
