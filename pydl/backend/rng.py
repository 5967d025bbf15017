"""Counter-based random numbers shared by the CPU and GPU backends.

pydl's random stream is Philox-4x32-10 (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC 2011), a pure function of (seed, counter):

    key     = (seed & 0xFFFFFFFF, seed >> 32)               seed: 64-bit
    block   = counter // 4, lane = counter % 4              counter: 64-bit
    words   = philox4x32_10((block & 0xFFFFFFFF, block >> 32, 0, 0), key)
    u32     = words[lane]
    uniform = (u32 >> 8) * 2**-24                           float32 in [0, 1)

An op that draws n numbers at `offset` reads counters offset .. offset+n-1;
the caller advances its offset by n, so no two draws overlap. The GPU twin
is the device function in ``pydl.backend.numba_kernels``; both do the same
integer arithmetic, so they give bit-identical streams (and dropout masks).

Every 32x32-bit product is taken in uint64 and never overflows, so the same
code runs on NumPy, CuPy and, scalar by scalar, in the Numba CUDA simulator.
"""

import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
UNIFORM_BITS = 24  # a float32 holds every multiple of 2**-24 in [0, 1) exactly


def split_seed(seed):
    """Return the Philox key (k0, k1) of a seed taken modulo 2**64."""
    seed = int(seed) & _MASK64
    return seed & _MASK32, seed >> 32


def philox4x32_10(counter, key, xp=np):
    """Apply Philox-4x32-10 elementwise: four uint32-valued counter words and a key -> four words (uint64 arrays)."""
    u64 = xp.uint64
    c0, c1, c2, c3 = (xp.asarray(c, dtype=u64) for c in counter)
    k0, k1 = u64(key[0]), u64(key[1])
    m0, m1, mask, shift = u64(PHILOX_M0), u64(PHILOX_M1), u64(_MASK32), u64(32)
    w0, w1 = u64(PHILOX_W0), u64(PHILOX_W1)
    for r in range(PHILOX_ROUNDS):
        if r:
            k0, k1 = (k0 + w0) & mask, (k1 + w1) & mask
        p0 = c0 * m0
        p1 = c2 * m1
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & mask, (p0 >> shift) ^ c3 ^ k1, p0 & mask
    return c0, c1, c2, c3


def random_uint32(seed, offset, n, xp=np):
    """Return the n uint32 stream values at counters offset .. offset+n-1 for this seed."""
    offset, n = int(offset), int(n)
    if offset < 0 or n < 0:
        raise ValueError(f"random_uint32: offset and n must be non-negative, got {offset}, {n}")
    if n == 0:
        return xp.zeros(0, dtype=xp.uint32)
    first, last = offset // 4, (offset + n - 1) // 4
    if last > _MASK64:
        raise ValueError("random_uint32: counter passes 2**66")
    block = xp.arange(0, last - first + 1, dtype=xp.uint64) + xp.uint64(first)
    words = philox4x32_10((block & xp.uint64(_MASK32), block >> xp.uint64(32), 0, 0), split_seed(seed), xp)
    # Interleave so that position 4*b + lane holds words[lane] of block b.
    flat = xp.stack(words, axis=1).reshape(-1)
    start = offset - 4 * first
    return flat[start:start + n].astype(xp.uint32)


def uniform(seed, offset, n, xp=np):
    """Return n float32 uniforms in [0, 1) at counters offset .. offset+n-1 for this seed."""
    bits = random_uint32(seed, offset, n, xp) >> xp.uint32(32 - UNIFORM_BITS)
    return bits.astype(xp.float32) * xp.float32(2.0 ** -UNIFORM_BITS)


def keep_threshold(p):
    """Return t such that uniform >= p exactly when (u32 >> 8) >= t, for p in [0, 1]."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    # p * 2**24 is exact in float64, so the integer test equals the float one.
    return int(np.ceil(p * 2.0 ** UNIFORM_BITS))


def dropout_keep(seed, offset, n, p, xp=np):
    """Return the boolean keep mask (uniform >= p) of n elements at this offset."""
    bits = random_uint32(seed, offset, n, xp) >> xp.uint32(32 - UNIFORM_BITS)
    return bits >= xp.uint32(keep_threshold(p))
