"""Pushing on a proxy: best-of-n under ``pi0`` and an optax-trained Gaussian policy.

Best-of-n.  Draw ``n`` points from ``pi0 = N(0, I)``, keep the one the proxy scores highest;
its KL from ``pi0`` is ``KL_bon(n) = log n - (n - 1)/n`` (exact, :func:`goodhart_jax.kl_best_of_n`).
:func:`proxy_best_of_n` measures the gold reward of the selected point for several ``n`` at
once (the best of the first ``n_1``, of the first ``n_2 > n_1``, ... draws: one running
argmax), replicates streamed through :func:`goodhart_jax.engine.stream` (chunks of
replicates, sharded over the devices).

Gaussian policy.  ``pi = N(m, L L^T)`` with ``L`` lower triangular, its diagonal
log-parameterised (:class:`GaussianPolicy`).  :func:`optimize_policy` ascends

    ``J(pi) = E_pi[r_proxy(x)] - beta KL(pi || pi0)``

with any optax optimizer: ``E_pi`` by reparameterised Monte Carlo, ``x = m + L z``, with
antithetic base normals (``z`` and ``-z``: the sample mean of ``z`` is exactly 0, so linear
rewards are integrated exactly and MLP rewards with less variance); the KL in closed form.
Every step records the gold reward, the proxy reward (same samples) and the KL, inside one
``lax.scan``.

Closed forms (docs/design.md, section E): linear gold ``w*.x``, linear proxy ``w.x``: the optimum
of ``J`` is ``N(w / beta, I)`` with gold ``w*.w / beta`` and ``KL = |w|^2 / (2 beta^2)``
(:func:`linear_policy_optimum`); best-of-n has gold ``(w*.w / |w|) e_n``, ``e_n`` the expected
maximum of ``n`` standard normals (:func:`linear_best_of_n_gold`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from goodhart_jax import engine
from goodhart_jax.validation import check_param, check_positive_int
from goodhart_jax.distributions import Normal
from goodhart_jax.lab.ensembles import apply_scorer, scorer_parts
from goodhart_jax.lab.world import Reward, check_dim, float_dtype
from goodhart_jax.numerics import Estimate, mean_estimate
from goodhart_jax.selection import best_of_n_value, kl_best_of_n

__all__ = [
    "BestOfN",
    "GaussianPolicy",
    "LinearOptimum",
    "PolicyRun",
    "PolicyTrace",
    "antithetic_normals",
    "best_of_n_select",
    "check_ns",
    "gaussian_kl",
    "gaussian_policy",
    "gaussian_sample",
    "gaussian_scale_tril",
    "linear_best_of_n_gold",
    "linear_policy_optimum",
    "optimize_policy",
    "policy_optimizer",
    "proxy_best_of_n",
    "run_policy",
]

Array = jax.Array


class GaussianPolicy(NamedTuple):
    """``pi = N(mean, L L^T)``, ``L = tril(lower, -1) + diag(exp(log_diag))``.

    Attributes:
        mean: ``(d,)``.
        log_diag: ``(d,)`` the log of ``L``'s diagonal.
        lower: ``(d, d)``; only the strictly lower triangle is used.
    """

    mean: Array
    log_diag: Array
    lower: Array


def gaussian_policy(dim: int, dtype=None) -> GaussianPolicy:
    """The base policy ``pi0 = N(0, I_dim)`` as a :class:`GaussianPolicy`.

    Example:
        >>> import goodhart_jax as gj
        >>> float(gj.lab.gaussian_kl(gj.lab.gaussian_policy(3)))
        0.0
    """
    dim = check_positive_int("dim", dim, owner="gaussian_policy")
    dtype = float_dtype(dtype)
    return GaussianPolicy(jnp.zeros((dim,), dtype), jnp.zeros((dim,), dtype),
                          jnp.zeros((dim, dim), dtype))


def gaussian_scale_tril(policy: GaussianPolicy) -> Array:
    """The Cholesky factor ``L`` of the covariance."""
    return jnp.tril(policy.lower, -1) + jnp.diag(jnp.exp(policy.log_diag))


def gaussian_kl(policy: GaussianPolicy) -> Array:
    """``KL(N(m, L L^T) || N(0, I))`` in closed form (nats).

    Math: ``KL = (|L|_F^2 + |m|^2 - d) / 2 - Σ_i log L_ii``.

    Example:
        >>> import jax.numpy as jnp, goodhart_jax as gj
        >>> p = gj.lab.gaussian_policy(2)._replace(mean=jnp.array([3.0, 4.0]))
        >>> float(gj.lab.gaussian_kl(p))
        12.5
    """
    d = policy.mean.shape[-1]
    off = jnp.tril(policy.lower, -1)
    frob = jnp.sum(off * off) + jnp.sum(jnp.exp(2.0 * policy.log_diag))
    return 0.5 * (frob + jnp.sum(policy.mean ** 2) - d) - jnp.sum(policy.log_diag)


def gaussian_sample(policy: GaussianPolicy, z: Array) -> Array:
    """Reparameterised draws ``x = m + L z`` for base normals ``z`` of shape ``(..., d)``."""
    return policy.mean + z @ gaussian_scale_tril(policy).T


def antithetic_normals(key: Array, num: int, dim: int, dtype=None) -> Array:
    """``num`` (even) standard normal vectors in antithetic pairs: ``z_1..z_h, -z_1..-z_h``.

    Math: the sample mean is exactly 0, so ``mean_i w.(m + L z_i) = w.m`` exactly.
    """
    half = jax.random.normal(key, (num // 2, dim), float_dtype(dtype))
    return jnp.concatenate([half, -half])


class PolicyTrace(NamedTuple):
    """What :func:`optimize_policy` records before every step and at the end (``steps + 1``).

    Attributes:
        gold: ``E_pi[r*]`` (Monte Carlo over the step's samples).
        proxy: ``E_pi[r_proxy]`` (same samples).
        kl: ``KL(pi || pi0)`` (closed form).
    """

    gold: Array
    proxy: Array
    kl: Array


class PolicyRun(NamedTuple):
    """The final policy and its :class:`PolicyTrace`."""

    policy: GaussianPolicy
    trace: PolicyTrace


def policy_optimizer(learning_rate: Any = 0.05, steps: int = 300) -> optax.GradientTransformation:
    """Adam with a cosine decay from ``learning_rate`` to ``1e-6`` of it over ``steps`` steps.

    The decay to ``1e-6`` lets a deterministic objective (a linear proxy: antithetic samples
    make it exact) converge to rounding: the closed form is met to ``1e-12`` in float64.

    Math: ``lr_k = lr (1e-6 + (1 - 1e-6) (1 + cos(pi k / steps)) / 2)``.
    """
    return optax.adam(optax.cosine_decay_schedule(learning_rate, max(int(steps), 1), alpha=1e-6))


def run_policy(key: Array, score: Callable[[Array], Array], gold: Callable[[Array], Array],
               policy: GaussianPolicy, beta: Any, optimizer: optax.GradientTransformation,
               steps: int, num_samples: int) -> PolicyRun:
    """The pure, traceable core of :func:`optimize_policy` (no validation)."""
    dim = policy.mean.shape[-1]
    dtype = policy.mean.dtype

    def stats(p, z):
        x = gaussian_sample(p, z)
        return jnp.mean(score(x)), jnp.mean(gold(x)), gaussian_kl(p)

    def neg_objective(p, z):
        proxy, gold_v, kl = stats(p, z)
        return -(proxy - beta * kl), (proxy, jax.lax.stop_gradient(gold_v), kl)

    grad_fn = jax.grad(neg_objective, has_aux=True)

    # all base normals at once (one draw outside the loop: less code to compile)
    half = jax.random.normal(key, (steps + 1, num_samples // 2, dim), dtype)
    zs = jnp.concatenate([half, -half], axis=1)

    def step(carry, z):
        p, state = carry
        g, rec = grad_fn(p, z)
        updates, state = optimizer.update(g, state, p)
        return (optax.apply_updates(p, updates), state), rec

    (p, _), (proxy, gold_v, kl) = jax.lax.scan(step, (policy, optimizer.init(policy)), zs[:-1])
    proxy_f, gold_f, kl_f = stats(p, zs[-1])
    trace = PolicyTrace(jnp.concatenate([gold_v, gold_f[None]]),
                        jnp.concatenate([proxy, proxy_f[None]]),
                        jnp.concatenate([kl, kl_f[None]]))
    return PolicyRun(p, trace)


def _dim_of(obj) -> int | None:
    d = getattr(obj, "dim", None)
    return int(d) if d is not None else None


def optimize_policy(key: Array, proxy, gold, *, beta, steps: int = 300,
                    learning_rate: float = 0.05, num_samples: int = 128,
                    optimizer: optax.GradientTransformation | None = None,
                    init: GaussianPolicy | None = None) -> PolicyRun:
    """Train a Gaussian policy on ``E_pi[r_proxy] - beta KL(pi || pi0)`` with optax.

    Math: ``max_{m, L} (1/M) Σ_i r(m + L z_i) - beta KL(N(m, L L^T) || N(0, I))``, fresh
    antithetic ``z`` every step (reparameterisation gradients); the optimum for a linear
    proxy ``w.x`` is ``N(w / beta, I)``.

    Traceable (jit, vmap over ``beta`` or over a closure of the proxy's parameters).

    Args:
        key: PRNG key of the base normals (drawn at once: ``(steps + 1, num_samples / 2, d)``,
            mirrored).
        proxy: the reward optimised: a :class:`goodhart_jax.lab.Reward`, an
            :class:`goodhart_jax.lab.Ensemble` or any function ``x (M, d) -> (M,)``.
        gold: the gold reward (tracked, not optimised), same kinds.
        beta: the KL coefficient (> 0).
        steps: optimisation steps (>= 1).
        learning_rate: of the default optimizer (:func:`policy_optimizer`: Adam, cosine decay
            to 1e-6 of it).
        num_samples: Monte Carlo samples per step (even, >= 2).
        optimizer: any optax transformation instead of the default.
        init: the starting policy (default ``pi0``).

    Returns:
        :class:`PolicyRun`: the final policy and the trace (``steps + 1`` records).

    Raises:
        ValueError: ``beta <= 0``, bad ``steps`` / ``num_samples``, mismatched dimensions.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> w = gj.lab.linear_gold([1.0, 2.0])
        >>> run = gj.lab.optimize_policy(jax.random.key(0), w, w, beta=2.0, steps=400,
        ...                              learning_rate=0.1)
        >>> [round(float(v), 3) for v in run.policy.mean]   # w / beta
        [0.5, 1.0]
    """
    owner = "optimize_policy"
    check_param("beta", beta, lo=0.0, lo_open=True, owner=owner)
    steps = check_positive_int("steps", steps, owner=owner)
    num_samples = check_positive_int("num_samples", num_samples, minimum=2, owner=owner)
    if num_samples % 2:
        raise ValueError(f"{owner}: num_samples must be even (antithetic pairs), got {num_samples}")
    d_proxy, d_gold = _dim_of(proxy), _dim_of(gold)
    if init is None:
        if d_proxy is None:
            raise ValueError(f"{owner}: init must be given when proxy has no .dim")
        init = gaussian_policy(d_proxy)
    dim = init.mean.shape[-1]
    for name, d in (("proxy", d_proxy), ("gold", d_gold)):
        if d is not None:
            check_dim(name, d, dim, owner)
    if optimizer is None:
        check_param("learning_rate", learning_rate, lo=0.0, lo_open=True, owner=owner)
        optimizer = policy_optimizer(learning_rate, steps)
    beta = jnp.asarray(beta, init.mean.dtype)
    return run_policy(key, proxy, gold, init, beta, optimizer, steps, num_samples)


# --- best-of-n -----------------------------------------------------------------------------------

def check_ns(ns, owner: str) -> tuple[int, ...]:
    """``ns`` as a strictly increasing tuple of integers >= 1."""
    arr = np.atleast_1d(np.asarray(ns))
    try:
        vals = [check_positive_int("n", v, owner=owner) for v in arr.tolist()]
    except ValueError:
        raise ValueError(f"{owner}: n must be integers >= 1, got {ns!r}") from None
    if any(b <= a for a, b in itertools.pairwise(vals)):
        raise ValueError(f"{owner}: n must be strictly increasing, got {vals}")
    return tuple(vals)


def best_of_n_select(key: Array, score: Callable[[Array], Array], ns: tuple, reps: int,
                     dim: int, dtype, block: int = 256) -> tuple[Array, Array]:
    """The best of the first ``n`` draws of ``pi0`` by ``score``, for every ``n`` in ``ns``.

    ``score`` maps ``(reps, b, d)`` points to ``(O, reps, b)`` scores (``O`` objectives at
    once, sharing the draws).  Candidates come in blocks of ``B = min(block, max(ns))``
    (block ``b`` from ``fold_in(key, b)``) through one ``fori_loop``; candidate ``i`` takes
    part in the running argmax of every ``n > i``, so the selections are nested.

    Returns:
        ``(x, s)``: the selected points ``(len(ns), O, reps, d)`` and their scores
        ``(len(ns), O, reps)``.
    """
    n_arr = jnp.asarray(ns, jnp.int32)
    blk = min(int(block), int(ns[-1]))
    n_blocks = -(-int(ns[-1]) // blk)
    o = jax.eval_shape(score, jax.ShapeDtypeStruct((reps, 1, dim), dtype)).shape[0]
    n_lev = len(ns)

    def body(b, carry):
        bx, bs = carry
        z = jax.random.normal(jax.random.fold_in(key, b), (reps, blk, dim), dtype)
        s = score(z)  # (O, reps, blk)
        live = (b * blk + jnp.arange(blk))[None, :] < n_arr[:, None]  # (L, blk)
        s = jnp.where(live[:, None, None, :], s[None], -jnp.inf)  # (L, O, reps, blk)
        i = jnp.argmax(s, axis=-1)  # (L, O, reps)
        s_top = jnp.take_along_axis(s, i[..., None], -1)[..., 0]
        x_top = jax.vmap(lambda zr, ir: zr[ir], in_axes=(0, -1), out_axes=-2)(z, i)
        better = s_top > bs
        return jnp.where(better[..., None], x_top, bx), jnp.where(better, s_top, bs)

    init = (jnp.zeros((n_lev, o, reps, dim), dtype), jnp.full((n_lev, o, reps), -jnp.inf, dtype))
    return jax.lax.fori_loop(0, n_blocks, body, init)


def _bon_chunk(key, mask, proxy_arrays, gold_params, *, proxy_static, gold_model, ns, block):
    reps = mask.shape[0]
    dtype = gold_params.weights[-1].dtype
    dim = gold_model.dim

    def score(z):
        return apply_scorer(proxy_static, proxy_arrays, z)[None]

    x, s = best_of_n_select(key, score, ns, reps, dim, dtype, block)
    g = gold_model.apply(gold_params, x[:, 0])  # (L, reps)
    s = s[:, 0]
    w = mask.astype(dtype)
    return (jnp.sum(w), g @ w, (g * g) @ w, s @ w)


@cache
def _bon_chunk_fn(proxy_static, gold_model, ns, block):
    return partial(_bon_chunk, proxy_static=proxy_static, gold_model=gold_model, ns=ns,
                   block=block)


class BestOfN(NamedTuple):
    """Best-of-n under ``pi0`` by the proxy.

    Attributes:
        n: the ``n`` values.
        kl: ``KL_bon(n) = log n - (n - 1)/n`` (exact).
        gold: :class:`goodhart_jax.Estimate` of the selected point's gold reward per ``n``.
        proxy: mean proxy score of the selected point per ``n``.
    """

    n: Array
    kl: Array
    gold: Estimate
    proxy: Array


def proxy_best_of_n(key: Array, proxy, gold: Reward, n, *, num_draws: int = 1024,
                    chunk_size: int = 64, block_size: int = 256,
                    devices=None) -> BestOfN:
    """Gold reward of best-of-``n`` under ``pi0`` by the proxy, streamed over devices.

    Math: ``E[r*(x_{argmax_i r_proxy(x_i)})]``, ``x_1..x_n ~ N(0, I)``;
    ``KL_bon(n) = log n - (n - 1)/n``.  Each replicate draws ``max(n)`` candidates and keeps
    the running best at every ``n`` (nested: the best of 4 is the best of the first 4 of the
    best-of-16's draws); replicates are the samples of :func:`goodhart_jax.engine.stream`.

    Args:
        key: PRNG key.
        proxy: a :class:`Reward` or :class:`goodhart_jax.lab.Ensemble` (what selects).
        gold: the gold :class:`Reward` (what is measured).
        n: strictly increasing integers >= 1.
        num_draws: replicates (>= 2).
        chunk_size: replicates per chunk; block_size: candidates per block.
        devices: as in :func:`goodhart_jax.engine.stream`.

    Returns:
        :class:`BestOfN`.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> g = gj.lab.linear_gold([1.0, 0.0])
        >>> bon = gj.lab.proxy_best_of_n(jax.random.key(0), g, g, [1, 2], num_draws=4096)
        >>> abs(float(bon.gold.mean[1]) - 0.5642) < 4 * float(bon.gold.stderr[1])
        True
    """
    owner = "proxy_best_of_n"
    ns = check_ns(n, owner)
    if not isinstance(gold, Reward):
        raise ValueError(f"{owner}: gold must be a goodhart_jax.lab.Reward")  # noqa: TRY004
    proxy_static, proxy_arrays = scorer_parts(proxy)
    check_dim("proxy", proxy.dim, gold.dim, owner)
    num_draws = check_positive_int("num_draws", num_draws, minimum=2, owner=owner)
    chunk_size = check_positive_int("chunk_size", chunk_size, owner=owner)
    block_size = check_positive_int("block_size", block_size, owner=owner)
    fn = _bon_chunk_fn(proxy_static, gold.model, ns, block_size)
    cnt, s1, s2, sp = engine.stream(fn, key, proxy_arrays, gold.params, num_samples=num_draws,
                                    chunk_size=chunk_size, devices=devices)
    gold = mean_estimate(cnt, s1, s2)
    n_arr = jnp.asarray(ns, gold.mean.dtype)
    return BestOfN(n_arr, kl_best_of_n(n_arr), gold, sp / cnt)


# --- closed forms ----------------------------------------------------------------------------

class LinearOptimum(NamedTuple):
    """The KL-regularised optimum for a linear proxy: ``N(mean, I)``, its gold, proxy, KL."""

    mean: Array
    gold: Array
    proxy: Array
    kl: Array


def _vector(name: str, w, owner: str) -> np.ndarray:
    arr = np.asarray(w, dtype=float)
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"{owner}: {name} must be a vector of length >= 1, got shape {arr.shape}")
    check_param(name, arr, owner=owner)
    return arr


def linear_policy_optimum(w, w_star, beta) -> LinearOptimum:
    """Closed form: linear proxy ``w.x``, linear gold ``w*.x``, ``pi0 = N(0, I)``.

    Math: ``argmax_pi E_pi[w.x] - beta KL(pi || pi0) = N(w / beta, I)``; gold
    ``w*.w / beta``; proxy ``|w|^2 / beta``; ``KL = |w|^2 / (2 beta^2)``.

    Example:
        >>> import goodhart_jax as gj
        >>> opt = gj.lab.linear_policy_optimum([3.0, 4.0], [1.0, 0.0], 5.0)
        >>> round(float(opt.gold), 6), round(float(opt.kl), 6)
        (0.6, 0.5)
    """
    owner = "linear_policy_optimum"
    w, ws = _vector("w", w, owner), _vector("w_star", w_star, owner)
    check_dim("w", w.shape[0], ws.shape[0], owner)
    check_param("beta", beta, lo=0.0, lo_open=True, owner=owner)
    dtype = float_dtype()
    w, ws, beta = (jnp.asarray(a, dtype) for a in (w, ws, beta))
    return LinearOptimum(w / beta, ws @ w / beta, w @ w / beta, w @ w / (2.0 * beta ** 2))


def linear_best_of_n_gold(w_star, w, n) -> Array:
    """Closed form: gold of best-of-``n`` under ``pi0`` by the linear proxy ``w.x``.

    Math: ``E[w*.x | w.x] = (w*.w / |w|^2) w.x``, so the gold is ``(w*.w / |w|) e_n`` with
    ``e_n = E[max of n N(0, 1)]``; ``e_n = sqrt(2) E[V_bon(n)]`` for model A with
    ``V, X ~ N(0, 1)`` (``E[V | U] = U / 2``, ``U ~ N(0, 2)``), computed exactly by
    :func:`goodhart_jax.best_of_n_value` (quadrature).

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.lab.linear_best_of_n_gold([1.0, 0.0], [1.0, 0.0], 2.0)), 6)
        0.56419
    """
    owner = "linear_best_of_n_gold"
    w, ws = _vector("w", w, owner), _vector("w_star", w_star, owner)
    check_dim("w", w.shape[0], ws.shape[0], owner)
    norm = float(np.linalg.norm(w))
    if norm == 0.0:
        raise ValueError(f"{owner}: w must be non-zero")
    check_param("n", n, lo=1.0, owner=owner)
    e_n = math.sqrt(2.0) * best_of_n_value(Normal(), Normal(), n)
    return float(ws @ w) / norm * e_n
