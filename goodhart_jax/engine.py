"""Streaming Monte Carlo over devices and hosts: one engine for every sampled estimator.

``N`` samples are drawn in fixed-size chunks.  Chunk ``i`` (its *global* index) draws with
``jax.random.fold_in(key, i)``, so the draws never depend on which device or host computes
them, and memory is constant in ``N`` (a device holds one chunk at a time).  A chunk
function maps ``(key, mask, *args)`` to a pytree of statistics; the engine adds them up.

Layout (:func:`stream`).  The chunks are processed in *rounds* of ``R = D * k`` chunks, ``D``
devices (all devices of all processes by default, one ``jax.shard_map`` over a 1-D mesh) and
``k`` chunks per device per round (device ``d`` takes chunks ``r R + d k + j``, ``j < k``).
After each round every device holds the ``k`` statistics it computed in its slot of a
``(R, ...)`` buffer of zeros; one ``psum`` over the mesh fills the buffer (each entry is a sum
of one value and ``D - 1`` exact zeros, so it is exact: this ``psum`` is an all-gather), and
every device then adds the ``R`` chunk statistics to its running, compensated
(Kahan–Babuška) sum in global chunk order ``0, 1, 2, ...``.  The sequence of floating-point
operations is therefore the same for any ``D`` and ``k``: the estimate is bit for bit the same
on 1, 2 or 8 devices, on one host or several (for the same compiled chunk kernel, i.e. the same
backend and CPU features).  Empty chunks past ``N`` (the last round is padded) are skipped by
``lax.cond`` and add exact zeros.  All rounds run inside one jitted ``fori_loop``; with a
progress bar (:mod:`goodhart_jax.progress`) the same jitted program runs a few rounds at a
time from a Python loop, with the same result.

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

Chunk size.  ``DEFAULT_CHUNK = 2**16`` draws on CPU.  Samples per CPU-second by chunk size
(two runs): 2^13 188/216, 2^14 232/226, 2^15 238/233, 2^16 203/227, 2^17 213/216,
2^18 171/176 M: a plateau from 2^14 to 2^16 (within the noise), a drop below (per-chunk
overhead: a ``fold_in``, a ``cond``, the loop) and above (the pinned pair, 8 bytes a draw,
leaves the 2 MB L2 cache).  2^16 is the plateau's top end and keeps earlier estimates
unchanged.  On GPU :func:`default_chunk_size` returns ``2**24`` so that a chunk fills the
device and loop overheads stay small (not measured here: no GPU; ``bench sampling`` sweeps
it).

Example:
    >>> import jax, jax.numpy as jnp
    >>> from goodhart_jax import engine
    >>> def chunk(key, mask, loc):
    ...     z = loc + jax.random.normal(key, mask.shape)
    ...     return {"n": mask.sum(dtype=z.dtype), "s": jnp.where(mask, z, 0.0).sum()}
    >>> out = engine.stream(chunk, jax.random.key(0), 1.0, num_samples=10_000, chunk_size=1024)
    >>> int(out["n"])
    10000
"""

from __future__ import annotations

import math
import os
import time
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from goodhart_jax import progress as _progress

__all__ = [
    "stream",
    "Sums",
    "kahan_add",
    "DEFAULT_CHUNK",
    "default_chunk_size",
    "threefry2x32",
    "random_bits",
    "normal_pair",
    "normal",
    "uniform",
    "log_gamma_variate",
    "initialize_distributed",
    "MAX_CHUNKS",
]

DEFAULT_CHUNK = 1 << 16
#: Chunks one device draws per round (between two psums); the result does not depend on it.
CHUNKS_PER_DEVICE = 4
#: The most chunks one run may have (chunk indices are int32 and fold_in takes uint32).
MAX_CHUNKS = (1 << 31) - 1
AXIS = "chunks"

PyTree = Any


class Sums(NamedTuple):
    """A compensated running sum: ``total + compensation`` (Kahan–Babuška)."""

    total: PyTree
    compensation: PyTree


def kahan_add(acc: Sums, value: PyTree) -> Sums:
    """Add ``value`` to the compensated sum ``acc`` (elementwise over the pytree).

    Math: ``t = s + v``; ``c += (s - t) + v`` if ``|s| >= |v|`` else ``(v - t) + s``; ``s = t``.
    """

    leaves_s, treedef = jax.tree_util.tree_flatten(acc.total)
    leaves_c = treedef.flatten_up_to(acc.compensation)
    leaves_v = treedef.flatten_up_to(value)
    new_s, new_c = [], []
    for s, c, v in zip(leaves_s, leaves_c, leaves_v):
        t = s + v
        new_c.append(c + jnp.where(jnp.abs(s) >= jnp.abs(v), (s - t) + v, (v - t) + s))
        new_s.append(t)
    return Sums(treedef.unflatten(new_s), treedef.unflatten(new_c))


def default_chunk_size(backend: str | None = None) -> int:
    """Draws per chunk for ``backend`` (default: JAX's default backend).

    Math: ``C = 2^16`` on CPU (measured), ``2^24`` on GPU/TPU (one chunk fills the device).

    Example:
        >>> from goodhart_jax import engine
        >>> engine.default_chunk_size("cpu")
        65536
    """
    backend = jax.default_backend() if backend is None else backend
    return DEFAULT_CHUNK if backend == "cpu" else 1 << 24


# --- random bits: unrolled Threefry-2x32 -------------------------------------------------------

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
        >>> from goodhart_jax.engine import threefry2x32
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


def _typed(key: jax.Array) -> jax.Array:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, _U32))


def _is_threefry(key: jax.Array) -> bool:
    return str(jax.random.key_impl(key)) == "threefry2x32"


def _bits_halves(key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """Words ``[0, m/2)`` and ``[m/2, m)`` of :func:`random_bits` ``(key, m)`` (``m`` even)."""
    key = _typed(key)
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
        >>> from goodhart_jax.engine import random_bits
        >>> with jax.threefry_partitionable(False):
        ...     ref = jax.random.bits(jax.random.key(3), (8,), "uint32")
        >>> bool((random_bits(jax.random.key(3), 8) == ref).all())
        True
    """
    if int(m) != m or m < 2 or m % 2:
        raise ValueError(f"m must be an even integer >= 2, got {m!r}")
    a, b = _bits_halves(key, int(m))
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


def _box_muller(r_hi, r_lo, t_hi, t_lo, dtype):
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
        >>> from goodhart_jax.engine import normal_pair
        >>> z1, z2 = normal_pair(jax.random.key(0), 100_000)
        >>> abs(float(z1.mean())) < 0.02 and abs(float((z2 * z2).mean()) - 1) < 0.02
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    key = _typed(key)
    if dtype == jnp.float64:
        a, b = _bits_halves(key, 4 * n)
        z1, z2 = _box_muller(a[:n], a[n:], b[:n], b[n:], dtype)
    else:
        a, b = _bits_halves(key, 2 * n)
        z1, z2 = _box_muller(a, None, b, None, dtype)
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
        >>> from goodhart_jax.engine import normal
        >>> normal(jax.random.key(0), 5).shape
        (5,)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    z1, z2 = normal_pair(key, -(-n // 2), dtype)
    return jnp.concatenate([z1, z2])[:n]


def _uniform_halves(key: jax.Array, h: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Two arrays of ``h`` uniforms on ``(0, 1)`` (words ``[0, h)`` and ``[h, 2h)``)."""
    if dtype == jnp.float64:
        a, b = _bits_halves(key, 4 * h)

        def u64(hi, lo):
            return ((hi.astype(jnp.float64) * 2.0**21 + (lo >> _U32(11)).astype(jnp.float64))
                    + 0.5) * 2.0**-53

        return u64(a[:h], a[h:]), u64(b[:h], b[h:])
    a, b = _bits_halves(key, 2 * h)
    f = jnp.float32
    return tuple(((w >> _U32(8)).astype(f) + f(0.5)) * f(2.0**-24) for w in (a, b))


def uniform(key: jax.Array, n: int, dtype=None) -> jax.Array:
    """``n`` uniform draws on ``(0, 1)`` from :func:`random_bits` (24 bits in float32, 53 in
    float64).

    Math: ``u = (w + 1/2) 2^-24`` with ``w`` the top 24 bits of a word (float32); float64 joins
    two words into 53 bits.  Never 0 or 1.

    Example:
        >>> import jax
        >>> from goodhart_jax.engine import uniform
        >>> u = uniform(jax.random.key(0), 1000)
        >>> bool((u > 0).all() and (u < 1).all())
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    u1, u2 = _uniform_halves(key, -(-n // 2), dtype)
    return jnp.concatenate([u1, u2])[:n]


def _log_gamma_halves(key, alpha, h: int, dtype):
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
        u1, u2 = _uniform_halves(jax.random.fold_in(kj, 1), h, dtype)
        ok1, c1 = trial(x1, u1)
        ok2, c2 = trial(x2, u2)
        g1 = jnp.where(ok1 & ~done1, c1, g1)
        g2 = jnp.where(ok2 & ~done2, c2, g2)
        return j + 1, done1 | ok1, done2 | ok2, g1, g2

    no, zero = jnp.zeros((h,), bool), jnp.zeros((h,), dtype)
    _, _, _, g1, g2 = lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), no, no, zero, zero))
    b1, b2 = _uniform_halves(k_boost, h, dtype)
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
        >>> from goodhart_jax.engine import log_gamma_variate
        >>> g = jnp.exp(log_gamma_variate(jax.random.key(0), 2.5, 100_000))
        >>> abs(float(g.mean()) - 2.5) < 0.05
        True
    """
    dtype = _canonical_float(dtype)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    g1, g2 = _log_gamma_halves(_typed(key), alpha, -(-n // 2), dtype)
    return jnp.concatenate([g1, g2])[:n]


def _canonical_float(dtype):
    if dtype is None:
        return jnp.asarray(1.0).dtype
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dt}")
    dt = jax.dtypes.canonicalize_dtype(dt)
    if dt not in (jnp.float32, jnp.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


# --- the streaming loop ------------------------------------------------------------------------

class _Plan(NamedTuple):
    """The static part of a run (one compilation each); the sample count is traced."""

    chunk_size: int
    per_device: int
    mesh: Mesh
    impl: Any


@lru_cache(maxsize=32)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices, dtype=object), (AXIS,))


def _zeros_like_tree(template):
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), template)


#: XLA options for the CPU compilation of the streaming loop.  Preferring 512-bit vectors
#: measured 1.6-1.8x the samples per CPU-second of XLA's default (256) on the AVX-512 CPU
#: of the benchmark machine; on CPUs without AVX-512 the hint has no effect.  Set to ``{}``
#: to compile with XLA's defaults.
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_prefer_vector_width": 512}


@lru_cache(maxsize=8)
def _jitted_advance(options: tuple):
    return jax.jit(_advance_impl, static_argnames=("chunk_fn", "plan"),
                   compiler_options=dict(options) or None)


def _advance(chunk_fn, key_data, args, acc, sched, plan: "_Plan"):
    """Run the rounds ``sched = [start_round, num_rounds, n_chunks, last_valid]`` (int32)."""
    platform = plan.mesh.devices.flat[0].platform
    leaves = jax.tree_util.tree_leaves((key_data, args, acc))
    traced = any(isinstance(x, jax.core.Tracer) for x in leaves)
    # compiler options are allowed on top-level jit only (not under an outer jit or vmap)
    options = ()
    if platform == "cpu" and not traced:
        options = tuple(sorted(CPU_COMPILER_OPTIONS.items()))
    return _jitted_advance(options)(chunk_fn, key_data, args, acc, sched, plan=plan)


def _advance_impl(chunk_fn, key_data, args, acc, sched, plan: _Plan):
    """Run rounds ``[start_round, start_round + num_rounds)`` and add them to ``acc``."""
    mesh = plan.mesh
    k = plan.per_device
    R = mesh.size * k
    C = plan.chunk_size

    def body(key_data, args, acc, sched):
        start_round, num_rounds, n_chunks, last_valid = sched[0], sched[1], sched[2], sched[3]
        key = jax.random.wrap_key_data(key_data, impl=plan.impl)
        d = lax.axis_index(AXIS)
        arange = lax.iota(jnp.int32, C)
        template = jax.eval_shape(chunk_fn, key, jax.ShapeDtypeStruct((C,), jnp.bool_), *args)
        zeros = _zeros_like_tree(template)

        def compute(i):
            valid = jnp.where(i == n_chunks - 1, last_valid, C)
            out = chunk_fn(jax.random.fold_in(key, i), arange < valid, *args)
            return jax.tree_util.tree_map(lambda o, s: jnp.asarray(o, s.dtype), out, template)

        def skip(i):
            return zeros

        def round_body(r, acc):
            base = (start_round + r) * R + d * k

            def one(j, buf):
                i = base + j
                stats = lax.cond(i < n_chunks, compute, skip, i)
                return jax.tree_util.tree_map(
                    lambda b, s: lax.dynamic_update_index_in_dim(b, s, j, 0), buf, stats)

            empty = jax.tree_util.tree_map(lambda s: jnp.zeros((k,) + s.shape, s.dtype), template)
            local = lax.fori_loop(0, k, one, empty)
            full = jax.tree_util.tree_map(
                lambda s, part: lax.dynamic_update_slice_in_dim(
                    jnp.zeros((R,) + s.shape, s.dtype), part, d * k, 0), template, local)
            full = lax.psum(full, AXIS)  # one value and D - 1 exact zeros per entry: exact

            def add(j, acc):
                return kahan_add(acc, jax.tree_util.tree_map(
                    lambda f: lax.dynamic_index_in_dim(f, j, 0, keepdims=False), full))

            return lax.fori_loop(0, R, add, acc)

        return lax.fori_loop(0, num_rounds, round_body, acc)

    spec = PartitionSpec()
    run = jax.shard_map(body, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    return run(key_data, args, acc, sched)


def _global(tree: PyTree, mesh: Mesh) -> PyTree:
    """Concrete leaves as arrays replicated over ``mesh`` (needed when it spans processes)."""
    if jax.process_count() == 1:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())

    def conv(x):
        if isinstance(x, jax.core.Tracer):
            return x
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        a = np.asarray(jnp.asarray(x))
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    return jax.tree_util.tree_map(conv, tree)


def _resolve_devices(devices) -> tuple:
    if devices is None:
        return tuple(jax.devices())
    if isinstance(devices, int):
        all_devices = jax.devices()
        if devices < 1 or devices > len(all_devices):
            raise ValueError(f"devices must be between 1 and {len(all_devices)}, got {devices}")
        return tuple(all_devices[:devices])
    devs = tuple(devices)
    if not devs:
        raise ValueError("devices must name at least one device")
    return devs


def stream(chunk_fn: Callable[..., PyTree], key: jax.Array, *args: PyTree,
           num_samples: int, chunk_size: int | None = DEFAULT_CHUNK,
           devices: int | Sequence[jax.Device] | None = None,
           progress: bool | None = None, chunks_per_device: int = CHUNKS_PER_DEVICE) -> PyTree:
    """Sum ``chunk_fn(fold_in(key, i), mask_i, *args)`` over the chunks covering ``num_samples``.

    Math: ``S = Σ_i chunk_fn(fold_in(key, i), mask_i)``, ``mask_i[j] = i·C + j < N``, summed
    (compensated) in the order ``i = 0, 1, 2, ...`` whatever the number of devices.

    Args:
        chunk_fn: ``(key, mask, *args) -> pytree`` of statistics of one chunk; ``mask`` (bool,
            ``(chunk_size,)``) marks the draws that count (the last chunk is partial).  It is a
            static argument: pass a module-level function (not a fresh lambda) so that repeated
            calls reuse the compiled loop; data go in ``args``.
        key: a PRNG key (typed, or a raw ``uint32`` key).
        *args: pytrees passed to ``chunk_fn`` (traced, e.g. distributions and thresholds).
        num_samples: total number of draws ``N >= 1``.
        chunk_size: draws per chunk (``None``: :func:`default_chunk_size`).  The estimate
            depends on it (it fixes which key draws which sample), not on the devices.
        devices: the devices to shard the chunks over: ``None`` for all devices of all
            processes (``jax.devices()``), an integer for the first that many, or a sequence.
        progress: show a progress bar (rate, ETA) on stderr: ``True``, ``False``, or ``None``
            for long runs on a terminal (see :mod:`goodhart_jax.progress`).  The result is
            the same either way.
        chunks_per_device: chunks a device draws between two reductions (no effect on the
            result).

    Returns:
        The compensated sums of the statistics over all chunks.

    Raises:
        ValueError: ``num_samples``, ``chunk_size``, ``devices`` or ``chunks_per_device`` out of
            range, or more than ``MAX_CHUNKS`` chunks.
    """
    try:
        ok = float(num_samples) == int(num_samples) and int(num_samples) >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    num_samples = int(num_samples)
    if chunk_size is None:
        chunk_size = default_chunk_size()
    if int(chunk_size) != chunk_size or int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if int(chunks_per_device) != chunks_per_device or int(chunks_per_device) < 1:
        raise ValueError(f"chunks_per_device must be an integer >= 1, got {chunks_per_device!r}")
    chunk_size = min(int(chunk_size), num_samples)
    n_chunks = -(-num_samples // chunk_size)
    if n_chunks > MAX_CHUNKS:
        raise ValueError(f"num_samples / chunk_size must be at most {MAX_CHUNKS} chunks, got "
                         f"{n_chunks}; raise chunk_size")
    devs = _resolve_devices(devices)
    mesh = _mesh(devs)
    n_dev = mesh.size
    k = max(1, min(int(chunks_per_device), -(-n_chunks // n_dev)))
    per_round = n_dev * k
    n_rounds = -(-n_chunks // per_round)

    key = _typed(key)
    impl = jax.random.key_impl(key)
    key_data = jax.random.key_data(key)
    plan = _Plan(chunk_size, k, mesh, impl)
    counts = (n_chunks, num_samples - (n_chunks - 1) * chunk_size)

    template = _template(chunk_fn, key, chunk_size, args)
    zeros = _zeros_like_tree(template)
    acc = Sums(zeros, zeros)
    key_data, args, acc = _global((key_data, args, acc), mesh)

    concrete = not any(isinstance(x, jax.core.Tracer)
                       for x in jax.tree_util.tree_leaves((key_data, args)))
    if concrete and _progress.should_show(progress, num_samples):
        acc = _run_with_progress(chunk_fn, key_data, args, acc, plan, counts, num_samples,
                                 n_rounds, per_round)
    else:
        acc = _advance(chunk_fn, key_data, args, acc, _sched(0, n_rounds, counts, mesh), plan)
    return jax.tree_util.tree_map(lambda s, c: s + c, acc.total, acc.compensation)


def _template(chunk_fn, key, chunk_size: int, args) -> PyTree:
    """The shapes of ``chunk_fn``'s statistics, traced once per function, key type, chunk size
    and argument structure (a second call with new values of the same shapes traces nothing)."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    avals = tuple(jax.typeof(x) if isinstance(x, jax.Array) else
                  (type(x), np.shape(x), np.result_type(x)) for x in leaves)
    return _template_cached(chunk_fn, jax.typeof(key), chunk_size, treedef, avals,
                            lambda: jax.eval_shape(chunk_fn, key,
                                                   jax.ShapeDtypeStruct((chunk_size,), jnp.bool_),
                                                   *args))


_TEMPLATES: dict = {}


def _template_cached(chunk_fn, key_type, chunk_size, treedef, avals, make):
    k = (chunk_fn, key_type, chunk_size, treedef, avals)
    try:
        return _TEMPLATES[k]
    except TypeError:  # something unhashable: no caching
        return make()
    except KeyError:
        if len(_TEMPLATES) > 4096:
            _TEMPLATES.clear()
        out = _TEMPLATES[k] = make()
        return out


def _sched(start: int, n: int, counts: tuple[int, int], mesh: Mesh):
    return _global(np.array([start, n, *counts], np.int32), mesh)


_CALL_SECONDS = 1.0


def _run_with_progress(chunk_fn, key_data, args, acc, plan, counts, num_samples, n_rounds,
                       per_round):
    """The same rounds as one call, a few at a time, with a bar between them.

    Calls are pipelined: call ``j + 1`` is dispatched (JAX dispatches asynchronously; it waits
    on call ``j``'s accumulator on the device) before the host waits for call ``j`` and redraws
    the bar, so the devices never idle on the host.  Calls grow from ``2^24`` samples to about
    a second each.
    """
    C = plan.chunk_size
    bar = _progress.Progress(num_samples)
    dispatched = 0
    step = max(1, min(n_rounds, (1 << 24) // (per_round * C)))
    in_flight: list[tuple[Any, int, int]] = []  # (accumulator, rounds done when it is ready, n)
    last = time.perf_counter()
    try:
        while dispatched < n_rounds or in_flight:
            if dispatched < n_rounds and len(in_flight) < 2:
                n = min(step, n_rounds - dispatched)
                acc = _advance(chunk_fn, key_data, args, acc,
                               _sched(dispatched, n, counts, plan.mesh), plan)
                dispatched += n
                in_flight.append((acc, dispatched, n))
                continue
            ready, done, n = in_flight.pop(0)
            jax.block_until_ready(ready)
            now = time.perf_counter()
            bar.update(min(done * per_round * C, num_samples))
            step = max(1, int(n * min(4.0, _CALL_SECONDS / max(now - last, 1e-6))))
            last = now
    finally:
        bar.close()
    return acc


# --- several hosts -----------------------------------------------------------------------------

ENV_COORDINATOR = "GOODHART_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "GOODHART_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "GOODHART_JAX_PROCESS_ID"


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, auto: bool = False,
                           local_device_ids: Sequence[int] | None = None,
                           timeout_s: int = 300) -> bool:
    """Join a multi-process (multi-host) run: ``jax.distributed.initialize``.

    Every process runs the same program; afterwards ``jax.devices()`` lists the devices of all
    processes and :func:`stream` shards its chunks over all of them (the estimate is the same,
    bit for bit, as on one process).  Arguments left ``None`` are read from the environment
    (``GOODHART_JAX_COORDINATOR``, ``GOODHART_JAX_NUM_PROCESSES``, ``GOODHART_JAX_PROCESS_ID``).
    With none given anywhere, nothing happens unless ``auto`` is set, which lets JAX detect the
    cluster (Slurm, Open MPI, Kubernetes, TPU pods).

    Math: none (set-up).

    Args:
        coordinator: ``host:port`` of process 0 (it listens there).
        num_processes: the number of processes (>= 1).
        process_id: this process's index, ``0 <= process_id < num_processes``.
        auto: call ``jax.distributed.initialize()`` with cluster auto-detection when no
            coordinator is given.
        local_device_ids: restrict this process to these local devices (e.g. one GPU each).
        timeout_s: seconds to wait for the other processes.

    Returns:
        ``True`` if JAX was initialised for several processes, ``False`` if nothing was done.

    Raises:
        ValueError: a malformed coordinator address or process numbers out of range.

    Example:
        >>> from goodhart_jax import engine
        >>> engine.initialize_distributed()  # no flags, no environment: a single process
        False
    """
    env = os.environ
    coordinator = coordinator if coordinator is not None else env.get(ENV_COORDINATOR) or None
    if num_processes is None and env.get(ENV_NUM_PROCESSES):
        num_processes = env[ENV_NUM_PROCESSES]
    if process_id is None and env.get(ENV_PROCESS_ID):
        process_id = env[ENV_PROCESS_ID]
    if coordinator is None and num_processes is None and process_id is None:
        if not auto:
            return False
        jax.distributed.initialize(local_device_ids=local_device_ids,
                                   initialization_timeout=int(timeout_s))
        return True
    if coordinator is None or num_processes is None or process_id is None:
        raise ValueError("coordinator, num_processes and process_id must be given together "
                         f"(got coordinator={coordinator!r}, num_processes={num_processes!r}, "
                         f"process_id={process_id!r})")
    host, sep, port = str(coordinator).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be host:port, got {coordinator!r}")
    try:
        n = int(num_processes)
        pid = int(process_id)
    except (TypeError, ValueError):
        raise ValueError(f"num_processes and process_id must be integers, got "
                         f"{num_processes!r} and {process_id!r}") from None
    if n < 1:
        raise ValueError(f"num_processes must be an integer >= 1, got {num_processes!r}")
    if not 0 <= pid < n:
        raise ValueError(f"process_id must be an integer in [0, {n - 1}], got {process_id!r}")
    jax.distributed.initialize(coordinator_address=str(coordinator), num_processes=n,
                               process_id=pid, local_device_ids=local_device_ids,
                               initialization_timeout=int(timeout_s))
    return True
