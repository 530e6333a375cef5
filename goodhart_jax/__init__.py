"""goodhart_jax: a differentiable, accelerator-ready simulator of Goodhart's law.

The public API, flat.  See docs/design.md for the models and README.md for a tour.
"""


from goodhart_jax.conditioning import (
    conditional_density,
    conditional_value,
    log_tail_prob,
    log_value_excess,
    value_given_proxy,
)
from goodhart_jax.numerics import Estimate
from goodhart_jax.sampling import sample_conditional_value
from goodhart_jax.distributions import (
    POSITIVE,
    REAL,
    Constraint,
    Distribution,
    Exponential,
    GeneralizedPareto,
    GenNormal,
    Levy,
    LogNormal,
    MeanOf,
    Normal,
    Pareto,
    StudentT,
    Tail,
    mean_of,
    parse_dist,
)
from goodhart_jax.mixture import Mixture
from goodhart_jax.empirical import Empirical
from goodhart_jax.empirical_bon import empirical_best_of_n
from goodhart_jax.law_fits import LawFit, compare_laws, fit_law, qq_data
from goodhart_jax.diagnose import Diagnosis, TailReport, diagnose
from goodhart_jax.tail_estimators import (
    DoubleBootstrap,
    TailEstimate,
    gpd_tail,
    hill,
    hill_double_bootstrap,
    mean_excess,
    moments_estimator,
    weibull_tail,
)
from goodhart_jax.power_law import PowerLawFit, powerlaw_fit
from goodhart_jax.selection import (
    best_of_n_quantile,
    best_of_n_value,
    kl_best_of_n,
    sample_best_of_n_value,
)
from goodhart_jax.pools import (
    Pool,
    PolicyStats,
    PushResult,
    best_of_n_pool,
    natural_gradient_betas,
    policy_stats,
    push,
    sample_pool,
    tilted_logits,
    tilted_stats,
)
from goodhart_jax.regimes import LimitTrend, Prediction, classify_trend, numerical_regime, predicted_regime
from goodhart_jax.dependence import (
    GatedProxy,
    dependent_conditional_value,
    dependent_log_tail_prob,
    kwa_dependent_proxy,
    one_sided_noise,
    sample_dependent,
    sample_dependent_conditional_value,
)
from goodhart_jax import (
    dependence,
    mesa,
    optimize,
    pools,
    pressure,
    regimes,
    selection,
    sweeps,
)
from goodhart_jax.optimize import SearchResult, maximize
from goodhart_jax.pressure import (
    OveroptimizationFit,
    PressureOptimum,
    fit_overoptimization,
    optimal_best_of_n,
    optimal_stopping,
    optimal_threshold,
    optimal_tilt,
)

# learned proxies (docs/design.md, section E): the lab, also as gj.lab.*
from goodhart_jax import lab
from goodhart_jax.lab import (
    Ensemble,
    GaussianPolicy,
    LabSweep,
    Reward,
    RewardModel,
    lab_sweep,
    linear_best_of_n_gold,
    linear_gold,
    linear_policy_optimum,
    optimize_policy,
    preference_labels,
    proxy_best_of_n,
    random_gold,
    regression_labels,
    reward_linear,
    reward_mlp,
    train_ensemble,
    train_proxy,
)

from goodhart_jax import source_tree, compile_cache

compile_cache.enable()  # JAX's persistent compilation cache (GOODHART_JAX_CACHE=0: off)
source_tree.install()  # a checkout on PYTHONPATH: experiments/ is goodhart_jax.experiments


def _version() -> str:
    """The installed distribution's version (``0+unknown`` when goodhart_jax is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("goodhart_jax")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

__all__ = [
    "Diagnosis",
    "TailReport",
    "diagnose",
    "Distribution",
    "Constraint",
    "REAL",
    "POSITIVE",
    "Tail",
    "Normal",
    "StudentT",
    "GenNormal",
    "Exponential",
    "LogNormal",
    "Pareto",
    "Levy",
    "GeneralizedPareto",
    "Mixture",
    "Empirical",
    # tail estimators (docs/design.md, section D)
    "TailEstimate",
    "DoubleBootstrap",
    "hill",
    "hill_double_bootstrap",
    "moments_estimator",
    "gpd_tail",
    "weibull_tail",
    "mean_excess",
    "PowerLawFit",
    "powerlaw_fit",
    "parse_dist",
    "Estimate",
    "conditional_value",
    "conditional_density",
    "log_tail_prob",
    "sample_conditional_value",
    "value_given_proxy",
    "log_value_excess",
    "predicted_regime",
    "numerical_regime",
    "classify_trend",
    "Prediction",
    "LimitTrend",
    "GatedProxy",
    "kwa_dependent_proxy",
    "one_sided_noise",
    "dependent_conditional_value",
    "dependent_log_tail_prob",
    "sample_dependent",
    "sample_dependent_conditional_value",
    "best_of_n_value",
    "best_of_n_quantile",
    "kl_best_of_n",
    "sample_best_of_n_value",
    "empirical_best_of_n",
    "LawFit",
    "fit_law",
    "compare_laws",
    "qq_data",
    "MeanOf",
    "mean_of",
    "Pool",
    "PolicyStats",
    "PushResult",
    "sample_pool",
    "policy_stats",
    "tilted_logits",
    "tilted_stats",
    "natural_gradient_betas",
    "push",
    "best_of_n_pool",
    "fit_overoptimization",
    "OveroptimizationFit",
    "optimal_threshold",
    "optimal_best_of_n",
    "optimal_tilt",
    "optimal_stopping",
    "PressureOptimum",
    "maximize",
    "SearchResult",
    "mesa",
    "optimize",
    "pressure",
    "pools",
    "selection",
    "sweeps",
    "regimes",
    "dependence",
    # learned proxies
    "lab",
    "Reward",
    "RewardModel",
    "reward_mlp",
    "reward_linear",
    "random_gold",
    "linear_gold",
    "regression_labels",
    "preference_labels",
    "train_proxy",
    "train_ensemble",
    "Ensemble",
    "GaussianPolicy",
    "optimize_policy",
    "proxy_best_of_n",
    "linear_policy_optimum",
    "linear_best_of_n_gold",
    "lab_sweep",
    "LabSweep",
]
