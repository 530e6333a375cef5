"""Shared numerics and statistics: the one home of the small pieces every module needs.

* :func:`log1mexp` and :func:`log_sub_exp`: ``log(1 - e^u)`` and ``log(e^a - e^b)``, accurate at
  both ends (Mächler 2012's two branches);
* :func:`log1p_ratio` and :func:`expm1_ratio`: ``log1p(xi a) / xi`` and ``expm1(xi a) / xi``,
  continuous (with their derivatives) through ``xi = 0``, where they tend to ``a``;
* :func:`two_sum` and :func:`two_prod`: error-free sums and products (``a + b = s + e`` exactly);
* :func:`prefix_sum`: a cumulative sum by blocked triangular matrix products (about twice as fast
  as ``jnp.cumsum`` on a CPU, where that is a log-depth scan);
* :func:`float_dtype` and :func:`as_float`: the one promotion rule (integers become the default
  float, floats keep their own dtype);
* :func:`newton_polish`: safeguarded Newton ascent on a scalar function;
* :class:`Estimate` with :func:`mean_estimate` (sample mean and its standard error from running
  sums) and :func:`ratio_estimate` (a ratio estimator and its delta-method standard error).

Example:
    >>> import jax.numpy as jnp
    >>> float(log1mexp(jnp.asarray(-1e-20)))  # doctest: +ELLIPSIS
    -46.0517018598809...
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["log1mexp", "log_sub_exp", "log1p_ratio", "expm1_ratio", "two_sum", "two_prod",
           "float_dtype", "as_float", "host_float", "newton_polish", "Estimate",
           "mean_estimate", "ratio_estimate"]

_LOG_2 = math.log(2.0)


def log1mexp(u) -> jax.Array:
    """``log(1 - e^u)`` for ``u <= 0``, accurate at both ends (``-inf`` at ``u = 0``).

    Math: ``log(-expm1(u))`` for ``u > -log 2``, ``log1p(-exp(u))`` below (Mächler 2012).
    Gradients are finite for every ``u < 0`` (the unused branch is fed a safe value).
    """
    u = jnp.asarray(u)
    far = u < -_LOG_2
    return jnp.where(far, jnp.log1p(-jnp.exp(jnp.where(far, u, -1.0))),
                     jnp.log(-jnp.expm1(jnp.where(far, -1.0, u))))


def log_sub_exp(a, b) -> jax.Array:
    """``log(e^a - e^b)`` for ``a >= b`` (``-inf`` when equal).

    Math: ``a + log1mexp(min(b - a, 0))``.

    Example:
        >>> round(float(log_sub_exp(0.0, -1e-30)), 4)
        -69.0776
    """
    a = jnp.asarray(a)
    return a + log1mexp(jnp.minimum(jnp.asarray(b) - a, 0.0))


# |xi a| below this: the series (the direct forms lose the derivative in xi to cancellation
# and are 0 / 0 at xi = 0); 9 terms leave u^9 / 10 < 1e-19.
_SERIES_U = 0.01
_LOG1P_TERMS = 9
_EXPM1_TERMS = 8


def log1p_ratio(a, xi, one_plus=None) -> jax.Array:
    """``log1p(xi a) / xi``, tending to ``a`` as ``xi -> 0`` (value and derivatives).

    Math: ``a h(xi a)`` with ``h(u) = log1p(u) / u = Σ_k (-u)^k / (k + 1)``, summed as a
    series for ``|u| < 0.01`` (so the derivative in ``xi`` is accurate there too), else
    ``log1p(u) / xi``.  ``one_plus``, when given, is ``1 + xi a`` computed more accurately than
    ``1 + fl(xi a)`` (see :func:`two_prod`); it is used where ``u < -1/2``, where ``log1p``
    would see the rounding of ``xi a`` (the upper end of a generalized Pareto law with
    ``xi < 0``).  Gradients are finite wherever ``1 + xi a > 0`` (the unused branch is fed a
    safe value).

    Example:
        >>> float(log1p_ratio(2.0, 0.0)), round(float(log1p_ratio(2.0, 0.5)), 12)
        (2.0, 1.38629436112)
    """
    a, xi = jnp.asarray(a), jnp.asarray(xi)
    u = xi * a
    small = jnp.abs(u) < _SERIES_U
    us = jnp.where(small, u, 0.0)
    poly = jnp.zeros_like(us)
    for k in range(_LOG1P_TERMS - 1, -1, -1):
        poly = poly * (-us) + 1.0 / (k + 1)
    ud = jnp.where(small, 0.5, u)
    xd = jnp.where(small, 1.0, xi)
    lp = jnp.log1p(ud)
    if one_plus is not None:
        low = ud < -0.5
        lp = jnp.where(low, jnp.log(jnp.where(low, one_plus, 0.5)), lp)
    return jnp.where(small, a * poly, lp / xd)


def expm1_ratio(a, xi) -> jax.Array:
    """``expm1(xi a) / xi``, tending to ``a`` as ``xi -> 0`` (value and derivatives).

    Math: ``a g(xi a)`` with ``g(u) = expm1(u) / u = Σ_k u^k / (k + 1)!``, a series for
    ``|u| < 0.01``, else ``expm1(u) / xi``.

    Example:
        >>> float(expm1_ratio(2.0, 0.0)), round(float(expm1_ratio(2.0, -0.5)), 12)
        (2.0, 1.264241117657)
    """
    a, xi = jnp.asarray(a), jnp.asarray(xi)
    u = xi * a
    small = jnp.abs(u) < _SERIES_U
    us = jnp.where(small, u, 0.0)
    poly = jnp.zeros_like(us)
    for k in range(_EXPM1_TERMS - 1, -1, -1):
        poly = poly * us / (k + 2) + 1.0
    ud = jnp.where(small, 0.5, u)
    xd = jnp.where(small, 1.0, xi)
    return jnp.where(small, a * poly, jnp.expm1(ud) / xd)


def two_sum(a, b) -> tuple[jax.Array, jax.Array]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth's TwoSum).

    Example:
        >>> s, e = two_sum(1.0, 1e-20)
        >>> float(s), float(e)
        (1.0, 1e-20)
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def prefix_sum(a, axis: int = -1, block: int = 32) -> jax.Array:
    """The cumulative sum of ``a`` along ``axis``, by blocks: within each block of ``block``
    entries one product with an upper-triangular matrix of ones, then each block's offset (the
    cumulative sum of the block totals, ``jnp.cumsum`` over ``n / block`` entries).

    Same values as ``jnp.cumsum`` up to rounding (each entry is a sum of at most ``block``
    products plus an offset: errors of the order of ``eps`` times the partial sums' magnitudes,
    as ``cumsum``'s own); XLA runs the products as matrix multiplies, about twice as fast on a
    CPU as its log-depth scan.  Zero-padded to a whole number of blocks.

    Math: ``out[.., b, j] = sum_{i <= j} a[.., b, i] + sum_{b' < b} sum_i a[.., b', i]``.

    Example:
        >>> import jax.numpy as jnp
        >>> prefix_sum(jnp.arange(1.0, 6.0)).tolist()
        [1.0, 3.0, 6.0, 10.0, 15.0]
    """
    a = jnp.moveaxis(jnp.asarray(a), axis, -1)
    n = a.shape[-1]
    nb = -(-n // block)
    x = jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, nb * block - n)])
    x = x.reshape(a.shape[:-1] + (nb, block))
    within = x @ jnp.triu(jnp.ones((block, block), x.dtype))
    totals = within[..., -1]
    out = within + (jnp.cumsum(totals, axis=-1) - totals)[..., None]
    return jnp.moveaxis(out.reshape(a.shape[:-1] + (nb * block,))[..., :n], -1, axis)


def two_prod(a, b) -> tuple[jax.Array, jax.Array]:
    """``(p, e)`` with ``p = fl(a b)`` and ``a b = p + e`` exactly (Dekker's product).

    Finite inputs whose split overflows (``|a|`` or ``|b|`` above ``~1e300`` in float64) get
    ``e = 0``.

    Example:
        >>> p, e = two_prod(1.0 + 2.0 ** -30, 1.0 + 2.0 ** -30)
        >>> float(e) == 2.0 ** -60
        True
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    dtype = jnp.result_type(a, b)
    a, b = a.astype(dtype), b.astype(dtype)
    bits = (jnp.finfo(dtype).nmant + 2) // 2
    k = float(2 ** bits + 1)

    def split(x):
        c = k * x
        hi = c - (c - x)
        return hi, x - hi

    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, jnp.where(jnp.isfinite(e), e, 0.0)


def float_dtype(dtype=None):
    """The floating dtype to compute in: ``dtype`` (checked), or the default float.

    Raises:
        ValueError: ``dtype`` is not a floating dtype.
    """
    if dtype is None:
        return jnp.result_type(float)
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return jax.dtypes.canonicalize_dtype(dtype)


def as_float(x, xp=jnp):
    """``x`` as an array of its own float dtype (integers and bools become the default float).

    With ``xp=np`` a concrete ``x`` becomes a NumPy array on the host (no device transfer,
    nothing compiled: padding it there costs no program per length), in the dtype JAX would
    give it (float64 becomes float32 when x64 is off).

    Example:
        >>> import numpy as np
        >>> as_float(np.arange(3), xp=np).dtype == float_dtype()
        True
    """
    if xp is np:
        x = np.asarray(x)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else float_dtype()
        return x.astype(jax.dtypes.canonicalize_dtype(dtype), copy=False)
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float_dtype())


def host_float(x):
    """:func:`as_float`, on the host (NumPy) when ``x`` is concrete, on the device when traced:
    padding a concrete array on the host compiles nothing, on the device one program per length.
    """
    return as_float(x) if isinstance(x, jax.core.Tracer) else as_float(x, xp=np)


def newton_polish(f: Callable[[jax.Array], jax.Array], x0, *, steps: int, max_step,
                  lo=-jnp.inf, hi=jnp.inf, accept: str = "best", record: bool = False):
    """Safeguarded Newton ascent on a scalar function ``f`` of a scalar.

    Each step is ``-f'(x) / f''(x)`` where ``f'' < 0`` (else no step), clipped to
    ``[-max_step, max_step]`` and to ``[lo, hi]``; NaN values count as ``-inf``.

    Args:
        f: the function to maximise (twice differentiable where it matters).
        x0: the starting point (a scalar array).
        steps: the number of Newton steps (static).
        max_step: the largest step.
        lo, hi: the domain.
        accept: ``"best"``: always move, return the best point seen (a step may leave a
            shoulder); ``"ascent"``: move only when ``f`` does not decrease, up to rounding
            (``8 eps |f|``), so the path is monotone.
        record: also return the points and values before each step (shape ``(steps,)``).

    Returns:
        ``(x, f(x))`` at the best point, and with ``record`` the path ``(xs, fs)``.
    """
    x0 = jnp.asarray(x0)
    eps = float(jnp.finfo(x0.dtype).eps)
    d1 = jax.grad(f)
    d2 = jax.grad(d1)

    def value(x):
        v = f(x)
        return jnp.where(jnp.isnan(v), -jnp.inf, v)

    def body(carry, _):
        x, fx, bx, bf = carry
        g, c = d1(x), d2(x)
        ok = jnp.isfinite(g) & jnp.isfinite(c) & (c < 0)
        step = jnp.where(ok, -g / jnp.where(ok, c, -1.0), 0.0)
        step = jnp.clip(step, -max_step, max_step)
        xn = jnp.clip(x + step, lo, hi)
        fn = value(xn)
        if accept == "ascent":
            keep = ok & (fn >= fx - 8 * eps * jnp.abs(fx))
            xn, fn = jnp.where(keep, xn, x), jnp.where(keep, fn, fx)
        better = fn > bf
        return (xn, fn, jnp.where(better, xn, bx), jnp.where(better, fn, bf)), (x, fx)

    f0 = value(x0)
    (x, fx, bx, bf), path = jax.lax.scan(body, (x0, f0, x0, f0), None, length=steps)
    if accept == "ascent":
        bx, bf = x, fx
    return ((bx, bf), path) if record else (bx, bf)


class Estimate(NamedTuple):
    """A Monte Carlo estimate.

    Attributes:
        mean: the estimate.
        stderr: its standard error (``nan`` when fewer than two samples count).
        count: the number of samples it rests on.
    """

    mean: jax.Array
    stderr: jax.Array
    count: jax.Array


def mean_estimate(n, s1, s2, center=0.0) -> Estimate:
    """Sample mean and standard error from ``n``, ``s1 = Σ (y - center)``, ``s2 = Σ (y - center)^2``.

    Math: ``mean = center + s1/n``, ``stderr = sqrt(var / n)``, ``var = (s2/n - (s1/n)^2) n/(n-1)``
    (``nan`` for ``n < 2``).

    Example:
        >>> e = mean_estimate(4.0, 10.0, 30.0)  # y = 1, 2, 3, 4
        >>> float(e.mean), round(float(e.stderr), 6)
        (2.5, 0.645497)
    """
    n = jnp.asarray(n)
    m1 = s1 / n
    var = jnp.maximum(s2 / n - m1 * m1, 0.0) * n / (n - 1.0)
    stderr = jnp.where(n > 1, jnp.sqrt(jnp.where(n > 1, var, 0.0) / n), jnp.nan)
    return Estimate(center + m1, stderr, n)


def ratio_estimate(sw, saw, sww, saa, saww):
    """A ratio estimator ``r = Σ a w / Σ w`` and its delta-method standard error.

    Math: with ``r = saw / sw``,
    ``se^2 = (Σ (aw)^2 - 2 r Σ a w^2 + r^2 Σ w^2) / (Σ w)^2`` (``saa = Σ (aw)^2``,
    ``saww = Σ a w^2``, ``sww = Σ w^2``).

    Returns:
        ``(r, se)``.
    """
    r = saw / sw
    var = (saa - 2.0 * r * saww + r * r * sww) / (sw * sw)
    return r, jnp.sqrt(jnp.maximum(var, 0.0))
