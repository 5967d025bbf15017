"""The op cases of `pydl bench ops`: pydl's kernels against PyTorch on the same
memory (PyTorch tensors viewed zero-copy as NumPy/CuPy arrays), checked for
agreement before they are timed."""
from __future__ import annotations

from .attention import attention_cases
from .case import TOLERANCE, Case, rel_error, views
from .conv import conv_cases

__all__ = ["SUITES", "TOLERANCE", "Case", "rel_error"]


def gemm_cases(device: str, dtype: str, quick: bool):
    import torch

    import pydl.backend as backend

    B = backend.get(device)
    mine, back = views(device)
    sizes = ([128, 256] if quick else [256, 512, 1024, 2048]) if device == "cpu" else \
        ([1024, 4096] if quick else [512, 1024, 2048, 4096, 8192])
    shapes = [(n, n, n) for n in sizes]
    # The layers of the model families (batch x in -> out), e.g. the MLP on digits and a
    # transformer block's projections.
    shapes += [(64, 64, 128), (64, 128, 64)] if quick else [(64, 64, 128), (64, 128, 64),
                                                            (4096, 512, 2048), (4096, 2048, 512)]
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device, dtype=getattr(torch, dtype))
        b = torch.randn(k, n, device=device, dtype=getattr(torch, dtype))
        pa, pb = mine(a), mine(b)
        es = a.element_size()
        yield Case("matmul", dtype, f"{m}x{k}x{n}", lambda pa=pa, pb=pb: B.matmul(pa, pb),
                   lambda a=a, b=b: torch.matmul(a, b), flops=2.0 * m * n * k,
                   nbytes=float((m * k + k * n + m * n) * es),
                   outputs=lambda pa=pa, pb=pb, a=a, b=b: (back(B.matmul(pa, pb)), torch.matmul(a, b)))


def rowop_cases(device: str, dtype: str, quick: bool):
    import pydl.backend as backend

    B = backend.get(device)
    mine, back = views(device)
    if device == "cpu":
        widths, total = ([256, 2048] if quick else [1024, 4096, 16384, 65536]), 1 << (16 if quick else 22)
    else:
        widths, total = ([1024, 32768] if quick else [1024, 4096, 16384, 32768, 65536, 131072]), 1 << 26
    for width in widths:
        yield from _rowops_at(B, device, mine, back, dtype, max(1, total // width), width)


def _rowops_at(B, device, mine, back, dtype, rows, width):
    """The row-op cases of one (rows, width): a function of its own so that each case's
    closures keep their own tensors when cases are collected before they run."""
    import torch

    tdt = getattr(torch, dtype)
    x = torch.randn(rows, width, device=device, dtype=tdt)
    dy = torch.randn_like(x)
    w, bias = torch.randn(width, device=device, dtype=tdt), torch.randn(width, device=device, dtype=tdt)
    target = torch.randint(0, width, (rows,), device=device)
    px, pdy, pw, pb, pt = mine(x), mine(dy), mine(w), mine(bias), mine(target)
    es, n = x.element_size(), rows * width
    shape = f"{rows}x{width}"
    y, yl = torch.softmax(x, -1), torch.log_softmax(x, -1)
    py, pyl = B.softmax_forward(px, False), B.softmax_forward(px, True)
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, [width], w, bias, 1e-5)
    _, pmean, prstd = B.layer_norm_forward(px, pw, pb, 1e-5, False)
    xg = x.detach().requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(xg, target, reduction="sum")
    (tgrad,) = torch.autograd.grad(tloss, xg, retain_graph=True)
    _, plse = B.cross_entropy_forward(px, pt, -100, 0.0)
    dloss = B.xp.ones(rows, plse.dtype)
    cases = [
        ("softmax_fwd", lambda: B.softmax_forward(px, False), lambda: torch.softmax(x, -1),
         2 * n * es, lambda: (back(B.softmax_forward(px, False)), y)),
        ("softmax_bwd", lambda: B.softmax_backward(py, pdy, False),
         lambda: torch._softmax_backward_data(dy, y, -1, tdt), 3 * n * es,
         lambda: (back(B.softmax_backward(py, pdy, False)), torch._softmax_backward_data(dy, y, -1, tdt))),
        ("log_softmax_fwd", lambda: B.softmax_forward(px, True), lambda: torch.log_softmax(x, -1),
         2 * n * es, lambda: (back(B.softmax_forward(px, True)), yl)),
        ("log_softmax_bwd", lambda: B.softmax_backward(pyl, pdy, True),
         lambda: torch._log_softmax_backward_data(dy, yl, -1, tdt), 3 * n * es,
         lambda: (back(B.softmax_backward(pyl, pdy, True)),
                  torch._log_softmax_backward_data(dy, yl, -1, tdt))),
        ("layer_norm_fwd", lambda: B.layer_norm_forward(px, pw, pb, 1e-5, False),
         lambda: torch.ops.aten.native_layer_norm(x, [width], w, bias, 1e-5), 2 * n * es,
         lambda: (back(B.layer_norm_forward(px, pw, pb, 1e-5, False)[0]),
                  torch.nn.functional.layer_norm(x, [width], w, bias))),
        ("layer_norm_bwd", lambda: B.layer_norm_backward(px, pw, pmean, prstd, pdy, False, True, True),
         lambda: torch.ops.aten.native_layer_norm_backward(dy, x, [width], mean, rstd, w, bias,
                                                           [True, True, True]), 3 * n * es,
         lambda: (back(B.layer_norm_backward(px, pw, pmean, prstd, pdy, False, True, True)[0]),
                  torch.ops.aten.native_layer_norm_backward(dy, x, [width], mean, rstd, w, bias,
                                                            [True, True, True])[0])),
        ("cross_entropy_fwd", lambda: B.cross_entropy_forward(px, pt, -100, 0.0),
         lambda: torch.nn.functional.cross_entropy(x, target, reduction="none"), n * es,
         lambda: (back(B.cross_entropy_forward(px, pt, -100, 0.0)[0]).to(tdt),
                  torch.nn.functional.cross_entropy(x, target, reduction="none"))),
        ("cross_entropy_bwd", lambda: B.cross_entropy_backward(px, pt, plse, dloss, -100, 0.0),
         lambda: torch.autograd.grad(tloss, xg, retain_graph=True), 2 * n * es,
         lambda: (back(B.cross_entropy_backward(px, pt, plse, dloss, -100, 0.0)), tgrad)),
    ]
    for op, fp, ft, nbytes, outs in cases:
        yield Case(op, dtype, shape, fp, ft, nbytes=float(nbytes), outputs=outs)


SUITES = {"gemm": gemm_cases, "rowops": rowop_cases, "attention": attention_cases, "conv": conv_cases}
