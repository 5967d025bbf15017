"""conv2d, conv1d and conv_transpose2d: forward and both gradients against PyTorch in
float32/float64 over many configurations, float64 gradcheck, modules, bad input."""
import numpy as np
import pytest
import torch

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from helpers import check_op, gradcheck

# (N, C, H, W, OC, k, stride, padding, dilation, groups)
CONFIGS = [
    (1, 3, 7, 9, 4, 1, 1, 0, 1, 1),
    (2, 4, 8, 5, 6, 1, 2, 0, 1, 2),
    (2, 3, 9, 7, 5, 3, 1, 1, 1, 1),
    (1, 4, 11, 6, 6, 5, 2, 2, 1, 2),
    (2, 6, 9, 9, 6, 3, 1, 2, 2, 6),      # depthwise, dilated
    (1, 2, 13, 10, 3, 7, 2, 3, 1, 1),
    (2, 5, 7, 7, 4, 3, 1, "same", 1, 1),
    (1, 4, 9, 8, 4, 4, 1, "same", 2, 2),  # even window: the odd pad goes at the end
    (2, 3, 6, 5, 2, 3, 1, "valid", 1, 1),
    (1, 4, 17, 19, 8, 3, 2, 1, 1, 4),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv2d_parity(cfg, dtype, device):
    n, c, h, w, oc, k, s, p, d, g = cfg
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else {}
    check_op([(n, c, h, w), (oc, c // g, k, k), (oc,)],
             lambda x, wt, b: torch.nn.functional.conv2d(x, wt, b, s, p, d, g),
             lambda x, wt, b: F.conv2d(x, wt, b, s, p, d, g), dtype=dtype, device=device, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_rect_kernel_no_bias(dtype, device):
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else {}
    check_op([(2, 4, 9, 11), (6, 2, 3, 2)],
             lambda x, wt: torch.nn.functional.conv2d(x, wt, None, (2, 1), (1, 0), (1, 2), 2),
             lambda x, wt: F.conv2d(x, wt, None, (2, 1), (1, 0), (1, 2), 2),
             dtype=dtype, device=device, **tol)


def test_conv2d_large_against_float64(device):
    """A layer big enough to cross the GEMM's K and pixel blocks, float32 against float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 40, 20, 19))
    wt = rng.standard_normal((70, 40, 3, 3))
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(wt), None, 1, 1).numpy()
    y = F.conv2d(pydl.tensor(x.astype(np.float32), device=device),
                 pydl.tensor(wt.astype(np.float32), device=device), padding=1).numpy()
    np.testing.assert_allclose(y, ref, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [
    # (N, C, H, W, OC, k, stride, padding, output_padding, dilation, groups)
    (2, 4, 5, 6, 3, 3, 2, 1, 1, 1, 1),
    (1, 4, 4, 3, 6, 2, 2, 0, 0, 1, 2),
    (2, 3, 5, 5, 2, 3, 1, 0, 0, 2, 1),
    (1, 6, 3, 4, 6, 5, 3, 2, 2, 1, 3),
])
def test_conv_transpose2d_parity(cfg, dtype, device):
    n, c, h, w, oc, k, s, p, op_, d, g = cfg
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else {}
    check_op([(n, c, h, w), (c, oc // g, k, k), (oc,)],
             lambda x, wt, b: torch.nn.functional.conv_transpose2d(x, wt, b, s, p, op_, g, d),
             lambda x, wt, b: F.conv_transpose2d(x, wt, b, s, p, op_, g, d),
             dtype=dtype, device=device, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("s,p,d,g", [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1)])
def test_conv1d_parity(s, p, d, g, dtype, device):
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else {}
    check_op([(2, 4, 13), (6, 4 // g, 3), (6,)],
             lambda x, wt, b: torch.nn.functional.conv1d(x, wt, b, s, p, d, g),
             lambda x, wt, b: F.conv1d(x, wt, b, s, p, d, g), dtype=dtype, device=device, **tol)


def test_conv_gradcheck():
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, 2, 1, 1, 1), [(1, 2, 5, 4), (3, 2, 3, 3), (3,)])
    gradcheck(lambda x, w: F.conv2d(x, w, None, 1, "same", 2, 2), [(2, 4, 4, 5), (2, 2, 2, 3)])
    gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1), [(1, 2, 3, 3), (2, 3, 3, 3), (3,)])
    gradcheck(lambda x, w: F.conv1d(x, w, None, 1, 1), [(1, 2, 6), (3, 2, 3)])


def test_conv_modules_match_torch_shapes_and_init():
    for mod, tmod in [(nn.Conv2d(6, 4, 3, stride=2, padding=1, groups=2),
                       torch.nn.Conv2d(6, 4, 3, stride=2, padding=1, groups=2)),
                      (nn.Conv1d(3, 5, 4), torch.nn.Conv1d(3, 5, 4)),
                      (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2),
                       torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2))]:
        ours = dict(mod.named_parameters())
        theirs = dict(tmod.named_parameters())
        assert set(ours) == set(theirs) == {"weight", "bias"}
        for k in ours:
            assert tuple(ours[k].shape) == tuple(theirs[k].shape)
        fan_in = mod.weight.shape[1] * int(np.prod(mod.weight.shape[2:]))
        bound = 1 / np.sqrt(fan_in)
        for k in ours:  # kaiming_uniform(a=sqrt(5)) and the bias share the bound 1/sqrt(fan_in)
            v = ours[k].detach().numpy()
            assert np.abs(v).max() <= bound + 1e-7 and np.abs(v).max() > 0.3 * bound
    m = nn.Conv2d(3, 4, 3, bias=False)
    assert m.bias is None and list(dict(m.named_parameters())) == ["weight"]


def test_conv_module_forward_matches_torch(device):
    tm = torch.nn.Conv2d(4, 6, 3, padding="same", groups=2)
    m = nn.Conv2d(4, 6, 3, padding="same", groups=2)
    m.load_state_dict({k: pydl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    m.to(device)
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 5)).astype(np.float32)
    np.testing.assert_allclose(m(pydl.tensor(x, device=device)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_conv_half_types_keep_their_dtype(op, dtype, device):
    """Half inputs give half outputs and gradients, within the dtype's precision of float64
    PyTorch on the same (rounded) values."""
    rng = np.random.default_rng(0)
    wshape = (6, 2, 3, 3) if op == "conv2d" else (4, 3, 3, 3)
    arrs = [rng.standard_normal(s) for s in ((2, 4, 9, 7), wshape, (6,))]
    ours = [pydl.tensor(a, dtype=getattr(pydl, dtype), device=device, requires_grad=True)
            for a in arrs]
    ref = [torch.tensor(t.detach().float().numpy().astype(np.float64), requires_grad=True)
           for t in ours]
    fn, tfn = getattr(F, op), getattr(torch.nn.functional, op)
    y = fn(*ours, stride=2, padding=1, groups=2)
    ty = tfn(*ref, stride=2, padding=1, groups=2)
    g = rng.standard_normal(tuple(ty.shape))
    (y * pydl.tensor(g, dtype=y.dtype, device=device)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    eps = float(np.finfo(np.float16).eps) if dtype == "float16" else 2.0 ** -7
    for name, a, b in [("out", y, ty)] + [(f"grad {i}", t.grad, r.grad)
                                          for i, (t, r) in enumerate(zip(ours, ref))]:
        assert a.dtype == getattr(pydl, dtype), name
        b = b.detach().numpy()
        np.testing.assert_allclose(a.detach().float().numpy(), b, rtol=0,
                                   atol=8 * eps * np.abs(b).max(), err_msg=f"{op} {dtype} {name}")


@pytest.mark.parametrize("call,match", [
    (lambda x, w: F.conv2d(x[0], w), "conv2d: expected a 4-D input"),
    (lambda x, w: F.conv2d(x, w[:, :, 0]), "conv2d: expected a 4-D weight"),
    (lambda x, w: F.conv2d(x, w, groups=4), "conv2d: .*divisible by groups"),
    (lambda x, w: F.conv2d(x[:, :3], w), "conv2d: weight of shape"),
    (lambda x, w: F.conv2d(x, w, padding=-1), "conv2d: padding must be non-negative"),
    (lambda x, w: F.conv2d(x, w, stride=0), "conv2d: stride must be positive"),
    (lambda x, w: F.conv2d(x[:, :, :2, :2], w), "conv2d: output size"),
    (lambda x, w: F.conv2d(x, w, padding="same", stride=2), "conv2d: padding='same'"),
    (lambda x, w: F.conv2d(x, w, padding="full"), "conv2d: padding must be"),
    (lambda x, w: F.conv2d(x, w.to(pydl.float64)), "conv2d: weight has dtype"),
    (lambda x, w: F.conv2d(x, w, pydl.zeros(3)), "conv2d: bias has shape"),
    (lambda x, w: F.conv_transpose2d(x, w), "conv_transpose2d: weight of shape"),
    (lambda x, w: F.conv_transpose2d(x, w.permute(1, 0, 2, 3), stride=2, output_padding=2),
     "conv_transpose2d: output_padding"),
    (lambda x, w: F.conv1d(x, w), "conv1d: expected a 3-D input"),
])
def test_conv_bad_input(call, match):
    x = pydl.zeros(2, 4, 5, 5)
    w = pydl.zeros(6, 4, 3, 3)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, w)


def test_conv_module_bad_groups():
    with pytest.raises(ValueError, match="Conv2d: .*divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
