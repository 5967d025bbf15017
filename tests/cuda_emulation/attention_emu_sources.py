"""Host C++ from the CUDA attention kernels, for the emulation of attention_emu.h: writes
rewritten copies of kernels/attention/ and kernels/common/mma_sync.cuh into a build folder
that goes first on the include path, so the emulation always compiles the current kernel
source. The rewriting is mechanical and checked:

- `extern __shared__ T name[];` becomes a pointer to the emulated block's shared memory;
- `kernel<<<grid, block, smem, stream>>>(args);` becomes an emulated launch;
- in mma_sync.cuh, the functions written in inline PTX (cp.async, ldmatrix, mma.sync) are
  dropped; attention_emu.h defines each of them, and any other PTX function is an error;
- cuda_runtime.h, cuda_fp16.h and cuda_bf16.h become one-line headers that include
  attention_emu.h.

Everything else (tile loops, fragment indexing, masking, the host launchers) is compiled as
written.

    python tests/cuda_emulation/attention_emu_sources.py DEST [ROOT]   # ROOT: the repository
"""
import re
import sys
from pathlib import Path

KERNEL_FILES = ("attention.cu", "attention_mma.cu", "attention_simt.cu")
HEADER_FILES = ("attention.h", "attention_common.cuh")
# The PTX wrappers of kernels/common/mma_sync.cuh the rewriting may drop: attention_emu.h
# defines each of them (smem_addr only served the others).
EMULATED_PTX = {"smem_addr", "cp_async16", "cp_async_commit", "cp_async_wait", "ldmatrix_x4",
                "ldmatrix_x4_trans", "ldmatrix_x2", "ldmatrix_x2_trans", "mma_16816"}
RUNTIME_HEADERS = ("cuda_runtime.h", "cuda_fp16.h", "cuda_bf16.h")

_SHARED = re.compile(r"extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?"
                     r"([\w:]+(?:\s+[\w:]+)*?)\s+(\w+)\s*\[\s*\]\s*;")
_LAUNCH = re.compile(r"(\w+(?:\s*<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;", re.S)
_FUNCTION = re.compile(r"(?:template\s*<[^;{}]*?>\s*)?__device__\s+__forceinline__\s+"
                       r"[^;{}]*?(\w+)\s*\([^;{}]*?\)\s*\{")


def _matching_brace(text, open_at):
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced braces")


def rewrite_kernel(text, name):
    """A .cu or .cuh file of kernels/attention/ as host C++."""
    # Replacements keep the line count, so compiler and sanitizer reports name real lines.
    def launch(m):
        return f"::emu::launch({m[1]}, {m[2]})({m[3]});" + "\n" * m[0].count("\n")

    text, n_shared = _SHARED.subn(r"\1* \2 = ::emu::shared_memory<\1>();", text)
    text, n_launch = _LAUNCH.subn(launch, text)
    if "<<<" in text or "extern __shared__" in text or re.search(r"\basm\b", text):
        raise ValueError(f"{name}: a launch, shared array or PTX statement the rewriting misses")
    if name.endswith(".cu") and name != "attention.cu" and n_shared == 0:
        raise ValueError(f"{name}: no dynamic shared memory found: has the kernel changed shape?")
    if name.endswith(".cu") and n_launch == 0:
        raise ValueError(f"{name}: no kernel launch found")
    return text


def rewrite_mma_sync(text, path):
    """kernels/common/mma_sync.cuh without its PTX wrappers (attention_emu.h has them)."""
    out, pos, dropped = [], 0, set()
    for m in _FUNCTION.finditer(text):
        if m.start() < pos:
            continue
        end = _matching_brace(text, m.end() - 1)
        body = text[m.start():end + 1]
        if re.search(r"\basm\b", body) or "__cvta_generic_to_shared" in body:
            if m.group(1) not in EMULATED_PTX:
                raise ValueError(f"mma_sync.cuh: {m.group(1)} is PTX that attention_emu.h "
                                 "does not emulate")
            dropped.add(m.group(1))
            out.append(text[pos:m.start()] + "\n" * body.count("\n"))
            pos = end + 1
    out.append(text[pos:])
    result = "".join(out)
    if re.search(r"\basm\b", result):
        raise ValueError("mma_sync.cuh: PTX outside the functions the rewriting recognises")
    if not dropped:
        raise ValueError("mma_sync.cuh: no PTX wrapper found: has the header changed shape?")
    return f'#include "attention_emu.h"\n#line 1 "{path}"\n' + result


def write_sources(dest, root):
    """Writes the rewritten sources under dest; returns the .cpp files to compile."""
    dest, root = Path(dest), Path(root)
    attn, common = dest / "kernels" / "attention", dest / "kernels" / "common"
    attn.mkdir(parents=True, exist_ok=True)
    common.mkdir(parents=True, exist_ok=True)
    for h in RUNTIME_HEADERS:
        (dest / h).write_text('#pragma once\n#include "attention_emu.h"\n')
    for h in HEADER_FILES:
        src = root / "kernels" / "attention" / h
        (attn / h).write_text(f'#line 1 "{src}"\n' + rewrite_kernel(src.read_text(), h))
    src = root / "kernels" / "common" / "mma_sync.cuh"
    (common / "mma_sync.cuh").write_text(rewrite_mma_sync(src.read_text(), src))
    sources = []
    for f in KERNEL_FILES:
        src = root / "kernels" / "attention" / f
        out = attn / (Path(f).stem + ".cpp")
        out.write_text(f'#line 1 "{src}"\n' + rewrite_kernel(src.read_text(), f))
        sources.append(out)
    return sources


if __name__ == "__main__":
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2]
    for s in write_sources(sys.argv[1], root):
        print(s)
