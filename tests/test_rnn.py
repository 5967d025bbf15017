"""nn.LSTM / nn.GRU and their cells against PyTorch with copied state dicts (forward,
input, state and every parameter gradient), float64 gradchecks, and bad input."""
import numpy as np
import pytest
import torch

import pydl
from pydl import nn

from helpers import TOL, assert_close, fresh_rng
from _twins import one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)

_TORCH = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "LSTMCell": torch.nn.LSTMCell,
          "GRUCell": torch.nn.GRUCell}
_DT = {"float32": torch.float32, "float64": torch.float64}


def _pair(kind, dtype, **kw):
    pydl.manual_seed(int(fresh_rng().integers(1 << 30)))
    m = getattr(nn, kind)(**kw).to(dtype)
    t = _TORCH[kind](**kw).to(_DT[dtype])
    sd = {k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()}
    assert set(sd) == set(t.state_dict()), "parameter names differ from PyTorch's"
    t.load_state_dict(sd)
    return m, t


def _leaf(a, dtype):
    return (pydl.tensor(a.astype(dtype), requires_grad=True),
            torch.tensor(a.astype(dtype), requires_grad=True))


def _compare(m, t, p_outs, t_outs, p_leaves, t_leaves, dtype, rng):
    atol, rtol = TOL[dtype]
    atol, rtol = atol * 5, rtol * 5
    p_loss = t_loss = 0
    for i, (po, to) in enumerate(zip(p_outs, t_outs)):
        assert tuple(po.shape) == tuple(to.shape), f"output {i}"
        assert_close(po, to, atol, rtol, f"output {i}")
        w = rng.standard_normal(tuple(to.shape))
        p_loss = p_loss + (po * pydl.tensor(w.astype(dtype))).sum()
        t_loss = t_loss + (to * torch.tensor(w, dtype=_DT[dtype])).sum()
    p_loss.backward()
    t_loss.backward()
    for i, (pl, tl) in enumerate(zip(p_leaves, t_leaves)):
        assert_close(pl.grad, tl.grad, atol, rtol, f"gradient of input {i}")
    tp = dict(t.named_parameters())
    for name, p in m.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert_close(p.grad, tp[name].grad, atol, rtol, f"gradient of {name}")


CONFIGS = [
    dict(num_layers=1, bias=True, batch_first=False, bidirectional=False),
    dict(num_layers=2, bias=False, batch_first=True, bidirectional=False),
    dict(num_layers=2, bias=True, batch_first=False, bidirectional=True),
    dict(num_layers=3, bias=True, batch_first=True, bidirectional=True),
]


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("steps,batch", [(1, 1), (7, 3), (13, 1)])
def test_rnn_matches_torch(kind, dtype, cfg, steps, batch):
    rng = fresh_rng()
    m, t = _pair(kind, dtype, input_size=5, hidden_size=11, **cfg)
    d = 2 if cfg["bidirectional"] else 1
    shape = (batch, steps, 5) if cfg["batch_first"] else (steps, batch, 5)
    px, tx = _leaf(rng.standard_normal(shape), dtype)
    hs = (cfg["num_layers"] * d, batch, 11)
    ph, th = _leaf(rng.standard_normal(hs) * 0.5, dtype)
    leaves_p, leaves_t = [px, ph], [tx, th]
    if kind == "LSTM":
        pc, tc = _leaf(rng.standard_normal(hs) * 0.5, dtype)
        leaves_p.append(pc)
        leaves_t.append(tc)
        po, (phn, pcn) = m(px, (ph, pc))
        to, (thn, tcn) = t(tx, (th, tc))
        outs_p, outs_t = [po, phn, pcn], [to, thn, tcn]
    else:
        po, phn = m(px, ph)
        to, thn = t(tx, th)
        outs_p, outs_t = [po, phn], [to, thn]
    _compare(m, t, outs_p, outs_t, leaves_p, leaves_t, dtype, rng)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_rnn_default_state_and_unbatched(kind):
    rng = fresh_rng()
    m, t = _pair(kind, "float64", input_size=3, hidden_size=4, num_layers=2)
    a = rng.standard_normal((6, 3))
    px, tx = _leaf(a, "float64")
    po, ps = m(px)
    to, ts = t(tx)
    ps = ps if isinstance(ps, tuple) else (ps,)
    ts = ts if isinstance(ts, tuple) else (ts,)
    _compare(m, t, [po, *ps], [to, *ts], [px], [tx], "float64", rng)
    assert tuple(po.shape) == (6, 4)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch,bias", [(1, True), (5, False), (7, True)])
def test_cells_match_torch(kind, dtype, batch, bias):
    rng = fresh_rng()
    m, t = _pair(kind, dtype, input_size=3, hidden_size=7, bias=bias)
    px, tx = _leaf(rng.standard_normal((batch, 3)), dtype)
    ph, th = _leaf(rng.standard_normal((batch, 7)), dtype)
    if kind == "LSTMCell":
        pc, tc = _leaf(rng.standard_normal((batch, 7)), dtype)
        _compare(m, t, list(m(px, (ph, pc))), list(t(tx, (th, tc))), [px, ph, pc], [tx, th, tc],
                 dtype, rng)
    else:
        _compare(m, t, [m(px, ph)], [t(tx, th)], [px, ph], [tx, th], dtype, rng)


def test_lstm_dropout_between_layers():
    pydl.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = pydl.randn(5, 2, 3)
    m.eval()
    a = m(x)[0].detach().numpy()
    assert np.array_equal(a, m(x)[0].detach().numpy())
    m.train()
    b = m(x)[0].detach().numpy()
    assert not np.allclose(a, b), "dropout had no effect in training"


def test_init_bounds_and_names():
    pydl.manual_seed(0)
    m = nn.LSTM(4, 16, num_layers=2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "bias_hh_l1_reverse" in names and tuple(m.weight_ih_l1.shape) == (64, 32)
    for _, p in m.named_parameters():
        v = p.detach().numpy()
        assert np.abs(v).max() <= 0.25 and v.std() > 0.1


def _gc(fn, leaves):
    assert pydl.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_lstm_gru():
    rng = fresh_rng()
    x = pydl.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h = pydl.tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    c = pydl.tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    pydl.manual_seed(1)
    lstm = nn.LSTM(2, 3, bidirectional=True).double()
    _gc(lambda x, h, c: (lambda o: (o[0], o[1][0], o[1][1]))(lstm(x, (h, c))), [x, h, c])
    gru = nn.GRU(2, 3, bidirectional=True).double()
    _gc(lambda x, h: gru(x, h), [x, h])
    w = lstm.weight_hh_l0_reverse
    _gc(lambda w: lstm(x.detach(), (h.detach(), c.detach()))[0], [w])


def test_gradcheck_cell_functions():
    from pydl.nn.rnn import GRUCellFunction, LSTMCellFunction

    rng = fresh_rng()
    t = lambda *s: pydl.tensor(rng.standard_normal(s) * 1.5, requires_grad=True)  # noqa: E731
    _gc(LSTMCellFunction.apply, [t(2, 12), t(2, 12), t(2, 3)])
    _gc(GRUCellFunction.apply, [t(2, 9), t(2, 9), t(2, 3)])


def test_float16_forward_runs():
    pydl.manual_seed(0)
    m = nn.LSTM(3, 4).half()
    out, (h, c) = m(pydl.randn(5, 2, 3).half())
    assert out.dtype == pydl.float16 and np.isfinite(out.detach().float().numpy()).all()


def test_bad_input_names_the_op():
    m = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="LSTM"):
        m(pydl.randn(5, 2, 7))
    with pytest.raises(ValueError, match="LSTM"):
        m(pydl.randn(5))
    with pytest.raises(ValueError, match="LSTM.*h_0"):
        m(pydl.randn(5, 2, 3), (pydl.randn(1, 3, 4), pydl.randn(1, 2, 4)))
    with pytest.raises(TypeError, match="LSTM"):
        m(pydl.randn(5, 2, 3).double())
    with pytest.raises(TypeError, match="GRU"):
        nn.GRU(3, 4)(pydl.zeros(5, 2, 3, dtype=pydl.int64))
    with pytest.raises(ValueError, match="GRU"):
        nn.GRU(3, 0)
    with pytest.raises(ValueError, match="GRUCell"):
        nn.GRUCell(3, 4)(pydl.randn(2, 3), pydl.randn(3, 4))
    with pytest.raises(ValueError, match="LSTM"):
        nn.LSTM(3, 4, dropout=1.5)
