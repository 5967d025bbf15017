"""The CPU convolution kernels themselves (forward, input gradient, weight gradient) against
PyTorch in float64, on geometries chosen to cross the implicit GEMM's edges: K deeper than
one packed slice, row counts that are not whole register tiles, column panels spanning
several images, images smaller than a panel, stride phases that no tap reaches, the
few-channel paths of the input and weight gradients, groups and depthwise, rows wide enough
for the in-place (direct) reading of sources, strided ones split by stride phase, and the
Winograd F(2x2, 3x3) path of 3x3 stride-1 layers. Each runs with the widest
micro-kernel this CPU has; tests/test_cpu_isa.py reruns the file with the narrower ones."""
import numpy as np
import pytest
import torch

import pydl.backend as backend

B = backend.get("cpu")

# (N, C, H, W, OC, k, stride, padding, dilation, groups, out_hw or None)
GEOMS = [
    (3, 64, 9, 11, 70, 3, 1, 1, 1, 1, None),     # K = 576 > one slice; 70 rows; panels span images
    (2, 300, 6, 5, 20, 3, 1, 1, 1, 1, None),     # K = 2700, many slices
    (2, 20, 7, 7, 24, 3, 2, 1, 1, 1, None),
    (1, 3, 23, 23, 16, 7, 2, 3, 1, 1, None),     # stem-like: few input channels
    (2, 16, 10, 9, 16, 3, 3, 2, 2, 1, None),     # stride 3, dilation 2
    (2, 12, 8, 8, 12, 1, 2, 0, 1, 1, None),      # 1x1 stride 2: three phases get no tap
    (2, 12, 9, 9, 12, 3, 1, 1, 1, 12, None),     # depthwise
    (2, 32, 5, 13, 40, 3, 2, 1, 1, 2, None),     # groups
    (1, 16, 1, 1, 8, 3, 2, 1, 1, 1, None),       # one pixel
    (4, 9, 2, 3, 33, 2, 1, 0, 1, 1, None),       # 1x2 outputs: a panel holds many images
    (2, 8, 9, 10, 8, 4, 1, 1, 1, 1, (9, 10)),    # even window, "same": more pad at the end
    (1, 24, 14, 14, 48, 5, 2, 2, 1, 3, None),
    (5, 10, 1, 37, 7, 3, 1, 1, 1, 1, None),      # one-row images
    # Wide rows: stride-1 sources are read in place from a zero-padded copy (direct mode).
    (2, 20, 6, 40, 24, 3, 1, 1, 1, 1, None),
    (2, 8, 9, 33, 12, 3, 1, 2, 2, 1, None),      # dilation 2
    (2, 71, 4, 40, 16, 3, 1, 1, 1, 1, None),     # K = 639: two slices, 320 and 319 deep
    (1, 6, 5, 30, 10, 4, 1, 1, 1, 2, (5, 30)),   # even window, "same", groups
    (2, 16, 12, 64, 8, 3, 2, 1, 1, 1, None),     # stride 2: the input gradient's phases
    (1, 8, 4, 48, 8, 3, 1, 1, 1, 8, None),       # depthwise
    (2, 70, 3, 50, 9, 1, 1, 0, 1, 1, None),      # 1x1
    # Strided sources read in place from planes split by stride phase (direct mode).
    (2, 8, 30, 70, 12, 3, 2, 1, 1, 1, None),
    (1, 6, 20, 100, 8, 3, 3, 2, 2, 1, None),     # stride 3, dilation 2: phases 0, 2, 1
    (2, 16, 10, 66, 8, 1, 2, 0, 1, 1, None),     # 1x1 stride 2: one phase copied
    (1, 4, 9, 75, 6, 4, 2, 1, 1, 2, (5, 37)),    # even window, asymmetric padding, groups
    # Weight gradient from an NHWC copy, read in place (ungrouped, 8+ channels, not 1x1).
    (2, 13, 9, 10, 40, 3, 2, 1, 1, 1, None),     # channels not whole register tiles
    (1, 24, 11, 12, 70, 5, 1, 2, 2, 1, None),    # dilation 2, 70 output channels (panel tails)
    (3, 16, 20, 21, 8, 3, 1, 1, 1, 1, None),     # 1,323 pixels: several slices and chunks
    # 3x3 stride 1 with 32+ channels each side: Winograd F(2x2, 3x3).
    (1, 600, 5, 7, 40, 3, 1, 1, 1, 1, None),     # C deeper than one packed slice (two of 300)
    (3, 32, 4, 5, 33, 3, 1, 0, 1, 1, None),      # odd 2x3 outputs: partial tiles, across images
    (2, 40, 5, 6, 36, 3, 1, 2, 1, 1, None),      # padding 2
    (2, 32, 6, 6, 40, 3, 1, 1, 1, 1, (7, 7)),    # more padding at the far edge
    (1, 33, 1, 1, 34, 3, 1, 1, 1, 1, None),      # one pixel
    (1, 40, 9, 9, 140, 3, 1, 1, 1, 1, None),     # output channels over several panel groups
    # Few input channels per group: the weight gradient as dot products along output rows.
    (2, 2, 11, 19, 5, 3, 3, 2, 2, 1, None),      # stride 3, dilation 2: phase planes
    (3, 1, 17, 16, 4, 5, 1, 2, 1, 1, None),      # rows of 16: dy read in place
    (2, 3, 9, 10, 6, 4, 2, 1, 1, 1, (5, 5)),     # even window, asymmetric padding, stride 2
    (1, 4, 6, 7, 8, 3, 1, 1, 1, 4, None),        # channel multiplier 2
    (2, 3, 40, 37, 13, 7, 2, 3, 1, 1, None),     # stem-like, 13 output channels (tile tails)
    # Input gradient: the stride phases share one padded copy of dy, sized for the largest.
    (2, 16, 57, 61, 24, 3, 2, 1, 1, 1, None),    # odd sizes: phases differ in rows and columns
    (1, 9, 45, 47, 17, 5, 3, 2, 1, 1, None),     # stride 3: nine phases, 1 or 2 taps each way
    (1, 16, 60, 59, 16, 3, 2, 2, 2, 1, None),    # dilation 2: every tap in phase 0
    # Direct mode over batches of several images per thread: a work item is one image,
    # padded into its thread's own buffer.
    (4, 8, 12, 40, 16, 3, 1, 1, 1, 1, None),
    (8, 6, 20, 30, 8, 3, 2, 1, 1, 1, None),      # stride 2: phase planes; dx's phases share dy
    (4, 16, 9, 48, 12, 3, 2, 1, 1, 2, None),     # groups: one copy per group
    (6, 4, 7, 60, 8, 5, 1, 2, 2, 1, (7, 60)),    # dilation 2, "same"
]


def _out_hw(h, w, k, s, p, d):
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n in (h, w))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMS, ids=[str(g[:10]) for g in GEOMS])
def test_conv_kernels_against_float64(geom, dtype):
    n, c, h, w, oc, k, s, p, d, g, out_hw = geom
    oh, ow = out_hw or _out_hw(h, w, k, s, p, d)
    rng = np.random.default_rng(sum(geom[:10]))
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((oc, c // g, k, k)) / np.sqrt(c // g * k * k)
    b = rng.standard_normal(oc)
    dy = rng.standard_normal((n, oc, oh, ow))
    tx, tw, tb, tdy = (torch.tensor(a, requires_grad=True) for a in (x, wt, b, dy))
    # PyTorch pads both sides by p; pad the far edge by hand where the output asks for more.
    extra_h = (oh - 1) * s + d * (k - 1) + 1 - (h + 2 * p)
    extra_w = (ow - 1) * s + d * (k - 1) + 1 - (w + 2 * p)
    xp = torch.nn.functional.pad(tx, (p, p + max(extra_w, 0), p, p + max(extra_h, 0)))
    ref = torch.nn.functional.conv2d(xp, tw, tb, s, 0, d, g)
    assert ref.shape == (n, oc, oh, ow)
    ref.backward(tdy)
    args = ((s, s), (p, p), (d, d), g)
    y = B.conv2d_forward(x.astype(dtype), wt.astype(dtype), b.astype(dtype), *args, (oh, ow))
    dx = B.conv2d_backward_input(dy.astype(dtype), wt.astype(dtype), x.shape, *args)
    dw = B.conv2d_backward_weight(x.astype(dtype), dy.astype(dtype), wt.shape, *args)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for got, want in ((y, ref.detach()), (dx, tx.grad), (dw, tw.grad)):
        want = want.numpy()
        assert got.dtype == dtype and got.shape == want.shape
        scale = max(1.0, np.abs(want).max())
        np.testing.assert_allclose(got, want, atol=tol * scale * 10, rtol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_kernels_empty_reductions(dtype):
    """No input channels: the forward is the bias; no output channels: the input gradient is
    zero; an empty batch: the weight gradient is zero (never the allocator's leftovers)."""
    args = ((1, 1), (1, 1), (1, 1), 1)
    for _ in range(3):  # fresh allocations each time, whatever memory they reuse
        b = np.arange(3, dtype=dtype) + 1
        y = B.conv2d_forward(np.ones((2, 0, 5, 4), dtype), np.ones((3, 0, 3, 3), dtype), b, *args,
                             (5, 4))
        np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], (2, 3, 5, 4)))
        y = B.conv2d_forward(np.ones((2, 0, 5, 4), dtype), np.ones((3, 0, 3, 3), dtype), None,
                             *args, (5, 4))
        np.testing.assert_array_equal(y, 0)
        dx = B.conv2d_backward_input(np.ones((2, 0, 5, 4), dtype), np.ones((0, 4, 3, 3), dtype),
                                     (2, 4, 5, 4), *args)
        np.testing.assert_array_equal(dx, 0)
        dw = B.conv2d_backward_weight(np.ones((0, 4, 5, 4), dtype), np.ones((0, 3, 5, 4), dtype),
                                      (3, 4, 3, 3), *args)
        np.testing.assert_array_equal(dw, 0)
