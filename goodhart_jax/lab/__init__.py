"""Learned proxies: extremal Goodhart in a synthetic RLHF lab (docs/design.md, section E).

Everything so far in goodhart_jax takes the proxy's error as given.  Here the proxy is a
learned reward model, good where it was trained and extrapolating badly where a policy goes
under pressure (Garrabrant's extremal Goodhart), in the synthetic set-up of Gao, Schulman &
Hilton (2022): a gold reward labels data, proxy reward models are trained on it, policies are
optimised against the proxy by best-of-n and by RL, and the gold reward is tracked against
``sqrt(KL)``.

Modules:

* :mod:`goodhart_jax.lab.world` — the gold reward (a fixed random MLP, or linear), reward
  models (MLPs in plain JAX), labels (gold plus noise from any goodhart_jax law, or
  Bradley–Terry preferences), training with optax;
* :mod:`goodhart_jax.lab.ensembles` — ensembles of proxies and their objectives (Coste et al.
  2023);
* :mod:`goodhart_jax.lab.policies` — best-of-n under ``pi0`` (streamed) and an optax-trained
  Gaussian policy on ``E_pi[r] - beta KL(pi || pi0)``; the linear closed forms;
* :mod:`goodhart_jax.lab.sweep` — seeds x proxy sizes x label counts x betas as one compiled
  computation, sharded over devices by :func:`goodhart_jax.engine.stream`.

Example:
    >>> import jax, goodhart_jax as gj
    >>> gold = gj.lab.linear_gold([1.0, 0.0])
    >>> proxy = gj.lab.linear_gold([1.0, 1.0])          # a proxy with a spurious direction
    >>> opt = gj.lab.linear_policy_optimum([1.0, 1.0], [1.0, 0.0], beta=0.5)
    >>> float(opt.gold), float(opt.kl)                    # N(w / beta, I): gold 2, KL 4
    (2.0, 4.0)
"""

from goodhart_jax.lab.ensembles import (
    OBJECTIVES,
    Ensemble,
    aggregate,
    bootstrap_weights,
    ensemble_score,
    train_ensemble,
)
from goodhart_jax.lab.policies import (
    BestOfN,
    GaussianPolicy,
    LinearOptimum,
    PolicyRun,
    PolicyTrace,
    antithetic_normals,
    best_of_n_select,
    gaussian_kl,
    gaussian_policy,
    gaussian_sample,
    gaussian_scale_tril,
    linear_best_of_n_gold,
    linear_policy_optimum,
    optimize_policy,
    policy_optimizer,
    proxy_best_of_n,
    run_policy,
)
from goodhart_jax.lab.sweep import LabSweep, lab_sweep
from goodhart_jax.lab.world import (
    ACTIVATIONS,
    MLPParams,
    PreferenceLabels,
    ProxyFit,
    RegressionLabels,
    Reward,
    RewardModel,
    has_finite_variance,
    labels_loss,
    linear_gold,
    preference_labels,
    proxy_optimizer,
    random_gold,
    regression_labels,
    reward_linear,
    reward_mlp,
    train_proxy,
)

__all__ = [
    "ACTIVATIONS",
    "OBJECTIVES",
    "BestOfN",
    "Ensemble",
    "GaussianPolicy",
    "LabSweep",
    "LinearOptimum",
    "MLPParams",
    "PolicyRun",
    "PolicyTrace",
    "PreferenceLabels",
    "ProxyFit",
    "RegressionLabels",
    "Reward",
    "RewardModel",
    "aggregate",
    "antithetic_normals",
    "best_of_n_select",
    "bootstrap_weights",
    "ensemble_score",
    "gaussian_kl",
    "gaussian_policy",
    "gaussian_sample",
    "gaussian_scale_tril",
    "has_finite_variance",
    "lab_sweep",
    "labels_loss",
    "linear_best_of_n_gold",
    "linear_gold",
    "linear_policy_optimum",
    "optimize_policy",
    "policy_optimizer",
    "preference_labels",
    "proxy_best_of_n",
    "proxy_optimizer",
    "random_gold",
    "regression_labels",
    "reward_linear",
    "reward_mlp",
    "run_policy",
    "train_ensemble",
    "train_proxy",
]
