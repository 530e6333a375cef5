"""Optax loops in ``lax.scan``: generic searches for the best optimisation pressure.

The search is generic: any differentiable scalar objective ``f(pressure)`` of a pressure
``P >= 0`` (or of an unconstrained parameter) can be maximised.  The mesa-optimisation model
(:func:`goodhart_jax.mesa.search_optimal_pressure`) uses it for ``true = P rho - delta P^2``;
the tails model reuses it for ``E[V | U >= t]`` as a function of the threshold.

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
3. **Newton polish.**  ``newton_steps`` safeguarded Newton steps on ``h``: taken only where
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

from goodhart_jax._validation import check_param, check_positive_int

__all__ = [
    "Transform",
    "log_transform",
    "softplus_transform",
    "identity_transform",
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
        return p + jnp.log(-jnp.expm1(-p))

    return Transform(forward=jax.nn.softplus, inverse=inverse)


def identity_transform() -> Transform:
    """``P = theta``: an unconstrained search."""
    return Transform(forward=lambda t: t, inverse=lambda p: jnp.asarray(p))


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

    dtype = jnp.result_type(float)
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

    hess = jax.grad(jax.grad(h))

    def newton_step(theta, _):
        value, g = value_and_grad(theta)
        curv = hess(theta)
        concave = curv < 0
        step = jnp.where(concave, -g / jnp.where(concave, curv, -1.0), 0.0)
        step = jnp.clip(step, -max_newton_step, max_newton_step)
        trial = theta + step
        # "does not decrease", up to rounding: near the top, h is flat to eps relative.
        accept = concave & (h(trial) >= value - 8 * eps * jnp.abs(value))
        return jnp.where(accept, trial, theta), (transform.forward(theta), value)

    theta, (traj_n, vals_n) = jax.lax.scan(newton_step, state.theta, None, length=newton_steps)

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


# =============================================================================================
# Overoptimisation fits (Gao, Schulman & Hilton 2022) and searches for the best pressure in the
# tails model (threshold, best-of-n, KL tilt, early stopping).
# =============================================================================================

from functools import partial as _partial  # noqa: E402

import numpy as _np  # noqa: E402

__all__ += [
    "OveroptimizationFit",
    "fit_overoptimization",
    "PressureOptimum",
    "optimal_threshold",
    "optimal_best_of_n",
    "optimal_tilt",
    "optimal_stopping",
    "best_of_n_transform",
    "bounded_below_transform",
    "bounded_above_transform",
]


class OveroptimizationFit(NamedTuple):
    """A least-squares fit of a Gao et al. (2022) gold-reward curve.

    ``fit[0], fit[1]`` are ``alpha, beta`` (docs/design.md: ``fit_overoptimization -> (alpha, beta)``).

    Attributes:
        alpha, beta: the coefficients.
        alpha_stderr, beta_stderr: their standard errors (``sigma^2 (A^T A)^-1``, ``sigma^2`` the
            residual variance on ``m - 2`` degrees of freedom; ``nan`` with two points; scaled
            by the weights when given).
        peak_d: the ``d = sqrt(KL)`` of the largest gold reward: ``alpha / (2 beta)`` (bon),
            ``exp(alpha / beta - 1)`` (rl); ``inf`` when ``beta <= 0`` (no overoptimisation).
        peak_gold: ``R(peak_d)``: ``alpha^2 / (4 beta)`` (bon), ``beta peak_d`` (rl).
        rms: root-mean-square residual.
        form: ``"bon"`` (``R(d) = d (alpha - beta d)``) or ``"rl"`` (``R(d) = d (alpha - beta log d)``).
    """

    alpha: Array
    beta: Array
    alpha_stderr: Array
    beta_stderr: Array
    peak_d: Array
    peak_gold: Array
    rms: Array
    form: str


def _fit(d, gold, w, form):
    """Weighted linear least squares for (alpha, beta), by QR on the host (float64 NumPy).

    Two unknowns and a few hundred points: a host-side closed form (a jitted version would
    recompile for every number of points and cost more than it saves).
    """
    if form == "bon":
        a = _np.stack([d, -d * d], axis=1)
    else:
        a = _np.stack([d, -_np.where(d > 0, d * _np.log(_np.where(d > 0, d, 1.0)), 0.0)], axis=1)
    sw = _np.sqrt(w)
    q, r = _np.linalg.qr(a * sw[:, None])
    coef = _np.linalg.solve(r, q.T @ (gold * sw))
    resid = gold * sw - (a * sw[:, None]) @ coef
    dof = d.shape[0] - 2
    sigma2 = float(resid @ resid) / dof if dof > 0 else _np.nan
    r_inv = _np.linalg.inv(r)
    se = _np.sqrt(_np.diag(sigma2 * (r_inv @ r_inv.T)))
    alpha, beta = float(coef[0]), float(coef[1])
    if beta > 0:
        if form == "bon":
            peak, gold_peak = alpha / (2.0 * beta), alpha**2 / (4.0 * beta)
        else:
            peak = float(_np.exp(alpha / beta - 1.0))
            gold_peak = beta * peak
    else:
        peak = gold_peak = _np.inf
    rms = float(_np.sqrt(_np.mean((gold - a @ coef) ** 2)))
    return alpha, beta, float(se[0]), float(se[1]), peak, gold_peak, rms


def fit_overoptimization(d, gold, form: str = "bon", *, weights=None) -> OveroptimizationFit:
    """Fit Gao et al.'s scaling forms to gold reward against ``d = sqrt(KL)``.

    Both forms are linear in ``(alpha, beta)``, so the fit is an exact (weighted) linear least
    squares, solved by QR.  ``gold`` is the gold reward *relative to the base policy* (the
    forms vanish at ``d = 0``): subtract the base policy's value first.

    Math: bon: ``R(d) = alpha d - beta d^2``, peak ``d* = alpha / (2 beta)``;
    rl: ``R(d) = alpha d - beta d log d``, peak ``d* = exp(alpha / beta - 1)``.

    Args:
        d: ``sqrt(KL)`` values, ``>= 0``, shape ``(m,)``, ``m >= 2``.
        gold: gold reward at each ``d`` (relative to ``d = 0``), shape ``(m,)``.
        form: ``"bon"`` or ``"rl"``.
        weights: optional positive weights (e.g. ``1 / stderr^2``), shape ``(m,)``.

    Returns:
        :class:`OveroptimizationFit`.

    Raises:
        ValueError: unknown ``form``; negative or non-finite ``d``; shapes that differ; fewer
            than two points; non-positive weights.

    Example:
        >>> import numpy as np, goodhart_jax as gj
        >>> d = np.linspace(0.1, 4.0, 30)
        >>> fit = gj.fit_overoptimization(d, d * (1.5 - 0.5 * d), form="bon")
        >>> round(float(fit.alpha), 6), round(float(fit.beta), 6), round(float(fit.peak_d), 6)
        (1.5, 0.5, 1.5)
    """
    if form not in ("bon", "rl"):
        raise ValueError(f"fit_overoptimization: form must be 'bon' or 'rl', got {form!r}")
    check_param("d", d, lo=0.0, owner="fit_overoptimization")
    check_param("gold", gold, owner="fit_overoptimization")
    d = _np.asarray(d, dtype=_np.float64)
    gold = _np.asarray(gold, dtype=_np.float64)
    if d.ndim != 1 or d.shape != gold.shape:
        raise ValueError(f"fit_overoptimization: d and gold must be 1-D of the same length, "
                         f"got shapes {d.shape} and {gold.shape}")
    if d.shape[0] < 2:
        raise ValueError("fit_overoptimization: d must have at least 2 points")
    if weights is None:
        w = _np.ones_like(d)
    else:
        check_param("weights", weights, lo=0.0, lo_open=True, owner="fit_overoptimization")
        w = _np.broadcast_to(_np.asarray(weights, dtype=_np.float64), d.shape)
    return OveroptimizationFit(*(jnp.asarray(v) for v in _fit(d, gold, w, form)), form=form)


class PressureOptimum(NamedTuple):
    """The best pressure of one kind, found by an optax search and checked on a dense grid.

    Attributes:
        measure: ``"threshold"``, ``"best_of_n"``, ``"beta"`` or ``"steps"``.
        pressure: the maximiser of ``E[V]`` found by the search; ``inf`` (``0`` for ``beta``)
            when there is no interior optimum (``E[V]`` still rising at the end of the range).
        value: ``E[V]`` at ``pressure`` (when not interior: the largest value seen).
        interior: whether an interior optimum was found (search stationary, grid maximum away
            from the grid's ends and, on pools, before the pool saturates).
        reason: a sentence saying why (or why not).
        search: the :class:`SearchResult` of the optax search.
        grid: the dense grid of pressures; grid_values: ``E[V]`` on it.
        grid_pressure: the grid's argmax; resolution: the grid spacing there.
        agrees: whether the search's end point and the grid's argmax agree within the grid's
            resolution (also when both sit at the end of the range).
    """

    measure: str
    pressure: Array
    value: Array
    interior: bool
    reason: str
    search: SearchResult
    grid: Array
    grid_values: Array
    grid_pressure: Array
    resolution: Array
    agrees: bool


def _conclude(measure, search, grid, grid_values, *, valid=None, extra_ok=True,
              extra_reason="", unbounded_value=jnp.inf) -> PressureOptimum:
    """Compare the search with the dense grid and decide whether the optimum is interior.

    ``valid`` masks the grid points that count (on pools: before the pool saturates); an
    argmax at the first or last valid point is an end of the range, not an interior optimum.
    """
    grid = _np.asarray(grid, dtype=float)
    gv = _np.asarray(grid_values, dtype=float)
    valid = _np.ones(grid.shape, bool) if valid is None else _np.asarray(valid, bool)
    valid &= _np.isfinite(gv)
    idx = _np.flatnonzero(valid)
    if idx.size == 0:
        raise ValueError(f"{measure}: no valid grid point (all saturated or non-finite)")
    gv_safe = _np.where(valid, gv, -_np.inf)
    k = int(_np.argmax(gv_safe))
    at_end = k in (idx[0], idx[-1])
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    resolution = 0.5 * abs(hi - lo)
    p = float(search.pressure)
    converged = bool(search.converged)
    agrees = bool(min(lo, hi) <= p <= max(lo, hi))
    interior = converged and not at_end and extra_ok
    if interior:
        reason = (f"interior optimum: search stationary at {p:.6g}, dense-grid maximum at "
                  f"{grid[k]:.6g} (grid spacing ~{resolution:.3g})")
        pressure, value = search.pressure, search.value
    else:
        why = []
        if at_end:
            why.append("the grid maximum is at the end of the range "
                       f"({grid[k]:.6g}: E[V] still rising there)")
        if not converged:
            why.append(f"the search did not become stationary (ran to {p:.6g})")
        if not extra_ok:
            why.append(extra_reason)
        reason = "no interior optimum: " + "; ".join(why)
        pressure = jnp.asarray(unbounded_value)
        value = jnp.asarray(max(float(_np.max(gv_safe)), float(search.value)))
    return PressureOptimum(measure, pressure, value, interior, reason, search, jnp.asarray(grid),
                           jnp.asarray(gv), jnp.asarray(grid[k]), jnp.asarray(resolution), agrees)


class _Compiled(NamedTuple):
    """An expensive scalar objective compiled once, with value, first and second derivative.

    ``objective`` is a scalar function (custom derivatives, each a host call to the one compiled
    executable), so :func:`maximize` traces a few callbacks instead of the objective itself
    (tracing an exact quadrature at every call site of a search — the optax step, the Newton
    step, the final evaluation — would multiply its compile time); ``vgh(p)`` returns
    ``(f, f', f'')`` at one point, which the dense grid reuses (no second compile).
    """

    objective: Callable[[Array], Array]
    vgh: Callable[[Any], tuple]


def _partial_host(host, i):
    return lambda q: host(q, i)


def _compile_objective(fn: Callable[[Array], Array], dtype) -> _Compiled:
    d1 = jax.grad(fn)
    vgh = jax.jit(lambda p: (fn(p), d1(p), jax.grad(d1)(p)))
    shape = jax.ShapeDtypeStruct((), dtype)
    memo: dict = {}

    def host(q, i):
        key = float(q)
        if memo.get("at") != key:  # f, f', f'' at a point are asked for one after another
            memo["at"], memo["out"] = key, [_np.asarray(a, dtype=dtype) for a in vgh(q)]
        return memo["out"][i]

    def call(p, i):
        return jax.pure_callback(_partial_host(host, i), shape, jnp.asarray(p, dtype))

    @jax.custom_jvp
    def f(p):
        return call(p, 0)

    @jax.custom_jvp
    def g(p):
        return call(p, 1)

    @f.defjvp
    def _f_jvp(primals, tangents):
        (p,), (dp,) = primals, tangents
        return f(p), g(p) * dp

    @g.defjvp
    def _g_jvp(primals, tangents):
        (p,), (dp,) = primals, tangents
        return g(p), call(p, 2) * dp

    return _Compiled(f, vgh)


def optimal_threshold(value, error, *, grid=None, init=None, steps: int = 300,
                      learning_rate: float = 0.1, newton_steps: int = 4) -> PressureOptimum:
    """The threshold ``t*`` maximising ``E[V | V + X >= t]``, by optax (exact quadrature).

    Math: ``t* = argmax_t E[V | U >= t]``; light-tailed ``X`` (``S_X(t+1)/S_X(t) -> 0``) has
    none (``E[V | U >= t] -> inf``, Kwa et al. Thm 6).

    Args:
        value, error: distributions (``value`` with a finite mean).
        grid: thresholds for the dense check (default: U's bulk ``c + s * linspace(-2, 30, 321)``).
        init: starting threshold (default: U's bulk centre ``c``).
        steps, learning_rate, newton_steps: the search (see :func:`maximize`).

    Returns:
        :class:`PressureOptimum` (``pressure = inf`` where there is no interior optimum).

    Example:
        >>> import goodhart_jax as gj
        >>> opt = gj.optimize.optimal_threshold(gj.Normal(), gj.Normal())
        >>> opt.interior, float(opt.pressure)
        (False, inf)
    """
    from goodhart_jax.conditioning import _dists, conditional_value

    value, error = _dists(value, error)
    c = float(value._bulk()[0] + error._bulk()[0])
    s = float(value._bulk()[1] + error._bulk()[1])
    grid = c + s * _np.linspace(-2.0, 30.0, 321) if grid is None else _np.asarray(grid, float)
    check_param("grid", grid, owner="optimal_threshold")
    init = c if init is None else init
    check_param("init", init, owner="optimal_threshold")
    steps = check_positive_int("steps", steps, owner="optimal_threshold")
    dtype = jnp.result_type(float)
    comp = _compile_objective(lambda t: conditional_value(value, error, t), dtype)
    search = maximize(comp.objective, jnp.asarray(init, dtype), transform=identity_transform(),
                      steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                      record=False)
    gv = _np.array([float(comp.vgh(jnp.asarray(t, dtype))[0]) for t in grid])
    return _conclude("threshold", search, grid, gv)


def best_of_n_transform() -> Transform:
    """``n = 1 + exp(theta)``: ``n > 1``, log-parameterised (``~ e^theta`` for large ``n``)."""
    return Transform(forward=lambda t: 1.0 + jnp.exp(t),
                     inverse=lambda n: jnp.log(jnp.asarray(n) - 1.0))


def optimal_best_of_n(value, error, *, grid=None, init: float = 2.0, steps: int = 40,
                      learning_rate: float = 0.3, newton_steps: int = 4) -> PressureOptimum:
    """The ``n*`` maximising ``E[V]`` under best-of-``n`` (``n`` real, ``n = 1 + e^theta``).

    Math: ``n* = argmax_n ∫ E[V | U = u] n F_U^(n-1) f_U du`` (:func:`best_of_n_value`).

    Args:
        value, error: distributions.
        grid: values of ``n`` for the dense check (default ``geomspace(1, 4^10, 41)``).
        init: starting ``n > 1``.
        steps, learning_rate, newton_steps: the search (learning rate in ``theta = log(n - 1)``).

    Returns:
        :class:`PressureOptimum` (``pressure = inf`` for light-tailed errors).

    Example:
        >>> import goodhart_jax as gj
        >>> opt = gj.optimize.optimal_best_of_n(gj.Normal(), gj.StudentT(3.0))  # doctest: +SKIP
        >>> opt.interior, round(float(opt.pressure))                              # doctest: +SKIP
        (True, 17)
    """
    from goodhart_jax.conditioning import _dists
    from goodhart_jax.selection import best_of_n_value

    value, error = _dists(value, error)
    grid = _np.geomspace(1.0, 4.0**10, 41) if grid is None else _np.asarray(grid, float)
    check_param("grid", grid, lo=1.0, owner="optimal_best_of_n")
    check_param("init", init, lo=1.0, lo_open=True, owner="optimal_best_of_n")
    steps = check_positive_int("steps", steps, owner="optimal_best_of_n")
    dtype = jnp.result_type(float)
    comp = _compile_objective(lambda n: best_of_n_value(value, error, n), dtype)
    search = maximize(comp.objective, jnp.asarray(init, dtype), transform=best_of_n_transform(),
                      steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                      record=False)
    gv = _np.array([float(comp.vgh(jnp.asarray(n, dtype))[0]) for n in grid])
    return _conclude("best_of_n", search, grid, gv)


def bounded_below_transform(lower: float) -> Transform:
    """``P = lower (1 + e^theta)``: ``P > lower``, log-parameterised in ``P / lower - 1``."""
    return Transform(forward=lambda t: lower * (1.0 + jnp.exp(t)),
                     inverse=lambda p: jnp.log(jnp.asarray(p) / lower - 1.0))


def bounded_above_transform(upper: float) -> Transform:
    """``P = upper sigmoid(theta)``: ``0 < P < upper``, log-parameterised for ``P << upper``."""
    return Transform(forward=lambda t: upper * jax.nn.sigmoid(t),
                     inverse=lambda p: jnp.log(jnp.asarray(p) / (upper - jnp.asarray(p))))


@_partial(jax.jit, static_argnames=("steps", "newton_steps"))
def _tilt_search(pool, lower, init, learning_rate, steps, newton_steps):
    from goodhart_jax.pools import _stats

    tr = Transform(forward=lambda t: lower * (1.0 + jnp.exp(t)),
                   inverse=lambda p: jnp.log(p / lower - 1.0))
    from goodhart_jax.pools import _centred

    u0 = _centred(pool.proxy)
    return maximize(lambda b: _stats(u0 / b, pool).value, init, transform=tr,
                    steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                    record=False)


def _saturation_note(what: str, at: float, min_ess: float) -> str:
    return (f"the maximum sits where the pool saturates ({what} = {at:.6g}: beyond it fewer than "
            f"{min_ess:g} outcomes carry the policy); on a finite pool E[V] is bounded, so this "
            f"is the pool's edge, not an interior optimum")


def optimal_tilt(pool, *, grid=None, init: float | None = None, steps: int = 300,
                 learning_rate: float = 0.1, newton_steps: int = 4,
                 min_ess: float = 100.0) -> PressureOptimum:
    """The KL coefficient ``beta*`` whose tilt ``softmax(u / beta)`` maximises ``E_pi[V]``.

    On a finite pool every tilt exists and ``E_pi[V]`` is bounded (by the best ``v``); as
    ``beta -> 0`` the policy collapses onto the few largest proxies, whose ``v`` is one noisy
    draw.  The search is therefore confined to the *unsaturated* range ``beta > beta_min``,
    the smallest grid ``beta`` whose tilt still has an effective sample size ``>= min_ess``
    (``beta = beta_min (1 + e^theta)``), and starts at low pressure (``beta`` = the proxy's
    range, KL ~ 0).  An optimum at ``beta_min`` is reported as no interior optimum (E[V] still
    rising when the pool saturates: the light-tailed signature; with heavy-tailed errors it
    can also happen, at a small E[V], when the pool collapses onto its outliers before E[V]
    turns over).

    Math: ``beta* = argmax_{beta > beta_min} Σ_i softmax(u / beta)_i v_i``.

    Args:
        pool: a :class:`goodhart_jax.pools.Pool`.
        grid: ``beta`` values for the dense check (default: 241 geometric from 1e-3 of the
            proxy's interquartile range to 10 times its range).
        init: starting ``beta`` (default: the proxy's range ``max u - min u``).
        steps, learning_rate, newton_steps: the search (learning rate in ``theta``).
        min_ess: the effective sample size below which the pool counts as saturated.

    Returns:
        :class:`PressureOptimum` (``measure = "beta"``; ``pressure = 0``, i.e. ``beta -> 0``,
        without an interior optimum).

    Example:
        >>> import jax, goodhart_jax as gj
        >>> pool = gj.sample_pool(jax.random.key(0), gj.Normal(), gj.Normal(), 10_000)
        >>> gj.optimize.optimal_tilt(pool).interior
        False
    """
    from goodhart_jax.pools import tilted_stats

    u = _np.asarray(pool.proxy, dtype=float)
    q75, q25 = _np.percentile(u, [75, 25])
    scale = max(float(q75 - q25), 1e-300)
    span = max(float(u.max() - u.min()), scale)
    if grid is None:
        grid = _np.geomspace(1e-3 * scale, 10.0 * span, 241)
    grid = _np.sort(_np.asarray(grid, float))
    check_param("grid", grid, lo=0.0, lo_open=True, owner="optimal_tilt")
    steps = check_positive_int("steps", steps, owner="optimal_tilt")
    dtype = pool.proxy.dtype
    stats = tilted_stats(pool, jnp.asarray(grid, dtype))
    valid = _np.asarray(stats.ess) >= min_ess
    if not valid.any():
        raise ValueError(f"optimal_tilt: no beta in the grid keeps ESS >= min_ess = {min_ess:g}")
    lower = float(grid[valid][0])
    init = max(span, 2.0 * lower) if init is None else init
    check_param("init", init, lo=lower, lo_open=True, owner="optimal_tilt")
    search = _tilt_search(pool, jnp.asarray(lower, dtype), jnp.asarray(init, dtype),
                          learning_rate, steps, newton_steps)
    return _conclude("beta", search, grid, stats.value, valid=valid,
                     extra_ok=float(search.pressure) > lower * (1.0 + 1e-6),
                     extra_reason=_saturation_note("beta", lower, min_ess),
                     unbounded_value=0.0)


@_partial(jax.jit, static_argnames=("steps", "newton_steps"))
def _stopping_search(pool, lr, upper, init, learning_rate, steps, newton_steps):
    from goodhart_jax.pools import _stats

    tr = Transform(forward=lambda t: upper * jax.nn.sigmoid(t),
                   inverse=lambda p: jnp.log(p / (upper - p)))
    from goodhart_jax.pools import _centred

    u0 = _centred(pool.proxy)
    return maximize(lambda k: _stats(k * lr * u0, pool).value, init, transform=tr,
                    steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                    record=False)


def optimal_stopping(pool, *, learning_rate: float = 0.005, max_steps: int = 400,
                     init: float = 1.0, search_steps: int = 300, search_learning_rate: float = 0.1,
                     newton_steps: int = 4, min_ess: float = 100.0) -> PressureOptimum:
    """The early-stopping step ``k*`` of proxy ascent that maximises ``E_pi[V]``.

    The ascent is natural-gradient SGD on ``E_pi[U]`` from the uniform policy (mirror descent):
    step ``k`` is the tilt ``softmax(k lr u)`` exactly, so ``E[V]`` is a smooth function of a
    continuous ``k``, searched with optax (``k = k_max sigmoid(theta)``, confined like
    :func:`optimal_tilt` to the steps before the pool saturates, ``k < k_max``).  The dense grid
    is the actual optax run (:func:`goodhart_jax.pools.push`, every step ``0..max_steps`` in
    one scan).

    Math: ``k* = argmax_{k < k_max} Σ_i softmax(k lr u)_i v_i``.

    Args:
        pool: a :class:`goodhart_jax.pools.Pool`.
        learning_rate: the ascent's step size.
        max_steps: length of the optax run (the grid).
        init: starting ``k`` of the search.
        search_steps, search_learning_rate, newton_steps: the search.
        min_ess: effective sample size below which the pool counts as saturated.

    Returns:
        :class:`PressureOptimum` (``measure = "steps"``; ``pressure = inf`` without an interior
        optimum).
    """
    from goodhart_jax.pools import push

    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner="optimal_stopping")
    max_steps = check_positive_int("max_steps", max_steps, minimum=2, owner="optimal_stopping")
    search_steps = check_positive_int("search_steps", search_steps, owner="optimal_stopping")
    dtype = pool.proxy.dtype
    run = push(pool, beta=0.0, steps=max_steps, learning_rate=learning_rate, geometry="natural")
    grid = _np.arange(max_steps + 1, dtype=float)
    valid = _np.asarray(run.trace.ess) >= min_ess
    upper = float(grid[valid][-1])
    if upper < 2:
        raise ValueError("optimal_stopping: the pool saturates within one step; lower learning_rate")
    check_param("init", init, lo=0.0, hi=upper, lo_open=True, hi_open=True, owner="optimal_stopping")
    search = _stopping_search(pool, jnp.asarray(learning_rate, dtype), jnp.asarray(upper, dtype),
                              jnp.asarray(init, dtype), search_learning_rate, search_steps,
                              newton_steps)
    saturated = upper < max_steps
    return _conclude("steps", search, grid, run.trace.value, valid=valid,
                     extra_ok=float(search.pressure) < upper * (1.0 - 1e-6) or not saturated,
                     extra_reason=_saturation_note("step", upper, min_ess))
