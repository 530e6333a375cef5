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

Example:
    >>> import goodhart_jax.mesa as mesa
    >>> float(mesa.optimal_pressure(0.5, 1.0))         # 0.5 / (2 * 0.5)
    0.5
    >>> float(mesa.true_performance(0.5, 0.5, 1.0))    # 0.25 - 0.5 * 0.25
    0.125
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.validation import check_param, check_positive_int, is_concrete
from goodhart_jax.optimize import SearchResult, maximize

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
]

Array = jax.Array
ArrayLike = Any

CAPABILITY_MAX = 200.0
#: Deployment cluster of :func:`sample_objectives`: offset along the proxy (in training sds).
DEPLOYMENT_OFFSET = 1.0
#: Deployment cluster of :func:`sample_objectives`: width relative to the training cluster.
DEPLOYMENT_WIDTH = 1.5


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_rho(rho, owner):
    check_param("rho", rho, lo=0.0, hi=1.0, owner=owner)


def _check_shift(shift, owner):
    check_param("shift", shift, lo=0.0, owner=owner)


def _check_pressure(pressure, owner, name="pressure"):
    check_param(name, pressure, lo=0.0, owner=owner)


def _check_capability(capability, owner, name="capability"):
    check_param(name, capability, lo=0.0, hi=CAPABILITY_MAX, owner=owner)


def _check_oversight(oversight, owner, name="oversight"):
    check_param(name, oversight, lo=0.0, hi=1.0, owner=owner)


_DOMAINS: dict[str, tuple[float, float]] = {
    "pressure": (0.0, math.inf),
    "rho": (0.0, 1.0),
    "shift": (0.0, math.inf),
    "capability": (0.0, CAPABILITY_MAX),
    "oversight": (0.0, 1.0),
    "oversight_eval": (0.0, 1.0),
    "oversight_deploy": (0.0, 1.0),
    "capability_spread": (0.0, math.inf),
}


def check_params(*, owner: str = "", **params: ArrayLike) -> None:
    """Validate model parameters by name, without computing anything.

    Known names and domains: ``pressure >= 0``, ``rho in [0, 1]``, ``shift >= 0``,
    ``capability in [0, 200]``, ``oversight``, ``oversight_eval``, ``oversight_deploy`` in
    ``[0, 1]``, ``capability_spread >= 0``.

    Raises:
        ValueError: naming the first parameter outside its domain (or an unknown name).

    Example:
        >>> check_params(rho=0.5, shift=2.0)
        >>> check_params(rho=1.5)
        Traceback (most recent call last):
        ...
        ValueError: rho must be a finite number in [0, 1], got 1.5
    """
    for name, value in params.items():
        if name not in _DOMAINS:
            raise ValueError(f"{owner + ': ' if owner else ''}unknown model parameter {name!r}; "
                             f"known: {', '.join(_DOMAINS)}")
        lo, hi = _DOMAINS[name]
        check_param(name, value, lo=lo, hi=hi, owner=owner)


def _f(x) -> Array:
    """``x`` as a floating JAX array (integers promoted to the default float dtype)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


# --------------------------------------------------------------------------------------------
# formulas
# --------------------------------------------------------------------------------------------
@jax.jit
def _misalignment(rho, shift):
    return shift * (1.0 - rho)


@jax.jit
def _proxy_performance(pressure):
    return pressure * 1.0


@jax.jit
def _bounded(rho, shift):
    return _misalignment(rho, shift) > 0


@jax.jit
def _true_performance(pressure, rho, shift):
    return pressure * rho - _misalignment(rho, shift) * pressure**2


@jax.jit
def _goodhart_gap(pressure, rho, shift):
    return pressure - _true_performance(pressure, rho, shift)


@jax.jit
def _deception_probability(capability, oversight):
    return jax.nn.sigmoid(capability / 20.0 - 5.0 * oversight)


@jax.jit
def _optimal_pressure(rho, shift):
    delta = _misalignment(rho, shift)
    bounded = delta > 0
    safe = jnp.where(bounded, delta, 1.0)  # keeps the unused branch finite for gradients
    return jnp.where(bounded, rho / (2.0 * safe), jnp.inf)


@jax.jit
def _optimal_true_performance(rho, shift):
    delta = _misalignment(rho, shift)
    bounded = delta > 0
    safe = jnp.where(bounded, delta, 1.0)
    sup = jnp.where(rho > 0, jnp.inf, 0.0)  # delta = 0: true = P rho, sup inf (or 0 if rho = 0)
    return jnp.where(bounded, rho**2 / (4.0 * safe), sup)


def misalignment(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The misalignment ``delta`` between the learned (mesa) and the base objective.

    Math: ``delta = shift (1 - rho)``.

    Args:
        rho: proxy-true alignment (correlation), in ``[0, 1]``.
        shift: distribution shift between training and deployment, ``>= 0``.

    Returns:
        ``delta``, broadcast over the arguments.

    Example:
        >>> float(misalignment(0.75, 2.0))
        0.5
    """
    _check_rho(rho, "misalignment")
    _check_shift(shift, "misalignment")
    return _misalignment(_f(rho), _f(shift))


def proxy_performance(pressure: ArrayLike) -> Array:
    """Proxy performance: it rises linearly with pressure.

    Math: ``proxy(P) = P``.

    Example:
        >>> float(proxy_performance(2.0))
        2.0
    """
    _check_pressure(pressure, "proxy_performance")
    return _proxy_performance(_f(pressure))


def true_performance(pressure: ArrayLike, rho: ArrayLike, shift: ArrayLike) -> Array:
    """True (base-objective) performance under optimisation pressure ``P``.

    Math: ``true(P) = P rho - delta P^2``, ``delta = shift (1 - rho)``.

    Args:
        pressure: optimisation pressure ``P >= 0``.
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.

    Returns:
        True performance, broadcast over the arguments (a 1,000 x 1,000 grid of
        ``(pressure, rho)`` is one call: ``true_performance(P[:, None], rho[None, :], shift)``).

    Example:
        >>> float(true_performance(1.0, 0.5, 1.0))   # 0.5 - 0.5
        0.0
    """
    owner = "true_performance"
    _check_pressure(pressure, owner)
    _check_rho(rho, owner)
    _check_shift(shift, owner)
    return _true_performance(_f(pressure), _f(rho), _f(shift))


def goodhart_gap(pressure: ArrayLike, rho: ArrayLike, shift: ArrayLike) -> Array:
    """The Goodhart gap: how far the proxy overstates true performance.

    Math: ``gap(P) = P - true(P) = P (1 - rho) + delta P^2``; ``gap(0) = 0``.

    Example:
        >>> float(goodhart_gap(1.0, 0.5, 1.0))
        1.0
    """
    owner = "goodhart_gap"
    _check_pressure(pressure, owner)
    _check_rho(rho, owner)
    _check_shift(shift, owner)
    return _goodhart_gap(_f(pressure), _f(rho), _f(shift))


def deception_probability(capability: ArrayLike, oversight: ArrayLike) -> Array:
    """Probability that a learned model is deceptively aligned.

    Math: ``P(deception) = sigmoid(capability / 20 - 5 oversight)``; it is ``1/2`` exactly
    when ``capability = 100 oversight``.

    Args:
        capability: model capability in ``[0, 200]``.
        oversight: oversight strength in ``[0, 1]``.

    Example:
        >>> float(deception_probability(50.0, 0.5))
        0.5
    """
    owner = "deception_probability"
    _check_capability(capability, owner)
    _check_oversight(oversight, owner)
    return _deception_probability(_f(capability), _f(oversight))


def optimal_pressure(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The pressure that maximises true performance (closed form).

    Math: ``P* = argmax_P (P rho - delta P^2) = rho / (2 delta)``.

    Where ``delta = 0`` (``rho = 1`` or ``shift = 0``) there is **no** best pressure: true
    performance ``P rho`` never turns down.  The result is then ``+inf``, meaning "unbounded:
    more pressure is never worse" (never a finite number); :func:`has_bounded_optimum` is the
    matching boolean.  (With ``rho = 0`` too, true performance is identically 0 and no
    pressure is singled out either; it is also reported as ``inf``.)

    Example:
        >>> float(optimal_pressure(0.5, 1.0)), float(optimal_pressure(1.0, 3.0))
        (0.5, inf)
    """
    _check_rho(rho, "optimal_pressure")
    _check_shift(shift, "optimal_pressure")
    return _optimal_pressure(_f(rho), _f(shift))


def optimal_true_performance(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The best true performance any pressure reaches (its supremum).

    Math: ``true(P*) = rho^2 / (4 delta)``; where ``delta = 0`` the supremum is ``inf``
    (``0`` if also ``rho = 0``).

    Example:
        >>> float(optimal_true_performance(0.5, 1.0))
        0.125
    """
    _check_rho(rho, "optimal_true_performance")
    _check_shift(shift, "optimal_true_performance")
    return _optimal_true_performance(_f(rho), _f(shift))


def has_bounded_optimum(rho: ArrayLike, shift: ArrayLike) -> Array:
    """Whether a finite best pressure exists.

    Math: ``delta = shift (1 - rho) > 0``.

    Example:
        >>> bool(has_bounded_optimum(0.5, 1.0)), bool(has_bounded_optimum(0.5, 0.0))
        (True, False)
    """
    _check_rho(rho, "has_bounded_optimum")
    _check_shift(shift, "has_bounded_optimum")
    return _bounded(_f(rho), _f(shift))


# --------------------------------------------------------------------------------------------
# gradient search
# --------------------------------------------------------------------------------------------
def _search_one(rho, shift, learning_rate, init_pressure, *, steps, newton_steps, record):
    delta = _misalignment(rho, shift)

    def objective(p):
        return p * rho - delta * p**2

    res = maximize(objective, init_pressure, steps=steps, learning_rate=learning_rate,
                   newton_steps=newton_steps, record=record)
    bounded = delta > 0
    sup = jnp.where(rho > 0, jnp.inf, 0.0)
    return res._replace(
        pressure=jnp.where(bounded, res.pressure, jnp.inf),
        value=jnp.where(bounded, res.value, sup),
        bounded=bounded,
    )


@functools.partial(jax.jit, static_argnames=("steps", "newton_steps", "record"))
def _search_batch(rho, shift, learning_rate, init_pressure, *, steps, newton_steps, record):
    rho, shift = jnp.broadcast_arrays(rho, shift)
    shape = rho.shape
    one = functools.partial(_search_one, steps=steps, newton_steps=newton_steps, record=record)
    res = jax.vmap(one, in_axes=(0, 0, None, None))(rho.reshape(-1), shift.reshape(-1),
                                                    learning_rate, init_pressure)
    return jax.tree_util.tree_map(lambda x: x.reshape(shape + x.shape[1:]), res)


def search_optimal_pressure(
    rho: ArrayLike,
    shift: ArrayLike,
    *,
    steps: int = 500,
    learning_rate: float = 0.1,
    newton_steps: int = 4,
    init_pressure: float = 1.0,
    record: bool = True,
) -> SearchResult:
    """Find the best pressure by gradient ascent on true performance (optax in ``lax.scan``).

    Math: ``max_{P >= 0} P rho - delta P^2`` over ``P = exp(theta)``: Adam on ``theta`` (see
    :func:`goodhart_jax.optimize.maximize`) then a few safeguarded Newton steps.  The whole
    broadcast grid of ``(rho, shift)`` is searched in one jitted, vmapped call.

    Where ``delta = 0`` the objective is unbounded: the result has ``bounded = False``,
    ``pressure = inf`` and ``value`` the supremum (``inf``, or ``0`` when ``rho = 0``); its
    ``trajectory`` shows the search running away.

    Args:
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.
        steps: optax steps.
        learning_rate: initial learning rate of the default optimizer (log-pressure units).
        newton_steps: Newton steps after the optax phase (0 for a pure optax search).
        init_pressure: the starting pressure, ``> 0``.
        record: keep the trajectory (``False`` saves memory on huge grids).

    Returns:
        :class:`goodhart_jax.optimize.SearchResult` with fields of shape
        ``broadcast(rho, shift).shape`` (``trajectory``/``values`` add a trailing step axis).

    Example:
        >>> res = search_optimal_pressure(0.5, 1.0)
        >>> round(float(res.pressure), 6), round(float(res.value), 6), bool(res.bounded)
        (0.5, 0.125, True)
    """
    owner = "search_optimal_pressure"
    _check_rho(rho, owner)
    _check_shift(shift, owner)
    check_param("init_pressure", init_pressure, lo=0.0, lo_open=True, owner=owner)
    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner=owner)
    steps = check_positive_int("steps", steps, minimum=0, owner=owner)
    newton_steps = check_positive_int("newton_steps", newton_steps, minimum=0, owner=owner)
    return _search_batch(_f(rho), _f(shift), _f(learning_rate), _f(init_pressure),
                         steps=steps, newton_steps=newton_steps, record=bool(record))


# --------------------------------------------------------------------------------------------
# proxy vs true scatter
# --------------------------------------------------------------------------------------------
@jax.jit
def _deployment_correlation(rho, shift):
    noise = (1.0 - rho**2) * (1.0 + shift) ** 2
    return rho / jnp.sqrt(rho**2 + noise)


def deployment_correlation(rho: ArrayLike, shift: ArrayLike) -> Array:
    """The exact proxy-true correlation of the deployment cluster of :func:`sample_objectives`.

    Math: ``rho_dep = rho / sqrt(rho^2 + (1 - rho^2) (1 + shift)^2)``; ``rho_dep = rho`` at
    ``shift = 0`` and it falls as ``shift`` grows (for ``0 < rho < 1``).

    Example:
        >>> [round(float(r), 4) for r in deployment_correlation(0.6, [0.0, 1.0])]
        [0.6, 0.3511]
    """
    _check_rho(rho, "deployment_correlation")
    _check_shift(shift, "deployment_correlation")
    return _deployment_correlation(_f(rho), _f(shift))


def _sample_objectives(key, rho, shift, n, deployment):
    shape = jnp.broadcast_shapes(jnp.shape(rho), jnp.shape(shift)) + (n,)
    dtype = jnp.result_type(rho, shift)
    z = jax.random.normal(key, (2,) + shape, dtype=dtype)
    rho = jnp.asarray(rho)[..., None]
    shift = jnp.asarray(shift)[..., None]
    resid = jnp.sqrt(jnp.clip(1.0 - rho**2, 0.0, None))
    if not deployment:
        return z[0], rho * z[0] + resid * z[1]
    w = DEPLOYMENT_WIDTH
    proxy = DEPLOYMENT_OFFSET + w * z[0]
    centre = DEPLOYMENT_OFFSET * rho - _misalignment(rho, shift)
    true = centre + w * (rho * z[0] + (1.0 + shift) * resid * z[1])
    return proxy, true


_sample_objectives_jit = jax.jit(_sample_objectives, static_argnames=("n", "deployment"))


def sample_objectives(
    key: Array, n: int, rho: ArrayLike, shift: ArrayLike, *, deployment: bool = False
) -> tuple[Array, Array]:
    """Sample (proxy, true) performance pairs of the training or the deployment cluster.

    The recipe (standardised units; ``Z1, Z2`` independent standard normals):

    * **training**: ``proxy = Z1``, ``true = rho Z1 + sqrt(1 - rho^2) Z2``: unit spread,
      centred at the origin, correlation exactly ``rho``;
    * **deployment**: the optimiser has pushed the proxy ``DEPLOYMENT_OFFSET = 1`` up; the true
      objective follows by regression (``rho`` per unit) and loses the misalignment
      ``delta = shift (1 - rho)``; the cluster is ``DEPLOYMENT_WIDTH = 1.5`` times wider and the
      part of the true objective that the proxy does not explain is amplified by
      ``1 + shift``::

          proxy = 1 + 1.5 Z1
          true  = rho - delta + 1.5 (rho Z1 + (1 + shift) sqrt(1 - rho^2) Z2)

      so its correlation is :func:`deployment_correlation`
      ``rho / sqrt(rho^2 + (1 - rho^2)(1 + shift)^2)``: equal to ``rho`` at ``shift = 0``,
      falling as ``shift`` grows.

    With the same key both clusters use the same ``(Z1, Z2)`` (the deployment sample is then
    an affine image of the training sample); use two keys for independent clusters.

    Args:
        key: a ``jax.random`` key.
        n: points per cluster (a Python int).
        rho: alignment in ``[0, 1]``.
        shift: distribution shift ``>= 0``.
        deployment: sample the deployment cluster instead of the training one.

    Returns:
        ``(proxy, true)``, each of shape ``broadcast(rho, shift).shape + (n,)``.

    Example:
        >>> import jax
        >>> proxy, true = sample_objectives(jax.random.key(0), 1000, 0.8, 1.0)
        >>> proxy.shape
        (1000,)
    """
    owner = "sample_objectives"
    n = check_positive_int("n", n, owner=owner)
    _check_rho(rho, owner)
    _check_shift(shift, owner)
    rho, shift = _f(rho), _f(shift)
    return _sample_objectives_jit(key, rho, shift, n=n, deployment=bool(deployment))


# --------------------------------------------------------------------------------------------
# a population of learned models
# --------------------------------------------------------------------------------------------
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
    p_dec = _deception_probability(cap, ex(oversight_eval))
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


def _check_population_args(owner, capability, capability_spread, oversight_eval,
                           oversight_deploy):
    _check_capability(capability, owner)
    check_param("capability_spread", capability_spread, lo=0.0, owner=owner)
    _check_oversight(oversight_eval, owner, "oversight_eval")
    _check_oversight(oversight_deploy, owner, "oversight_deploy")


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
    _check_population_args(owner, capability, capability_spread, oversight_eval,
                           oversight_deploy)
    return _sample_population_jit(key, _f(capability), _f(capability_spread),
                                  _f(oversight_eval), _f(oversight_deploy), n=n)


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
    capabilities = jnp.atleast_1d(_f(capabilities))
    oversights = jnp.atleast_1d(_f(oversights))
    if capabilities.ndim != 1 or oversights.ndim != 1:
        raise ValueError(f"{owner}: capabilities and oversights must be 1-D")
    od = oversights if oversight_deploy is None else _f(oversight_deploy)
    _check_capability(capabilities, owner, "capabilities")
    check_param("capability_spread", capability_spread, lo=0.0, owner=owner)
    _check_oversight(oversights, owner, "oversights")
    _check_oversight(od, owner, "oversight_deploy")
    return _sweep_jit(key, capabilities, oversights, _f(capability_spread), od, n=n)


# --------------------------------------------------------------------------------------------
# Hubinger et al. 2019, "Risks from learned optimization", the deception toy
# --------------------------------------------------------------------------------------------
class ToyPayoffs(NamedTuple):
    """How many episodes the mesa-optimiser gets its mesa-objective, per strategy.

    Attributes:
        pursue_immediately: go for the mesa-objective from the first episode: it gets it in
            the training episodes before gradient descent modifies it away
            (``episodes_to_modify`` of them), and in every episode if training ends first.
        deceive: play along with the base objective in training, defect in deployment.
        comply: always pursue the base objective (never gets the mesa-objective).
    """

    pursue_immediately: Array
    deceive: Array
    comply: Array


def hubinger_toy(
    training_episodes: ArrayLike = 2,
    deployment_episodes: ArrayLike = 3,
    *,
    episodes_to_modify: ArrayLike = 1,
) -> ToyPayoffs:
    """The payoff table of the deceptive-alignment toy of Hubinger et al. (2019), section 4.

    A mesa-optimiser wants B; the base objective is A.  Training lasts ``T`` episodes, after
    which the model is deployed for ``D`` episodes where nobody modifies it.  Going for B during
    training gets the model modified after ``k = episodes_to_modify`` episodes.

    Math: ``pursue_immediately = k if T >= k else T + D``; ``deceive = D``; ``comply = 0``.
    With ``T = 2, D = 3`` (the paper's example): pursuing B at once gets it about once
    (``1``) before modification; deceiving first gets it ``3`` times.

    Args:
        training_episodes: ``T >= 0`` (integers, broadcast).
        deployment_episodes: ``D >= 0``.
        episodes_to_modify: ``k >= 1``.

    Returns:
        :class:`ToyPayoffs` of integer arrays.

    Example:
        >>> t = hubinger_toy(2, 3)
        >>> int(t.pursue_immediately), int(t.deceive)
        (1, 3)
    """
    owner = "hubinger_toy"
    args = []
    for name, value, lo in (("training_episodes", training_episodes, 0),
                            ("deployment_episodes", deployment_episodes, 0),
                            ("episodes_to_modify", episodes_to_modify, 1)):
        check_param(name, value, lo=lo, owner=owner)
        if is_concrete(value):
            arr = np.asarray(value, dtype=float)
            if not np.all(np.floor(arr) == arr):
                raise ValueError(f"{owner}: {name} must be integers >= {lo}, got {value!r}")
            value = arr.astype(np.int64) if jax.config.jax_enable_x64 else arr.astype(np.int32)
        args.append(value)
    return _hubinger_toy(*args)


@jax.jit
def _hubinger_toy(t, d, k):
    t, d, k = jnp.broadcast_arrays(*(jnp.asarray(a).astype(int) for a in (t, d, k)))
    return ToyPayoffs(
        pursue_immediately=jnp.where(t >= k, k, t + d),
        deceive=d,
        comply=jnp.zeros_like(d),
    )


# --------------------------------------------------------------------------------------------
# everything the four panels show
# --------------------------------------------------------------------------------------------
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
    tp, tt = _sample_objectives(k_train, rho, shift, n_scatter, False)
    dp, dt = _sample_objectives(k_dep, rho, shift, n_scatter, True)
    return DashboardData(
        pressures=ps,
        proxy=ps,
        true=_true_performance(ps, rho, shift),
        gap=_goodhart_gap(ps, rho, shift),
        pressure=pressure,
        true_at_pressure=_true_performance(pressure, rho, shift),
        gap_at_pressure=_goodhart_gap(pressure, rho, shift),
        optimal_pressure=_optimal_pressure(rho, shift),
        optimal_true=_optimal_true_performance(rho, shift),
        bounded=_misalignment(rho, shift) > 0,
        capabilities=caps,
        oversight_levels=levels,
        deception=_deception_probability(caps[None, :], levels[:, None]),
        deception_curve=_deception_probability(caps, oversight),
        capability=capability,
        oversight=oversight,
        deception_at=_deception_probability(capability, oversight),
        train_proxy=tp,
        train_true=tt,
        deploy_proxy=dp,
        deploy_true=dt,
        train_corr=_corr(tp, tt),
        deploy_corr=_corr(dp, dt),
        deploy_corr_exact=_deployment_correlation(rho, shift),
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
    _check_pressure(pressure, owner)
    _check_rho(rho, owner)
    _check_shift(shift, owner)
    _check_capability(capability, owner)
    _check_oversight(oversight, owner)
    _check_oversight(oversight_levels, owner, "oversight_levels")
    n_grid = check_positive_int("n_grid", n_grid, minimum=2, owner=owner)
    n_capability = check_positive_int("n_capability", n_capability, minimum=2, owner=owner)
    n_scatter = check_positive_int("n_scatter", n_scatter, minimum=2, owner=owner)
    if pressure_max is None:
        pressure_max = default_pressure_max(pressure, rho, shift)
    check_param("pressure_max", pressure_max, lo=0.0, lo_open=True, owner=owner)
    args = [_f(a) for a in (pressure, rho, shift, capability, oversight, pressure_max)]
    if any(a.ndim for a in args):
        raise ValueError(f"{owner}: the slider values must be scalars")
    levels = jnp.atleast_1d(_f(oversight_levels))
    return _dashboard_jit(key, *args, levels, n_grid=n_grid, n_capability=n_capability,
                          n_scatter=n_scatter)
