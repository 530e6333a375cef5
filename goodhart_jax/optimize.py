"""Optax loops in ``lax.scan``: generic searches for the best optimisation pressure.

The search is generic: any differentiable scalar objective ``f(pressure)`` of a pressure
``P >= 0`` (or of an unconstrained parameter) can be maximised.  The mesa-optimisation model
(:func:`goodhart_jax.mesa.search_optimal_pressure`) uses it for ``true = P rho - delta P^2``;
the tails model reuses it for ``E[V | U >= t]`` as a function of the threshold
(:mod:`goodhart_jax.pressure`: best thresholds, best-of-n, tilts and stopping steps).

In the style of optax: small factories (:func:`log_transform`, :func:`softplus_transform`,
:func:`identity_transform`, :func:`default_optimizer`) and NamedTuples of state and result
(:class:`SearchState`, :class:`SearchResult`).  Everything is traceable, so a whole grid of
searches runs as one ``jax.vmap`` over a closure of the objective's parameters:

.. code-block:: python

    def one(rho, delta):
        return maximize(lambda p: rho * p - delta * p**2, 1.0)
    res = jax.jit(jax.vmap(one))(rhos, deltas)      # res.pressure has the batch shape

How it works, per search:

1. **Parameterisation.**  ``P = transform.forward(theta)`` with ``theta`` unconstrained; the
   default is ``P = exp(theta)``, which makes the search scale-free: optimal pressures from
   ``1e-3`` to ``1e3`` are equally far (in ``theta``) from the start and need the same number
   of steps.
2. **First-order phase.**  ``steps`` updates of an optax optimizer ascending
   ``h(theta) = f(P(theta))`` inside one ``lax.scan``.  The default optimizer is Adam with
   ``b2 = 0.9`` (a short memory of gradient scale: gradients shrink by orders of magnitude on
   the way to a small optimum, and the usual ``b2 = 0.999`` would then crawl) and a cosine
   learning-rate decay to ``1e-3`` of its start.
3. **Newton polish.**  ``newton_steps`` safeguarded Newton steps on ``h``
   (:func:`goodhart_jax.numerics.newton_polish`, ``accept="ascent"``): taken only where
   ``h'' < 0``, clipped to ``|step| <= 1`` and only if ``h`` does not decrease (beyond
   rounding).  From the end of
   the optax phase they converge quadratically to machine precision; they never move a point
   where ``h`` is not locally concave (so an unbounded objective keeps running away).

Example:
    >>> import jax.numpy as jnp
    >>> from goodhart_jax.optimize import maximize
    >>> res = maximize(lambda p: 0.5 * p - 0.25 * p**2, 1.0)
    >>> round(float(res.pressure), 6)
    1.0
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from goodhart_jax.validation import check_param, check_positive_int
from goodhart_jax.numerics import float_dtype, log1mexp, newton_polish

__all__ = [
    "Transform",
    "log_transform",
    "softplus_transform",
    "identity_transform",
    "bounded_below_transform",
    "bounded_above_transform",
    "default_optimizer",
    "SearchState",
    "SearchResult",
    "maximize",
]

Array = jax.Array


class Transform(NamedTuple):
    """A bijection between an unconstrained ``theta`` and the searched parameter.

    Attributes:
        forward: ``theta -> pressure``.
        inverse: ``pressure -> theta`` (used once, for the starting point).
    """

    forward: Callable[[Array], Array]
    inverse: Callable[[Array], Array]


def log_transform() -> Transform:
    """``P = exp(theta)``: ``P > 0``, scale-free (the default).

    Math: ``P = e^theta``, ``dP/dtheta = P``.
    """
    return Transform(forward=jnp.exp, inverse=jnp.log)


def softplus_transform() -> Transform:
    """``P = log(1 + exp(theta))``: ``P > 0``, linear for large ``P``.

    Math: ``P = softplus(theta)``, ``theta = P + log(1 - e^{-P})``.
    """

    def inverse(p):
        p = jnp.asarray(p)
        return p + log1mexp(-p)

    return Transform(forward=jax.nn.softplus, inverse=inverse)


def identity_transform() -> Transform:
    """``P = theta``: an unconstrained search."""
    return Transform(forward=lambda t: t, inverse=lambda p: jnp.asarray(p))


def bounded_below_transform(lower: float) -> Transform:
    """``P = lower (1 + e^theta)``: ``P > lower``, log-parameterised in ``P / lower - 1``."""
    return Transform(forward=lambda t: lower * (1.0 + jnp.exp(t)),
                     inverse=lambda p: jnp.log(jnp.asarray(p) / lower - 1.0))


def bounded_above_transform(upper: float) -> Transform:
    """``P = upper sigmoid(theta)``: ``0 < P < upper``, log-parameterised for ``P << upper``."""
    return Transform(forward=lambda t: upper * jax.nn.sigmoid(t),
                     inverse=lambda p: jnp.log(jnp.asarray(p) / (upper - jnp.asarray(p))))


def default_optimizer(learning_rate: Any = 0.1, steps: int = 500) -> optax.GradientTransformation:
    """Adam with ``b2 = 0.9`` and a cosine decay from ``learning_rate`` to ``1e-3`` of it.

    ``learning_rate`` is in units of ``theta`` per step (with the log transform: a factor
    ``e^{0.1} ~ 1.105`` in pressure per step at the start).  It may be a tracer (vmapped).

    Math: ``lr_k = lr (1e-3 + (1 - 1e-3) (1 + cos(pi k / steps)) / 2)``.
    """
    schedule = optax.cosine_decay_schedule(learning_rate, max(int(steps), 1), alpha=1e-3)
    return optax.adam(schedule, b1=0.9, b2=0.9)


class SearchState(NamedTuple):
    """The carry of the optax phase: the unconstrained parameter and the optimizer state."""

    theta: Array
    opt_state: Any


class SearchResult(NamedTuple):
    """What a search returns (every field has the batch shape of a vmapped search in front).

    Attributes:
        pressure: the maximiser found, ``transform.forward(theta)``.  Model searches that know
            their objective is unbounded (e.g. :func:`goodhart_jax.mesa.search_optimal_pressure`
            when ``delta = 0``) put ``inf`` here and ``False`` in ``bounded``.
        value: the objective at ``pressure`` (the supremum, possibly ``inf``, in model
            searches where ``bounded`` is ``False``).
        trajectory: the pressure at the start and after every step, shape
            ``(..., steps + newton_steps + 1)`` (``(..., 0)`` when ``record=False``).
        values: the objective along ``trajectory`` (same shape).
        grad: ``d objective / d pressure`` at the final iterate.
        converged: first-order stationarity at the final iterate,
            ``|dh/dtheta| <= rtol |h| + atol`` with ``h(theta) = objective(P(theta))``.
        bounded: whether a finite maximiser was found.  :func:`maximize` sets it to
            ``converged`` (a run-away search never becomes stationary); model searches replace
            it by an exact criterion where they have one.
    """

    pressure: Array
    value: Array
    trajectory: Array
    values: Array
    grad: Array
    converged: Array
    bounded: Array


def maximize(
    objective: Callable[[Array], Array],
    init_pressure: Any = 1.0,
    *,
    transform: Transform | None = None,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 500,
    learning_rate: Any = 0.1,
    newton_steps: int = 4,
    max_newton_step: float = 1.0,
    record: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
) -> SearchResult:
    """Maximise a differentiable scalar ``objective(pressure)`` with optax inside ``lax.scan``.

    Math: ``max_P f(P)`` over ``P = forward(theta)``; optax on ``-f(forward(theta))``, then
    Newton ``theta <- theta - h'(theta) / h''(theta)`` where ``h'' < 0``.

    Traceable end to end: wrap it in ``jax.jit`` and ``jax.vmap`` over a closure of the
    objective's parameters (see the module docstring).  ``steps``, ``newton_steps`` and
    ``record`` are Python integers/booleans (they fix the loop lengths).

    Args:
        objective: ``pressure -> scalar``, differentiable (twice, for the Newton polish).
        init_pressure: the starting pressure (must lie in the transform's range).
        transform: the parameterisation (default :func:`log_transform`, ``P > 0``).
        optimizer: any optax gradient transformation (default
            :func:`default_optimizer` ``(learning_rate, steps)``).  Optimizers that take extra
            arguments (e.g. ``optax.lbfgs()``) receive ``value``, ``grad`` and ``value_fn`` of
            the minimised ``-h``.
        steps: number of optax updates.
        learning_rate: used only by the default optimizer.
        newton_steps: number of safeguarded Newton steps after the optax phase (0 for none).
        max_newton_step: the largest Newton step in ``theta``.
        record: keep the trajectory (set ``False`` for huge vmapped grids).
        rtol, atol: the stationarity test of ``converged`` (default ``sqrt(eps)`` and ``eps``
            of the working precision).

    Returns:
        A :class:`SearchResult`.

    Example:
        >>> res = maximize(lambda p: 2.0 * p - p**2, 0.1)   # maximiser P = 1
        >>> bool(res.converged), round(float(res.value), 6)
        (True, 1.0)
    """
    steps = check_positive_int("steps", steps, minimum=0, owner="maximize")
    newton_steps = check_positive_int("newton_steps", newton_steps, minimum=0, owner="maximize")
    check_param("init_pressure", init_pressure, owner="maximize")
    transform = log_transform() if transform is None else transform
    if optimizer is None:
        optimizer = default_optimizer(learning_rate, steps)
    extra = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    dtype = float_dtype()
    theta0 = jnp.asarray(transform.inverse(jnp.asarray(init_pressure, dtype=dtype)), dtype=dtype)
    if theta0.shape != ():
        raise ValueError("maximize: init_pressure must be a scalar (vmap for batches)")
    eps = float(jnp.finfo(dtype).eps)
    rtol = eps**0.5 if rtol is None else float(rtol)
    atol = eps if atol is None else float(atol)

    def h(theta):
        out = jnp.asarray(objective(transform.forward(theta)))
        if out.shape != ():
            raise ValueError(f"maximize: objective must return a scalar, got shape {out.shape}")
        return out

    def neg_h(theta):
        return -h(theta)

    value_and_grad = jax.value_and_grad(h)

    def optax_step(state: SearchState, _):
        value, g = value_and_grad(state.theta)
        if extra:
            updates, opt_state = optimizer.update(
                -g, state.opt_state, state.theta, value=-value, grad=-g, value_fn=neg_h
            )
        else:
            updates, opt_state = optimizer.update(-g, state.opt_state, state.theta)
        theta = optax.apply_updates(state.theta, updates)
        return SearchState(theta, opt_state), (transform.forward(state.theta), value)

    state0 = SearchState(theta0, optimizer.init(theta0))
    state, (traj_a, vals_a) = jax.lax.scan(optax_step, state0, None, length=steps)

    # steps only where h'' < 0 and h does not decrease, up to rounding (near the top, h is
    # flat to eps relative): the path is monotone
    (theta, _), (thetas_n, vals_n) = newton_polish(h, state.theta, steps=newton_steps,
                                                   max_step=max_newton_step, accept="ascent",
                                                   record=True)
    traj_n = transform.forward(thetas_n)

    value, g_theta = value_and_grad(theta)
    pressure = transform.forward(theta)
    grad_p = jax.grad(objective)(pressure)
    converged = jnp.abs(g_theta) <= rtol * jnp.abs(value) + atol
    if record:
        trajectory = jnp.concatenate([traj_a, traj_n, pressure[None]])
        values = jnp.concatenate([vals_a, vals_n, value[None]])
    else:
        trajectory = jnp.zeros((0,), dtype)
        values = jnp.zeros((0,), dtype)
    return SearchResult(
        pressure=pressure,
        value=value,
        trajectory=trajectory,
        values=values,
        grad=grad_p,
        converged=converged,
        bounded=converged,
    )
