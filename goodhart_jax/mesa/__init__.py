"""Model B: the mesa-optimisation simulator (formulas, scatter, deceptive population).

The model (docs/design.md, section B), with ``P`` the optimisation pressure:

* misalignment ``delta = shift (1 - rho)``;
* proxy performance ``P`` (the proxy rises linearly with pressure);
* true performance ``P rho - delta P^2``; the Goodhart gap ``P - true``;
* ``P(deception) = sigmoid(capability / 20 - 5 oversight)``;
* the best pressure ``P* = rho / (2 delta)`` with best true value ``rho^2 / (4 delta)``;
  **unbounded when** ``delta = 0`` (``rho = 1`` or ``shift = 0``): true performance then never
  turns down, so there is no best pressure.  :func:`optimal_pressure` returns ``inf`` there and
  :func:`search_optimal_pressure` reports ``bounded = False`` with ``pressure = inf`` (never a
  finite number).

Domains: ``rho in [0, 1]``, ``shift >= 0``, ``pressure >= 0``, ``capability in [0, 200]``,
``oversight in [0, 1]``.  Every public function validates its concrete arguments and raises
``ValueError`` naming the parameter; then it calls a jitted implementation.  All parameters
broadcast (arrays in, arrays out), and everything is differentiable.  Randomness only through
explicit keys.

Modules: :mod:`~goodhart_jax.mesa.model` (the formulas, the best pressure, the scatter),
:mod:`~goodhart_jax.mesa.population` (a population of learned models, some deceptive),
:mod:`~goodhart_jax.mesa.hubinger` (Hubinger et al.'s deception toy),
:mod:`~goodhart_jax.mesa.dashboard` (the numbers behind the simulator's four panels) and
:mod:`~goodhart_jax.mesa.domains` (the one table of parameter domains).  Every public name is
re-exported here: ``gj.mesa.true_performance``, ``from goodhart_jax.mesa import Population``.

Example:
    >>> import goodhart_jax.mesa as mesa
    >>> float(mesa.optimal_pressure(0.5, 1.0))         # 0.5 / (2 * 0.5)
    0.5
    >>> float(mesa.true_performance(0.5, 0.5, 1.0))    # 0.25 - 0.5 * 0.25
    0.125
"""

from goodhart_jax.mesa.dashboard import DashboardData, dashboard_data, default_pressure_max
from goodhart_jax.mesa.domains import CAPABILITY_MAX, DOMAINS, check_params
from goodhart_jax.mesa.hubinger import ToyPayoffs, hubinger_toy
from goodhart_jax.mesa.model import (
    DEPLOYMENT_OFFSET,
    DEPLOYMENT_WIDTH,
    deception_probability,
    deployment_correlation,
    goodhart_gap,
    has_bounded_optimum,
    misalignment,
    optimal_pressure,
    optimal_true_performance,
    proxy_performance,
    sample_objectives,
    search_optimal_pressure,
    true_performance,
)
from goodhart_jax.mesa.population import (
    Population,
    PopulationSummary,
    population_sweep,
    sample_population,
    summarize_population,
)

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
    "Population",
    "PopulationSummary",
    "sample_population",
    "summarize_population",
    "population_sweep",
    "ToyPayoffs",
    "hubinger_toy",
    "DashboardData",
    "dashboard_data",
    "default_pressure_max",
    "CAPABILITY_MAX",
    "check_params",
    "DOMAINS",
]
