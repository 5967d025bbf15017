"""Elementwise ops: arithmetic, math functions and activations."""
from __future__ import annotations

import math

from ..autograd.function import Function


def _g(ctx, i, value):
    return value() if ctx.needs_input_grad[i] else None


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, _g(ctx, 1, lambda: -g)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _g(ctx, 0, lambda: g * b), _g(ctx, 1, lambda: g * a)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _g(ctx, 0, lambda: g / b), _g(ctx, 1, lambda: -g * a / (b * b))


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** b for a tensor base and a tensor or scalar exponent."""

    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        xp = ctx.backend.xp
        ga = _g(ctx, 0, lambda: g * b * a ** (b - 1) if not (isinstance(b, (int, float)) and b == 0)
                else xp.zeros_like(g))
        gb = _g(ctx, 1, lambda: g * out * xp.log(xp.where(a > 0, a, 1)) * (a > 0))
        return ga, gb


class RPow(Function):
    """scalar ** tensor."""

    @staticmethod
    def forward(ctx, a, base):
        out = base ** a
        ctx.save_for_backward(out)
        ctx.log_base = math.log(base) if base > 0 else float("nan")
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * ctx.log_base, None


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.backend.xp.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved_tensors[0]


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved_tensors[0]


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.backend.xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved_tensors[0])


class Rsqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = 1 / ctx.backend.xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved_tensors[0]
        return -0.5 * g * out * out * out


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.backend.xp.sign(ctx.saved_tensors[0])


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.sin(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.backend.xp.cos(ctx.saved_tensors[0])


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.backend.xp.cos(a)

    @staticmethod
    def backward(ctx, g):
        return -g * ctx.backend.xp.sin(ctx.saved_tensors[0])


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, min=None, max=None):  # noqa: A002
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = min, max
        return ctx.backend.xp.clip(a, min, max)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        keep = ctx.backend.xp.ones(a.shape, dtype=bool)
        if ctx.lo is not None:
            keep &= a >= ctx.lo
        if ctx.hi is not None:
            keep &= a <= ctx.hi
        return g * keep


class Maximum(Function):
    """Elementwise max of two tensors; ties split the gradient evenly, like PyTorch."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.xp.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a > b) + 0.5 * (a == b)
        return _g(ctx, 0, lambda: g * wa), _g(ctx, 1, lambda: g * (1 - wa))


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.xp.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a < b) + 0.5 * (a == b)
        return _g(ctx, 0, lambda: g * wa), _g(ctx, 1, lambda: g * (1 - wa))


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return ctx.backend.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        xp = ctx.backend.xp
        # where, not g * cond: a NaN/inf gradient must not reach the branch not taken.
        return (None, _g(ctx, 1, lambda: xp.where(cond, g, 0).astype(g.dtype, copy=False)),
                _g(ctx, 2, lambda: xp.where(cond, 0, g).astype(g.dtype, copy=False)))


# ---- activations -----------------------------------------------------------------

class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.backend.xp.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved_tensors[0]
        return g * (1 - out * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        xp = ctx.backend.xp
        # exp of a non-positive number only: no overflow for large |a|.
        e = xp.exp(-xp.abs(a))
        out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved_tensors[0]
        return g * out * (1 - out)


class Relu(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.backend.xp.maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.saved_tensors[0] > 0)


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        ctx.save_for_backward(a)
        ctx.slope = negative_slope
        return ctx.backend.xp.where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return ctx.backend.xp.where(a > 0, g, g * ctx.slope)


class Elu(Function):
    @staticmethod
    def forward(ctx, a, alpha=1.0):
        xp = ctx.backend.xp
        out = xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))
        ctx.save_for_backward(a, out)
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        return ctx.backend.xp.where(a > 0, g, g * (out + ctx.alpha))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """GELU, exact (erf) by default or PyTorch's tanh approximation."""

    @staticmethod
    def forward(ctx, a, approximate="none"):
        xp = ctx.backend.xp
        ctx.save_for_backward(a)
        ctx.approximate = approximate
        if approximate == "tanh":
            return 0.5 * a * (1 + xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a ** 3)))
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return 0.5 * a * (1 + ctx.backend.erf(a * _INV_SQRT_2))

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        (a,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (a + 0.044715 * a ** 3)
            t = xp.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * d_inner)
        cdf = 0.5 * (1 + ctx.backend.erf(a * _INV_SQRT_2))
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * a * a)
        return g * (cdf + a * pdf)


class Silu(Function):
    @staticmethod
    def forward(ctx, a):
        xp = ctx.backend.xp
        e = xp.exp(-xp.abs(a))
        s = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, s)
        return a * s

    @staticmethod
    def backward(ctx, g):
        a, s = ctx.saved_tensors
        return g * s * (1 + a * (1 - s))


class Softplus(Function):
    @staticmethod
    def forward(ctx, a, beta=1.0, threshold=20.0):
        xp = ctx.backend.xp
        ctx.save_for_backward(a)
        ctx.beta, ctx.threshold = beta, threshold
        z = a * beta
        return xp.where(z > threshold, a, xp.logaddexp(0, z) / beta).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        (a,) = ctx.saved_tensors
        z = a * ctx.beta
        e = xp.exp(-xp.abs(z))
        s = xp.where(z >= 0, 1 / (1 + e), e / (1 + e))
        return xp.where(z > ctx.threshold, g, g * s).astype(a.dtype, copy=False)
