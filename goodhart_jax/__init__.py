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
from goodhart_jax.selection import (
    best_of_n_quantile,
    best_of_n_value,
    kl_best_of_n,
    sample_best_of_n_value,
)
# Loaded on first use (PEP 562): the command line and the exact-conditioning calls start
# without importing optax, the tail estimators, the lab and the mesa models.
_LAZY = {
    "empirical_best_of_n": "goodhart_jax.empirical_bon:empirical_best_of_n",
    "LawFit": "goodhart_jax.law_fits:LawFit",
    "compare_laws": "goodhart_jax.law_fits:compare_laws",
    "fit_law": "goodhart_jax.law_fits:fit_law",
    "qq_data": "goodhart_jax.law_fits:qq_data",
    "Diagnosis": "goodhart_jax.diagnose:Diagnosis",
    "TailReport": "goodhart_jax.diagnose:TailReport",
    "diagnose": "goodhart_jax.diagnose:diagnose",
    "DoubleBootstrap": "goodhart_jax.tail_estimators:DoubleBootstrap",
    "TailEstimate": "goodhart_jax.tail_estimators:TailEstimate",
    "gpd_tail": "goodhart_jax.tail_estimators:gpd_tail",
    "hill": "goodhart_jax.tail_estimators:hill",
    "hill_double_bootstrap": "goodhart_jax.tail_estimators:hill_double_bootstrap",
    "mean_excess": "goodhart_jax.tail_estimators:mean_excess",
    "moments_estimator": "goodhart_jax.tail_estimators:moments_estimator",
    "weibull_tail": "goodhart_jax.tail_estimators:weibull_tail",
    "PowerLawFit": "goodhart_jax.power_law:PowerLawFit",
    "powerlaw_fit": "goodhart_jax.power_law:powerlaw_fit",
    "Pool": "goodhart_jax.pools:Pool",
    "PolicyStats": "goodhart_jax.pools:PolicyStats",
    "PushResult": "goodhart_jax.pools:PushResult",
    "best_of_n_pool": "goodhart_jax.pools:best_of_n_pool",
    "natural_gradient_betas": "goodhart_jax.pools:natural_gradient_betas",
    "policy_stats": "goodhart_jax.pools:policy_stats",
    "push": "goodhart_jax.pools:push",
    "sample_pool": "goodhart_jax.pools:sample_pool",
    "tilted_logits": "goodhart_jax.pools:tilted_logits",
    "tilted_stats": "goodhart_jax.pools:tilted_stats",
    "LimitTrend": "goodhart_jax.regimes:LimitTrend",
    "Prediction": "goodhart_jax.regimes:Prediction",
    "classify_trend": "goodhart_jax.regimes:classify_trend",
    "numerical_regime": "goodhart_jax.regimes:numerical_regime",
    "predicted_regime": "goodhart_jax.regimes:predicted_regime",
    "GatedProxy": "goodhart_jax.dependence:GatedProxy",
    "dependent_conditional_value": "goodhart_jax.dependence:dependent_conditional_value",
    "dependent_log_tail_prob": "goodhart_jax.dependence:dependent_log_tail_prob",
    "kwa_dependent_proxy": "goodhart_jax.dependence:kwa_dependent_proxy",
    "one_sided_noise": "goodhart_jax.dependence:one_sided_noise",
    "sample_dependent": "goodhart_jax.dependence:sample_dependent",
    "sample_dependent_conditional_value": "goodhart_jax.dependence:sample_dependent_conditional_value",
    "dependence": "goodhart_jax.dependence:",
    "mesa": "goodhart_jax.mesa:",
    "optimize": "goodhart_jax.optimize:",
    "pools": "goodhart_jax.pools:",
    "pressure": "goodhart_jax.pressure:",
    "regimes": "goodhart_jax.regimes:",
    "selection": "goodhart_jax.selection:",
    "sweeps": "goodhart_jax.sweeps:",
    "SearchResult": "goodhart_jax.optimize:SearchResult",
    "maximize": "goodhart_jax.optimize:maximize",
    "OveroptimizationFit": "goodhart_jax.pressure:OveroptimizationFit",
    "PressureOptimum": "goodhart_jax.pressure:PressureOptimum",
    "fit_overoptimization": "goodhart_jax.pressure:fit_overoptimization",
    "optimal_best_of_n": "goodhart_jax.pressure:optimal_best_of_n",
    "optimal_stopping": "goodhart_jax.pressure:optimal_stopping",
    "optimal_threshold": "goodhart_jax.pressure:optimal_threshold",
    "optimal_tilt": "goodhart_jax.pressure:optimal_tilt",
    "lab": "goodhart_jax.lab:",
    "Ensemble": "goodhart_jax.lab:Ensemble",
    "GaussianPolicy": "goodhart_jax.lab:GaussianPolicy",
    "LabSweep": "goodhart_jax.lab:LabSweep",
    "Reward": "goodhart_jax.lab:Reward",
    "RewardModel": "goodhart_jax.lab:RewardModel",
    "lab_sweep": "goodhart_jax.lab:lab_sweep",
    "linear_best_of_n_gold": "goodhart_jax.lab:linear_best_of_n_gold",
    "linear_gold": "goodhart_jax.lab:linear_gold",
    "linear_policy_optimum": "goodhart_jax.lab:linear_policy_optimum",
    "optimize_policy": "goodhart_jax.lab:optimize_policy",
    "preference_labels": "goodhart_jax.lab:preference_labels",
    "proxy_best_of_n": "goodhart_jax.lab:proxy_best_of_n",
    "random_gold": "goodhart_jax.lab:random_gold",
    "regression_labels": "goodhart_jax.lab:regression_labels",
    "reward_linear": "goodhart_jax.lab:reward_linear",
    "reward_mlp": "goodhart_jax.lab:reward_mlp",
    "train_ensemble": "goodhart_jax.lab:train_ensemble",
    "train_proxy": "goodhart_jax.lab:train_proxy",
}


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'goodhart_jax' has no attribute {name!r}")
    import importlib

    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


from goodhart_jax import source_tree, compile_cache  # noqa: E402

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
