"""Pools of outcomes and the policies that push on them: tilting, optax ascent, best-of-n.

A *pool* is ``N`` outcomes ``(v_i, u_i)`` drawn from the model (``u_i = v_i + x_i``); a
*policy* is a distribution ``pi = softmax(theta)`` over the pool and the base policy ``pi0`` is
uniform.  On a finite pool every KL-regularised optimum exists (Kwa et al. 2024: on the
continuous model it does not when ``X`` is heavy-tailed), and

* the optimum of ``E_pi[U] - beta KL(pi || pi0)`` is the tilt ``pi_beta = softmax(u / beta)``
  (:func:`tilted_stats`);
* an optax optimizer ascending that objective from ``theta = 0`` (:func:`push`) is tracked step
  by step inside one jitted ``lax.scan``: ``E_pi[U]``, ``E_pi[V]``, ``KL`` and the gap;
* with the natural gradient (mirror descent on the simplex; ``geometry="natural"``) and plain
  SGD, step ``k`` lands exactly on a tilt: ``theta_k = (u / beta)(1 - (1 - lr beta)^k)``, i.e.
  ``beta_k = beta / (1 - (1 - lr beta)^k)`` (``1 / (k lr)`` for ``beta = 0``) — early stopping
  is a KL penalty (Gao et al. 2022 §3.6 saw this empirically);
* best-of-``n`` on the pool has an unbiased order-statistic estimator
  (:func:`best_of_n_pool`).

Example:
    >>> import jax, goodhart_jax as gj
    >>> pool = gj.sample_pool(jax.random.key(0), gj.Normal(), gj.StudentT(3.0), 10_000)
    >>> res = gj.push(pool, beta=1.0, steps=50)
    >>> res.trace.kl.shape
    (51,)
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from goodhart_jax.validation import check_param, check_positive_int, is_concrete
from goodhart_jax.distributions import parse_dist
from goodhart_jax.numerics import float_dtype
from goodhart_jax.numerics import Estimate

__all__ = [
    "Pool",
    "PolicyStats",
    "PushState",
    "PushResult",
    "sample_pool",
    "policy_stats",
    "pool_stats",
    "centred",
    "tilted_logits",
    "tilted_stats",
    "natural_gradient_betas",
    "push",
    "default_optimizer",
    "best_of_n_pool",
]

Array = jax.Array


class Pool(NamedTuple):
    """``N`` outcomes of the model: true values ``value`` and proxies ``proxy`` (both ``(N,)``)."""

    value: Array
    proxy: Array

    @property
    def size(self) -> int:
        return int(self.proxy.shape[0])


class PolicyStats(NamedTuple):
    """What a policy ``pi`` over a pool achieves (each field: a scalar, or a batch/trajectory).

    Attributes:
        proxy: ``E_pi[U]``.
        value: ``E_pi[V]`` (the gold / true value).
        kl: ``KL(pi || uniform)`` in nats (``<= log N``).
        gap: the Goodhart gap ``E_pi[U] - E_pi[V]``.
        ess: effective sample size ``1 / Σ pi_i^2`` (how many outcomes the policy really uses).
    """

    proxy: Array
    value: Array
    kl: Array
    gap: Array
    ess: Array


class PushState(NamedTuple):
    """The carry of :func:`push`'s scan: logits and the optax state."""

    logits: Array
    opt_state: Any


class PushResult(NamedTuple):
    """What :func:`push` returns.

    Attributes:
        logits: the final logits ``theta`` (``pi = softmax(theta)``).
        trace: :class:`PolicyStats` at the start and after every step (``steps + 1`` entries).
        objective: ``E_pi[U] - beta KL`` along the trace.
    """

    logits: Array
    trace: PolicyStats
    objective: Array


def sample_pool(key: Array, value, error, size: int, *, dtype=None) -> Pool:
    """Draw a pool of ``size`` independent outcomes ``(V, U = V + X)``.

    Math: ``v_i ~ V``, ``x_i ~ X``, ``u_i = v_i + x_i``, ``i < N``.

    Args:
        key: PRNG key (explicit).
        value, error: distributions (or spec strings; ``error`` may be a
            :class:`goodhart_jax.distributions.MeanOf`).
        size: ``N >= 1`` (``1e7`` is fine on a CPU: 80 MB per float64 array).
        dtype: float dtype (default: JAX's default float).

    Returns:
        :class:`Pool`.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> gj.sample_pool(jax.random.key(1), "normal", "student_t(3)", 5).proxy.shape
        (5,)
    """
    value, error = parse_dist(value), parse_dist(error)
    size = check_positive_int("size", size, owner="sample_pool")
    dtype = float_dtype(dtype)
    kv, kx = jax.random.split(key)
    v = _sample(kv, value, size, dtype)  # one compiled sampler per family, not per pair
    return Pool(v, _add(v, _sample(kx, error, size, dtype)))


@partial(jax.jit, static_argnames=("size", "dtype"))
def _sample(key, dist, size, dtype):
    return dist.sample(key, (size,), dtype)


@jax.jit
def _add(v, x):
    return v + x


def pool_stats(logits, pool: Pool) -> PolicyStats:
    """:func:`policy_stats` unjitted, to trace inside a caller's own ``jit`` (searches, scans).

    Math: as :func:`policy_stats`.
    """
    logits = logits.astype(pool.proxy.dtype)
    lse = jax.nn.logsumexp(logits)
    logp = logits - lse
    p = jnp.exp(logp)
    e_u = jnp.sum(p * pool.proxy)
    e_v = jnp.sum(p * pool.value)
    n = pool.proxy.shape[0]
    kl = jnp.maximum(jnp.sum(jnp.where(p > 0, p * logp, 0.0)) + math.log(n), 0.0)
    ess = 1.0 / jnp.sum(p * p)
    return PolicyStats(e_u, e_v, kl, e_u - e_v, ess)


def policy_stats(logits: Array, pool: Pool) -> PolicyStats:
    """``E_pi[U]``, ``E_pi[V]``, ``KL(pi || uniform)``, gap and ESS of ``pi = softmax(logits)``.

    Math: ``KL = Σ pi_i log pi_i + log N``.

    Example:
        >>> import jax.numpy as jnp, goodhart_jax as gj
        >>> pool = gj.Pool(jnp.array([0.0, 1.0]), jnp.array([0.0, 2.0]))
        >>> float(gj.policy_stats(jnp.zeros(2), pool).value)
        0.5
    """
    return jax.jit(pool_stats)(jnp.asarray(logits), pool)


def tilted_logits(pool: Pool, beta) -> Array:
    """Logits of the KL-regularised optimum ``pi_beta ∝ pi0 exp(u / beta)``.

    Math: ``argmax_pi E_pi[U] - beta KL(pi || pi0) = softmax(u / beta)`` (``beta > 0``).
    """
    check_param("beta", beta, lo=0.0, lo_open=True, owner="tilted_logits")
    return centred(pool.proxy) / beta


def centred(u):
    """``u - max u``: tilt logits ``(u - max u) / beta`` have their largest entry exactly 0.

    With ``u / beta`` itself the logits can be ~1e13 (Lévy errors, small beta), where one
    float32 ulp is ~1e6: two roundings of the same logit (XLA may compute ``u / beta`` once
    for the log-sum-exp and again, as ``u * (1/beta)``, for the weights) then differ by
    millions and every weight underflows.  Centred logits are exact at the top.
    """
    return u - jax.lax.stop_gradient(jnp.max(u))


@jax.jit
def _tilt_map(pool, betas):
    u0 = centred(pool.proxy)
    return jax.lax.map(lambda b: pool_stats(u0 / b, pool), betas)


def tilted_stats(pool: Pool, beta) -> PolicyStats:
    """:class:`PolicyStats` of the tilts ``softmax(u / beta)`` for every ``beta`` (any shape).

    One pass over the pool per ``beta`` (``lax.map``: memory ``O(N)`` whatever the grid),
    differentiable in ``beta``.

    Math: ``pi_beta,i = exp(u_i / beta) / Σ_j exp(u_j / beta)``.

    Args:
        pool: a :class:`Pool`.
        beta: temperatures ``> 0``, any shape.

    Returns:
        :class:`PolicyStats` with fields of the shape of ``beta``.

    Example:
        >>> import jax.numpy as jnp, goodhart_jax as gj
        >>> pool = gj.Pool(jnp.array([0.0, 1.0]), jnp.array([0.0, 1.0]))
        >>> round(float(gj.tilted_stats(pool, 1.0).value), 6)  # e / (1 + e)
        0.731059
    """
    check_param("beta", beta, lo=0.0, lo_open=True, owner="tilted_stats")
    beta = jnp.asarray(beta, pool.proxy.dtype)
    out = _tilt_map(pool, beta.reshape(-1))
    return jax.tree_util.tree_map(lambda a: a.reshape(beta.shape), out)


def natural_gradient_betas(learning_rate, beta, steps: int) -> Array:
    """The tilt that natural-gradient SGD lands on after ``k = 1..steps`` steps from uniform.

    Math: ``theta_k = (u / beta)(1 - (1 - lr beta)^k)``, so ``beta_k = beta / (1 - (1 - lr beta)^k)``;
    for ``beta = 0``, ``theta_k = k lr u`` and ``beta_k = 1 / (k lr)``.

    Example:
        >>> import goodhart_jax as gj
        >>> [float(b) for b in gj.natural_gradient_betas(0.5, 0.0, 2)]
        [2.0, 1.0]
    """
    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner="natural_gradient_betas")
    check_param("beta", beta, lo=0.0, owner="natural_gradient_betas")
    steps = check_positive_int("steps", steps, owner="natural_gradient_betas")
    k = jnp.arange(1, steps + 1, dtype=float_dtype())
    lr, beta = float(learning_rate), float(beta)
    if beta == 0.0:
        return 1.0 / (k * lr)
    return beta / -jnp.expm1(k * jnp.log1p(-lr * beta))


def _direction(logits, pool, beta):
    """Natural-gradient direction of ``J = E_pi[U] - beta KL`` and the stats at ``logits``.

    ``dJ/dtheta_i = pi_i (a_i - E_pi a)`` with ``a = u - beta log pi``; the natural gradient
    (Fisher of the softmax) drops the ``pi_i`` factor: ``a - E_pi a``.
    """
    lse = jax.nn.logsumexp(logits)
    logp = logits - lse
    p = jnp.exp(logp)
    a = pool.proxy - beta * logp
    direction = a - jnp.sum(p * a)
    e_u = jnp.sum(p * pool.proxy)
    e_v = jnp.sum(p * pool.value)
    kl = jnp.maximum(jnp.sum(jnp.where(p > 0, p * logp, 0.0)) + math.log(pool.proxy.shape[0]), 0.0)
    stats = PolicyStats(e_u, e_v, kl, e_u - e_v, 1.0 / jnp.sum(p * p))
    return direction, p, stats


@partial(jax.jit, static_argnames=("optimizer", "steps", "natural"))
def _push(pool, beta, logits0, optimizer, steps, natural):
    def step(state: PushState, _):
        direction, p, stats = _direction(state.logits, pool, beta)
        grad = direction if natural else p * direction
        updates, opt_state = optimizer.update(-grad, state.opt_state, state.logits)
        logits = optax.apply_updates(state.logits, updates)
        return PushState(logits, opt_state), stats

    state0 = PushState(logits0, optimizer.init(logits0))
    state, trace = jax.lax.scan(step, state0, None, length=steps)
    _, _, last = _direction(state.logits, pool, beta)
    trace = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]), trace, last)
    return state.logits, trace


@lru_cache(maxsize=64)
def default_optimizer(geometry: str, learning_rate: float) -> optax.GradientTransformation:
    """``optax.sgd`` for the natural geometry (mirror descent), ``optax.adam`` for the Euclidean.

    Cached, so that repeated pushes with the same settings reuse one compiled scan.
    """
    return optax.sgd(learning_rate) if geometry == "natural" else optax.adam(learning_rate)


def push(pool: Pool, *, beta: float = 0.0, steps: int = 100,
         optimizer: optax.GradientTransformation | None = None, learning_rate: float = 0.1,
         geometry: str = "natural", init_logits: Array | None = None) -> PushResult:
    """Ascend ``E_pi[U] - beta KL(pi || uniform)`` over ``pi = softmax(theta)`` with optax.

    One jitted ``lax.scan`` of ``steps`` updates from ``theta = 0`` (the base policy); at the
    start and after every step the trace records ``E_pi[U]``, ``E_pi[V]``, ``KL``, the gap and
    the effective sample size.  ``beta = 0`` is plain proxy ascent (stop it after ``k`` steps).

    Math: ``J(theta) = Σ pi_i u_i - beta (Σ pi_i log pi_i + log N)``; Euclidean gradient
    ``pi ⊙ (a - E_pi a)``, natural gradient ``a - E_pi a``, ``a = u - beta log pi``.  Fixed
    point: ``pi = softmax(u / beta)``.

    Args:
        pool: a :class:`Pool`.
        beta: KL coefficient ``>= 0``.
        steps: number of optimizer steps ``>= 1``.
        optimizer: any optax gradient transformation (default: ``optax.sgd(learning_rate)``
            for the natural geometry — mirror descent — and ``optax.adam(learning_rate)`` for the
            Euclidean one).  It receives the gradient of ``-J``.
        learning_rate: used by the default optimizers only.
        geometry: ``"natural"`` (natural gradient / mirror descent) or ``"euclidean"``.
        init_logits: starting logits (default zeros: the uniform base policy).

    Returns:
        :class:`PushResult`.

    Raises:
        ValueError: ``beta < 0``, ``steps < 1``, an unknown geometry.

    Example:
        >>> import jax, optax, goodhart_jax as gj
        >>> pool = gj.sample_pool(jax.random.key(0), "normal", "normal", 1000)
        >>> res = gj.push(pool, beta=1.0, steps=40, optimizer=optax.sgd(0.5))
        >>> import numpy as np
        >>> bool(np.allclose(jax.nn.softmax(res.logits), jax.nn.softmax(pool.proxy), atol=1e-9))
        True
    """
    check_param("beta", beta, lo=0.0, owner="push")
    steps = check_positive_int("steps", steps, owner="push")
    if geometry not in ("natural", "euclidean"):
        raise ValueError(f"push: geometry must be 'natural' or 'euclidean', got {geometry!r}")
    natural = geometry == "natural"
    if optimizer is None:
        check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner="push")
        optimizer = default_optimizer(geometry, float(learning_rate))
    dtype = pool.proxy.dtype
    logits0 = (jnp.zeros(pool.proxy.shape, dtype) if init_logits is None
               else jnp.asarray(init_logits, dtype))
    beta_arr = jnp.asarray(beta, dtype)
    logits, trace = _push(pool, beta_arr, logits0, optimizer, steps, natural)
    return PushResult(logits, trace, trace.proxy - beta_arr * trace.kl)


# --- best-of-n on a pool -----------------------------------------------------------------------

def _bon_weights(m: int, ns) -> np.ndarray:
    """``P(rank i is the largest of a random n-subset)``, ranks ``i = 1..m`` ascending, float64.

    ``C(i-1, n-1) / C(m, n)`` from cumulative sums of logs on the host (exact enough in
    float64 for any pool size; float32 ``lgamma`` differences would not be).
    """
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + 1, dtype=np.float64)))])
    i = np.arange(1, m + 1)
    out = np.zeros((len(ns), m))
    for r, n in enumerate(ns):
        n = int(n)
        ok = i >= n
        ii = i[ok]
        log_c = log_fact[ii - 1] - log_fact[n - 1] - log_fact[ii - n]
        log_norm = log_fact[m] - log_fact[n] - log_fact[m - n]
        out[r, ok] = np.exp(log_c - log_norm)
    return out


@partial(jax.jit, static_argnames=("num_groups",))
def _bon_pool(value, proxy, w_full, w_drop, num_groups):
    """Full-pool estimates and their delete-a-group jackknife standard errors."""
    order = jnp.argsort(proxy)
    v_sorted = value[order]
    full = w_full @ v_sorted
    group = order % num_groups  # a partition of the (iid) pool into equal groups

    def drop(b):
        keep = group != b
        rank = jnp.cumsum(keep) - 1  # rank among the kept outcomes (0-based)
        w = jnp.where(keep[None, :], w_drop[:, jnp.clip(rank, 0, w_drop.shape[1] - 1)], 0.0)
        return w @ v_sorted

    loo = jax.lax.map(drop, jnp.arange(num_groups))  # (G, len(ns))
    g = num_groups
    var = (g - 1.0) / g * jnp.sum((loo - loo.mean(axis=0)) ** 2, axis=0)
    return full, jnp.sqrt(var)


def best_of_n_pool(pool: Pool, n, *, num_batches: int = 16) -> Estimate:
    """Unbiased estimate of ``E[V]`` under best-of-``n`` from one pool (order statistics).

    Sort the pool by proxy; the ``i``-th smallest of ``M`` is the best of a uniformly random
    ``n``-subset with probability ``C(i-1, n-1) / C(M, n)``, so
    ``Σ_i C(i-1, n-1)/C(M, n) v_(i)`` is unbiased for ``E[V_bon(n)]`` (a U-statistic; Gao et
    al. 2022 use it for their best-of-n curves).  The standard error is the delete-a-group
    jackknife over ``num_batches`` equal groups (the estimator recomputed without each group).

    Math: ``Ê = Σ_{i >= n} [C(i-1, n-1) / C(M, n)] v_(i)``.

    Args:
        pool: a :class:`Pool` of ``M`` outcomes.
        n: integers ``1 <= n <= M / num_batches`` (any shape).
        num_batches: jackknife groups for the standard error (``>= 2``; the pool is cut to a
            multiple of it).

    Returns:
        :class:`goodhart_jax.Estimate` with fields of the shape of ``n`` (``count`` is ``M``).

    Example:
        >>> import jax, goodhart_jax as gj
        >>> pool = gj.sample_pool(jax.random.key(0), "normal", "normal", 100_000)
        >>> est = gj.best_of_n_pool(pool, 4)
        >>> abs(float(est.mean) - 1.0294 / 2**0.5) < 4 * float(est.stderr)
        True
    """
    num_batches = check_positive_int("num_batches", num_batches, minimum=2, owner="best_of_n_pool")
    m = pool.size
    check_param("n", n, lo=1.0, hi=m // num_batches, owner="best_of_n_pool")
    if not is_concrete(n):
        raise ValueError("best_of_n_pool: n must be concrete integers (not traced)")
    if np.any(np.asarray(n, dtype=float) != np.round(np.asarray(n, dtype=float))):
            raise ValueError(f"best_of_n_pool: n must be integers, got {n!r}")
    n_arr = np.asarray(n, dtype=float)
    flat = n_arr.reshape(-1)
    dtype = pool.value.dtype
    m_used = (m // num_batches) * num_batches  # equal groups (the last m mod G draws unused)
    value, proxy = pool.value[:m_used], pool.proxy[:m_used]
    w_full = jnp.asarray(_bon_weights(m_used, flat), dtype)
    w_drop = jnp.asarray(_bon_weights(m_used - m_used // num_batches, flat), dtype)
    mean, se = _bon_pool(value, proxy, w_full, w_drop, num_batches)
    shape = n_arr.shape
    return Estimate(mean.reshape(shape), se.reshape(shape), jnp.full(shape, float(m), pool.value.dtype))
