"""Everything the simulator's four panels show, for one setting of its five sliders.

:func:`dashboard_data` computes, in one jitted call, the curves of panels 1-3 (proxy and true
performance, the Goodhart gap, ``P(deception)``) and the scatter of panel 4
(:func:`goodhart_jax.mesa.model.sample_objectives`); plots and the explorer draw it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from goodhart_jax.validation import check_positive_int
from goodhart_jax.mesa.domains import CAPABILITY_MAX, check_params
from goodhart_jax.mesa.model import (
    deception_probability,
    deployment_correlation,
    goodhart_gap,
    has_bounded_optimum,
    optimal_pressure,
    optimal_true_performance,
    sample_objectives,
    true_performance,
)
from goodhart_jax.numerics import as_float

__all__ = ["DashboardData", "dashboard_data", "default_pressure_max"]

Array = jax.Array
ArrayLike = Any


class DashboardData(NamedTuple):
    """The numbers behind the four panels of the simulator (for plots and the explorer).

    Attributes:
        pressures: the pressure grid of panels 1-2.
        proxy, true, gap: proxy performance, true performance and the Goodhart gap on it.
        pressure, true_at_pressure, gap_at_pressure: the chosen pressure and its values.
        optimal_pressure, optimal_true, bounded: ``P*``, ``true(P*)`` and whether ``P*`` is
            finite (``inf`` values where it is not).
        capabilities: the capability grid of panel 3 (``[0, 200]``).
        oversight_levels: the oversight levels of the reference curves.
        deception: ``P(deception)`` on ``oversight_levels x capabilities``.
        deception_curve: ``P(deception)`` at the chosen oversight on ``capabilities``.
        capability, oversight, deception_at: the chosen point and its ``P(deception)``.
        train_proxy, train_true, deploy_proxy, deploy_true: the scatter clusters.
        train_corr, deploy_corr: their sample correlations.
        deploy_corr_exact: :func:`deployment_correlation`.
        rho, shift: the model parameters.
    """

    pressures: Array
    proxy: Array
    true: Array
    gap: Array
    pressure: Array
    true_at_pressure: Array
    gap_at_pressure: Array
    optimal_pressure: Array
    optimal_true: Array
    bounded: Array
    capabilities: Array
    oversight_levels: Array
    deception: Array
    deception_curve: Array
    capability: Array
    oversight: Array
    deception_at: Array
    train_proxy: Array
    train_true: Array
    deploy_proxy: Array
    deploy_true: Array
    train_corr: Array
    deploy_corr: Array
    deploy_corr_exact: Array
    rho: Array
    shift: Array


def _corr(x, y):
    xc = x - jnp.mean(x, axis=-1, keepdims=True)
    yc = y - jnp.mean(y, axis=-1, keepdims=True)
    return jnp.sum(xc * yc, axis=-1) / jnp.sqrt(jnp.sum(xc**2, axis=-1) * jnp.sum(yc**2, axis=-1))


def _dashboard(key, pressure, rho, shift, capability, oversight, pressure_max, levels,
               n_grid, n_capability, n_scatter):
    dtype = jnp.result_type(pressure, rho, shift)
    ps = jnp.linspace(0.0, 1.0, n_grid, dtype=dtype) * pressure_max
    caps = jnp.linspace(0.0, CAPABILITY_MAX, n_capability, dtype=dtype)
    k_train, k_dep = jax.random.split(key)
    tp, tt = sample_objectives(k_train, n_scatter, rho, shift, deployment=False)
    dp, dt = sample_objectives(k_dep, n_scatter, rho, shift, deployment=True)
    return DashboardData(
        pressures=ps,
        proxy=ps,
        true=true_performance(ps, rho, shift),
        gap=goodhart_gap(ps, rho, shift),
        pressure=pressure,
        true_at_pressure=true_performance(pressure, rho, shift),
        gap_at_pressure=goodhart_gap(pressure, rho, shift),
        optimal_pressure=optimal_pressure(rho, shift),
        optimal_true=optimal_true_performance(rho, shift),
        bounded=has_bounded_optimum(rho, shift),
        capabilities=caps,
        oversight_levels=levels,
        deception=deception_probability(caps[None, :], levels[:, None]),
        deception_curve=deception_probability(caps, oversight),
        capability=capability,
        oversight=oversight,
        deception_at=deception_probability(capability, oversight),
        train_proxy=tp,
        train_true=tt,
        deploy_proxy=dp,
        deploy_true=dt,
        train_corr=_corr(tp, tt),
        deploy_corr=_corr(dp, dt),
        deploy_corr_exact=deployment_correlation(rho, shift),
        rho=rho,
        shift=shift,
    )


_dashboard_jit = jax.jit(_dashboard, static_argnames=("n_grid", "n_capability", "n_scatter"))


def default_pressure_max(pressure: float, rho: float, shift: float) -> float:
    """A pressure range that shows the optimum and the chosen pressure (concrete values).

    Math: ``max(2.5 P*, 1.25 P, ...)``; ``max(2 P, 10)`` when ``P*`` is unbounded.
    """
    delta = float(shift) * (1.0 - float(rho))
    p_star = float(rho) / (2.0 * delta) if delta > 0 else math.inf
    pressure = float(pressure)
    if math.isfinite(p_star):
        top = max(2.5 * p_star, 1.25 * pressure)
    else:
        top = max(2.0 * pressure, 10.0)
    return top if top > 0 else 1.0


def dashboard_data(
    key: Array,
    *,
    pressure: float = 1.0,
    rho: float = 0.7,
    shift: float = 1.0,
    capability: float = 100.0,
    oversight: float = 0.5,
    pressure_max: float | None = None,
    oversight_levels: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    n_grid: int = 201,
    n_capability: int = 201,
    n_scatter: int = 300,
) -> DashboardData:
    """Compute everything the four panels show, for one setting of the five sliders.

    Panels: (1) proxy ``P`` and true ``P rho - delta P^2`` against pressure with ``P*``;
    (2) the Goodhart gap against pressure; (3) ``sigmoid(c / 20 - 5 o)`` against capability
    for several oversight levels and the chosen one; (4) the proxy-true scatter of
    :func:`sample_objectives`, training with ``jax.random.split(key)[0]`` and deployment with
    ``jax.random.split(key)[1]``.

    Math: see :func:`true_performance`, :func:`goodhart_gap`, :func:`deception_probability`,
    :func:`sample_objectives`.

    Args:
        key: a ``jax.random`` key for the scatter.
        pressure, rho, shift, capability, oversight: the five sliders (scalars).
        pressure_max: right end of the pressure grid (default :func:`default_pressure_max`).
        oversight_levels: oversight levels of the reference curves of panel 3.
        n_grid, n_capability, n_scatter: grid sizes and points per scatter cluster.

    Returns:
        :class:`DashboardData`.

    Example:
        >>> import jax
        >>> d = dashboard_data(jax.random.key(0), rho=0.5, shift=1.0)
        >>> float(d.optimal_pressure)
        0.5
    """
    owner = "dashboard_data"
    check_params(owner=owner, pressure=pressure, rho=rho, shift=shift, capability=capability,
                 oversight=oversight, oversight_levels=oversight_levels)
    n_grid = check_positive_int("n_grid", n_grid, minimum=2, owner=owner)
    n_capability = check_positive_int("n_capability", n_capability, minimum=2, owner=owner)
    n_scatter = check_positive_int("n_scatter", n_scatter, minimum=2, owner=owner)
    if pressure_max is None:
        pressure_max = default_pressure_max(pressure, rho, shift)
    check_params(owner=owner, pressure_max=pressure_max)
    args = [as_float(a) for a in (pressure, rho, shift, capability, oversight, pressure_max)]
    if any(a.ndim for a in args):
        raise ValueError(f"{owner}: the slider values must be scalars")
    levels = jnp.atleast_1d(as_float(oversight_levels))
    return _dashboard_jit(key, *args, levels, n_grid=n_grid, n_capability=n_capability,
                          n_scatter=n_scatter)
