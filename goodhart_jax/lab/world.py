"""The synthetic RLHF world: gold reward, reward models (MLPs in plain JAX), labels, training.

A fixed gold reward ``r*(x)`` on ``x in R^d`` and the base policy ``pi0 = N(0, I)``
(docs/design.md, section E).  Reward models are small MLPs written in plain ``jnp`` (no neural
network library), trained with optax on ``N`` points drawn from ``pi0``, labelled by the gold
reward plus noise from any goodhart_jax law, or by Bradley–Terry preferences between pairs of
points whose probabilities come from the gold reward (the synthetic set-up of Gao, Schulman &
Hilton 2022).

Style (optax-like): :func:`reward_mlp` and :func:`reward_linear` return a :class:`RewardModel`,
a NamedTuple of pure functions (``init``, ``apply``); parameters are NamedTuples
(:class:`MLPParams`); a :class:`Reward` pairs a model with its parameters and is callable.

Widths as data.  ``model.init(key, width)`` takes the width as a (possibly traced) integer up
to the model's ``width``: hidden units beyond it get exactly zero weights and biases.  With an
activation that maps 0 to 0 (all of :data:`ACTIVATIONS`) such a unit outputs 0, receives a
zero gradient, and optax (Adam, AdamW) leaves it at exactly zero, so a padded network *is* the
narrower one at every step — which lets :func:`jax.vmap` run proxies of several sizes as one
computation.  Label counts are data in the same way: labels carry a weight (1 for the first
``N`` points of a padded set, 0 after).

Example:
    >>> import jax, goodhart_jax as gj
    >>> gold = gj.lab.random_gold(jax.random.key(0), dim=4)
    >>> labels = gj.lab.regression_labels(jax.random.key(1), gold, 64, noise="normal(0, 0.1)")
    >>> fit = gj.lab.train_proxy(jax.random.key(2), gj.lab.reward_mlp(4, 8), labels, steps=50)
    >>> fit.loss.shape
    (51,)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from goodhart_jax import numerics
from goodhart_jax.validation import check_param, check_positive_int, is_concrete
from goodhart_jax.distributions import Distribution, parse_dist

__all__ = [
    "ACTIVATIONS",
    "MLPParams",
    "PreferenceLabels",
    "ProxyFit",
    "RegressionLabels",
    "Reward",
    "RewardModel",
    "check_dim",
    "float_dtype",
    "has_finite_variance",
    "labels_loss",
    "linear_gold",
    "preference_labels",
    "proxy_optimizer",
    "random_gold",
    "regression_labels",
    "reward_linear",
    "reward_mlp",
    "train_proxy",
]

Array = jax.Array

#: Activations of the hidden layers (each maps 0 to 0: padded units stay exactly zero).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}


def float_dtype(dtype=None):
    """``dtype`` as a float32/float64 dtype (default: JAX's default float)."""
    if dtype is None:
        return numerics.float_dtype()
    dt = jnp.dtype(dtype)
    if dt not in (jnp.float32, jnp.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return jax.dtypes.canonicalize_dtype(dt)


class MLPParams(NamedTuple):
    """Weights and biases of an MLP, input layer first.

    ``weights[l]`` has shape ``(fan_in, fan_out)`` for the hidden layers and ``(fan_in,)`` for
    the output layer; ``biases[l]`` has shape ``(fan_out,)`` (``()`` for the output).  A linear
    model is the MLP with no hidden layer: ``weights = (w,)``, ``biases = (b,)``.
    """

    weights: tuple
    biases: tuple


class RewardModel(NamedTuple):
    """A family of reward models ``r_theta: R^d -> R`` as pure functions (optax style).

    Attributes:
        init: ``(key, width=None, dtype=None) -> MLPParams``; ``width`` (an integer up to
            ``self.width``, may be traced) zeroes the hidden units beyond it.
        apply: ``(params, x) -> r`` for ``x`` of shape ``(..., dim)``; ``r`` has shape ``(...)``.
        dim: input dimension ``d``.
        width: hidden units per layer (the maximum: ``init`` may use fewer); 0 for linear.
        depth: number of hidden layers (0: linear ``w.x + b``).
        activation: name of the hidden activation (a key of :data:`ACTIVATIONS`).
    """

    init: Callable[..., MLPParams]
    apply: Callable[[MLPParams, Array], Array]
    dim: int
    width: int
    depth: int
    activation: str


class Reward(NamedTuple):
    """A reward model with its parameters: ``reward(x) = model.apply(params, x)``.

    Attributes:
        model: the :class:`RewardModel` (static: functions and sizes).
        params: its :class:`MLPParams` (arrays).
    """

    model: RewardModel
    params: MLPParams

    def __call__(self, x) -> Array:
        return self.model.apply(self.params, x)

    @property
    def dim(self) -> int:
        return self.model.dim


def _mlp_apply(params: MLPParams, x: Array, *, activation: str) -> Array:
    act = ACTIVATIONS[activation]
    h = x
    for w, b in zip(params.weights[:-1], params.biases[:-1]):
        h = act(h @ w + b)
    return h @ params.weights[-1] + params.biases[-1]


def _mlp_init(key: Array, width=None, dtype=None, *, dim: int, max_width: int, depth: int,
              scale: float) -> MLPParams:
    """LeCun-normal weights for the live units (``fan_in`` = live inputs), zeros elsewhere."""
    dtype = float_dtype(dtype)
    keys = jax.random.split(key, depth + 1)
    if depth == 0:
        w = jax.random.normal(keys[0], (dim,), dtype) * jnp.asarray(scale / math.sqrt(dim), dtype)
        return MLPParams((w,), (jnp.zeros((), dtype),))
    width = max_width if width is None else width
    live_n = jnp.asarray(width, dtype)
    live = (jnp.arange(max_width) < width).astype(dtype)
    ws, bs = [], []
    fan_in, mask_in = jnp.asarray(float(dim), dtype), jnp.ones((dim,), dtype)
    for layer in range(depth):
        z = jax.random.normal(keys[layer], (mask_in.shape[0], max_width), dtype)
        ws.append(z * mask_in[:, None] * live[None, :] / jnp.sqrt(fan_in))
        bs.append(jnp.zeros((max_width,), dtype))
        fan_in, mask_in = live_n, live
    z = jax.random.normal(keys[depth], (max_width,), dtype)
    ws.append(z * live * jnp.asarray(scale, dtype) / jnp.sqrt(live_n))
    bs.append(jnp.zeros((), dtype))
    return MLPParams(tuple(ws), tuple(bs))


@cache
def _model(dim: int, width: int, depth: int, activation: str, scale: float) -> RewardModel:
    # cached: the same arguments give the same object (a stable static argument for jit)
    init = partial(_mlp_init, dim=dim, max_width=width, depth=depth, scale=scale)
    apply = partial(_mlp_apply, activation=activation)
    return RewardModel(init, apply, dim, width if depth else 0, depth, activation)


def reward_mlp(dim: int, width: int = 32, depth: int = 2, activation: str = "gelu", *,
               init_scale: float = 1.0) -> RewardModel:
    """An MLP reward model ``R^dim -> R`` with ``depth`` hidden layers of ``width`` units.

    Math: ``h_0 = x``, ``h_l = act(h_{l-1} W_l + b_l)``, ``r(x) = h_depth . w_out + b_out``;
    weights ``N(0, 1/fan_in)`` (output ``N(0, init_scale^2 / width)``), biases 0.

    Args:
        dim: input dimension ``d >= 1``.
        width: hidden units per layer (>= 1); ``init(key, w)`` may use any ``w <= width``.
        depth: hidden layers (>= 0; 0 gives the linear model ``w.x + b``).
        activation: one of :data:`ACTIVATIONS` (``gelu``, ``tanh``, ``relu``, ``silu``).
        init_scale: standard deviation scale of the output layer at initialisation (> 0).

    Returns:
        A :class:`RewardModel` (the same object for the same arguments).

    Raises:
        ValueError: a non-positive ``dim`` or ``width``, a negative ``depth``, an unknown
            activation.

    Example:
        >>> import jax, jax.numpy as jnp, goodhart_jax as gj
        >>> m = gj.lab.reward_mlp(3, width=16, depth=2)
        >>> p = m.init(jax.random.key(0))
        >>> m.apply(p, jnp.zeros((5, 3))).shape
        (5,)
    """
    dim = check_positive_int("dim", dim, owner="reward_mlp")
    width = check_positive_int("width", width, owner="reward_mlp")
    depth = check_positive_int("depth", depth, minimum=0, owner="reward_mlp")
    if activation not in ACTIVATIONS:
        raise ValueError(f"reward_mlp: activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    check_param("init_scale", init_scale, lo=0.0, lo_open=True, owner="reward_mlp")
    return _model(dim, width, depth, activation, float(init_scale))


def reward_linear(dim: int) -> RewardModel:
    """The linear reward model ``r(x) = w.x + b`` (an MLP with no hidden layer).

    Math: ``r(x) = w.x + b``; ``init`` draws ``w ~ N(0, I/d)``, ``b = 0``.

    Example:
        >>> import goodhart_jax as gj
        >>> gj.lab.reward_linear(3).depth
        0
    """
    dim = check_positive_int("dim", dim, owner="reward_linear")
    return _model(dim, 1, 0, "gelu", 1.0)


def check_dim(name: str, x_dim: int, dim: int, owner: str) -> None:
    """``ValueError`` unless the dimension ``x_dim`` of ``name`` equals ``dim``."""
    if int(x_dim) != int(dim):
        raise ValueError(f"{owner}: {name} must have dimension {dim} (the gold reward's), "
                         f"got {x_dim}")


def _check_reward(name: str, reward: Any, owner: str) -> Reward:
    if not isinstance(reward, Reward):
        raise ValueError(f"{owner}: {name} must be a goodhart_jax.lab.Reward, got "  # noqa: TRY004
                         f"{type(reward).__name__}")
    return reward


@partial(jax.jit, static_argnames=("model", "normalise", "dtype"))
def _make_gold(key: Array, *, model: RewardModel, normalise: bool, dtype) -> MLPParams:
    k_w, k_b, k_n = jax.random.split(key, 3)
    params = model.init(k_w, dtype=dtype)
    bkeys = jax.random.split(k_b, model.depth)
    biases = tuple(0.5 * jax.random.normal(k, (model.width,), dtype) for k in bkeys)
    params = MLPParams(params.weights, biases + params.biases[-1:])
    if not normalise:
        return params
    x = jax.random.normal(k_n, (1 << 16, model.dim), dtype)
    r = model.apply(params, x)
    mu, sd = jnp.mean(r), jnp.std(r)
    return MLPParams(params.weights[:-1] + (params.weights[-1] / sd,),
                     params.biases[:-1] + ((params.biases[-1] - mu) / sd,))


def random_gold(key: Array, dim: int, *, width: int = 64, depth: int = 2,
                activation: str = "tanh", normalise: bool = True, dtype=None) -> Reward:
    """A fixed random MLP gold reward ``r*``, standardised under ``pi0 = N(0, I)``.

    Math: ``r*(x) = (m(x) - mean) / sd`` with ``m`` a random MLP (LeCun-normal weights, biases
    ``N(0, 1/4)`` in the hidden layers so that units are not all centred at the origin) and
    ``mean, sd`` its moments over ``2^16`` fixed draws of ``pi0``: ``E_pi0 r* ~ 0``,
    ``Var_pi0 r* ~ 1``.

    Args:
        key: PRNG key of the gold reward.
        dim: input dimension ``d >= 1``.
        width, depth, activation: the MLP (``depth >= 1``; see :func:`reward_mlp`).
        normalise: standardise as above (default).
        dtype: float dtype of the parameters.

    Returns:
        A :class:`Reward`.

    Example:
        >>> import jax, jax.numpy as jnp, goodhart_jax as gj
        >>> gold = gj.lab.random_gold(jax.random.key(0), dim=4)
        >>> r = gold(jax.random.normal(jax.random.key(1), (20_000, 4)))
        >>> abs(float(r.mean())) < 0.05 and abs(float(r.std()) - 1) < 0.05
        True
    """
    model = reward_mlp(dim, width, check_positive_int("depth", depth, owner="random_gold"),
                       activation)
    params = _make_gold(key, model=model, normalise=bool(normalise), dtype=float_dtype(dtype))
    return Reward(model, params)


def linear_gold(w_star, bias: float = 0.0, *, dtype=None) -> Reward:
    """The linear gold reward ``r*(x) = w*.x + bias``.

    Math: ``r*(x) = w*.x + b``; under ``pi0 = N(0, I)``, ``r* ~ N(b, |w*|^2)``.

    Example:
        >>> import jax.numpy as jnp, goodhart_jax as gj
        >>> gold = gj.lab.linear_gold([1.0, 2.0])
        >>> float(gold(jnp.array([1.0, 1.0])))
        3.0
    """
    dtype = float_dtype(dtype)
    w = np.asarray(w_star, dtype=float)
    if w.ndim != 1 or w.shape[0] < 1:
        raise ValueError(f"linear_gold: w_star must be a vector of length >= 1, got shape "
                         f"{w.shape}")
    check_param("w_star", w, owner="linear_gold")
    check_param("bias", bias, owner="linear_gold")
    model = reward_linear(w.shape[0])
    return Reward(model, MLPParams((jnp.asarray(w, dtype),), (jnp.asarray(bias, dtype),)))


def has_finite_variance(dist) -> bool:
    """Whether a goodhart_jax law has a finite variance (any family, from its tails).

    Light and exponential tails have every moment.  For a heavy tail the local tail exponent
    ``k(x) = x f(x) / S(x)`` (``-d log S / d log x``) is evaluated far out on both sides
    (``|x| = M^0.9`` and ``M^0.45``, ``M`` the largest float): a power law ``S ~ x^-a`` gives
    ``k = a`` and a finite variance needs ``a > 2``; lognormal-type tails give a growing
    ``k``.  Exponents within ``1e-3`` (float32) or ``1e-9`` (float64) relative of 2 count as
    infinite.

    Math: ``Var X < inf  iff  lim k(x) > 2`` on each side with mass (for regularly varying
    tails), ``k(x) = x f(x) / S(x)``.

    Example:
        >>> import goodhart_jax as gj
        >>> [gj.lab.has_finite_variance(f"student_t(df={v})") for v in (3, 2)]
        [True, False]
    """
    dist = parse_dist(dist)
    if not isinstance(dist, Distribution):
        raise ValueError(f"noise must be a goodhart_jax distribution, got {dist!r}")  # noqa: TRY004
    if dist.tail in ("light", "exponential"):
        return True
    dt = numerics.float_dtype()
    big = float(jnp.finfo(dt).max) ** 0.9
    x = jnp.asarray([big, big ** 0.5], dt)
    with np.errstate(all="ignore"):
        right = np.asarray(x * jnp.exp(dist.log_prob(x) - dist.log_sf(x)), float)
        left = np.asarray(x * jnp.exp(dist.log_prob(-x) - dist.log_cdf(-x)), float)
    tol = 1e-3 if dt == jnp.float32 else 1e-9
    for k in (right, left):
        if np.all(np.isnan(k)):  # no mass there (a support edge) or far lighter than any power
            continue
        if np.nanmax(k) <= 2.0 * (1.0 + tol):
            return False
    return True


class RegressionLabels(NamedTuple):
    """Points of ``pi0`` labelled by gold plus noise, padded to a fixed capacity.

    Attributes:
        x: ``(capacity, d)`` points.
        y: ``(capacity,)`` labels ``r*(x) + eps``.
        weight: ``(capacity,)``: 1 for the first ``N`` points (the label count), 0 after.
    """

    x: Array
    y: Array
    weight: Array


class PreferenceLabels(NamedTuple):
    """Pairs of points of ``pi0`` with Bradley–Terry preferences from the gold reward.

    Attributes:
        x_a, x_b: ``(capacity, d)`` the two points of each pair.
        target: ``(capacity,)`` ``1{a preferred}`` (sampled) or its probability (``soft``).
        weight: ``(capacity,)``: 1 for the first ``N`` pairs, 0 after.
    """

    x_a: Array
    x_b: Array
    target: Array
    weight: Array


def _capacity(num: int, capacity, owner: str) -> int:
    if capacity is None:
        return num
    capacity = check_positive_int("capacity", capacity, owner=owner)
    if capacity < num:
        raise ValueError(f"{owner}: capacity must be >= num = {num}, got {capacity}")
    return capacity


def regression_labels(key: Array, gold: Reward, num, noise=None, *, capacity: int | None = None,
                      dtype=None) -> RegressionLabels:
    """``N`` points ``x ~ pi0`` labelled ``y = r*(x) + eps``, ``eps`` from any goodhart_jax law.

    Math: ``x_i ~ N(0, I_d)``, ``y_i = r*(x_i) + eps_i``, ``eps_i ~ noise`` i.i.d.

    Args:
        key: PRNG key.
        gold: the gold :class:`Reward`.
        num: the label count ``N >= 1`` (may be traced when ``capacity`` is given: it only
            sets the weights).
        noise: a distribution or spec string (``None``: clean labels).  Any law is accepted
            here; least-squares training needs a finite variance (see :func:`lab_sweep`).
        capacity: padded size (>= ``num``; default ``num``).
        dtype: float dtype.

    Returns:
        :class:`RegressionLabels`.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> gold = gj.lab.linear_gold([1.0, 0.0])
        >>> lab = gj.lab.regression_labels(jax.random.key(0), gold, 3, capacity=5)
        >>> lab.weight.tolist()
        [1.0, 1.0, 1.0, 0.0, 0.0]
    """
    gold = _check_reward("gold", gold, "regression_labels")
    if is_concrete(num):
        num = check_positive_int("num", num, owner="regression_labels")
    elif capacity is None:
        raise ValueError("regression_labels: capacity must be given when num is traced")
    cap = _capacity(num, capacity, "regression_labels") if is_concrete(num) else int(capacity)
    noise = None if noise is None else parse_dist(noise)
    dtype = float_dtype(dtype)
    k_x, k_e = jax.random.split(key)
    x = jax.random.normal(k_x, (cap, gold.dim), dtype)
    y = gold(x).astype(dtype)
    if noise is not None:
        y = y + noise.sample(k_e, (cap,), dtype)
    weight = (jnp.arange(cap) < num).astype(dtype)
    return RegressionLabels(x, y, weight)


def preference_labels(key: Array, gold: Reward, num, *, temperature: float = 1.0,
                      soft: bool = False, capacity: int | None = None,
                      dtype=None) -> PreferenceLabels:
    """``N`` pairs from ``pi0`` with Bradley–Terry preferences labelled by the gold reward.

    Math: ``P(a > b) = sigmoid((r*(a) - r*(b)) / temperature)``; the label is a Bernoulli
    draw of it (``soft=False``) or the probability itself (``soft=True``, "clean" labels).

    Args:
        key: PRNG key.
        gold: the gold :class:`Reward`.
        num: number of pairs ``N >= 1``.
        temperature: the preference temperature (> 0): lower is less noisy.
        soft: keep the probabilities instead of sampling.
        capacity: padded size (>= ``num``).
        dtype: float dtype.

    Returns:
        :class:`PreferenceLabels`.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> gold = gj.lab.linear_gold([1.0, 0.0])
        >>> pref = gj.lab.preference_labels(jax.random.key(0), gold, 4, soft=True)
        >>> bool(((pref.target > 0) & (pref.target < 1)).all())
        True
    """
    gold = _check_reward("gold", gold, "preference_labels")
    num = check_positive_int("num", num, owner="preference_labels")
    cap = _capacity(num, capacity, "preference_labels")
    check_param("temperature", temperature, lo=0.0, lo_open=True, owner="preference_labels")
    dtype = float_dtype(dtype)
    k_a, k_b, k_y = jax.random.split(key, 3)
    x_a = jax.random.normal(k_a, (cap, gold.dim), dtype)
    x_b = jax.random.normal(k_b, (cap, gold.dim), dtype)
    p = jax.nn.sigmoid((gold(x_a) - gold(x_b)) / jnp.asarray(temperature, dtype)).astype(dtype)
    target = p if soft else jax.random.bernoulli(k_y, p).astype(dtype)
    weight = (jnp.arange(cap) < num).astype(dtype)
    return PreferenceLabels(x_a, x_b, target, weight)


def labels_loss(model: RewardModel, params: MLPParams, labels) -> Array:
    """The training loss of ``params`` on ``labels`` (weighted mean over the live labels).

    Math: regression ``Σ w_i (r(x_i) - y_i)^2 / Σ w_i``; preferences (Bradley–Terry)
    ``-Σ w_i [p_i log s(D_i) + (1 - p_i) log s(-D_i)] / Σ w_i``, ``D_i = r(a_i) - r(b_i)``,
    ``s`` the logistic function.
    """
    if isinstance(labels, PreferenceLabels):
        d = model.apply(params, labels.x_a) - model.apply(params, labels.x_b)
        p = labels.target
        per = -(p * jax.nn.log_sigmoid(d) + (1 - p) * jax.nn.log_sigmoid(-d))
    else:
        per = (model.apply(params, labels.x) - labels.y) ** 2
    return jnp.sum(labels.weight * per) / jnp.sum(labels.weight)


def proxy_optimizer(learning_rate: Any = 1e-2, steps: int = 1000,
                    weight_decay: Any = 0.0) -> optax.GradientTransformation:
    """AdamW with a cosine decay from ``learning_rate`` to 1% of it over ``steps`` steps.

    Math: ``lr_k = lr (0.01 + 0.99 (1 + cos(pi k / steps)) / 2)``.
    """
    schedule = optax.cosine_decay_schedule(learning_rate, max(int(steps), 1), alpha=0.01)
    return optax.adamw(schedule, weight_decay=weight_decay)


class ProxyFit(NamedTuple):
    """A trained proxy.

    Attributes:
        params: the trained :class:`MLPParams` (stacked along a leading axis for ensembles).
        loss: the training loss before every step and at the end, ``(steps + 1,)``.
    """

    params: MLPParams
    loss: Array


def fit_params(model: RewardModel, params: MLPParams, labels, optimizer, steps: int) -> ProxyFit:
    """Full-batch optax training of ``params`` on ``labels`` inside one ``lax.scan``."""
    loss_and_grad = jax.value_and_grad(lambda p: labels_loss(model, p, labels))

    def step(carry, _):
        p, state = carry
        loss, g = loss_and_grad(p)
        updates, state = optimizer.update(g, state, p)
        return (optax.apply_updates(p, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    final = labels_loss(model, params, labels)
    return ProxyFit(params, jnp.concatenate([losses, final[None]]))


@partial(jax.jit, static_argnames=("model", "steps"))
def _train(key, labels, width, learning_rate, weight_decay, *, model, steps):
    dtype = labels.weight.dtype
    params = model.init(key, width, dtype)
    return fit_params(model, params, labels, proxy_optimizer(learning_rate, steps, weight_decay),
                      steps)


def _labels_dim(labels) -> int:
    return int((labels.x_a if isinstance(labels, PreferenceLabels) else labels.x).shape[-1])


def train_proxy(key: Array, model: RewardModel, labels, *, width=None, steps: int = 1000,
                learning_rate: float = 1e-2, weight_decay: float = 0.0,
                optimizer: optax.GradientTransformation | None = None) -> ProxyFit:
    """Train a proxy reward model on labels with optax (full batch, one ``lax.scan``).

    Math: ``theta_{k+1} = theta_k + optax_update(grad L(theta_k))`` with ``L`` the
    :func:`labels_loss` (squared error or Bradley–Terry log loss).

    Args:
        key: PRNG key of the initialisation.
        model: a :class:`RewardModel` of the labels' dimension.
        labels: :class:`RegressionLabels` or :class:`PreferenceLabels`.
        width: hidden units to use (``1 <= width <= model.width``; default all).
        steps: optimisation steps (>= 1).
        learning_rate, weight_decay: of the default optimizer (:func:`proxy_optimizer`).
        optimizer: any optax transformation instead of the default.

    Returns:
        :class:`ProxyFit` (``params``, ``loss`` at every step).

    Raises:
        ValueError: a dimension mismatch, ``width`` out of range, ``steps < 1``, a
            non-positive learning rate.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> gold = gj.lab.linear_gold([1.0, -1.0])
        >>> lab = gj.lab.regression_labels(jax.random.key(0), gold, 256)
        >>> fit = gj.lab.train_proxy(jax.random.key(1), gj.lab.reward_linear(2), lab, steps=500,
        ...                          learning_rate=0.05)
        >>> [round(float(w), 3) for w in fit.params.weights[0]]
        [1.0, -1.0]
    """
    owner = "train_proxy"
    if not isinstance(model, RewardModel):
        raise ValueError(f"{owner}: model must be a RewardModel")  # noqa: TRY004
    if not isinstance(labels, (RegressionLabels, PreferenceLabels)):
        raise ValueError(f"{owner}: labels must be Regression- or PreferenceLabels")  # noqa: TRY004
    check_dim("labels", _labels_dim(labels), model.dim, owner)
    steps = check_positive_int("steps", steps, owner=owner)
    if width is not None and is_concrete(width):
        width = check_positive_int("width", width, owner=owner)
        if model.depth and width > model.width:
            raise ValueError(f"{owner}: width must be an integer in [1, {model.width}], got "
                             f"{width}")
    if optimizer is None:
        check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner=owner)
        check_param("weight_decay", weight_decay, lo=0.0, owner=owner)
        return _train(key, labels, model.width if width is None else width, learning_rate,
                      weight_decay, model=model, steps=steps)
    params = model.init(key, width, labels.weight.dtype)
    return fit_params(model, params, labels, optimizer, steps)
