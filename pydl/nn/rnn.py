"""Recurrent layers: LSTM and GRU (multi-layer, bidirectional, dropout between
layers) and their single-step cells, with PyTorch's gate layout, parameter
names and initialisation, so state dicts load both ways.

A layer runs one Linear over the whole sequence for the input projection, then
per step one Linear for the hidden projection and one fused cell Function
(`LSTMCellFunction`, `GRUCellFunction`) whose backward is written over arrays:
three graph nodes per step, whatever the gate count.
"""
from __future__ import annotations

import math

from .. import dtypes as dt
from .._ops import Stack, cat
from ..autograd.function import Function
from ..errors import DeviceError
from ..tensor import Tensor, empty, zeros
from . import functional as F
from . import init
from .module import Module, check_sizes
from .parameter import Parameter

_HALF = (dt.float16, dt.bfloat16)


def _sigmoid(x, xp):
    # tanh form: no overflow for large |x| in any dtype.
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def _wide(a):
    return a.astype("float32") if a.dtype in _HALF else a


class LSTMCellFunction(Function):
    """(xg, hg, c_prev) -> (h, c) with gates = xg + hg laid out (i, f, g, o):
    c = f * c_prev + i * g, h = o * tanh(c)."""

    @staticmethod
    def forward(ctx, xg, hg, c_prev):
        xp = ctx.backend.xp
        dtype = xg.dtype
        gates = _wide(xg) + _wide(hg)
        c_prev_w = _wide(c_prev)
        hs = c_prev.shape[-1]
        i = _sigmoid(gates[..., :hs], xp)
        f = _sigmoid(gates[..., hs:2 * hs], xp)
        g = xp.tanh(gates[..., 2 * hs:3 * hs])
        o = _sigmoid(gates[..., 3 * hs:], xp)
        c = f * c_prev_w + i * g
        tc = xp.tanh(c)
        h = o * tc
        ctx.save_for_backward(i, f, g, o, tc, c_prev_w)
        ctx.dtype = dtype
        return h.astype(dtype, copy=False), c.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, dh, dc):
        xp = ctx.backend.xp
        i, f, g, o, tc, c_prev = ctx.saved_tensors
        dh, dc = _wide(dh), _wide(dc)
        dct = dc + dh * o * (1 - tc * tc)
        dgates = xp.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f),
                                 dct * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
        dgates = dgates.astype(ctx.dtype, copy=False)
        need = ctx.needs_input_grad
        return (dgates if need[0] else None, dgates if need[1] else None,
                (dct * f).astype(ctx.dtype, copy=False) if need[2] else None)


class GRUCellFunction(Function):
    """(xg, hg, h_prev) -> h with xg = W_ih x + b_ih, hg = W_hh h + b_hh laid out (r, z, n):
    r = sigma(xr + hr), z = sigma(xz + hz), n = tanh(xn + r * hn), h = (1 - z) n + z h_prev."""

    @staticmethod
    def forward(ctx, xg, hg, h_prev):
        xp = ctx.backend.xp
        dtype = xg.dtype
        xg, hg, hp = _wide(xg), _wide(hg), _wide(h_prev)
        hs = hp.shape[-1]
        r = _sigmoid(xg[..., :hs] + hg[..., :hs], xp)
        z = _sigmoid(xg[..., hs:2 * hs] + hg[..., hs:2 * hs], xp)
        hn = hg[..., 2 * hs:]
        n = xp.tanh(xg[..., 2 * hs:] + r * hn)
        h = n + z * (hp - n)
        ctx.save_for_backward(r, z, n, hn, hp)
        ctx.dtype = dtype
        return h.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, dh):
        xp = ctx.backend.xp
        r, z, n, hn, hp = ctx.saved_tensors
        dh = _wide(dh)
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (hp - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        dx = xp.concatenate([dr, dz, dn], axis=-1).astype(ctx.dtype, copy=False)
        need = ctx.needs_input_grad
        dhg = xp.concatenate([dr, dz, dn * r], axis=-1).astype(ctx.dtype, copy=False) if need[1] else None
        return (dx if need[0] else None, dhg,
                (dh * z).astype(ctx.dtype, copy=False) if need[2] else None)


class Unbind(Function):
    """Splits dim 0 into its slices in one graph node (a per-step GetItem would be T nodes)."""

    @staticmethod
    def forward(ctx, a):
        ctx.shape, ctx.dtype = a.shape, a.dtype
        return tuple(a[t] for t in range(a.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        return ctx.backend.xp.stack(grads, axis=0)


def _unbind(x: Tensor):
    out = Unbind.apply(x)
    return list(out) if isinstance(out, tuple) else [out]


def _stack(ts):
    return Stack.apply(*ts, dim=0)


# ---- modules ----------------------------------------------------------------------

class RNNBase(Module):
    _gates = 1
    _name = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__()
        name = self._name
        check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        d = 2 if bidirectional else 1
        g = self._gates * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * d
            for suffix in ("", "_reverse")[:d]:
                self.register_parameter(f"weight_ih_l{layer}{suffix}",
                                        Parameter(empty(g, in_size, dtype=dtype, device=device)))
                self.register_parameter(f"weight_hh_l{layer}{suffix}",
                                        Parameter(empty(g, hidden_size, dtype=dtype, device=device)))
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}",
                                            Parameter(empty(g, dtype=dtype, device=device)))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}",
                                            Parameter(empty(g, dtype=dtype, device=device)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, direction):
        s = f"l{layer}{'_reverse' if direction else ''}"
        get = lambda n: getattr(self, f"{n}_{s}") if self.bias or n.startswith("w") else None  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _check_input(self, input):  # noqa: A002
        name = self._name
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a tensor, got {type(input).__name__}")
        if not dt.is_floating(input.dtype):
            raise TypeError(f"{name}: input must be floating point, got {input.dtype}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got shape "
                             f"{tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {input.shape[-1]} features, expected "
                             f"input_size={self.input_size}")
        w = self.weight_ih_l0
        if input.dtype != w.dtype:
            raise TypeError(f"{name}: input dtype {input.dtype} differs from the weights' {w.dtype}")
        if input.device != w.device:
            raise DeviceError(f"{name}: input is on {input.device}, the weights on {w.device}")

    def _check_state(self, h, batch, what):
        d = 2 if self.bidirectional else 1
        want = (self.num_layers * d, batch, self.hidden_size)
        if not isinstance(h, Tensor):
            raise TypeError(f"{self._name}: {what} must be a tensor, got {type(h).__name__}")
        if tuple(h.shape) != want:
            raise ValueError(f"{self._name}: {what} has shape {tuple(h.shape)}, expected {want}")

    def forward(self, input, hx=None):  # noqa: A002
        self._check_input(input)
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{self._name}: the sequence is empty")
        d = 2 if self.bidirectional else 1
        states = self._initial_states(hx, unbatched, batch, x)
        finals = [[] for _ in states]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                seq, last = self._run_direction(layer_in, layer, direction, [s[k] for s in states])
                outs.append(seq)
                for j, v in enumerate(last):
                    finals[j].append(v)
            layer_in = outs[0] if d == 1 else cat(outs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in
        h_n = [_stack(f) for f in finals]
        if unbatched:
            out = out.squeeze(1)
            h_n = [h.squeeze(1) for h in h_n]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, self._pack_state(h_n)

    def _run_direction(self, x, layer, direction, state):
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
        xs = _unbind(F.linear(x, w_ih, b_ih))
        order = range(len(xs) - 1, -1, -1) if direction else range(len(xs))
        hs = []
        for t in order:
            state = self._cell_step(xs[t], F.linear(state[0], w_hh, b_hh), state)
            hs.append(state[0])
        if direction:
            hs.reverse()
        return _stack(hs), state


class LSTM(RNNBase):
    """Long short-term memory over a sequence. forward(input, (h_0, c_0)=None) returns
    (output, (h_n, c_n)); input (T, B, input_size), or (B, T, input_size) when batch_first,
    or (T, input_size) unbatched."""

    _gates = 4
    _name = "LSTM"

    def _initial_states(self, hx, unbatched, batch, x):
        d = 2 if self.bidirectional else 1
        if hx is None:
            z = zeros(self.num_layers * d, batch, self.hidden_size, dtype=x.dtype, device=x.device)
            return [_unbind(z), _unbind(z)]
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
        h0, c0 = hx
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        self._check_state(h0, batch, "h_0")
        self._check_state(c0, batch, "c_0")
        return [_unbind(h0), _unbind(c0)]

    def _cell_step(self, xg, hg, state):
        return LSTMCellFunction.apply(xg, hg, state[1])

    def _pack_state(self, h_n):
        return h_n[0], h_n[1]


class GRU(RNNBase):
    """Gated recurrent unit over a sequence. forward(input, h_0=None) returns (output, h_n)."""

    _gates = 3
    _name = "GRU"

    def _initial_states(self, hx, unbatched, batch, x):
        d = 2 if self.bidirectional else 1
        if hx is None:
            hx = zeros(self.num_layers * d, batch, self.hidden_size, dtype=x.dtype, device=x.device)
        elif unbatched:
            hx = hx.unsqueeze(1)
        self._check_state(hx, batch, "h_0")
        return [_unbind(hx)]

    def _cell_step(self, xg, hg, state):
        return (GRUCellFunction.apply(xg, hg, state[0]),)

    def _pack_state(self, h_n):
        return h_n[0]


class _CellBase(Module):
    _gates = 1
    _name = "RNNCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        check_sizes(self._name, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self._gates * hidden_size
        self.weight_ih = Parameter(empty(g, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(g, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(g, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(g, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input, h):  # noqa: A002
        name = self._name
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (batch, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(input.shape)}")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        want = (x.shape[0], self.hidden_size)
        if h is None:
            h = zeros(*want, dtype=x.dtype, device=x.device)
        else:
            if unbatched and isinstance(h, Tensor):
                h = h.unsqueeze(0)
            if not isinstance(h, Tensor) or tuple(h.shape) != want:
                raise ValueError(f"{name}: state has shape "
                                 f"{tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__}, "
                                 f"expected {want}")
        return x, h, unbatched

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class LSTMCell(_CellBase):
    """One LSTM step: forward(input, (h, c)=None) -> (h', c')."""

    _gates = 4
    _name = "LSTMCell"

    def forward(self, input, hx=None):  # noqa: A002
        h, c = (None, None) if hx is None else hx
        x, h, unbatched = self._prepare(input, h)
        _, c, _ = self._prepare(input, c)
        h, c = LSTMCellFunction.apply(F.linear(x, self.weight_ih, self.bias_ih),
                                      F.linear(h, self.weight_hh, self.bias_hh), c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(_CellBase):
    """One GRU step: forward(input, h=None) -> h'."""

    _gates = 3
    _name = "GRUCell"

    def forward(self, input, hx=None):  # noqa: A002
        x, h, unbatched = self._prepare(input, hx)
        h = GRUCellFunction.apply(F.linear(x, self.weight_ih, self.bias_ih),
                                  F.linear(h, self.weight_hh, self.bias_hh), h)
        return h.squeeze(0) if unbatched else h


def _rnn_repr(self) -> str:
    s = f"{self.input_size}, {self.hidden_size}"
    if self.num_layers != 1:
        s += f", num_layers={self.num_layers}"
    if not self.bias:
        s += ", bias=False"
    if self.batch_first:
        s += ", batch_first=True"
    if self.dropout:
        s += f", dropout={self.dropout}"
    if self.bidirectional:
        s += ", bidirectional=True"
    return s


RNNBase.extra_repr = _rnn_repr
