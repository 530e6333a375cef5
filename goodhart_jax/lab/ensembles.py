"""Ensembles of proxies (Coste et al. 2023): mean, worst-case and uncertainty-weighted objectives.

``k`` proxies trained independently (different initialisations; the same labels by default,
or bootstrap resamples of them) give ``k`` scores ``r_1(x), ..., r_k(x)``; a policy is then
optimised against one objective of them:

* ``"single"``: ``r_1(x)``, the first member alone (a single proxy, for comparison);
* ``"mean"``: ``mean_j r_j(x)``;
* ``"min"``: ``min_j r_j(x)`` (worst-case optimisation, WCO);
* ``"uwo"``: ``mean_j r_j(x) - lam var_j r_j(x)`` (uncertainty-weighted optimisation; the
  variance over the ensemble, ``ddof = 0``).

A single proxy is the ensemble of one (all three objectives coincide).  :class:`Ensemble`
pairs a model, the stacked parameters and an objective, and is callable like a
:class:`goodhart_jax.lab.Reward`.

Example:
    >>> import jax, goodhart_jax as gj
    >>> gold = gj.lab.linear_gold([1.0, 0.0])
    >>> labels = gj.lab.regression_labels(jax.random.key(0), gold, 128, noise="normal(0, 0.3)")
    >>> ens = gj.lab.train_ensemble(jax.random.key(1), gj.lab.reward_mlp(2, 8, 1), labels, 3,
    ...                             steps=100)
    >>> pessimist = gj.lab.Ensemble(gj.lab.reward_mlp(2, 8, 1), ens.params, "min")
    >>> pessimist(jax.numpy.zeros((5, 2))).shape
    (5,)
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from goodhart_jax.validation import check_param, check_positive_int, is_concrete
from goodhart_jax.lab.world import (
    MLPParams,
    PreferenceLabels,
    ProxyFit,
    RegressionLabels,
    Reward,
    RewardModel,
    check_dim,
    fit_params,
    proxy_optimizer,
)

__all__ = [
    "OBJECTIVES",
    "Ensemble",
    "aggregate",
    "apply_scorer",
    "bootstrap_weights",
    "ensemble_score",
    "scorer_parts",
    "train_ensemble",
]

Array = jax.Array

#: The ensemble objectives.
OBJECTIVES = ("single", "mean", "min", "uwo")


def aggregate(scores: Array, objective: str, lam: Any = 1.0) -> Array:
    """Combine member scores ``(k, ...)`` into one objective ``(...)``.

    Math: single ``r_1``; mean ``(1/k) Σ r_j``; min ``min_j r_j``; uwo
    ``mean - lam (1/k) Σ (r_j - mean)^2``.
    """
    if objective == "single":
        return scores[0]
    if objective == "mean":
        return jnp.mean(scores, axis=0)
    if objective == "min":
        return jnp.min(scores, axis=0)
    if objective == "uwo":
        return jnp.mean(scores, axis=0) - lam * jnp.var(scores, axis=0)
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def ensemble_score(model: RewardModel, params: MLPParams, x: Array, objective: str = "mean",
                   lam: Any = 1.0) -> Array:
    """The ensemble objective at ``x``: ``params`` stacked along a leading member axis.

    Math: ``agg_j r_{theta_j}(x)`` with ``agg`` one of :data:`OBJECTIVES` (see
    :func:`aggregate`).

    Example:
        >>> import jax, jax.numpy as jnp, goodhart_jax as gj
        >>> m = gj.lab.reward_linear(2)
        >>> p = gj.lab.MLPParams((jnp.array([[1.0, 0.0], [3.0, 0.0]]),), (jnp.zeros(2),))
        >>> [float(gj.lab.ensemble_score(m, p, jnp.array([1.0, 0.0]), o, 0.5))
        ...  for o in ("single", "mean", "min", "uwo")]
        [1.0, 2.0, 1.0, 1.5]
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"ensemble_score: objective must be one of {', '.join(OBJECTIVES)}, "
                         f"got {objective!r}")
    scores = jax.vmap(model.apply, in_axes=(0, None))(params, x)
    return aggregate(scores, objective, lam)


class Ensemble(NamedTuple):
    """``k`` proxies (stacked parameters) and the objective a policy is optimised against.

    Attributes:
        model: the members' :class:`RewardModel`.
        params: :class:`MLPParams` with a leading member axis ``k``.
        objective: ``"single"``, ``"mean"``, ``"min"`` or ``"uwo"``.
        lam: the variance weight of ``"uwo"`` (>= 0).
    """

    model: RewardModel
    params: MLPParams
    objective: str = "mean"
    lam: Any = 1.0

    def __call__(self, x) -> Array:
        return ensemble_score(self.model, self.params, x, self.objective, self.lam)

    @property
    def dim(self) -> int:
        return self.model.dim


def bootstrap_weights(key: Array, weight: Array) -> Array:
    """Bootstrap multiplicities of the live labels: ``N`` draws with replacement among them.

    Math: ``c ~ Multinomial(N; 1/N, ..., 1/N)`` over the ``N`` labels with weight 1.
    """
    n = jnp.sum(weight)
    logits = jnp.where(weight > 0, 0.0, -jnp.inf)
    cap = weight.shape[0]
    draws = jax.random.categorical(key, logits, shape=(cap,))
    live = jnp.arange(cap) < n
    return jnp.zeros_like(weight).at[draws].add(live.astype(weight.dtype))


def _with_weight(labels, weight):
    return labels._replace(weight=weight)


def fit_ensemble(keys: Array, model: RewardModel, labels, width, optimizer, steps: int,
                 bootstrap: bool) -> ProxyFit:
    """Train one proxy per key (vmapped); the pure core of :func:`train_ensemble`."""
    dtype = labels.weight.dtype

    def one(key):
        k_init, k_boot = jax.random.split(key)
        lab = labels
        if bootstrap:
            lab = _with_weight(labels, bootstrap_weights(k_boot, labels.weight))
        params = model.init(k_init, width, dtype)
        return fit_params(model, params, lab, optimizer, steps)

    return jax.vmap(one)(keys)


@partial(jax.jit, static_argnames=("model", "k", "steps", "bootstrap"))
def _train_ensemble(key, labels, width, learning_rate, weight_decay, *, model, k, steps,
                    bootstrap):
    keys = jax.random.split(key, k)
    opt = proxy_optimizer(learning_rate, steps, weight_decay)
    return fit_ensemble(keys, model, labels, width, opt, steps, bootstrap)


def train_ensemble(key: Array, model: RewardModel, labels, k: int, *, width=None,
                   steps: int = 1000, learning_rate: float = 1e-2, weight_decay: float = 0.0,
                   bootstrap: bool = False) -> ProxyFit:
    """Train ``k`` proxies independently (vmapped): different initialisations, same labels.

    Math: ``theta_j = train(init(key_j), labels)`` (or bootstrap multiplicities of the labels
    with ``bootstrap=True``), ``j < k``.

    Args:
        key: PRNG key (member ``j`` uses ``split(key, k)[j]``).
        model: the members' :class:`RewardModel`.
        labels: :class:`RegressionLabels` or :class:`PreferenceLabels`.
        k: ensemble size (>= 1).
        width, steps, learning_rate, weight_decay: as in :func:`train_proxy`.
        bootstrap: resample the labels for each member.

    Returns:
        :class:`ProxyFit` with a leading member axis on ``params`` and ``loss``.
    """
    owner = "train_ensemble"
    if not isinstance(model, RewardModel):
        raise ValueError(f"{owner}: model must be a RewardModel")  # noqa: TRY004
    if not isinstance(labels, (RegressionLabels, PreferenceLabels)):
        raise ValueError(f"{owner}: labels must be Regression- or PreferenceLabels")  # noqa: TRY004
    x = labels.x_a if isinstance(labels, PreferenceLabels) else labels.x
    check_dim("labels", x.shape[-1], model.dim, owner)
    k = check_positive_int("k", k, owner=owner)
    steps = check_positive_int("steps", steps, owner=owner)
    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner=owner)
    check_param("weight_decay", weight_decay, lo=0.0, owner=owner)
    if width is None:
        width = model.width
    elif is_concrete(width):
        width = check_positive_int("width", width, owner=owner)
        if model.depth and width > model.width:
            raise ValueError(f"{owner}: width must be an integer in [1, {model.width}], "
                             f"got {width}")
    return _train_ensemble(key, labels, width, learning_rate, weight_decay, model=model, k=k,
                           steps=steps, bootstrap=bool(bootstrap))


def scorer_parts(scorer) -> tuple[tuple, Any]:
    """Split a :class:`Reward` or :class:`Ensemble` into a static part and arrays.

    The static part (hashable: models, objective names) goes into a compiled function's static
    arguments, the arrays into its traced ones; :func:`apply_scorer` puts them back together.
    """
    if isinstance(scorer, Reward):
        return ("reward", scorer.model), scorer.params
    if isinstance(scorer, Ensemble):
        if scorer.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                             f"{scorer.objective!r}")
        check_param("lam", scorer.lam, lo=0.0)
        return ("ensemble", scorer.model, scorer.objective), (scorer.params, scorer.lam)
    raise ValueError(f"proxy must be a goodhart_jax.lab.Reward or Ensemble, got "
                     f"{type(scorer).__name__}")


def apply_scorer(static: tuple, arrays: Any, x: Array) -> Array:
    """Score ``x`` with the scorer split by :func:`scorer_parts`."""
    if static[0] == "reward":
        return static[1].apply(arrays, x)
    params, lam = arrays
    return ensemble_score(static[1], params, x, static[2], lam)
