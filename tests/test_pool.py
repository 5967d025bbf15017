"""max_pool2d, avg_pool2d, adaptive_avg_pool2d, nearest interpolation and BatchNorm2d
on 4-D input: forward and gradients against PyTorch, float64 gradcheck, bad input."""
import numpy as np
import pytest
import torch

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from helpers import check_op, gradcheck

TF = torch.nn.functional


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,s,p,d,ceil", [
    ((2, 3, 7, 9), 2, None, 0, 1, False),
    ((1, 2, 7, 9), 3, 2, 1, 1, True),
    ((2, 2, 11, 8), 3, 2, 1, 2, False),
    ((1, 3, 6, 5), (3, 2), (2, 1), (1, 0), 1, True),
    ((2, 1, 5, 5), 5, 1, 2, 1, False),
])
def test_max_pool2d_parity(shape, k, s, p, d, ceil, dtype, device):
    po, to = check_op([shape], lambda x: TF.max_pool2d(x, k, s, p, d, ceil, True),
                      lambda x: F.max_pool2d(x, k, s, p, d, ceil, True), dtype=dtype, device=device)
    np.testing.assert_array_equal(po[1].numpy(), to[1].numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,s,p,ceil,cip,div", [
    ((2, 3, 7, 9), 2, None, 0, False, True, None),
    ((1, 2, 7, 9), 3, 2, 1, True, True, None),
    ((1, 2, 7, 9), 3, 2, 1, True, False, None),
    ((2, 2, 8, 11), (3, 2), (2, 3), (1, 1), False, False, None),
    ((1, 2, 5, 6), 3, 1, 1, False, True, 5),
])
def test_avg_pool2d_parity(shape, k, s, p, ceil, cip, div, dtype, device):
    check_op([shape], lambda x: TF.avg_pool2d(x, k, s, p, ceil, cip, div),
             lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div), dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 9), 1), ((1, 2, 7, 9), (3, 4)),
                                       ((2, 2, 5, 6), (5, None)), ((1, 1, 4, 4), 7)])
def test_adaptive_avg_pool2d_parity(shape, out, dtype, device):
    check_op([shape], lambda x: TF.adaptive_avg_pool2d(x, out),
             lambda x: F.adaptive_avg_pool2d(x, out), dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size,scale", [((2, 3, 5, 7), None, 2), ((1, 2, 5, 7), (8, 3), None),
                                              ((1, 2, 4, 6), None, (1.5, 0.5)),
                                              ((2, 3, 7), None, 3)])
def test_interpolate_nearest_parity(shape, size, scale, dtype, device):
    check_op([shape], lambda x: TF.interpolate(x, size, scale, mode="nearest"),
             lambda x: F.interpolate(x, size, scale, mode="nearest"), dtype=dtype, device=device)


def test_pool_gradcheck():
    gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, 1, True), [(1, 2, 6, 5)])
    gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), [(1, 2, 6, 5)])
    gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(1, 2, 5, 5)])
    gradcheck(lambda x: F.interpolate(x, scale_factor=2), [(1, 2, 3, 2)])


def test_pool_modules():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    px, tx = pydl.tensor(x), torch.tensor(x)
    for ours, theirs in [(nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
                         (nn.AvgPool2d(2, ceil_mode=True), torch.nn.AvgPool2d(2, ceil_mode=True)),
                         (nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3))),
                         (nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2))]:
        np.testing.assert_allclose(ours(px).numpy(), theirs(tx).numpy(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm2d_train_eval_running_stats(dtype, device):
    rng = np.random.default_rng(1)
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    m = nn.BatchNorm2d(3, dtype=pydl.float32 if dtype == np.float32 else pydl.float64,
                       device=device)
    tm = torch.nn.BatchNorm2d(3, dtype=tdt)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w)), tm.bias.copy_(torch.tensor(b))
    m.weight.data = pydl.tensor(w.astype(dtype), device=device)
    m.bias.data = pydl.tensor(b.astype(dtype), device=device)
    atol, rtol = (1e-5, 1e-4) if dtype == np.float32 else (1e-10, 1e-8)
    for _ in range(2):
        x = rng.standard_normal((4, 3, 5, 7)) * 2 + 1
        px = pydl.tensor(x.astype(dtype), device=device, requires_grad=True)
        tx = torch.tensor(x, dtype=tdt, requires_grad=True)
        g = rng.standard_normal(x.shape)
        py, ty = m(px), tm(tx)
        (py * pydl.tensor(g.astype(dtype), device=device)).sum().backward()
        (ty * torch.tensor(g, dtype=tdt)).sum().backward()
        np.testing.assert_allclose(py.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=rtol)
        np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), atol=atol, rtol=rtol)
        np.testing.assert_allclose(m.weight.grad.numpy(), tm.weight.grad.numpy(), atol=atol * 10,
                                   rtol=rtol)
        np.testing.assert_allclose(m.bias.grad.numpy(), tm.bias.grad.numpy(), atol=atol * 10,
                                   rtol=rtol)
    np.testing.assert_allclose(m.running_mean.numpy(), tm.running_mean.numpy(), atol=atol, rtol=rtol)
    np.testing.assert_allclose(m.running_var.numpy(), tm.running_var.numpy(), atol=atol, rtol=rtol)
    m.eval(), tm.eval()
    x = rng.standard_normal((2, 3, 3, 4))
    np.testing.assert_allclose(m(pydl.tensor(x.astype(dtype), device=device)).detach().numpy(),
                               tm(torch.tensor(x, dtype=tdt)).detach().numpy(), atol=atol, rtol=rtol)


@pytest.mark.parametrize("call,match", [
    (lambda x: F.max_pool2d(x[0], 2), "max_pool2d: expected a 4-D input"),
    (lambda x: F.max_pool2d(x, 2, 0), "max_pool2d: stride must be positive"),
    (lambda x: F.max_pool2d(x, 2, 1, -1), "max_pool2d: padding must be non-negative"),
    (lambda x: F.max_pool2d(x, 2, 1, 2), "max_pool2d: padding 2 must be at most half"),
    (lambda x: F.max_pool2d(x, 9), "max_pool2d: output size"),
    (lambda x: F.avg_pool2d(x, 9), "avg_pool2d: output size"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), "avg_pool2d: divisor_override"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), "adaptive_avg_pool2d: output_size"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), "interpolate: only mode"),
    (lambda x: F.interpolate(x), "interpolate: give exactly one"),
])
def test_pool_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(pydl.zeros(2, 3, 5, 5))
