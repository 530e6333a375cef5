"""Sampled conditioning: streaming Monte Carlo estimates of E[V | V + X >= t].

Two estimators over the streaming engine (:mod:`goodhart_jax.engine`): plain rejection (``mc``)
and conditional Monte Carlo with the Asmussen-Kroese split (``cmc``).  Their exact counterpart
is :func:`goodhart_jax.conditioning.conditional_value`.

Both shard their chunks over every device (and host) the engine sees and give the same
estimate, bit for bit, on any number of them.  With ``sampler="engine"`` (the default) normal,
Student t and gennorm variables are drawn by the engine's samplers
(:func:`goodhart_jax.rng.normal_pair`: Box–Muller, one Threefry hash per pair;
:func:`goodhart_jax.rng.log_gamma_variate`: a vectorised Marsaglia–Tsang gamma for t and
gennorm), other families by their own ``sample``; ``sampler="jax"`` draws every variable by
its distribution's own ``sample`` (``jax.random``).

Reach (``mc``): a draw cannot exceed what its sampler can produce.  Engine normals stop at
``|z| = 6.76`` in float32 and ``9.49`` in float64 (``jax.random.normal``, with
``sampler="jax"``: about 5.3 and 8.2 — 5.22/5.42 and 8.16/8.29 above/below); in practice
``mc`` runs out of accepted draws long before (``P(U >= t)`` must be well above
``1 / num_samples``).  Beyond that use ``cmc`` (it integrates the tail of the lighter
variable exactly) or the exact :func:`~goodhart_jax.conditioning.conditional_value` /
:func:`~goodhart_jax.conditioning.log_tail_prob`, which reach ``P(U >= t) ~ 1e-300``.
Float64 (``jax.config.update("jax_enable_x64", True)``, or ``--x64`` on the command line) is
the default dtype once enabled.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import jax
import jax.numpy as jnp

from goodhart_jax import engine, rng
from goodhart_jax.validation import check_finite, check_positive_int
from goodhart_jax.conditioning import check_value_mean, as_distributions
from goodhart_jax.distributions import Distribution
from goodhart_jax.numerics import Estimate, float_dtype, mean_estimate, ratio_estimate

__all__ = ["Estimate", "sample_conditional_value"]


def _fast_halves(dist) -> bool:
    """Whether ``dist`` has its own paired sampler (it overrides ``sample_halves``)."""
    return type(dist).sample_halves is not Distribution.sample_halves


def _parts(key, value, error, mask, dtype, fast):
    """``[(v, x, mask), ...]``: the chunk's draws of ``(V, X)``, in one or two parts.

    With ``fast``, a normal pair comes from one Box–Muller stream, and the engine's samplers
    (normal, Student t, gennorm) draw two halves; otherwise every variable is drawn by its
    distribution's own ``sample``.
    """
    n = mask.shape[0]
    nv, nx = value.as_normal(), error.as_normal()
    if fast and nv is not None and nx is not None:
        z1, z2 = rng.normal_pair(key, n, dtype)
        return [((nv[0] + nv[1] * z1).astype(dtype), (nx[0] + nx[1] * z2).astype(dtype), mask)]
    kv, kx = jax.random.split(key)
    if fast and (_fast_halves(value) or _fast_halves(error)):
        h = -(-n // 2)
        vs, xs = value.sample_halves(kv, h, dtype), error.sample_halves(kx, h, dtype)
        m = jnp.pad(mask, (0, 2 * h - n))
        return [(vs[0], xs[0], m[:h]), (vs[1], xs[1], m[h:])]
    return [(value.sample(kv, (n,), dtype), error.sample(kx, (n,), dtype), mask)]


def _mc_stats(key, mask, value, error, t, center, fast):
    dtype = t.dtype
    zero = jnp.zeros((), dtype)
    total = None
    for v, x, m in _parts(key, value, error, mask, dtype, fast):
        if t.shape[0] == 1:  # one threshold (the common case): flat, vectorisable reductions
            hit = ((v + x) >= t[0]) & m
            dv = jnp.where(hit, v - center, zero)
            part = (hit.sum(dtype=dtype)[None], dv.sum()[None], (dv * dv).sum()[None])
        else:
            hit = ((v + x)[:, None] >= t[None, :]) & m[:, None]
            dv = (v - center)[:, None]
            part = (hit.sum(0, dtype=dtype), jnp.where(hit, dv, zero).sum(0),
                    jnp.where(hit, dv * dv, zero).sum(0))
        total = part if total is None else tuple(a + b for a, b in zip(total, part))
    return total


def _mc_chunk(key, mask, value, error, t, center):
    """Rejection: accepted count, sum and sum of squares of ``V - center`` (engine normals)."""
    return _mc_stats(key, mask, value, error, t, center, True)


def _mc_chunk_jax(key, mask, value, error, t, center):
    """As :func:`_mc_chunk`, every variable drawn by its distribution's own ``sample``."""
    return _mc_stats(key, mask, value, error, t, center, False)


def _cmc_stats(key, mask, value, error, t, ref, fast):
    dtype = t.dtype
    mu = value.mean().astype(dtype)
    tt = t[None, :]
    total = None
    for v, x, mask in _parts(key, value, error, mask, dtype, fast):
        v, x = v[:, None], x[:, None]
        m_x = jnp.maximum(tt - x, x)
        m_v = jnp.maximum(tt - v, v)
        w_v = jnp.exp(value.log_sf(m_x) - ref)
        g_v = jnp.exp(value.log_mean_excess(m_x) - ref)
        w_x = jnp.exp(error.log_sf(m_v) - ref)
        p = jnp.where(mask[:, None], w_v + w_x, 0.0)
        a = jnp.where(mask[:, None], g_v + (v - mu) * w_x, 0.0)
        part = jnp.stack([p.sum(0), a.sum(0), (p * p).sum(0), (a * a).sum(0), (a * p).sum(0)])
        total = part if total is None else total + part
    return total


def _cmc_chunk(key, mask, value, error, t, ref):
    """Asmussen-Kroese conditional Monte Carlo: split on which of V, X is larger.

    ``1{U >= t} = 1{V > max(t - X, X)} + 1{X >= max(t - V, V)}``; conditioning the first term
    on ``X`` and the second on ``V`` gives, per draw ``(v, x)``,
    ``p = S_V(m_x) + S_X(m_v)`` and ``a = G(m_x) + (v - mu) S_X(m_v)`` with
    ``m_x = max(t - x, x)``, ``m_v = max(t - v, v)``; then ``E[V | U >= t] = mu + E a / E p``.
    Weights are scaled by ``exp(-ref)`` to stay in range.
    """
    return _cmc_stats(key, mask, value, error, t, ref, True)


def _cmc_chunk_jax(key, mask, value, error, t, ref):
    """As :func:`_cmc_chunk`, every variable drawn by its distribution's own ``sample``."""
    return _cmc_stats(key, mask, value, error, t, ref, False)


_CHUNKS = {("mc", "engine"): _mc_chunk, ("mc", "jax"): _mc_chunk_jax,
           ("cmc", "engine"): _cmc_chunk, ("cmc", "jax"): _cmc_chunk_jax}


def sample_conditional_value(key: jax.Array, value, error, t, *, num_samples: int,
                             method: str = "mc", chunk_size: int | None = engine.DEFAULT_CHUNK,
                             dtype=None, sampler: str = "engine",
                             devices: int | Sequence[jax.Device] | None = None,
                             progress: bool | None = None) -> Estimate:
    """Monte Carlo ``E[V | V + X >= t]`` by streaming chunks (memory constant in ``num_samples``).

    Methods:

    * ``"mc"``: rejection — draw ``(V, X)``, keep the draws with ``V + X >= t``;
      ``stderr = sd(kept V) / sqrt(count)``.  Draws cannot reach far tails: engine normal
      draws stop at 6.76 sd in float32 and 9.49 in float64 (``jax.random.normal``: 5.3 and 8.2),
      and long before that the accepted count runs out; use ``cmc`` or the exact
      :func:`conditional_value` there.
    * ``"cmc"``: conditional Monte Carlo (Rao-Blackwellised, Asmussen-Kroese split).  The event
      splits on the larger of the two, ``{V > max(t - X, X)}`` or ``{X >= max(t - V, V)}``; the
      first is integrated exactly over ``V`` given ``X`` (with the closed-form excess
      ``G(y) = E[(V - E V) 1{V > y}]``), the second over ``X`` given ``V``:
      ``E[V | U >= t] = E[V] + E[G(m_X) + (V - E V) S_X(m_V)] / E[S_V(m_X) + S_X(m_V)]``,
      ``m_X = max(t - X, X)``.  Efficient whichever variable has the heavier tail (it is the
      one integrated out, not sampled).  ``stderr`` by the delta method for a ratio.

    Math: ``mc``: ``sum_i V_i 1{V_i + X_i >= t} / sum_i 1{V_i + X_i >= t}``.

    The estimate is the same, bit for bit, on any number of devices or hosts (see
    :mod:`goodhart_jax.engine`); it depends on ``key``, ``num_samples``, ``chunk_size``,
    ``dtype`` and ``sampler``.

    Args:
        key: PRNG key (explicit; chunk ``i`` uses ``fold_in(key, i)``).
        value, error: distributions (or spec strings); ``value`` needs a finite mean.
        t: threshold(s), any shape, finite.
        num_samples: number of ``(V, X)`` draws (an integer >= 1).
        method: ``"mc"`` or ``"cmc"``.
        chunk_size: draws per chunk (``None``: :func:`goodhart_jax.engine.default_chunk_size`).
        dtype: float dtype of the draws (default: JAX's default float — float64 once
            ``jax_enable_x64`` is on).
        sampler: ``"engine"`` (the engine's samplers for normal, Student t and gennorm:
            Box–Muller and a vectorised gamma on the fused Threefry stream, the fast default)
            or ``"jax"`` (each distribution's own ``sample``: ``jax.random``).
        devices: devices to shard over (``None``: all devices of all processes; an integer:
            the first that many).
        progress: progress bar on stderr (``None``: automatic for long runs on a terminal).

    Returns:
        :class:`Estimate` whose fields have the shape of ``t``.

    Raises:
        ValueError: a parameter out of range (the message names it).

    Example:
        >>> import jax, goodhart_jax as gj
        >>> est = gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), 1.0,
        ...                                   num_samples=100_000)
        >>> abs(float(est.mean) - 0.91633) < 5 * float(est.stderr)  # exact: gj.conditional_value
        True
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_finite("t", t)
    num_samples = check_positive_int("num_samples", num_samples)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if method not in ("mc", "cmc"):
        raise ValueError(f"method must be 'mc' or 'cmc', got {method!r}")
    if sampler not in ("engine", "jax"):
        raise ValueError(f"sampler must be 'engine' or 'jax', got {sampler!r}")
    if dtype is not None and jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        warnings.warn("dtype float64 requested but jax_enable_x64 is off: sampling in float32 "
                      "(turn it on with jax.config.update('jax_enable_x64', True) or --x64)",
                      stacklevel=2)
    dtype = float_dtype(dtype)
    t_arr = jnp.asarray(t, dtype)
    flat = t_arr.reshape(-1)
    chunk_fn = _CHUNKS[(method, sampler)]
    opts = dict(num_samples=num_samples, chunk_size=chunk_size, devices=devices,
                progress=progress)
    if method == "mc":
        center = value.mean().astype(dtype)
        n, s1, s2 = engine.stream(chunk_fn, key, value, error, flat, center, **opts)
        mean, stderr, count = mean_estimate(n, s1, s2, center)
    else:
        c_v = jnp.asarray(value.bulk()[0], dtype)
        c_x = jnp.asarray(error.bulk()[0], dtype)
        ref = jnp.logaddexp(error.log_sf(flat - c_v), value.log_sf(flat - c_x))
        sums = engine.stream(chunk_fn, key, value, error, flat, ref, **opts)
        r, stderr = ratio_estimate(*sums)
        mean = value.mean().astype(dtype) + r
        count = jnp.full(flat.shape, float(num_samples), dtype)
    shape = t_arr.shape
    return Estimate(mean.reshape(shape), stderr.reshape(shape), count.reshape(shape))
