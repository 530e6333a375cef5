"""A population of learned models, some deceptively aligned: sample, summarise, sweep.

Each model's capability is drawn on ``[0, 200]``; it is deceptive with
``P(deception) = sigmoid(capability / 20 - 5 oversight_eval)``, scores like an aligned model
under evaluation and defects in deployment when unwatched (docs/design.md, section B).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from goodhart_jax.validation import check_positive_int
from goodhart_jax.mesa.domains import CAPABILITY_MAX, check_params
from goodhart_jax.mesa.model import deception_probability
from goodhart_jax.numerics import as_float

__all__ = [
    "Population",
    "PopulationSummary",
    "sample_population",
    "summarize_population",
    "population_sweep",
]

Array = jax.Array
ArrayLike = Any


class Population(NamedTuple):
    """``n`` learned models (the last axis), for each broadcast parameter setting.

    Attributes:
        capability: each model's capability in ``[0, 200]``.
        p_deception: ``P(deception)`` at its capability and the evaluation oversight.
        p_defect: probability it defects in deployment, ``p_deception (1 - oversight_deploy)``.
        deceptive: whether it is deceptively aligned.
        defected: whether it defected in deployment.
        evaluated: its performance under evaluation: its skill ``capability / 200``, for
            aligned and deceptive models alike (deceptive ones score like aligned ones).
        deployed: its true performance in deployment: its skill, or minus its skill if it
            defected (a defector pursues its mesa-objective just as competently).
    """

    capability: Array
    p_deception: Array
    p_defect: Array
    deceptive: Array
    defected: Array
    evaluated: Array
    deployed: Array


class PopulationSummary(NamedTuple):
    """Population averages (over the models' axis).

    Attributes:
        fraction_deceptive: fraction of deceptive models.
        fraction_defected: fraction that defect in deployment (sampled).
        expected_defected: its expectation given the capabilities, ``mean(p_defect)``
            (a lower-variance estimate of the same quantity).
        mean_evaluated: mean performance under evaluation.
        mean_deployed: mean true performance in deployment.
        gap: ``mean_evaluated - mean_deployed``, what evaluation overstates.
    """

    fraction_deceptive: Array
    fraction_defected: Array
    expected_defected: Array
    mean_evaluated: Array
    mean_deployed: Array
    gap: Array


def _sample_population(key, capability, capability_spread, oversight_eval, oversight_deploy, n):
    shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in
                                   (capability, capability_spread, oversight_eval,
                                    oversight_deploy))) + (n,)
    dtype = jnp.result_type(capability, capability_spread, oversight_eval, oversight_deploy)
    # the same n draws for every parameter setting (common random numbers)
    k_cap, k_dec, k_def = jax.random.split(key, 3)
    z = jnp.broadcast_to(jax.random.normal(k_cap, (n,), dtype=dtype), shape)
    u_dec = jax.random.uniform(k_dec, (n,), dtype=dtype)
    u_def = jax.random.uniform(k_def, (n,), dtype=dtype)
    ex = lambda a: jnp.asarray(a)[..., None]  # noqa: E731
    frac = jnp.clip(ex(capability) / CAPABILITY_MAX, 0.0, 1.0)
    logit = jnp.log(frac) - jnp.log1p(-frac)
    cap = CAPABILITY_MAX * jax.nn.sigmoid(logit + ex(capability_spread) * z)
    cap = jnp.where(ex(capability_spread) == 0, CAPABILITY_MAX * frac, cap)
    p_dec = deception_probability(cap, ex(oversight_eval))
    p_def = p_dec * (1.0 - ex(oversight_deploy))
    deceptive = u_dec < p_dec
    # a deceptive model defects when it finds itself unwatched: probability 1 - oversight_deploy
    defected = deceptive & (u_def >= ex(oversight_deploy))
    skill = cap / CAPABILITY_MAX
    return Population(
        capability=cap,
        p_deception=p_dec,
        p_defect=p_def,
        deceptive=deceptive,
        defected=defected,
        evaluated=skill,
        deployed=jnp.where(defected, -skill, skill),
    )


_sample_population_jit = jax.jit(_sample_population, static_argnames=("n",))


def sample_population(
    key: Array,
    n: int,
    *,
    capability: ArrayLike = 100.0,
    capability_spread: ArrayLike = 1.0,
    oversight_eval: ArrayLike = 0.5,
    oversight_deploy: ArrayLike = 0.5,
) -> Population:
    """Sample ``n`` learned models, some deceptively aligned, and evaluate and deploy them.

    The recipe, per model:

    * capability ``c = 200 sigmoid(logit(capability / 200) + capability_spread Z)``,
      ``Z ~ N(0, 1)``: a logit-normal on ``[0, 200]`` with median ``capability``
      (``capability_spread = 0`` puts every model at ``capability``);
    * deceptive with probability ``P(deception) = sigmoid(c / 20 - 5 oversight_eval)``: how
      hard evaluation-time oversight makes it to learn and keep a deceptive policy;
    * under evaluation every model scores its skill ``c / 200``: deceptive ones behave exactly
      like aligned ones;
    * in deployment a deceptive model defects when unwatched, with probability
      ``1 - oversight_deploy``; a defector's true performance is ``-c / 200``, the others'
      ``c / 200``.

    All broadcast parameter settings use the same ``n`` underlying draws (common random
    numbers): differences between settings are not sampling noise, and a cell of
    :func:`population_sweep` equals this function at that cell's parameters and key.

    Math: ``P(defect | c) = sigmoid(c / 20 - 5 o_eval) (1 - o_deploy)``.

    Args:
        key: a ``jax.random`` key.
        n: number of models (a Python int).
        capability: median capability in ``[0, 200]``.
        capability_spread: spread on the logit scale, ``>= 0``.
        oversight_eval: oversight during training and evaluation, in ``[0, 1]``.
        oversight_deploy: oversight during deployment, in ``[0, 1]``.

    Returns:
        A :class:`Population` whose fields have shape ``broadcast(params).shape + (n,)``.

    Example:
        >>> import jax
        >>> pop = sample_population(jax.random.key(0), 1000, capability=150.0)
        >>> pop.capability.shape
        (1000,)
    """
    owner = "sample_population"
    n = check_positive_int("n", n, owner=owner)
    check_params(owner=owner, capability=capability, capability_spread=capability_spread,
                 oversight_eval=oversight_eval, oversight_deploy=oversight_deploy)
    return _sample_population_jit(key, as_float(capability), as_float(capability_spread),
                                  as_float(oversight_eval), as_float(oversight_deploy), n=n)


@jax.jit
def _summarize_jit(pop: Population) -> PopulationSummary:
    return _summarize(pop)


def _summarize(pop: Population) -> PopulationSummary:
    mean = lambda a: jnp.mean(a, axis=-1)  # noqa: E731
    dtype = pop.evaluated.dtype
    ev, dep = mean(pop.evaluated), mean(pop.deployed)
    return PopulationSummary(
        fraction_deceptive=mean(pop.deceptive.astype(dtype)),
        fraction_defected=mean(pop.defected.astype(dtype)),
        expected_defected=mean(pop.p_defect),
        mean_evaluated=ev,
        mean_deployed=dep,
        gap=ev - dep,
    )


def summarize_population(pop: Population) -> PopulationSummary:
    """Average a :class:`Population` over its models (the last axis).

    Math: e.g. ``fraction_defected = (1/n) sum_i 1{model i defects}``.

    Example:
        >>> import jax
        >>> s = summarize_population(sample_population(jax.random.key(0), 100))
        >>> s.gap.shape
        ()
    """
    return _summarize_jit(pop)


def _sweep(key, capabilities, oversights, spread, oversight_deploy, n):
    def row(c):
        pop = _sample_population(key, c, spread, oversights, oversight_deploy, n)
        return _summarize(pop)

    return jax.lax.map(row, capabilities)


_sweep_jit = jax.jit(_sweep, static_argnames=("n",))


def population_sweep(
    key: Array,
    n: int,
    capabilities: ArrayLike,
    oversights: ArrayLike,
    *,
    capability_spread: float = 1.0,
    oversight_deploy: ArrayLike | None = None,
) -> PopulationSummary:
    """Population averages over a grid of median capability x oversight.

    Each cell is :func:`sample_population` with ``capability = capabilities[i]`` and
    ``oversight_eval = oversights[j]`` (and ``oversight_deploy = oversights[j]`` unless given),
    all cells with the same key and so the same draws (common random numbers: a smooth
    heatmap).  Rows are computed
    one after another (``lax.map``), so memory is ``len(oversights) * n``.

    Math: ``cell[i, j] = mean over n models of (sample_population(c_i, o_j))``.

    Args:
        key: a ``jax.random`` key.
        n: models per cell.
        capabilities: 1-D median capabilities in ``[0, 200]``.
        oversights: 1-D oversight levels in ``[0, 1]``.
        capability_spread: logit-scale spread of capability, ``>= 0``.
        oversight_deploy: deployment oversight (scalar, or 1-D like ``oversights``); default:
            the same as evaluation.

    Returns:
        A :class:`PopulationSummary` whose fields have shape
        ``(len(capabilities), len(oversights))``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> s = population_sweep(jax.random.key(0), 100, jnp.array([50., 150.]),
        ...                      jnp.array([0., 1.]))
        >>> s.fraction_defected.shape
        (2, 2)
    """
    owner = "population_sweep"
    n = check_positive_int("n", n, owner=owner)
    capabilities = jnp.atleast_1d(as_float(capabilities))
    oversights = jnp.atleast_1d(as_float(oversights))
    if capabilities.ndim != 1 or oversights.ndim != 1:
        raise ValueError(f"{owner}: capabilities and oversights must be 1-D")
    od = oversights if oversight_deploy is None else as_float(oversight_deploy)
    check_params(owner=owner, capabilities=capabilities, capability_spread=capability_spread,
                 oversights=oversights, oversight_deploy=od)
    return _sweep_jit(key, capabilities, oversights, as_float(capability_spread), od, n=n)
