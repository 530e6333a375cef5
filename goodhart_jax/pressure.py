"""The best pressure in the tails model, and Gao et al.'s overoptimisation fits.

* :func:`fit_overoptimization`: least-squares fits of gold reward against ``d = sqrt(KL)`` in
  the forms of Gao, Schulman & Hilton (2022) (:class:`OveroptimizationFit`);
* searches for the pressure that maximises ``E[V]``, each an optax search
  (:func:`goodhart_jax.optimize.maximize`) checked on a dense grid (:class:`PressureOptimum`):
  the threshold (:func:`optimal_threshold`), best-of-``n`` (:func:`optimal_best_of_n`), the KL
  tilt on a pool (:func:`optimal_tilt`) and early stopping of proxy ascent
  (:func:`optimal_stopping`).  Without an interior optimum (``E[V]`` still rising at the end of
  the range: light-tailed errors, or a saturated pool) the result says so, with ``inf``.

Example:
    >>> import numpy as np
    >>> from goodhart_jax.pressure import fit_overoptimization
    >>> d = np.linspace(0.1, 4.0, 30)
    >>> round(float(fit_overoptimization(d, d * (2.0 - 0.5 * d)).peak_d), 6)
    2.0
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.validation import check_param, check_positive_int
from goodhart_jax.conditioning import as_distributions, conditional_value
from goodhart_jax.optimize import (
    SearchResult,
    Transform,
    bounded_above_transform,
    bounded_below_transform,
    identity_transform,
    maximize,
)
from goodhart_jax.numerics import float_dtype
from goodhart_jax.pools import centred, pool_stats, push, tilted_stats
from goodhart_jax.selection import best_of_n_value

__all__ = [
    "OveroptimizationFit",
    "fit_overoptimization",
    "PressureOptimum",
    "optimal_threshold",
    "optimal_best_of_n",
    "optimal_tilt",
    "optimal_stopping",
    "best_of_n_transform",
]

Array = jax.Array


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
        a = np.stack([d, -d * d], axis=1)
    else:
        a = np.stack([d, -np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)], axis=1)
    sw = np.sqrt(w)
    q, r = np.linalg.qr(a * sw[:, None])
    coef = np.linalg.solve(r, q.T @ (gold * sw))
    resid = gold * sw - (a * sw[:, None]) @ coef
    dof = d.shape[0] - 2
    sigma2 = float(resid @ resid) / dof if dof > 0 else np.nan
    r_inv = np.linalg.inv(r)
    se = np.sqrt(np.diag(sigma2 * (r_inv @ r_inv.T)))
    alpha, beta = float(coef[0]), float(coef[1])
    if beta > 0:
        if form == "bon":
            peak, gold_peak = alpha / (2.0 * beta), alpha**2 / (4.0 * beta)
        else:
            peak = float(np.exp(alpha / beta - 1.0))
            gold_peak = beta * peak
    else:
        peak = gold_peak = np.inf
    rms = float(np.sqrt(np.mean((gold - a @ coef) ** 2)))
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
    d = np.asarray(d, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    if d.ndim != 1 or d.shape != gold.shape:
        raise ValueError(f"fit_overoptimization: d and gold must be 1-D of the same length, "
                         f"got shapes {d.shape} and {gold.shape}")
    if d.shape[0] < 2:
        raise ValueError("fit_overoptimization: d must have at least 2 points")
    if weights is None:
        w = np.ones_like(d)
    else:
        check_param("weights", weights, lo=0.0, lo_open=True, owner="fit_overoptimization")
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), d.shape)
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
    grid = np.asarray(grid, dtype=float)
    gv = np.asarray(grid_values, dtype=float)
    valid = np.ones(grid.shape, bool) if valid is None else np.asarray(valid, bool)
    valid &= np.isfinite(gv)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        raise ValueError(f"{measure}: no valid grid point (all saturated or non-finite)")
    gv_safe = np.where(valid, gv, -np.inf)
    k = int(np.argmax(gv_safe))
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
        value = jnp.asarray(max(float(np.max(gv_safe)), float(search.value)))
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
            memo["at"], memo["out"] = key, [np.asarray(a, dtype=dtype) for a in vgh(q)]
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
        >>> opt = gj.pressure.optimal_threshold(gj.Normal(), gj.Normal())
        >>> opt.interior, float(opt.pressure)
        (False, inf)
    """
    value, error = as_distributions(value, error)
    c = float(value.bulk()[0] + error.bulk()[0])
    s = float(value.bulk()[1] + error.bulk()[1])
    grid = c + s * np.linspace(-2.0, 30.0, 321) if grid is None else np.asarray(grid, float)
    check_param("grid", grid, owner="optimal_threshold")
    init = c if init is None else init
    check_param("init", init, owner="optimal_threshold")
    steps = check_positive_int("steps", steps, owner="optimal_threshold")
    dtype = float_dtype()
    comp = _compile_objective(lambda t: conditional_value(value, error, t), dtype)
    search = maximize(comp.objective, jnp.asarray(init, dtype), transform=identity_transform(),
                      steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                      record=False)
    gv = np.array([float(comp.vgh(jnp.asarray(t, dtype))[0]) for t in grid])
    return _conclude("threshold", search, grid, gv)


def best_of_n_transform() -> Transform:
    """``n = 1 + exp(theta)``: ``n > 1``, log-parameterised (``~ e^theta`` for large ``n``).

    Math: :func:`goodhart_jax.optimize.bounded_below_transform` with ``lower = 1``.
    """
    return bounded_below_transform(1.0)


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
        >>> opt = gj.pressure.optimal_best_of_n(gj.Normal(), gj.StudentT(3.0))  # doctest: +SKIP
        >>> opt.interior, round(float(opt.pressure))                              # doctest: +SKIP
        (True, 17)
    """
    value, error = as_distributions(value, error)
    grid = np.geomspace(1.0, 4.0**10, 41) if grid is None else np.asarray(grid, float)
    check_param("grid", grid, lo=1.0, owner="optimal_best_of_n")
    check_param("init", init, lo=1.0, lo_open=True, owner="optimal_best_of_n")
    steps = check_positive_int("steps", steps, owner="optimal_best_of_n")
    dtype = float_dtype()
    comp = _compile_objective(lambda n: best_of_n_value(value, error, n), dtype)
    search = maximize(comp.objective, jnp.asarray(init, dtype), transform=best_of_n_transform(),
                      steps=steps, learning_rate=learning_rate, newton_steps=newton_steps,
                      record=False)
    gv = np.array([float(comp.vgh(jnp.asarray(n, dtype))[0]) for n in grid])
    return _conclude("best_of_n", search, grid, gv)


@partial(jax.jit, static_argnames=("steps", "newton_steps"))
def _tilt_search(pool, lower, init, learning_rate, steps, newton_steps):
    u0 = centred(pool.proxy)
    return maximize(lambda b: pool_stats(u0 / b, pool).value, init,
                    transform=bounded_below_transform(lower),
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
        >>> gj.pressure.optimal_tilt(pool).interior
        False
    """
    u = np.asarray(pool.proxy, dtype=float)
    q75, q25 = np.percentile(u, [75, 25])
    scale = max(float(q75 - q25), 1e-300)
    span = max(float(u.max() - u.min()), scale)
    if grid is None:
        grid = np.geomspace(1e-3 * scale, 10.0 * span, 241)
    grid = np.sort(np.asarray(grid, float))
    check_param("grid", grid, lo=0.0, lo_open=True, owner="optimal_tilt")
    steps = check_positive_int("steps", steps, owner="optimal_tilt")
    dtype = pool.proxy.dtype
    stats = tilted_stats(pool, jnp.asarray(grid, dtype))
    valid = np.asarray(stats.ess) >= min_ess
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


@partial(jax.jit, static_argnames=("steps", "newton_steps"))
def _stopping_search(pool, lr, upper, init, learning_rate, steps, newton_steps):
    u0 = centred(pool.proxy)
    return maximize(lambda k: pool_stats(k * lr * u0, pool).value, init,
                    transform=bounded_above_transform(upper),
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
    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner="optimal_stopping")
    max_steps = check_positive_int("max_steps", max_steps, minimum=2, owner="optimal_stopping")
    search_steps = check_positive_int("search_steps", search_steps, owner="optimal_stopping")
    dtype = pool.proxy.dtype
    run = push(pool, beta=0.0, steps=max_steps, learning_rate=learning_rate, geometry="natural")
    grid = np.arange(max_steps + 1, dtype=float)
    valid = np.asarray(run.trace.ess) >= min_ess
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
