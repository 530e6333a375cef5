"""The mesa model's formulas, its best pressure (closed form and optax search) and its scatter.

With ``P`` the optimisation pressure (docs/design.md, section B): ``delta = shift (1 - rho)``,
proxy ``P``, true ``P rho - delta P^2``, gap ``P - true``,
``P(deception) = sigmoid(capability / 20 - 5 oversight)``, best pressure ``rho / (2 delta)``
(unbounded when ``delta = 0``), and the proxy-true scatter of the training and deployment
clusters (:func:`sample_objectives`).  Each public function validates its concrete arguments
(:func:`goodhart_jax.mesa.domains.check_params`) and calls a jitted implementation; traced
arguments are trusted, so the public functions also serve inside other jitted code.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from goodhart_jax.validation import check_positive_int
from goodhart_jax.mesa.domains import check_params
from goodhart_jax.numerics import as_float
from goodhart_jax.optimize import SearchResult, maximize

__all__ = [
    "misalignment",
    "proxy_performance",
    "true_performance",
    "goodhart_gap",
    "deception_probability",
    "optimal_pressure",
    "optimal_true_performance",
    "has_bounded_optimum",
    "search_optimal_pressure",
    "sample_objectives",
    "deployment_correlation",
    "DEPLOYMENT_OFFSET",
    "DEPLOYMENT_WIDTH",
]

Array = jax.Array
ArrayLike = Any

DEPLOYMENT_OFFSET = 1.0
#: Deployment cluster of :func:`sample_objectives`: width relative to the training cluster.
DEPLOYMENT_WIDTH = 1.5


# --------------------------------------------------------------------------------------------
# formulas
# --------------------------------------------------------------------------------------------
@jax.jit
def _misalignment(rho, shift):
    return shift * (1.0 - rho)


@jax.jit
def _proxy_performance(pressure):
    return pressure * 1.0


@jax.jit
def _bounded(rho, shift):
    return _misalignment(rho, shift) > 0


@jax.jit
def _true_performance(pressure, rho, shift):
    return pressure * rho - _misalignment(rho, shift) * pressure**2


@jax.jit
def _goodhart_gap(pressure, rho, shift):
    return pressure - _true_performance(pressure, rho, shift)


@jax.jit
def _deception_probability(capability, oversight):
    return jax.nn.sigmoid(capability / 20.0 - 5.0 * oversight)


@jax.jit
def _optimal_pressure(rho, shift):
    delta = _misalignment(rho, shift)
    bounded = delta > 0
    safe = jnp.where(bounded, delta, 1.0)  # keeps the unused branch finite for gradients
    return jnp.where(bounded, rho / (2.0 * safe), jnp.inf)


@jax.jit
def _optimal_true_performance(rho, shift):
    delta = _misalignment(rho, shift)
    bounded = delta > 0
    safe = jnp.where(bounded, delta, 1.0)
    sup = jnp.where(rho > 0, jnp.inf, 0.0)  # delta = 0: true = P rho, sup inf (or 0 if rho = 0)
    return jnp.where(bounded, rho**2 / (4.0 * safe), sup)


def misalignment(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The misalignment ``delta`` between the learned (mesa) and the base objective.

    Math: ``delta = shift (1 - rho)``.

    Args:
        rho: proxy-true alignment (correlation), in ``[0, 1]``.
        shift: distribution shift between training and deployment, ``>= 0``.

    Returns:
        ``delta``, broadcast over the arguments.

    Example:
        >>> float(misalignment(0.75, 2.0))
        0.5
    """
    check_params(owner="misalignment", rho=rho, shift=shift)
    return _misalignment(as_float(rho), as_float(shift))


def proxy_performance(pressure: ArrayLike) -> Array:
    """Proxy performance: it rises linearly with pressure.

    Math: ``proxy(P) = P``.

    Example:
        >>> float(proxy_performance(2.0))
        2.0
    """
    check_params(owner="proxy_performance", pressure=pressure)
    return _proxy_performance(as_float(pressure))


def true_performance(pressure: ArrayLike, rho: ArrayLike, shift: ArrayLike) -> Array:
    """True (base-objective) performance under optimisation pressure ``P``.

    Math: ``true(P) = P rho - delta P^2``, ``delta = shift (1 - rho)``.

    Args:
        pressure: optimisation pressure ``P >= 0``.
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.

    Returns:
        True performance, broadcast over the arguments (a 1,000 x 1,000 grid of
        ``(pressure, rho)`` is one call: ``true_performance(P[:, None], rho[None, :], shift)``).

    Example:
        >>> float(true_performance(1.0, 0.5, 1.0))   # 0.5 - 0.5
        0.0
    """
    owner = "true_performance"
    check_params(owner=owner, pressure=pressure, rho=rho, shift=shift)
    return _true_performance(as_float(pressure), as_float(rho), as_float(shift))


def goodhart_gap(pressure: ArrayLike, rho: ArrayLike, shift: ArrayLike) -> Array:
    """The Goodhart gap: how far the proxy overstates true performance.

    Math: ``gap(P) = P - true(P) = P (1 - rho) + delta P^2``; ``gap(0) = 0``.

    Example:
        >>> float(goodhart_gap(1.0, 0.5, 1.0))
        1.0
    """
    owner = "goodhart_gap"
    check_params(owner=owner, pressure=pressure, rho=rho, shift=shift)
    return _goodhart_gap(as_float(pressure), as_float(rho), as_float(shift))


def deception_probability(capability: ArrayLike, oversight: ArrayLike) -> Array:
    """Probability that a learned model is deceptively aligned.

    Math: ``P(deception) = sigmoid(capability / 20 - 5 oversight)``; it is ``1/2`` exactly
    when ``capability = 100 oversight``.

    Args:
        capability: model capability in ``[0, 200]``.
        oversight: oversight strength in ``[0, 1]``.

    Example:
        >>> float(deception_probability(50.0, 0.5))
        0.5
    """
    owner = "deception_probability"
    check_params(owner=owner, capability=capability, oversight=oversight)
    return _deception_probability(as_float(capability), as_float(oversight))


def optimal_pressure(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The pressure that maximises true performance (closed form).

    Math: ``P* = argmax_P (P rho - delta P^2) = rho / (2 delta)``.

    Where ``delta = 0`` (``rho = 1`` or ``shift = 0``) there is **no** best pressure: true
    performance ``P rho`` never turns down.  The result is then ``+inf``, meaning "unbounded:
    more pressure is never worse" (never a finite number); :func:`has_bounded_optimum` is the
    matching boolean.  (With ``rho = 0`` too, true performance is identically 0 and no
    pressure is singled out either; it is also reported as ``inf``.)

    Example:
        >>> float(optimal_pressure(0.5, 1.0)), float(optimal_pressure(1.0, 3.0))
        (0.5, inf)
    """
    check_params(owner="optimal_pressure", rho=rho, shift=shift)
    return _optimal_pressure(as_float(rho), as_float(shift))


def optimal_true_performance(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The best true performance any pressure reaches (its supremum).

    Math: ``true(P*) = rho^2 / (4 delta)``; where ``delta = 0`` the supremum is ``inf``
    (``0`` if also ``rho = 0``).

    Example:
        >>> float(optimal_true_performance(0.5, 1.0))
        0.125
    """
    check_params(owner="optimal_true_performance", rho=rho, shift=shift)
    return _optimal_true_performance(as_float(rho), as_float(shift))


def has_bounded_optimum(rho: ArrayLike, shift: ArrayLike) -> Array:
    """Whether a finite best pressure exists.

    Math: ``delta = shift (1 - rho) > 0``.

    Example:
        >>> bool(has_bounded_optimum(0.5, 1.0)), bool(has_bounded_optimum(0.5, 0.0))
        (True, False)
    """
    check_params(owner="has_bounded_optimum", rho=rho, shift=shift)
    return _bounded(as_float(rho), as_float(shift))


# --------------------------------------------------------------------------------------------
# gradient search
# --------------------------------------------------------------------------------------------
def _search_one(rho, shift, learning_rate, init_pressure, *, steps, newton_steps, record):
    delta = _misalignment(rho, shift)

    def objective(p):
        return p * rho - delta * p**2

    res = maximize(objective, init_pressure, steps=steps, learning_rate=learning_rate,
                   newton_steps=newton_steps, record=record)
    bounded = delta > 0
    sup = jnp.where(rho > 0, jnp.inf, 0.0)
    return res._replace(
        pressure=jnp.where(bounded, res.pressure, jnp.inf),
        value=jnp.where(bounded, res.value, sup),
        bounded=bounded,
    )


@functools.partial(jax.jit, static_argnames=("steps", "newton_steps", "record"))
def _search_batch(rho, shift, learning_rate, init_pressure, *, steps, newton_steps, record):
    rho, shift = jnp.broadcast_arrays(rho, shift)
    shape = rho.shape
    one = functools.partial(_search_one, steps=steps, newton_steps=newton_steps, record=record)
    res = jax.vmap(one, in_axes=(0, 0, None, None))(rho.reshape(-1), shift.reshape(-1),
                                                    learning_rate, init_pressure)
    return jax.tree_util.tree_map(lambda x: x.reshape(shape + x.shape[1:]), res)


def search_optimal_pressure(
    rho: ArrayLike,
    shift: ArrayLike,
    *,
    steps: int = 500,
    learning_rate: float = 0.1,
    newton_steps: int = 4,
    init_pressure: float = 1.0,
    record: bool = True,
) -> SearchResult:
    """Find the best pressure by gradient ascent on true performance (optax in ``lax.scan``).

    Math: ``max_{P >= 0} P rho - delta P^2`` over ``P = exp(theta)``: Adam on ``theta`` (see
    :func:`goodhart_jax.optimize.maximize`) then a few safeguarded Newton steps.  The whole
    broadcast grid of ``(rho, shift)`` is searched in one jitted, vmapped call.

    Where ``delta = 0`` the objective is unbounded: the result has ``bounded = False``,
    ``pressure = inf`` and ``value`` the supremum (``inf``, or ``0`` when ``rho = 0``); its
    ``trajectory`` shows the search running away.

    Args:
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.
        steps: optax steps.
        learning_rate: initial learning rate of the default optimizer (log-pressure units).
        newton_steps: Newton steps after the optax phase (0 for a pure optax search).
        init_pressure: the starting pressure, ``> 0``.
        record: keep the trajectory (``False`` saves memory on huge grids).

    Returns:
        :class:`goodhart_jax.optimize.SearchResult` with fields of shape
        ``broadcast(rho, shift).shape`` (``trajectory``/``values`` add a trailing step axis).

    Example:
        >>> res = search_optimal_pressure(0.5, 1.0)
        >>> round(float(res.pressure), 6), round(float(res.value), 6), bool(res.bounded)
        (0.5, 0.125, True)
    """
    owner = "search_optimal_pressure"
    check_params(owner=owner, rho=rho, shift=shift, init_pressure=init_pressure,
                 learning_rate=learning_rate)
    steps = check_positive_int("steps", steps, minimum=0, owner=owner)
    newton_steps = check_positive_int("newton_steps", newton_steps, minimum=0, owner=owner)
    return _search_batch(as_float(rho), as_float(shift), as_float(learning_rate), as_float(init_pressure),
                         steps=steps, newton_steps=newton_steps, record=bool(record))


# --------------------------------------------------------------------------------------------
# proxy vs true scatter
# --------------------------------------------------------------------------------------------
@jax.jit
def _deployment_correlation(rho, shift):
    noise = (1.0 - rho**2) * (1.0 + shift) ** 2
    return rho / jnp.sqrt(rho**2 + noise)


def deployment_correlation(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The exact proxy-true correlation of the deployment cluster of :func:`sample_objectives`.

    Math: ``rho_dep = rho / sqrt(rho^2 + (1 - rho^2) (1 + shift)^2)``; ``rho_dep = rho`` at
    ``shift = 0`` and it falls as ``shift`` grows (for ``0 < rho < 1``).

    Example:
        >>> [round(float(r), 4) for r in deployment_correlation(0.6, [0.0, 1.0])]
        [0.6, 0.3511]
    """
    check_params(owner="deployment_correlation", rho=rho, shift=shift)
    return _deployment_correlation(as_float(rho), as_float(shift))


def _sample_objectives(key, rho, shift, n, deployment):
    shape = jnp.broadcast_shapes(jnp.shape(rho), jnp.shape(shift)) + (n,)
    dtype = jnp.result_type(rho, shift)
    z = jax.random.normal(key, (2,) + shape, dtype=dtype)
    rho = jnp.asarray(rho)[..., None]
    shift = jnp.asarray(shift)[..., None]
    resid = jnp.sqrt(jnp.clip(1.0 - rho**2, 0.0, None))
    if not deployment:
        return z[0], rho * z[0] + resid * z[1]
    w = DEPLOYMENT_WIDTH
    proxy = DEPLOYMENT_OFFSET + w * z[0]
    centre = DEPLOYMENT_OFFSET * rho - _misalignment(rho, shift)
    true = centre + w * (rho * z[0] + (1.0 + shift) * resid * z[1])
    return proxy, true


_sample_objectives_jit = jax.jit(_sample_objectives, static_argnames=("n", "deployment"))


def sample_objectives(
    key: Array, n: int, rho: ArrayLike, shift: ArrayLike, *, deployment: bool = False
) -> tuple[Array, Array]:
    """Sample (proxy, true) performance pairs of the training or the deployment cluster.

    The recipe (standardised units; ``Z1, Z2`` independent standard normals):

    * **training**: ``proxy = Z1``, ``true = rho Z1 + sqrt(1 - rho^2) Z2``: unit spread,
      centred at the origin, correlation exactly ``rho``;
    * **deployment**: the optimiser has pushed the proxy ``DEPLOYMENT_OFFSET = 1`` up; the true
      objective follows by regression (``rho`` per unit) and loses the misalignment
      ``delta = shift (1 - rho)``; the cluster is ``DEPLOYMENT_WIDTH = 1.5`` times wider and the
      part of the true objective that the proxy does not explain is amplified by
      ``1 + shift``::

          proxy = 1 + 1.5 Z1
          true  = rho - delta + 1.5 (rho Z1 + (1 + shift) sqrt(1 - rho^2) Z2)

      so its correlation is :func:`deployment_correlation`
      ``rho / sqrt(rho^2 + (1 - rho^2)(1 + shift)^2)``: equal to ``rho`` at ``shift = 0``,
      falling as ``shift`` grows.

    With the same key both clusters use the same ``(Z1, Z2)`` (the deployment sample is then
    an affine image of the training sample); use two keys for independent clusters.

    Args:
        key: a ``jax.random`` key.
        n: points per cluster (a Python int).
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.
        deployment: sample the deployment cluster instead of the training one.

    Returns:
        ``(proxy, true)``, each of shape ``broadcast(rho, shift).shape + (n,)``.

    Example:
        >>> import jax
        >>> proxy, true = sample_objectives(jax.random.key(0), 1000, 0.8, 1.0)
        >>> proxy.shape
        (1000,)
    """
    owner = "sample_objectives"
    n = check_positive_int("n", n, owner=owner)
    check_params(owner=owner, rho=rho, shift=shift)
    rho, shift = as_float(rho), as_float(shift)
    return _sample_objectives_jit(key, rho, shift, n=n, deployment=bool(deployment))
