"""Fused scaled-dot-product attention: forward and every gradient against PyTorch and a
float64 NumPy reference, with causal, bool, additive and key-padding masks at awkward
lengths (1, primes, lengths not divisible by the 64-row tile), L != S and head dims
16..256; dropout against a NumPy rebuild of the Philox mask; float64 gradcheck; bad
input; the forward's memory at seq 8192."""
import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pydl
import pydl.nn.functional as F
from pydl.backend import rng as prng
from helpers import assert_close, fresh_rng, gradcheck

TORCH = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: (2e-5, 2e-4), np.float64: (1e-10, 1e-8)}


def ref_attention(q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    """float64 torch math (autograd gives the reference gradients): scores, additive mask,
    top-left causal triangle, softmax (rows with nothing to attend give zeros), dropout keep
    mask scaled by 1/(1-p)."""
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        add = torch.where(mask, 0.0, -math.inf) if mask.dtype == torch.bool else mask
        s = s + add.to(s.dtype)
    if causal:
        tri = torch.ones(L, S, dtype=torch.bool).tril()
        s = s.masked_fill(~tri, -math.inf)
    m = s.amax(-1, keepdim=True)
    dead = torch.isinf(m) & (m < 0)
    e = torch.exp(s - torch.where(dead, 0.0, m))
    pr = e / torch.where(dead, 1.0, e.sum(-1, keepdim=True))
    if keep is not None:
        pr = pr * torch.as_tensor(keep) / (1.0 - p)
    return pr @ v


def _leaves(shapes, dtype, device, rng):
    arrs = [rng.standard_normal(s) for s in shapes]
    p = [pydl.tensor(a.astype(dtype), device=device, requires_grad=True) for a in arrs]
    t = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrs]
    return p, t


def _compare(p_out, t_out, p_in, t_in, dtype, rng, what=""):
    atol, rtol = TOL[dtype]
    assert_close(p_out, t_out, atol, rtol, f"{what} forward")
    w = rng.standard_normal(tuple(t_out.shape))
    (p_out * pydl.tensor(w.astype(dtype), device=p_out.device)).sum().backward()
    (t_out * torch.tensor(w, dtype=t_out.dtype)).sum().backward()
    for name, a, b in zip("qkv", p_in, t_in):
        assert a.grad is not None, f"{what}: no gradient for {name}"
        assert_close(a.grad, b.grad, atol * 5, rtol * 5, f"{what} grad {name}")


CASES = [  # batch dims, L, S, E, Ev
    ((1,), 1, 1, 16, 16),
    ((2, 3), 37, 53, 64, 64),
    ((2,), 64, 64, 64, 48),
    ((1, 2), 131, 67, 100, 100),
    ((3,), 67, 131, 16, 100),
    ((1, 1), 129, 129, 256, 256),
    ((), 5, 200, 64, 16),
    ((1,), 70, 300, 32, 40),  # three 128-key backward tiles, the last partial
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_sdpa_matches_torch(device, case, causal, dtype):
    batch, L, S, E, Ev = case
    rng = fresh_rng()
    p, t = _leaves([batch + (L, E), batch + (S, E), batch + (S, Ev)], dtype, device, rng)
    po = F.scaled_dot_product_attention(*p, is_causal=causal)
    to = TF.scaled_dot_product_attention(*t, is_causal=causal)
    _compare(po, to, p, t, dtype, rng, f"{case} causal={causal}")


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_long_queries_backward(device, causal):
    """1024 queries at head_dim 128 in float64: the CPU backward's sweeps over the query tiles
    stream more than 4 MiB, so it takes 128 keys per tile (300 keys: two whole tiles and a
    partial one, split between the threads when heads are few)."""
    rng = fresh_rng()
    p, t = _leaves([(2, 1024, 128), (2, 300, 128), (2, 300, 128)], np.float64, device, rng)
    po = F.scaled_dot_product_attention(*p, is_causal=causal)
    to = TF.scaled_dot_product_attention(*t, is_causal=causal)
    _compare(po, to, p, t, np.float64, rng, f"long causal={causal}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["bool", "float", "key_padding", "bool_full"])
@pytest.mark.parametrize("case", CASES[1:6])
def test_sdpa_masks_match_torch(device, case, kind, dtype):
    batch, L, S, E, Ev = case
    rng = fresh_rng()
    p, t = _leaves([batch + (L, E), batch + (S, E), batch + (S, Ev)], dtype, device, rng)
    if kind == "bool":
        m = rng.random((L, S)) > 0.3
    elif kind == "float":
        m = rng.standard_normal(batch[:1] + (1,) * (len(batch) - 1) + (L, S)).astype(dtype)
    elif kind == "key_padding":  # (N, 1, 1, S)-style: each batch entry masks its tail keys
        n = batch[0] if batch else 1
        lens = rng.integers(1, S + 1, size=n)
        m = (np.arange(S)[None, :] < lens[:, None]).reshape((n,) + (1,) * len(batch[1:]) + (1, S))
        m = m if batch else m[0]
    else:  # a full-shape bool mask with a fully masked row
        m = rng.random(batch + (L, S)) > 0.5
        m[..., 0, :] = False
    po = F.scaled_dot_product_attention(*p, attn_mask=pydl.tensor(m, device=device))
    to = TF.scaled_dot_product_attention(*t, attn_mask=torch.tensor(m))
    _compare(po, to, p, t, dtype, rng, f"{case} mask={kind}")


@pytest.mark.parametrize("L,S", [(1, 1), (7, 7), (67, 131), (131, 67), (65, 64)])
def test_sdpa_float64_reference_causal_with_mask(device, L, S):
    """is_causal and attn_mask together (PyTorch refuses the pair): against the float64 math."""
    rng = fresh_rng()
    batch, E = (2, 2), 16
    p, t = _leaves([batch + (L, E), batch + (S, E), batch + (S, 24)], np.float64, device, rng)
    m = rng.random((2, 1, L, S)) > 0.2
    po = F.scaled_dot_product_attention(*p, attn_mask=pydl.tensor(m, device=device), is_causal=True,
                                        scale=0.3)
    to = ref_attention(*t, mask=torch.tensor(m), causal=True, scale=0.3)
    _compare(po, to, p, t, np.float64, rng, "causal+mask")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S,E", [(1, 1, 16), (37, 67, 16), (67, 131, 64), (130, 70, 100),
                                   (1300, 300, 128)])
def test_sdpa_dropout_matches_philox_reference(device, L, S, E, causal, dtype):
    batch, p_drop = (2, 3), 0.3
    rng = fresh_rng()
    p, t = _leaves([batch + (L, E), batch + (S, E), batch + (S, 32)], dtype, device, rng)
    pydl.manual_seed(1234)
    pydl.random.next_counter(11)  # a non-zero, unaligned offset
    seed, offset = pydl.random.next_counter(0)
    po = F.scaled_dot_product_attention(*p, dropout_p=p_drop, is_causal=causal)
    assert pydl.random.next_counter(0)[1] == offset + 6 * L * S, "counters not reserved"
    keep = prng.dropout_keep(seed, offset, 6 * L * S, p_drop).reshape(batch + (L, S))
    assert 0.5 < keep.mean() < 0.9 or keep.size < 50
    to = ref_attention(*t, causal=causal, keep=keep, p=p_drop)
    _compare(po, to, p, t, dtype, rng, "dropout")


def test_sdpa_dropout_draws_fresh_masks(device):
    rng = fresh_rng()
    q = pydl.tensor(rng.standard_normal((1, 40, 16)).astype(np.float32), device=device)
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5).numpy()
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5).numpy()
    assert not np.allclose(a, b)


@pytest.mark.parametrize("E", [16, 64, 100, 256])
def test_sdpa_head_dims_against_numpy(device, E):
    """The float64 NumPy reference at each head dim, with L != S and a scale."""
    rng = fresh_rng()
    L, S = 70, 45
    q, k, v = (rng.standard_normal(s) for s in ((3, L, E), (3, S, E), (3, S, E)))
    s = q @ k.transpose(0, 2, 1) * 0.07
    pr = np.exp(s - s.max(-1, keepdims=True))
    pr /= pr.sum(-1, keepdims=True)
    ref = pr @ v
    for dtype in (np.float32, np.float64):
        out = F.scaled_dot_product_attention(*(pydl.tensor(a.astype(dtype), device=device)
                                               for a in (q, k, v)), scale=0.07)
        assert out.dtype == dtype
        atol, rtol = (1e-5, 1e-4) if dtype == np.float32 else (1e-12, 1e-10)
        assert_close(out.numpy(), ref, atol, rtol, f"E={E} {np.dtype(dtype).name}")


def test_sdpa_half_types_widen(device):
    rng = fresh_rng()
    q, k, v = (rng.standard_normal((2, 19, 16)) for _ in range(3))
    ref = TF.scaled_dot_product_attention(*(torch.tensor(a) for a in (q, k, v))).numpy()
    for dtype in (pydl.float16, pydl.bfloat16):
        ts = [pydl.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*ts)
        assert out.dtype == dtype
        assert_close(out.detach().float().numpy(), ref, 3e-2, 3e-2, str(dtype))
        out.sum().backward()
        assert all(t.grad is not None and t.grad.dtype == dtype for t in ts)


@pytest.mark.parametrize("mshape", [(5, 7), (2, 1, 5, 7), (1, 3, 1, 7)], ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_float_mask_gets_its_gradient(device, mshape, causal):
    """An additive float mask that requires grad gets d(loss)/d(scores), summed over the dims
    it was broadcast along, like PyTorch's."""
    rng = fresh_rng()
    p, t = _leaves([(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4)], np.float64, device, rng)
    m = rng.standard_normal(mshape)
    pm = pydl.tensor(m, device=device, requires_grad=True)
    tm = torch.tensor(m, requires_grad=True)
    po = F.scaled_dot_product_attention(*p, attn_mask=pm, is_causal=causal)
    to = ref_attention(*t, mask=tm, causal=causal)
    _compare(po, to, p, t, np.float64, rng, f"mask {mshape}")
    assert pm.grad is not None and tuple(pm.grad.shape) == mshape
    assert_close(pm.grad, tm.grad, 1e-10, 1e-8, "mask grad")


def test_sdpa_float_mask_gradcheck_and_dropout_refusal():
    rng = fresh_rng()
    q = pydl.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    m = pydl.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    assert pydl.autograd.gradcheck(
        lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m, is_causal=True), (q, m))
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=m, dropout_p=0.3)
    with pytest.raises(NotImplementedError, match="scaled_dot_product_attention: no gradient for a float attn_mask"):
        out.sum().backward()


@pytest.mark.parametrize("what", ["plain", "causal", "mask", "dropout"])
def test_sdpa_gradcheck(what):
    rng = fresh_rng()
    m = rng.standard_normal((3, 5))
    mb = rng.random((3, 5)) > 0.3
    mb[:, 0] = True

    def fn(q, k, v):
        if what == "dropout":
            pydl.manual_seed(7)  # the same mask on every call
            return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
        if what == "mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=pydl.tensor(mb)) + \
                F.scaled_dot_product_attention(q, k, v, attn_mask=pydl.tensor(m))
        return F.scaled_dot_product_attention(q, k, v, is_causal=what == "causal")

    gradcheck(fn, [(2, 3, 4), (2, 5, 4), (2, 5, 3)])


def test_sdpa_bad_input(device):
    def t(*s, dtype=np.float32):
        return pydl.tensor(np.ones(s, dtype), device=device)

    q, k, v = t(2, 5, 16), t(2, 7, 16), t(2, 7, 8)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*head dim"):
        F.scaled_dot_product_attention(q, t(2, 7, 12), v)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=t(5, 6))
    with pytest.raises(TypeError, match="scaled_dot_product_attention.*attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=pydl.tensor(np.ones((5, 7), np.int64),
                                                                       device=device))
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*length"):
        F.scaled_dot_product_attention(q, k, t(2, 6, 8))
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*batch"):
        F.scaled_dot_product_attention(q, t(3, 7, 16), t(3, 7, 8))
    with pytest.raises(TypeError, match="scaled_dot_product_attention.*dtype"):
        F.scaled_dot_product_attention(q, t(2, 7, 16, dtype=np.float64), v)
    with pytest.raises(TypeError, match="scaled_dot_product_attention.*floating"):
        F.scaled_dot_product_attention(pydl.tensor(np.ones((2, 5, 16), np.int64), device=device), k, v)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)


def test_cpu_kernel_rejects_bad_views():
    from pydl import _C

    q = np.zeros((2, 5, 16), np.float32)
    k = np.zeros((2, 7, 16), np.float32)
    v = np.zeros((2, 7, 16), np.float32)
    out, lse = np.empty((2, 5, 16), np.float32), np.empty((2, 5), np.float32)
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        _C.cpu.attention_forward(q, k, np.zeros((2, 6, 16), np.float32), None, out, lse, 1.0, False)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*attn_mask"):
        _C.cpu.attention_forward(q, k, v, np.zeros((1, 1, 5, 6), np.float32), out, lse, 1.0, False)
    with pytest.raises(TypeError, match="scaled_dot_product_attention"):
        _C.cpu.attention_forward(q, k.astype(np.float64), v, None, out, lse, 1.0, False)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return None


def test_sdpa_forward_memory_is_linear_in_seq():
    """seq 8192, head_dim 64, one head: the L x S float32 scores would be 256 MiB; the fused
    forward must stay O(seq). NumPy allocations are traced by tracemalloc; the C++ scratch
    shows in the peak RSS (reset through /proc/self/clear_refs where the kernel allows)."""
    n, e = 8192, 64
    rng = np.random.default_rng(0)
    q, k, v = (pydl.tensor(rng.standard_normal((1, 1, n, e), dtype=np.float32)) for _ in range(3))
    scores = n * n * 4
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss_ok = True
    except OSError:
        rss_ok = False
    before = _rss_kib("VmRSS:")
    tracemalloc.start()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (1, 1, n, e)
    # output + lse + a few seq x dim copies at most
    assert peak < 8 * n * e * 4, f"forward traced {peak} bytes"
    if rss_ok:
        grown = (_rss_kib("VmHWM:") - before) * 1024
        assert grown < scores / 8, f"peak RSS grew by {grown} bytes"
