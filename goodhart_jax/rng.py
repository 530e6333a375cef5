"""Random numbers for the streaming engine: a fused Threefry stream and samplers on it.

Random bits (chosen by measurement).  For threefry keys (JAX's default) the engine draws a
chunk's bits with :func:`random_bits`: the Threefry-2x32 (20 rounds) counter hash, the very
function behind ``jax.random.bits`` — word ``j`` of ``random_bits(key, m)`` equals
``jax.random.bits(key, (m,))[j]`` under ``jax.threefry_partitionable(False)`` — written as
straight-line ``jnp`` so that XLA fuses it with the sampler and the reductions, and using
both output words of each hash.  JAX's own CPU lowering of threefry is a rolled 5-step loop
(short compile times, no fusion) and its default partitionable mode hashes once per 32-bit
word.  Other key types go through ``jax.random.bits`` and stay device-invariant (every chunk
has its own key), but on the benchmark CPU ``rbg``/``unsafe_rbg`` (XLA's ``RngBitGenerator``)
ran the estimator at about 0.2x the fused threefry stream, ``philox4x32`` does not lower
inside ``shard_map`` in jax 0.10.2, and JAX's gamma sampler (behind ``t`` and ``gennorm``)
loops per element with non-threefry keys.  So: threefry, fused.

Normal draws.  :func:`normal_pair` is Box–Muller on one hash per pair: the radius
``sqrt(-2 log u1)`` from a whole 32-bit word (``u1 = (a + 1/2) 2^-32``; two words in float64)
and the angle ``2 pi u2`` from the other, with a quadrant reduction and short Taylor
polynomials for sine and cosine (errors below float rounding) — exact in distribution.  XLA's
``erf_inv`` (``jax.random.normal``) and its ``sin``/``cos`` measured 0.6x this transform per
draw.  The pair is computed once and pinned in memory (see :func:`_pin`: XLA otherwise
re-computes the hash in every consumer fusion — 4x in the ``mc`` chunk).  Reach: float32
draws stop at ``|z| <= sqrt(66 log 2) = 6.76``, float64 at ``sqrt(130 log 2) = 9.49``
(``jax.random.normal``, used by the distributions' own ``sample``: 5.22 / 5.42 above / below
in float32, 8.16 / 8.29 in float64).  Student t and gennorm draws use
:func:`log_gamma_variate`, a vectorised Marsaglia–Tsang gamma on the same stream (about 25x
``jax.random.t`` on CPU).

Measured (``mc`` estimator, normal/normal, float32, 2^27 pairs, 2 CPU devices; per CPU-second
because the machine was shared): ``jax.random.normal`` 50-60 M pairs/CPU-s; fused threefry +
Box–Muller, unpinned, XLA's 256-bit vectors 64; pinned 120; pinned with 512-bit vectors
(:data:`CPU_COMPILER_OPTIONS`) 200-235.  NumPy's float32 ``standard_normal`` estimator: 35.

The half-array helpers (:func:`bits_halves`, :func:`uniform_halves`, :func:`log_gamma_halves`)
return the two halves of a draw separately, so that a consumer that needs two arrays (a chunk's
``V`` and ``X``) never concatenates inside the chunk; :mod:`goodhart_jax.sampling` uses them.

Example:
    >>> import jax
    >>> from goodhart_jax import rng
    >>> z1, z2 = rng.normal_pair(jax.random.key(0), 4)
    >>> z1.shape, z2.shape
    ((4,), (4,))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from goodhart_jax.numerics import float_dtype

__all__ = [
    "threefry2x32",
    "typed_key",
    "random_bits",
    "bits_halves",
    "box_muller",
    "normal_pair",
    "normal",
    "uniform_halves",
    "uniform",
    "log_gamma_halves",
    "log_gamma_variate",
]

_ROT = ((13, 15, 26, 6), (17, 29, 16, 24))
_U32 = jnp.uint32


def _rotl(x, d: int):
    return (x << _U32(d)) | (x >> _U32(32 - d))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array,
                 x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 block cipher with 20 rounds (Salmon et al. 2011), unrolled.

    The same function as JAX's ``threefry2x32`` primitive (bit for bit), written as plain
    ``uint32`` arithmetic so that XLA fuses it with whatever consumes the bits.

    Math: five times four rounds ``x0 += x1; x1 = rotl(x1, r) ^ x0``, with key injections
    ``(k0, k1, k0 ^ k1 ^ 0x1BD11BDA)`` after every four.

    Args:
        k0, k1: the two key words (``uint32`` scalars or arrays, broadcast).
        x0, x1: the two counter words (``uint32`` arrays).

    Returns:
        The two output words.

    Example:
        >>> import jax.numpy as jnp
        >>> from goodhart_jax.rng import threefry2x32
        >>> [hex(int(w)) for w in threefry2x32(*jnp.zeros(4, jnp.uint32))]  # Random123 KAT
        ['0x6b200159', '0x99ba4efe']
    """
    k0, k1, x0, x1 = (jnp.asarray(v, _U32) for v in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ _U32(0x1BD11BDA))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for j in range(5):
        for r in _ROT[j % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(j + 1) % 3]
        x1 = x1 + ks[(j + 2) % 3] + _U32(j + 1)
    return x0, x1


def typed_key(key: jax.Array) -> jax.Array:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, _U32))


def _is_threefry(key: jax.Array) -> bool:
    return str(jax.random.key_impl(key)) == "threefry2x32"


def bits_halves(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """Words ``[0, m/2)`` and ``[m/2, m)`` of :func:`random_bits` ``(key, m)`` (``m`` even)."""
    key = typed_key(key)
    h = m // 2
    if _is_threefry(key):
        kd = jax.random.key_data(key)
        i = lax.iota(_U32, h)
        return threefry2x32(kd[..., 0], kd[..., 1], i, i + _U32(h))
    bits = jax.random.bits(key, (m,), _U32)
    return bits[:h], bits[h:]


def random_bits(key: jax.Array, m: int) -> jax.Array:
    """``m`` random 32-bit words of ``key`` (``m`` even).

    For threefry keys the words are ``jax.random.bits(key, (m,), uint32)`` of JAX's original
    (non-partitionable) threefry stream: word ``j`` and word ``j + m/2`` are the two outputs
    of one hash of the counter pair ``(j, j + m/2)`` — two words per hash, computed by the
    fused :func:`threefry2x32`.  Other key types go through ``jax.random.bits``.

    Math: ``(w_j, w_{j+m/2}) = Threefry2x32_key(j, j + m/2)``, ``0 <= j < m/2``.

    Args:
        key: a PRNG key (typed, or a raw ``uint32`` key of the default implementation).
        m: the number of words, an even integer >= 2.

    Returns:
        A ``uint32`` array of shape ``(m,)``.

    Example:
        >>> import jax
        >>> from goodhart_jax.rng import random_bits
        >>> with jax.threefry_partitionable(False):
        ...     ref = jax.random.bits(jax.random.key(3), (8,), "uint32")
        >>> bool((random_bits(jax.random.key(3), 8) == ref).all())
        True
    """
    if int(m) != m or m < 2 or m % 2:
        raise ValueError(f"m must be an even integer >= 2, got {m!r}")
    a, b = bits_halves(key, int(m))
    return jnp.concatenate([a, b])


def _sincos_quarter(x, dtype):
    """``sin x, cos x`` for ``|x| <= pi/4`` by Taylor polynomials (error below float rounding)."""
    n_sin, n_cos = (8, 9) if dtype == jnp.float64 else (5, 6)
    x2 = x * x
    s = jnp.zeros_like(x)
    for k in range(n_sin - 1, -1, -1):
        s = s * x2 + jnp.asarray((-1) ** k / math.factorial(2 * k + 1), dtype)
    s = s * x
    c = jnp.zeros_like(x)
    for k in range(n_cos - 1, -1, -1):
        c = c * x2 + jnp.asarray((-1) ** k / math.factorial(2 * k), dtype)
    return s, c


def box_muller(r_hi, r_lo, t_hi, t_lo, dtype):
    """Box–Muller from 32-bit words: radius words ``r_*``, angle words ``t_*``.

    float32 uses ``r_hi`` and ``t_hi`` only; float64 uses both words of each (64-bit radius
    uniform, 53-bit angle).
    """
    if dtype == jnp.float64:
        f = jnp.float64
        u1 = (r_hi.astype(f) + (r_lo.astype(f) + 0.5) * 2.0**-32) * 2.0**-32  # (0, 1], >= 2^-65
        u2 = (t_hi.astype(f) * 2.0**21 + (t_lo >> _U32(11)).astype(f)) * 2.0**-53  # [0, 1)
    else:
        f = jnp.float32
        u1 = (r_hi.astype(f) + f(0.5)) * f(2.0**-32)  # (0, 1], >= 2^-33
        u2 = (t_hi >> _U32(8)).astype(f) * f(2.0**-24)  # [0, 1), exact
    r = jnp.sqrt(f(-2.0) * jnp.log(u1))
    q = u2 * f(4.0)  # exact
    k = jnp.floor(q + f(0.5))  # exact: the nearest quadrant boundary
    x = (q - k) * f(math.pi / 2.0)  # |x| <= pi/4
    s, c = _sincos_quarter(x, f)
    ki = k.astype(jnp.int32)
    odd = (ki & 1) == 1
    rs = jnp.where((ki & 2) == 2, -r, r)
    return rs * jnp.where(odd, -s, c), rs * jnp.where(odd, c, s)


def normal_pair(key: jax.Array, n: int, dtype=None) -> tuple[jax.Array, jax.Array]:
    """Two independent arrays of ``n`` standard normal draws (Box–Muller on one stream).

    float32: word ``j`` of :func:`random_bits` ``(key, 2n)`` gives the radius, word ``n + j``
    the angle of pair ``j`` — one Threefry hash per pair.  float64: words ``j, n + j`` of
    ``random_bits(key, 4n)`` give a 64-bit radius uniform, words ``2n + j, 3n + j`` a 53-bit
    angle.

    Math: ``(z1, z2) = sqrt(-2 log u1) (cos 2 pi u2, sin 2 pi u2)``, ``u1 = (a + 1/2) 2^-32``
    (``a`` a 32-bit word; 64 bits in float64).  Reach: ``|z| <= 6.76`` in float32 and
    ``9.49`` in float64.

    Args:
        key: a PRNG key.
        n: draws per array (an integer >= 1).
        dtype: float32 or float64 (default: JAX's default float).

    Returns:
        ``(z1, z2)``, each of shape ``(n,)``.

    Example:
        >>> import jax
        >>> from goodhart_jax.rng import normal_pair
        >>> z1, z2 = normal_pair(jax.random.key(0), 100_000)
        >>> abs(float(z1.mean())) < 0.02 and abs(float((z2 * z2).mean()) - 1) < 0.02
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    key = typed_key(key)
    if dtype == jnp.float64:
        a, b = bits_halves(key, 4 * n)
        z1, z2 = box_muller(a[:n], a[n:], b[:n], b[n:], dtype)
    else:
        a, b = bits_halves(key, 2 * n)
        z1, z2 = box_muller(a, None, b, None, dtype)
    z = _pin(lax.complex(z1, z2), key)
    return jnp.real(z), jnp.imag(z)


def _runtime_one(key: jax.Array, dtype):
    """``1`` computed from the key's words, so that XLA cannot constant-fold it."""
    word = jax.random.key_data(key).reshape(-1)[0]
    return jnp.asarray(1.0, dtype) + jnp.asarray(0.0, dtype) * word.astype(dtype)


def _pin(z: jax.Array, key: jax.Array) -> jax.Array:
    """``z`` itself, computed once and kept in memory by every consumer.

    XLA duplicates cheap elementwise producers (the Threefry hash and the polynomial
    sine/cosine are cheap) into each consumer fusion, so a pair of draws feeding three
    reductions would be drawn three times (and CPU XLA drops optimisation barriers).  A
    complex division is an "expensive" instruction that XLA neither duplicates nor rewrites;
    dividing by a runtime ``1 + 0i`` is exact (``(a c + b d) / (c^2 + d^2)`` with ``c = 1``,
    ``d = 0``) and pins the pair in memory once: about 2x the throughput on CPU.
    """
    one = _runtime_one(key, z.real.dtype)
    return z / lax.complex(one, jnp.zeros_like(one))


def normal(key: jax.Array, n: int, dtype=None) -> jax.Array:
    """``n`` standard normal draws: both halves of :func:`normal_pair` (``ceil(n/2)`` pairs).

    Math: ``z = concat(z1, z2)[:n]`` with ``(z1, z2) = normal_pair(key, ceil(n / 2))``.

    Example:
        >>> import jax
        >>> from goodhart_jax.rng import normal
        >>> normal(jax.random.key(0), 5).shape
        (5,)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    z1, z2 = normal_pair(key, -(-n // 2), dtype)
    return jnp.concatenate([z1, z2])[:n]


def uniform_halves(key: jax.Array, h: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Two arrays of ``h`` uniforms on ``(0, 1)`` (words ``[0, h)`` and ``[h, 2h)``)."""
    if dtype == jnp.float64:
        a, b = bits_halves(key, 4 * h)

        def u64(hi, lo):
            return ((hi.astype(jnp.float64) * 2.0**21 + (lo >> _U32(11)).astype(jnp.float64))
                    + 0.5) * 2.0**-53

        return u64(a[:h], a[h:]), u64(b[:h], b[h:])
    a, b = bits_halves(key, 2 * h)
    f = jnp.float32
    return tuple(((w >> _U32(8)).astype(f) + f(0.5)) * f(2.0**-24) for w in (a, b))


def uniform(key: jax.Array, n: int, dtype=None) -> jax.Array:
    """``n`` uniform draws on ``(0, 1)`` from :func:`random_bits` (24 bits in float32, 53 in
    float64).

    Math: ``u = (w + 1/2) 2^-24`` with ``w`` the top 24 bits of a word (float32); float64 joins
    two words into 53 bits.  Never 0 or 1.

    Example:
        >>> import jax
        >>> from goodhart_jax.rng import uniform
        >>> u = uniform(jax.random.key(0), 1000)
        >>> bool((u > 0).all() and (u < 1).all())
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    u1, u2 = uniform_halves(key, -(-n // 2), dtype)
    return jnp.concatenate([u1, u2])[:n]


def log_gamma_halves(key, alpha, h: int, dtype):
    """Marsaglia–Tsang on two halves of ``h`` slots (no concatenation inside the loop)."""
    alpha = jnp.asarray(alpha, dtype)
    boost = alpha < 1
    a = jnp.where(boost, alpha + 1, alpha)
    d = a - jnp.asarray(1.0 / 3.0, dtype)
    c = lax.rsqrt(9 * d)
    k_rounds, k_boost = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)

    def trial(x, u):
        v = 1 + c * x
        pos = v > 0
        v3 = v * v * v
        ok = pos & (jnp.log(u) < 0.5 * x * x + d - d * v3 + d * jnp.log(jnp.where(pos, v3, 1)))
        return ok, jnp.log(d) + 3 * jnp.log(jnp.where(pos, v, 1))

    def cond(state):
        return ~(jnp.all(state[1]) & jnp.all(state[2]))

    def body(state):
        j, done1, done2, g1, g2 = state
        kj = jax.random.fold_in(k_rounds, j)
        x1, x2 = normal_pair(jax.random.fold_in(kj, 0), h, dtype)
        u1, u2 = uniform_halves(jax.random.fold_in(kj, 1), h, dtype)
        ok1, c1 = trial(x1, u1)
        ok2, c2 = trial(x2, u2)
        g1 = jnp.where(ok1 & ~done1, c1, g1)
        g2 = jnp.where(ok2 & ~done2, c2, g2)
        return j + 1, done1 | ok1, done2 | ok2, g1, g2

    no, zero = jnp.zeros((h,), bool), jnp.zeros((h,), dtype)
    _, _, _, g1, g2 = lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), no, no, zero, zero))
    b1, b2 = uniform_halves(k_boost, h, dtype)
    g1 = jnp.where(boost, g1 + jnp.log(b1) / alpha, g1)
    g2 = jnp.where(boost, g2 + jnp.log(b2) / alpha, g2)
    return g1, g2


def log_gamma_variate(key: jax.Array, alpha, n: int, dtype=None) -> jax.Array:
    """``log G`` for ``n`` draws ``G ~ Gamma(alpha, 1)``, exact (Marsaglia–Tsang, vectorised).

    Every round ``j`` draws a candidate for every slot from its own key
    (``fold_in(fold_in(key, 0), j)``: engine normals and uniforms); slots keep their first
    accepted candidate and the loop stops when all have one (4-6 rounds for 2^16 slots).
    ``alpha < 1`` uses ``G = G_{alpha+1} U^{1/alpha}``, in log space so that tiny ``alpha``
    does not underflow.  The engine's Student t and gennorm draws use it: JAX's
    ``jax.random.gamma`` runs its rejection loop per element on CPU.

    Math: ``d = a - 1/3``, ``c = 1/sqrt(9 d)``, ``v = (1 + c x)^3``; accept ``d v`` if
    ``v > 0`` and ``log u < x^2/2 + d - d v + d log v``.

    Args:
        key: a PRNG key.
        alpha: the shape, a positive scalar (may be traced).
        n: the number of draws (>= 1).
        dtype: float32 or float64.

    Returns:
        ``log G``, shape ``(n,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from goodhart_jax.rng import log_gamma_variate
        >>> g = jnp.exp(log_gamma_variate(jax.random.key(0), 2.5, 100_000))
        >>> abs(float(g.mean()) - 2.5) < 0.05
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    g1, g2 = log_gamma_halves(typed_key(key), alpha, -(-n // 2), dtype)
    return jnp.concatenate([g1, g2])[:n]


def _canonical_float(dtype):
    dt = float_dtype(dtype)
    if dt not in (jnp.float32, jnp.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt

