"""conv2d forward and gradients written once against an array namespace `xp` (NumPy or CuPy)
and a batched matrix product `gemm`: the interim convolution of the cuda backend, tested on
the CPU with xp=numpy. The fused tensor-core kernels planned for kernels/conv/ are to replace it.

Each pass takes a chunk of images, copies the kernel window of every output pixel out of a
strided view of the (padded) input into a column buffer (groups, K, images * pixels), and runs
one GEMM batched over groups; the chunk keeps that buffer and its companions under TEMP_BYTES.
1x1 stride-1 unpadded forward and input-gradient convolutions are one GEMM on the arrays
themselves, with no copy. Half types run each GEMM in their own dtype (the GEMM accumulates in
float32); sums across GEMMs (col2im, the weight gradient over chunks, the bias) are taken in
float32. Arguments and results are those of pydl.backend.cpu's conv2d_* functions, after `xp`
and `gemm`.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import dtypes as dt

TEMP_BYTES = 256 << 20  # column buffer and its companions, per chunk of images
_HALF = (dt.float16, dt.bfloat16)


def _wide(dtype):
    return dt.float32 if dtype in _HALF else dtype


def _bits(xp, a):
    """a as 16-bit words when it is bfloat16: data movement without relying on CuPy's bfloat16."""
    return a.view(xp.uint16) if a.dtype == dt.bfloat16 else a


class _Geom(NamedTuple):
    n: int
    c: int
    h: int
    w: int
    oc: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    groups: int
    hp: int  # height and width of the zero-padded input the windows read
    wp: int

    @property
    def cg(self):
        return self.c // self.groups

    @property
    def ocg(self):
        return self.oc // self.groups

    @property
    def k(self):
        return self.cg * self.kh * self.kw

    @property
    def pixels(self):
        return self.oh * self.ow

    @property
    def direct(self):  # the input itself is the column matrix
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0) \
            and (self.oh, self.ow) == (self.h, self.w)


def _geom(op, x_shape, w_shape, out_hw, stride, padding, dilation, groups) -> _Geom:
    if len(x_shape) != 4 or len(w_shape) != 4 or len(out_hw) != 2:
        raise ValueError(f"{op}: input and weight must be 4-D, got {tuple(x_shape)}, "
                         f"{tuple(w_shape)}")
    n, c, h, w = x_shape
    oc, cg, kh, kw = w_shape
    oh, ow = out_hw
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if min(sh, sw, dh, dw, groups) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: stride, dilation and groups must be positive and padding "
                         "non-negative")
    if c % groups or oc % groups or cg != c // groups:
        raise ValueError(f"{op}: weight {tuple(w_shape)} does not fit input {tuple(x_shape)} "
                         f"with groups={groups}")
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output size {(oh, ow)} is empty")
    hp = max(ph + h, (oh - 1) * sh + dh * (kh - 1) + 1)
    wp = max(pw + w, (ow - 1) * sw + dw * (kw - 1) + 1)
    return _Geom(n, c, h, w, oc, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups, hp, wp)


def _chunks(g: _Geom, itemsize):
    """Image ranges whose column buffer, padded input and rearranged output gradient (and
    their float32 twins) fit TEMP_BYTES; at least one image each."""
    per_image = (g.groups * g.k * g.pixels + g.c * g.hp * g.wp + g.oc * g.pixels) * (itemsize + 4)
    step = max(1, TEMP_BYTES // per_image)
    return [(n0, min(g.n, n0 + step)) for n0 in range(0, g.n, step)]


def _im2col(xp, g: _Geom, x):
    """Columns (groups, K, images * pixels) of a chunk of images, in x's dtype."""
    nc = x.shape[0]
    xb = _bits(xp, x)
    if (g.ph, g.pw, g.hp, g.wp) != (0, 0, g.h, g.w):
        xpad = xp.zeros((nc, g.c, g.hp, g.wp), xb.dtype)
        xpad[:, :, g.ph:g.ph + g.h, g.pw:g.pw + g.w] = xb
        xb = xpad
    sn, sc, sh, sw = xb.strides
    view = xp.lib.stride_tricks.as_strided(
        xb, (g.groups, g.cg, g.kh, g.kw, nc, g.oh, g.ow),
        (g.cg * sc, sc, g.dh * sh, g.dw * sw, sn, g.sh * sh, g.sw * sw))
    return xp.ascontiguousarray(view).reshape(g.groups, g.k, nc * g.pixels).view(x.dtype)


def _by_group(xp, dy, g: _Geom):
    """A chunk of the output gradient (images, OC, oh, ow) as (groups, OC / groups, images * pixels)."""
    nc = dy.shape[0]
    t = _bits(xp, dy).reshape(nc, g.groups, g.ocg, g.pixels).transpose(1, 2, 0, 3)
    return xp.ascontiguousarray(t).reshape(g.groups, g.ocg, nc * g.pixels).view(dy.dtype)


def _add_bias(xp, y, bias):
    b = bias.reshape(1, -1, 1, 1)
    if y.dtype in _HALF:
        return (y.astype(dt.float32) + b.astype(dt.float32)).astype(y.dtype)
    y += b
    return y


def conv2d_forward(xp, gemm, x, weight, bias, stride, padding, dilation, groups, out_hw):
    g = _geom("conv2d", x.shape, weight.shape, out_hw, stride, padding, dilation, groups)
    w3 = weight.reshape(groups, g.ocg, g.k)
    if g.direct and groups == 1:
        y = gemm(w3[0], x.reshape(g.n, g.c, g.pixels)).reshape(g.n, g.oc, g.oh, g.ow)
        return y if bias is None else _add_bias(xp, y, bias)
    y = xp.empty((g.n, g.oc, g.oh, g.ow), x.dtype)
    yb = _bits(xp, y).reshape(g.n, groups, g.ocg, g.pixels)
    if g.direct:
        xg = x.reshape(g.n, groups, g.cg, g.pixels)
        for gi in range(groups):
            yb[:, gi] = _bits(xp, gemm(w3[gi], xg[:, gi]))
    else:
        for n0, n1 in _chunks(g, x.dtype.itemsize):
            yc = gemm(w3, _im2col(xp, g, x[n0:n1])).reshape(groups, g.ocg, n1 - n0, g.pixels)
            yb[n0:n1] = _bits(xp, yc).transpose(2, 0, 1, 3)
    return y if bias is None else _add_bias(xp, y, bias)


def conv2d_backward_input(xp, gemm, dy, weight, in_shape, stride, padding, dilation, groups):
    g = _geom("conv2d_backward_input", in_shape, weight.shape, dy.shape[2:], stride, padding,
              dilation, groups)
    wt = weight.reshape(groups, g.ocg, g.k).transpose(0, 2, 1)  # (groups, K, OC / groups)
    if g.direct and groups == 1:
        return gemm(wt[0], dy.reshape(g.n, g.oc, g.pixels)).reshape(tuple(in_shape))
    dx = xp.empty(tuple(in_shape), dy.dtype)
    dxb = _bits(xp, dx)
    if g.direct:
        dyg = dy.reshape(g.n, groups, g.ocg, g.pixels)
        dxg = dxb.reshape(g.n, groups, g.cg, g.pixels)
        for gi in range(groups):
            dxg[:, gi] = _bits(xp, gemm(wt[gi], dyg[:, gi]))
        return dx
    wide = _wide(dy.dtype)
    hs, ws = (g.oh - 1) * g.sh + 1, (g.ow - 1) * g.sw + 1  # extent of one tap's rows, columns
    for n0, n1 in _chunks(g, dy.dtype.itemsize):
        nc = n1 - n0
        dcol = gemm(wt, _by_group(xp, dy[n0:n1], g)).astype(wide, copy=False)
        dcol = dcol.reshape(groups, g.cg, g.kh, g.kw, nc, g.oh, g.ow)
        # col2im one tap at a time: within a tap no two pixels land on the same input element.
        acc = xp.zeros((nc, groups, g.cg, g.hp, g.wp), wide)
        for i in range(g.kh):
            for j in range(g.kw):
                r, c = i * g.dh, j * g.dw
                acc[:, :, :, r:r + hs:g.sh, c:c + ws:g.sw] += dcol[:, :, i, j].transpose(2, 0, 1, 3, 4)
        acc = acc.reshape(nc, g.c, g.hp, g.wp)[:, :, g.ph:g.ph + g.h, g.pw:g.pw + g.w]
        dxb[n0:n1] = _bits(xp, acc.astype(dy.dtype))
    return dx


def conv2d_backward_weight(xp, gemm, x, dy, weight_shape, stride, padding, dilation, groups):
    g = _geom("conv2d_backward_weight", x.shape, weight_shape, dy.shape[2:], stride, padding,
              dilation, groups)
    dw = xp.zeros((groups, g.ocg, g.k), _wide(x.dtype))
    for n0, n1 in _chunks(g, x.dtype.itemsize):
        col = _im2col(xp, g, x[n0:n1])
        dw += gemm(_by_group(xp, dy[n0:n1], g), col.transpose(0, 2, 1)).astype(dw.dtype, copy=False)
    return dw.reshape(tuple(weight_shape)).astype(x.dtype, copy=False)
