"""Dependent errors: exact E[V | V + X >= t] when the error's law depends on the value.

Independence gives ``E[V | U >= t] >= E[V]`` for every ``t``.  An *unbiased* error
(``E[X | V] = 0``) is not enough: the family here, a :class:`GatedProxy`, has

    ``V ~ N(0, 1)``;  ``X | V ~ N(0, scale^2)`` when ``lo <= V <= hi``, else ``X = 0``,

so ``E[X | V] = 0`` for every ``V``, yet the noise only helps values inside the gate:

* :func:`kwa_dependent_proxy` (Kwa, Thomas & Garriga-Alonso 2024, § Independence assumptions):
  gate ``[-1, 1]``, ``scale = 2``.  ``E[V | U >= t]`` stays bounded and tends to ``1``, the top
  of the gate, where the tilt ``exp(t v / 4)`` piles the mass (not to ``0``);
* :func:`one_sided_noise`: gate ``(-inf, 0]``, large ``scale``: for large ``t`` the event
  ``U >= t`` is mostly ``V <= 0`` with a big ``X``, so ``E[V | U >= t] < 0 = E[V]``.

Exact means quadrature in log space (:func:`goodhart_jax.quadrature.anchored_rule`, anchors at
the gate's ends, V's bulk and the saddle ``t / (1 + scale^2)``):

    ``P(U >= t) = ∫_lo^hi phi(v) S((t - v)/scale) dv + P(V >= t, V outside the gate)``,
    ``E[V 1{U >= t}] = ∫_lo^hi v phi(v) S((t - v)/scale) dv + E[V 1{V >= t, V outside}]``.

Near the gate's top at large ``t`` the survival factor is written relative to ``x0 = t - hi``:
``log S((x0 + w)/s) = log S(x0/s) - (2 x0 w + w^2)/(2 s^2) + log R((x0 + w)/s) - log R(x0/s)``
with the Mills ratio ``R(z) = sqrt(pi/2) erfcx(z/sqrt 2)``, so no digits are lost to
``t - v`` when ``t`` is huge.

A sampler (:func:`sample_dependent`) and a Monte Carlo estimator
(:func:`sample_dependent_conditional_value`, rejection or conditional Monte Carlo) give an
independent check.

Example:
    >>> import jax
    >>> jax.config.update("jax_enable_x64", True)
    >>> round(float(dependent_conditional_value(kwa_dependent_proxy(), 10.0)), 8)
    0.56914632
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfcx

from goodhart_jax import engine, special
from goodhart_jax.validation import check_finite, check_param, check_positive_int, is_concrete
from goodhart_jax.quadrature import anchored_rule, at_nodes, merge_widths
from goodhart_jax.numerics import (Estimate, as_float, float_dtype, log_sub_exp, mean_estimate,
                                   ratio_estimate)

__all__ = [
    "GatedProxy",
    "kwa_dependent_proxy",
    "one_sided_noise",
    "dependent_log_tail_prob",
    "dependent_conditional_value",
    "sample_dependent",
    "sample_dependent_conditional_value",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_2 = 0.5 * math.log(0.5 * math.pi)


class GatedProxy(NamedTuple):
    """``V ~ N(0, 1)``; ``X | V ~ N(0, scale^2)`` if ``lo <= V <= hi``, else ``X = 0``.

    A pytree (a NamedTuple of its three parameters).  Build it directly or with
    :func:`kwa_dependent_proxy` / :func:`one_sided_noise`; the public functions validate it.
    ``E[X | V = v] = 1{lo <= v <= hi} E[scale Z] = 0`` for every ``v``.

    Attributes:
        lo: bottom of the gate (may be ``-inf``).
        hi: top of the gate (finite, ``> lo``).
        scale: the noise's standard deviation inside the gate (``> 0``).
    """

    lo: float
    hi: float
    scale: float

    @property
    def spec(self) -> str:
        lo, hi, s = (float(a) for a in self)
        return f"gated_proxy(lo={lo!r}, hi={hi!r}, scale={s!r})"


def _check(model) -> GatedProxy:
    if not isinstance(model, GatedProxy):
        raise ValueError(f"model must be a GatedProxy, got {model!r}")
    if is_concrete(model):
        check_param("hi", model.hi, owner="gated_proxy")
        check_param("scale", model.scale, lo=0.0, lo_open=True, owner="gated_proxy")
        lo = np.asarray(model.lo, dtype=float)
        if np.any(np.isnan(lo)) or np.any(lo == np.inf) or np.any(lo >= np.asarray(model.hi)):
            raise ValueError(f"gated_proxy: lo must be -inf or a finite number < hi = "
                             f"{float(np.max(model.hi)):g}, got {model.lo!r}")
    return model


def kwa_dependent_proxy(scale: float = 2.0, cutoff: float = 1.0) -> GatedProxy:
    """The unbiased but dependent proxy of Kwa et al. (2024): noise only where ``|V| <= cutoff``.

    Math: ``V ~ N(0, 1)``, ``X | V ~ N(0, scale^2) 1{|V| <= cutoff}``; ``E[X | V] = 0``.

    Raises:
        ValueError: ``scale`` or ``cutoff`` not positive.

    Example:
        >>> kwa_dependent_proxy()
        GatedProxy(lo=-1.0, hi=1.0, scale=2.0)
    """
    check_param("scale", scale, lo=0.0, lo_open=True, owner="kwa_dependent_proxy")
    check_param("cutoff", cutoff, lo=0.0, lo_open=True, owner="kwa_dependent_proxy")
    return GatedProxy(-float(cutoff), float(cutoff), float(scale))


def one_sided_noise(scale: float = 10.0) -> GatedProxy:
    """Noise only on below-average values: ``X | V ~ N(0, scale^2)`` if ``V <= 0``, else 0.

    Math: ``E[X | V] = 0``; for large ``t``, ``E[V | U >= t] ≈ -scale^2 / t < E[V] = 0``.

    Raises:
        ValueError: ``scale`` not positive.

    Example:
        >>> one_sided_noise(3.0)
        GatedProxy(lo=-inf, hi=0.0, scale=3.0)
    """
    check_param("scale", scale, lo=0.0, lo_open=True, owner="one_sided_noise")
    return GatedProxy(-math.inf, 0.0, float(scale))


def _log_mills(z):
    """``log R(z)``, ``R(z) = S(z) / phi(z)`` (Mills ratio), for ``z >= 0`` (erfcx: no overflow)."""
    return _LOG_SQRT_PI_2 + jnp.log(erfcx(z / math.sqrt(2.0)))


def _log_gate_rel(model, t, v, w):
    """``log phi(v) + log S((t - v)/scale) - ref`` at ``v = hi - w`` (``w >= 0``), and ``ref``.

    For ``t > hi`` the reference is the integrand at the gate's top,
    ``ref = log phi(hi) + log S((t - hi)/scale)``, and the difference is formed term by term
    (``(hi^2 - v^2)/2 = w (2 hi - w)/2``; the survival factor through the Mills ratio), so that
    it stays exact when ``ref`` is ``-1e11``; otherwise ``ref = 0``.
    """
    s, hi = model.scale, model.hi
    x0 = t - hi
    far = x0 > 0
    x0s = jnp.where(far, x0, 1.0)
    z0 = x0s / s
    z = (x0s + w) / s
    rel_far = (0.5 * w * (2.0 * hi - w) - (2.0 * x0s + w) * w / (2.0 * s * s)
               + _log_mills(z) - _log_mills(z0))
    direct = -0.5 * v * v - _HALF_LOG_2PI + special.log_ndtr(-(jnp.where(far, 0.0, x0) + w) / s)
    ref = jnp.where(far, -0.5 * hi * hi - _HALF_LOG_2PI + special.log_ndtr(-z0), 0.0)
    return jnp.where(far, rel_far, direct), ref


def _lse(a):
    m = jnp.max(a)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m + jnp.log(jnp.sum(jnp.exp(a - m)))


def _terms(model, t):
    """Log-space pieces of P(U >= t) and E[V 1{U >= t}] for scalar ``t``.

    Returns ``(ref, log_den, log_pos, log_neg)`` with ``P = e^(ref + log_den)`` and
    ``E[V 1{U >= t}] = e^ref (e^log_pos - e^log_neg)`` (``ref``: see :func:`_log_gate_rel`).
    """
    dtype = jnp.result_type(t)
    lo, hi, s = (jnp.asarray(a, dtype) for a in model)
    fin_lo = jnp.isfinite(lo)
    tau = s / jnp.sqrt(1.0 + s * s)
    # slope of the log integrand at the gate's top: -hi + hazard((t - hi)/s) / s
    z_hi = (t - hi) / s
    zp = jnp.maximum(z_hi, 0.0)
    hazard = jnp.where(z_hi > 0, jnp.exp(-_log_mills(zp)),
                       jnp.exp(-0.5 * z_hi * z_hi - _HALF_LOG_2PI - special.log_ndtr(-z_hi)))
    slope = -hi + hazard / s
    w_hi = jnp.where(slope > 0, jnp.minimum(tau, 1.0 / jnp.where(slope > 0, slope, 1.0)), tau)
    mode = jnp.clip(t / (1.0 + s * s), lo, hi)
    zero = jnp.clip(jnp.zeros((), dtype), lo, hi)
    lo_anchor = jnp.where(fin_lo & (lo > jnp.minimum(hi, 0.0) - 40.0), lo, zero)
    anchors = jnp.stack([lo_anchor, hi, mode, zero])
    widths = jnp.stack([jnp.ones((), dtype), jnp.maximum(w_hi, 1e-250), tau, jnp.ones((), dtype)])
    anchors, widths = jax.lax.stop_gradient((anchors, widths))
    widths = merge_widths(anchors, widths)
    # below min(hi, 0) - 40 the integrand is under phi(40) S((t - hi)/s) ~ e^-800 of its top:
    # a finite end keeps side lengths over widths finite
    lo_rule = jnp.maximum(lo, jnp.minimum(hi, 0.0) - 40.0)
    rule = anchored_rule(anchors, widths, lo_rule, hi)
    at = at_nodes(anchors, rule.index)
    v = at + rule.offset
    w = (hi - at) - rule.offset  # hi - v, exact near the top
    w = jnp.maximum(w, 0.0)
    rel, ref = _log_gate_rel(model, t, v, w)
    log_g = rule.log_weight + rel
    log_g = jnp.where(jnp.isnan(log_g), -jnp.inf, log_g)
    log_abs_v = jnp.log(jnp.abs(v))
    log_in = _lse(log_g)
    log_in_pos = _lse(jnp.where(v > 0, log_g + log_abs_v, -jnp.inf))
    log_in_neg = _lse(jnp.where(v < 0, log_g + log_abs_v, -jnp.inf))
    # outside the gate, X = 0: V >= max(t, hi), and V in [t, lo) when t < lo
    c = jnp.maximum(t, hi)
    log_up = special.log_ndtr(-c)
    log_up_v = -0.5 * c * c - _HALF_LOG_2PI  # E[V 1{V >= c}] = phi(c) > 0
    below = fin_lo & (t < lo)
    lo_s = jnp.where(below, lo, 1.0)
    t_s = jnp.where(below, t, 0.0)
    log_low = jnp.where(below, log_sub_exp(special.log_ndtr(lo_s), special.log_ndtr(t_s)), -jnp.inf)
    # E[V 1{t <= V < lo}] = phi(t) - phi(lo): positive part phi(t), negative part phi(lo)
    log_phi_t = jnp.where(below, -0.5 * t_s * t_s - _HALF_LOG_2PI, -jnp.inf)
    log_phi_lo = jnp.where(below, -0.5 * lo_s * lo_s - _HALF_LOG_2PI, -jnp.inf)
    # the outside terms relative to ref (they are negligible whenever ref != 0)
    log_den = _lse(jnp.stack([log_in, log_up - ref, log_low - ref]))
    log_pos = _lse(jnp.stack([log_in_pos, log_up_v - ref, log_phi_t - ref]))
    log_neg = _lse(jnp.stack([log_in_neg, log_phi_lo - ref]))
    return ref, log_den, log_pos, log_neg


@jax.jit
def _value_terms(model, t):
    return jax.vmap(lambda tt: _terms(model, tt))(t)


def _prepare(model, t):
    model = _check(model)
    check_finite("t", t)
    t = as_float(t)
    model = GatedProxy(*(jnp.asarray(a, t.dtype) for a in model))
    return model, t


def dependent_log_tail_prob(model: GatedProxy, t) -> jax.Array:
    """``log P(V + X >= t)`` for a :class:`GatedProxy`, exactly (quadrature in log space).

    Math: ``P(U >= t) = ∫_lo^hi phi(v) S((t - v)/scale) dv + P(V >= t, V outside [lo, hi])``.

    Args:
        model: the construction.
        t: threshold(s), any shape, finite.

    Returns:
        Array of the shape of ``t``.

    Raises:
        ValueError: a bad model (named parameter) or non-finite ``t``.

    Example:
        >>> import jax
        >>> jax.config.update("jax_enable_x64", True)
        >>> round(float(dependent_log_tail_prob(kwa_dependent_proxy(), 3.0)), 6)
        -2.961493
    """
    model, t = _prepare(model, t)
    ref, log_den, _, _ = _value_terms(model, t.reshape(-1))
    return (ref + log_den).reshape(t.shape)


def dependent_conditional_value(model: GatedProxy, t) -> jax.Array:
    """Exact ``E[V | V + X >= t]`` for a :class:`GatedProxy` (jitted, vectorised over ``t``).

    Math: ``[∫_lo^hi v phi(v) S((t - v)/s) dv + E[V 1{V >= t, V ∉ [lo, hi]}]] / P(U >= t)``.

    Args:
        model: the construction (:func:`kwa_dependent_proxy`, :func:`one_sided_noise`, ...).
        t: threshold(s), any shape, finite.  Float64 needs ``jax_enable_x64``.

    Returns:
        Array of the shape of ``t``.

    Raises:
        ValueError: a bad model (named parameter) or non-finite ``t``.

    Example:
        >>> import jax
        >>> jax.config.update("jax_enable_x64", True)
        >>> round(float(dependent_conditional_value(kwa_dependent_proxy(), 100.0)), 8)
        0.95809696
    """
    model, t = _prepare(model, t)
    _, log_den, log_pos, log_neg = _value_terms(model, t.reshape(-1))
    out = jnp.exp(log_pos - log_den) - jnp.exp(log_neg - log_den)
    return out.reshape(t.shape)


def sample_dependent(key: jax.Array, model: GatedProxy, shape: tuple[int, ...] = (),
                     dtype=None) -> tuple[jax.Array, jax.Array]:
    """Draws ``(V, X)`` of a :class:`GatedProxy`.

    Math: ``V = Z_1``, ``X = scale Z_2 1{lo <= V <= hi}``, ``Z_1, Z_2`` independent N(0, 1).

    Example:
        >>> import jax
        >>> v, x = sample_dependent(jax.random.key(0), one_sided_noise(), (4,))
        >>> bool(((v > 0) <= (x == 0)).all())
        True
    """
    model = _check(model)
    dtype = float_dtype(dtype)
    kv, kx = jax.random.split(key)
    v = jax.random.normal(kv, shape, dtype)
    z = jax.random.normal(kx, shape, dtype)
    inside = (v >= model.lo) & (v <= model.hi)
    return v, jnp.where(inside, model.scale * z, 0.0).astype(dtype)


def _mc_chunk(key, mask, model, t):
    """Rejection: accepted count, sum and sum of squares of ``V`` (an engine chunk function)."""
    v, x = sample_dependent(key, model, mask.shape, t.dtype)
    hit = ((v + x)[:, None] >= t[None, :]) & mask[:, None]
    vv = v[:, None]
    zero = jnp.zeros((), t.dtype)
    return (hit.sum(0, dtype=t.dtype), jnp.where(hit, vv, zero).sum(0),
            jnp.where(hit, vv * vv, zero).sum(0))


def _cmc_chunk(key, mask, model, t):
    """``X`` integrated out given ``V``: the sums of ``ratio_estimate`` (an engine chunk function).

    ``p(v) = 1{v in gate} S((t - v)/s) + 1{v outside} 1{v >= t}``, ``a = v p``.
    """
    v = jax.random.normal(key, mask.shape, t.dtype)[:, None]
    inside = (v >= model.lo) & (v <= model.hi)
    p_in = jnp.exp(special.log_ndtr(-(t[None, :] - v) / model.scale))
    p = jnp.where(inside, p_in, (v >= t[None, :]).astype(t.dtype))
    p = jnp.where(mask[:, None], p, 0.0)
    a = v * p
    return jnp.stack([p.sum(0), a.sum(0), (p * p).sum(0), (a * a).sum(0), (a * p).sum(0)])


_CHUNK = 1 << 16


def sample_dependent_conditional_value(key: jax.Array, model: GatedProxy, t, *,
                                       num_samples: int, method: str = "cmc",
                                       devices: int | Sequence[jax.Device] | None = None
                                       ) -> Estimate:
    """Monte Carlo ``E[V | V + X >= t]`` for a :class:`GatedProxy` (a check on the exact value).

    Methods: ``"mc"`` draws ``(V, X)`` and keeps ``V + X >= t`` (``stderr = sd / sqrt(count)``);
    ``"cmc"`` draws ``V`` only and integrates ``X`` out exactly,
    ``p(v) = P(U >= t | V = v)``, estimate ``sum v p / sum p`` (``stderr`` by the delta method).
    Chunks of ``2^16`` draws stream through :func:`goodhart_jax.engine.stream` (chunk ``i``
    uses ``fold_in(key, i)``; compensated sums), so the estimate is the same, bit for bit, on
    any number of devices.  ``cmc`` needs ``P(U >= t | V = hi)`` above the float minimum
    (``t`` below about ``hi + 37 scale``).

    Math: ``cmc``: ``E[V | U >= t] = E[V p(V)] / E[p(V)]``.

    Args:
        key: PRNG key.
        model: the construction.
        t: threshold(s), any shape, finite.
        num_samples: number of draws (an integer >= 1).
        method: ``"mc"`` or ``"cmc"``.
        devices: devices to shard over (``None``: all devices of all processes; an integer:
            the first that many).

    Returns:
        :class:`goodhart_jax.Estimate` with fields of the shape of ``t`` (``count``: the
        accepted draws for ``mc``, ``num_samples`` for ``cmc``).

    Raises:
        ValueError: a bad argument (named).

    Example:
        >>> import jax
        >>> jax.config.update("jax_enable_x64", True)
        >>> est = sample_dependent_conditional_value(jax.random.key(0), kwa_dependent_proxy(),
        ...                                          5.0, num_samples=200_000)
        >>> abs(float(est.mean) - 0.36506864) < 4 * float(est.stderr)
        True
    """
    model, t = _prepare(model, t)
    num_samples = check_positive_int("num_samples", num_samples)
    if method not in ("mc", "cmc"):
        raise ValueError(f"method must be 'mc' or 'cmc', got {method!r}")
    flat = t.reshape(-1)
    opts = dict(num_samples=num_samples, chunk_size=_CHUNK, devices=devices)
    if method == "mc":
        mean, stderr, count = mean_estimate(*engine.stream(_mc_chunk, key, model, flat, **opts))
    else:
        mean, stderr = ratio_estimate(*engine.stream(_cmc_chunk, key, model, flat, **opts))
        count = jnp.full(flat.shape, float(num_samples), flat.dtype)
    shape = t.shape
    return Estimate(mean.reshape(shape), stderr.reshape(shape), count.reshape(shape))
