"""The convolution suite of `pydl bench ops`: pydl's conv2d kernels (forward, input
gradient, weight gradient) against PyTorch's (F.conv2d, torch.nn.grad.conv2d_input and
conv2d_weight) on the distinct convolution layers of ResNet-18 and ResNet-50 at 224 x 224.
FLOPs: 2 * N * C_out * OH * OW * C_in * k * k for each of the three passes."""
from __future__ import annotations

from .case import Case, missing, views

# (C_in, H, C_out, k, stride, padding) of ResNet-18's distinct convolutions.
RESNET18 = [
    (3, 224, 64, 7, 2, 3),
    (64, 56, 64, 3, 1, 1),
    (64, 56, 128, 3, 2, 1), (64, 56, 128, 1, 2, 0), (128, 28, 128, 3, 1, 1),
    (128, 28, 256, 3, 2, 1), (128, 28, 256, 1, 2, 0), (256, 14, 256, 3, 1, 1),
    (256, 14, 512, 3, 2, 1), (256, 14, 512, 1, 2, 0), (512, 7, 512, 3, 1, 1),
]
# ResNet-50's (torchvision's bottlenecks: the stride on the 3x3), per stage: 1x1 in, 3x3
# (strided in the first block), 1x1 out, the strided 1x1 downsample, and the later blocks'
# 1x1 in; the stem and the unstrided 3x3s are ResNet-18's.
RESNET50 = [
    (3, 224, 64, 7, 2, 3),
    (64, 56, 64, 1, 1, 0), (64, 56, 64, 3, 1, 1), (64, 56, 256, 1, 1, 0), (256, 56, 64, 1, 1, 0),
    (256, 56, 128, 1, 1, 0), (128, 56, 128, 3, 2, 1), (128, 28, 512, 1, 1, 0),
    (256, 56, 512, 1, 2, 0), (512, 28, 128, 1, 1, 0), (128, 28, 128, 3, 1, 1),
    (512, 28, 256, 1, 1, 0), (256, 28, 256, 3, 2, 1), (256, 14, 1024, 1, 1, 0),
    (512, 28, 1024, 1, 2, 0), (1024, 14, 256, 1, 1, 0), (256, 14, 256, 3, 1, 1),
    (1024, 14, 512, 1, 1, 0), (512, 14, 512, 3, 2, 1), (512, 7, 2048, 1, 1, 0),
    (1024, 14, 2048, 1, 2, 0), (2048, 7, 512, 1, 1, 0), (512, 7, 512, 3, 1, 1),
]
LAYERS = list(dict.fromkeys(RESNET18 + RESNET50))
QUICK_LAYERS = {"cpu": [(64, 56, 128, 1, 2, 0), (128, 28, 128, 3, 1, 1), (256, 14, 512, 3, 2, 1)],
                "cuda": [(3, 224, 64, 7, 2, 3), (64, 56, 64, 3, 1, 1), (256, 14, 1024, 1, 1, 0),
                         (512, 7, 512, 3, 1, 1)]}
BATCHES = {("cpu", False): (8,), ("cpu", True): (1,), ("cuda", False): (32, 128), ("cuda", True): (2,)}


def _models(layer) -> str:
    return "+".join(name for name, layers in (("resnet18", RESNET18), ("resnet50", RESNET50))
                    if layer in layers)


def conv_cases(device: str, dtype: str, quick: bool):
    import torch

    import pydl.backend as backend

    B = backend.get(device)
    mine, back = views(device)
    tdt = getattr(torch, dtype)
    unsupported = missing(B, "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
    for n in BATCHES[(device, quick)]:
        for layer in (QUICK_LAYERS[device] if quick else LAYERS):
            c, hw, oc, k, s, p = layer
            ohw = (hw + 2 * p - k) // s + 1
            flops = 2.0 * n * oc * ohw * ohw * c * k * k
            shape = f"{n}x{c}x{hw}x{hw} -> {oc} k{k} s{s}"
            extra = {"layer_of": _models(layer)}
            ops = ("conv2d_fwd", "conv2d_bwd_input", "conv2d_bwd_weight")
            if unsupported:
                for op in ops:
                    yield Case(op, dtype, shape, None, None, flops=flops, extra=extra,
                               unsupported=unsupported)
                continue
            x = torch.randn(n, c, hw, hw, device=device, dtype=tdt)
            w = torch.randn(oc, c, k, k, device=device, dtype=tdt) * (c * k * k) ** -0.5
            dy = torch.randn(n, oc, ohw, ohw, device=device, dtype=tdt)
            calls = _calls(B, mine, x, w, dy, s, p, ohw)
            for op in ops:
                ours, theirs = calls[op]
                yield Case(op, dtype, shape, ours, theirs, flops=flops, extra=extra,
                           outputs=lambda ours=ours, theirs=theirs: (back(ours()), theirs()))


def _calls(B, mine, x, w, dy, s, p, ohw):
    """{op: (pydl call, torch call)} of one layer (a function of its own, so that each
    layer's calls keep their own tensors when cases are collected before they run)."""
    import torch

    px, pw, pdy = mine(x), mine(w), mine(dy)
    st, pad, dil = (s, s), (p, p), (1, 1)
    return {
        "conv2d_fwd": (lambda: B.conv2d_forward(px, pw, None, st, pad, dil, 1, (ohw, ohw)),
                       lambda: torch.nn.functional.conv2d(x, w, None, s, p)),
        "conv2d_bwd_input": (lambda: B.conv2d_backward_input(pdy, pw, tuple(x.shape), st, pad, dil, 1),
                             lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, s, p)),
        "conv2d_bwd_weight": (lambda: B.conv2d_backward_weight(px, pdy, tuple(w.shape), st, pad, dil, 1),
                              lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, s, p)),
    }
