"""goodhart_jax: a differentiable, accelerator-ready simulator of Goodhart's law.

The public API, flat.  See DESIGN.md for the models and README.md for a tour.
"""

from goodhart_jax.conditioning import conditional_value, log_tail_prob, value_given_proxy
from goodhart_jax.sampling import Estimate, sample_conditional_value
from goodhart_jax.distributions import (
    Distribution,
    Exponential,
    GenNormal,
    Levy,
    LogNormal,
    Normal,
    Pareto,
    StudentT,
    parse_dist,
)
from goodhart_jax import mesa, optimize  # noqa: E402  (modules as namespaces: gj.mesa.*)
from goodhart_jax.optimize import SearchResult, maximize

__version__ = "0.1.0"

__all__ = [
    "Distribution",
    "Normal",
    "StudentT",
    "GenNormal",
    "Exponential",
    "LogNormal",
    "Pareto",
    "Levy",
    "parse_dist",
    "Estimate",
    "conditional_value",
    "log_tail_prob",
    "sample_conditional_value",
    "value_given_proxy",
    "mesa",
    "optimize",
    "maximize",
    "SearchResult",
]
