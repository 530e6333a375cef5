"""Seeds x proxy sizes x label counts x betas as one compiled computation, sharded over devices.

:func:`lab_sweep` runs the whole synthetic-RLHF pipeline for every configuration — label
data (per seed), proxy training (an ensemble of ``k`` proxies, ``k = 1`` by default),
best-of-n under ``pi0`` by each objective, and an optax-trained Gaussian policy for every
objective and KL coefficient ``beta`` — as one jitted program.

How it is laid out.  A *configuration* is ``(seed, width, label count)``; its ensemble
members are trained vmapped, and its policies — every (objective, beta) pair — are one vmapped
``lax.scan`` (they share the trained proxies).  Configurations are the samples of
:func:`goodhart_jax.engine.stream` (no second sharding mechanism): chunks of ``chunk_size``
configurations (vmapped within a chunk) are spread over the devices by the engine's
``shard_map`` and its loop, and each chunk writes its rows of a ``(configurations, ...)``
result buffer, zeros elsewhere, which the engine's exact sum assembles (every entry is one
value plus exact zeros, so results do not depend on the number of devices).  The engine
hands a chunk its key ``fold_in(key, i)`` rather than ``i``; the chunk finds ``i`` by
matching that key against the table of all chunk keys (distinct: checked).
Widths and label counts are data (padded units and zero-weight labels, see
:mod:`goodhart_jax.lab.world`), so configurations of every size share one program.

Common random numbers: a seed fixes the labelled data (the first ``N`` points of one padded
set), the initialisation, the best-of-n draws and the policies' base normals, for every width,
label count, beta and objective.

Chunk size (measured, CPU): two configurations per chunk is the default.  Vmapping ``c``
configurations per chunk batches their matrix products, and XLA's CPU compile time grows with
the batch for large ``c``.  On the documented grid of ``bench lab`` (18 configurations, 2 CPU
devices shared with other work) one series of runs took 9.1 / 5.3 / 7.0 / 10.9 s for
``c = 1 / 2 / 4 / 9``, but a repeat gave 4.6 s for ``c = 1`` and 7.3 s for ``c = 2``: on this
machine the difference between 1 and 2 is within the run-to-run noise.  ``goodhart-jax bench
lab`` times both.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax import engine
from goodhart_jax.validation import check_param, check_positive_int
from goodhart_jax.distributions import parse_dist
from goodhart_jax.lab.ensembles import OBJECTIVES, aggregate, fit_ensemble
from goodhart_jax.lab.policies import (
    best_of_n_select,
    check_ns,
    gaussian_policy,
    policy_optimizer,
    run_policy,
)
from goodhart_jax.lab.world import (
    ACTIVATIONS,
    MLPParams,
    Reward,
    RewardModel,
    float_dtype,
    has_finite_variance,
    preference_labels,
    proxy_optimizer,
    regression_labels,
    reward_mlp,
)
from goodhart_jax.selection import kl_best_of_n

__all__ = ["CPU_COMPILER_OPTIONS", "LabSweep", "lab_sweep"]

Array = jax.Array


class LabSweep(NamedTuple):
    """Results of :func:`lab_sweep`; axes ``S`` seeds, ``W`` widths, ``N`` label counts,
    ``O`` objectives, ``B`` betas, ``L`` best-of-n sizes, ``T`` policy steps.

    Attributes:
        seeds, widths, label_counts, betas: the axes' values.
        objectives: the ensemble objectives (``("mean",)`` for single proxies).
        n, kl_bon: the best-of-n sizes and their ``KL_bon(n)`` (exact).
        gold_base: ``E_pi0[r*]`` (Monte Carlo over ``2^16`` fixed draws): subtract it for
            gold *relative to the base policy*.
        train_loss: ``(S, W, N, k)`` final training loss of each ensemble member.
        probe_error: ``(S, W, N, P)`` the proxy's error ``r_proxy(x) - r*(x)`` (ensemble mean)
            at ``P`` fixed draws of ``pi0`` (the same for every configuration).
        probe_corr: ``(S, W, N)`` correlation of proxy and gold on those draws.
        label_error: ``(S, max N)`` the label noise ``y - r*(x)`` of each seed's data
            (regression labels; NaN for preferences).
        bon_gold, bon_gold_se: ``(S, W, N, O, L)`` gold of best-of-n (mean over replicates)
            and its standard error.
        bon_proxy: ``(S, W, N, O, L)`` the selecting objective's mean score.
        gold, proxy, kl: ``(S, W, N, O, B, T + 1)`` the policies' traces.
    """

    seeds: np.ndarray
    widths: np.ndarray
    label_counts: np.ndarray
    betas: np.ndarray
    objectives: tuple
    n: np.ndarray
    kl_bon: np.ndarray
    gold_base: float
    train_loss: np.ndarray
    probe_error: np.ndarray
    probe_corr: np.ndarray
    label_error: np.ndarray
    bon_gold: np.ndarray
    bon_gold_se: np.ndarray
    bon_proxy: np.ndarray
    gold: np.ndarray
    proxy: np.ndarray
    kl: np.ndarray


class _Spec(NamedTuple):
    """The static part of a sweep (one compilation per distinct value)."""

    gold_model: RewardModel
    proxy_model: RewardModel
    members: int
    objectives: tuple
    bootstrap: bool
    train_steps: int
    policy_steps: int
    policy_samples: int
    ns: tuple
    bon_draws: int
    block: int
    shape: tuple  # (S, W, N)
    padded: int  # chunks x chunk size


def _one_config(p, root, gold_params, data, seeds, widths, counts, betas, lam, train_lr,
                weight_decay, policy_lr, probe_x, spec: _Spec):
    _, W, N = spec.shape
    s, w, n = p // (W * N), (p // N) % W, p % N
    root = jax.random.wrap_key_data(root)
    seed = seeds[s]
    dtype = probe_x.dtype
    gold_model, model = spec.gold_model, spec.proxy_model

    def gold(x):
        return gold_model.apply(gold_params, x)

    labels = jax.tree_util.tree_map(lambda a: a[s], data)
    cap = labels.weight.shape[0]
    labels = labels._replace(weight=(jnp.arange(cap) < counts[n]).astype(dtype))
    member_keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(root, 1), seed),
                                   spec.members)
    fit = fit_ensemble(member_keys, model, labels, widths[w],
                       proxy_optimizer(train_lr, spec.train_steps, weight_decay),
                       spec.train_steps, spec.bootstrap)
    params = fit.params

    def scores(x):
        return jax.vmap(model.apply, in_axes=(0, None))(params, x)

    def objectives(x):  # (O, ...): every objective of the sweep, sharing the member scores
        sc = scores(x)
        return jnp.stack([aggregate(sc, o, lam) for o in spec.objectives])

    probe = scores(probe_x)
    g_probe = gold(probe_x)
    err = jnp.mean(probe, axis=0) - g_probe
    corr = jnp.corrcoef(jnp.mean(probe, axis=0), g_probe)[0, 1]

    k_bon = jax.random.fold_in(jax.random.fold_in(root, 3), seed)
    x_sel, s_sel = best_of_n_select(k_bon, objectives, spec.ns, spec.bon_draws, gold_model.dim,
                                    dtype, spec.block)
    g_sel = gold(x_sel)  # (L, O, reps)

    # the policies: one vmap over (objective, beta) pairs, the objective picked by index
    k_pol = jax.random.fold_in(jax.random.fold_in(root, 2), seed)
    pi0 = gaussian_policy(gold_model.dim, dtype)
    opt = policy_optimizer(policy_lr, spec.policy_steps)
    n_obj, n_beta = len(spec.objectives), betas.shape[0]

    def one(o_idx, beta):
        def score(x):
            return jnp.take(objectives(x), o_idx, axis=0)

        return run_policy(k_pol, score, gold, pi0, beta, opt, spec.policy_steps,
                          spec.policy_samples).trace

    o_idx = jnp.repeat(jnp.arange(n_obj), n_beta)
    trace = jax.vmap(one)(o_idx, jnp.tile(betas, n_obj))
    trace = jax.tree_util.tree_map(lambda a: a.reshape((n_obj, n_beta) + a.shape[1:]), trace)
    return {
        "train_loss": fit.loss[:, -1],
        "probe_error": err,
        "probe_corr": corr,
        "bon_gold": jnp.mean(g_sel, axis=-1).T,
        "bon_gold_sq": jnp.mean(g_sel * g_sel, axis=-1).T,
        "bon_proxy": jnp.mean(s_sel, axis=-1).T,
        "gold": trace.gold,
        "proxy": trace.proxy,
        "kl": trace.kl,
    }


def _config_chunk(key, mask, table, *args, spec: _Spec):
    """One chunk of configurations: compute them (vmapped), write their rows of the buffer."""
    c = mask.shape[0]
    S, W, N = spec.shape
    kd = jax.random.key_data(key).reshape(-1)
    idx = jnp.argmax(jnp.all(table == kd[None, :], axis=-1)).astype(jnp.int32)
    p = jnp.minimum(idx * c + jnp.arange(c, dtype=jnp.int32), S * W * N - 1)
    out = jax.vmap(lambda q: _one_config(q, *args, spec=spec))(p)

    def place(o):
        live = mask.reshape((c,) + (1,) * (o.ndim - 1))
        o = jnp.where(live, o, jnp.zeros_like(o))
        buf = jnp.zeros((spec.padded,) + o.shape[1:], o.dtype)
        return jax.lax.dynamic_update_slice_in_dim(buf, o, idx * c, 0)

    return jax.tree_util.tree_map(place, out)


@cache
def _chunk_fn(spec: _Spec):
    return partial(_config_chunk, spec=spec)


#: XLA options for the CPU compilation of a sweep: backend optimisation level 1 (instead of the
#: default 2) and the engine's :data:`goodhart_jax.engine.CPU_COMPILER_OPTIONS`.  Measured on
#: the quick experiment's sweep (2 CPU cores): compile 19.4 -> 11.1 CPU-seconds, run 1.33 ->
#: 1.00 s.  Set to ``{}`` for XLA's defaults.
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 1}


def _stream_impl(key, *args, fn, num_samples, chunk_size, devices):
    return engine.stream(fn, key, *args, num_samples=num_samples, chunk_size=chunk_size,
                         devices=devices, progress=False)


@lru_cache(maxsize=8)
def _jitted_stream(options: tuple):
    return jax.jit(_stream_impl, static_argnames=("fn", "num_samples", "chunk_size", "devices"),
                   compiler_options=dict(options) or None)


def _run_stream(fn, key, args, *, num_samples, chunk_size, devices):
    """:func:`goodhart_jax.engine.stream` under one jit that carries the CPU options above."""
    devs = tuple(devices) if isinstance(devices, (list, tuple)) else devices
    platform = (jax.devices()[0] if devs is None or isinstance(devs, int) else devs[0]).platform
    options = ()
    if platform == "cpu":
        options = tuple(sorted({**engine.CPU_COMPILER_OPTIONS, **CPU_COMPILER_OPTIONS}.items()))
    return _jitted_stream(options)(key, *args, fn=fn, num_samples=num_samples,
                                   chunk_size=chunk_size, devices=devs)


@partial(jax.jit, static_argnames=("gold_model", "preference", "cap"))
def _labels(key, gold_params, seeds, noise, temperature, *, gold_model, preference, cap):
    """The labelled data of every seed (the first ``N`` of ``cap`` points are a config's)."""
    dtype = gold_params.weights[-1].dtype
    gold = Reward(gold_model, gold_params)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(seeds)
    if preference:
        return jax.vmap(lambda k: preference_labels(k, gold, cap, temperature=temperature,
                                                    dtype=dtype))(keys)
    return jax.vmap(lambda k: regression_labels(k, gold, cap, noise, dtype=dtype))(keys)


@partial(jax.jit, static_argnames=("gold_model", "probe_samples", "n_chunks"))
def _prepare(key, gold_params, *, gold_model, probe_samples, n_chunks):
    """Probe points, ``E_pi0[r*]`` and the table of chunk keys."""
    dtype = gold_params.weights[-1].dtype
    probe_x = jax.random.normal(jax.random.fold_in(key, 4), (probe_samples, gold_model.dim),
                                dtype)
    base_x = jax.random.normal(jax.random.fold_in(key, 5), (1 << 16, gold_model.dim), dtype)
    gold_base = jnp.mean(gold_model.apply(gold_params, base_x))
    stream_key = jax.random.fold_in(key, 1)
    table = jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(stream_key, i)))(
        jnp.arange(n_chunks))
    return probe_x, gold_base, table.reshape(n_chunks, -1)


def _positive_ints(name: str, values, owner: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{owner}: {name} must be a non-empty list of integers >= 1, "
                         f"got {values!r}")
    try:
        out = [check_positive_int(name, v, owner=owner) for v in arr.tolist()]
    except ValueError:
        raise ValueError(f"{owner}: {name} must be integers >= 1, got {values!r}") from None
    return np.asarray(out, np.int64)


def _as_reward(gold, owner: str) -> Reward:
    if not isinstance(gold, Reward):
        raise ValueError(f"{owner}: gold must be a goodhart_jax.lab.Reward, got "  # noqa: TRY004
                         f"{type(gold).__name__}")
    return gold


def lab_sweep(key: Array, gold: Reward, *, seeds: int | Sequence[int] = 3,
              widths: Sequence[int] = (4, 16, 64), label_counts: Sequence[int] = (64, 256, 1024),
              betas: Sequence[float] = (0.1, 0.3, 1.0), depth: int = 2,
              activation: str = "gelu", labels: str = "regression", noise=None,
              temperature: float = 1.0, ensemble: int = 1,
              objectives: Sequence[str] = ("mean",), lam: float = 1.0, bootstrap: bool = False,
              train_steps: int = 300, train_learning_rate: float = 1e-2,
              weight_decay: float = 0.0, policy_steps: int = 300,
              policy_learning_rate: float = 0.1, policy_samples: int = 128,
              bon_n: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
              bon_draws: int = 256, probe_samples: int = 2048, block_size: int = 1024,
              chunk_size: int | None = None, devices=None, dtype=None) -> LabSweep:
    """Learned proxies pushed by best-of-n and by optax, over seeds, sizes, counts and betas.

    Math: for every configuration ``(seed, width, N)``: labels ``y = r*(x) + eps`` (or
    Bradley–Terry preferences) on ``N`` points of ``pi0``; ``k`` MLP proxies trained by AdamW;
    for every objective ``o`` (mean / min / uwo of the ``k`` proxies): best-of-n gold
    ``E[r*(x_{argmax o})]`` with ``KL_bon(n) = log n - (n - 1)/n``, and for every ``beta`` a
    Gaussian policy trained on ``E_pi[o(x)] - beta KL(pi || pi0)`` with its gold, proxy and
    KL at every step.  One compiled program (no Python loop over configurations):
    configurations sharded over ``devices`` by :func:`goodhart_jax.engine.stream`,
    ``chunk_size`` of them vmapped per chunk, ensemble members and (objective, beta) pairs
    vmapped inside each.

    Args:
        key: PRNG key of the whole sweep.
        gold: the gold :class:`goodhart_jax.lab.Reward` (its dimension is the world's).
        seeds: a number of seeds ``S`` (seeds ``0..S-1``) or a list of integer seeds.
        widths: proxy widths (integers >= 1; proxies are ``reward_mlp(d, max(widths), depth)``
            with the units beyond each width switched off).
        label_counts: label counts ``N`` (integers >= 1): the first ``N`` of
            ``max(label_counts)`` points drawn per seed.
        betas: KL coefficients (> 0).
        depth, activation: the proxies' hidden layers and activation.
        labels: ``"regression"`` (gold plus ``noise``) or ``"preference"`` (Bradley–Terry
            with ``temperature``).
        noise: the label noise law (distribution or spec; ``None``: clean).  Least squares
            needs a finite variance: a law without one is refused.
        temperature: Bradley–Terry temperature (> 0).
        ensemble: proxies per configuration ``k`` (>= 1), trained from different
            initialisations (and bootstrap resamples with ``bootstrap=True``).
        objectives: ensemble objectives, a subset of ``("single", "mean", "min", "uwo")``
            (``"single"``: the first member alone).
        lam: the variance weight of ``"uwo"`` (>= 0).
        train_steps, train_learning_rate, weight_decay: proxy training (full-batch AdamW,
            cosine decay; the default 300 steps is an early stop: wide proxies trained much
            longer on few labels overfit the label noise).
        policy_steps, policy_learning_rate, policy_samples: the Gaussian policies.
        bon_n: best-of-n sizes (strictly increasing integers >= 1).
        bon_draws: best-of-n replicates per configuration (>= 2).
        probe_samples: ``pi0`` draws at which the proxy's error is recorded (>= 2).
        block_size: best-of-n candidates per block.
        chunk_size: configurations per chunk, vmapped (default 2: see the module notes).
        devices: as in :func:`goodhart_jax.engine.stream` (default all).
        dtype: float dtype (default JAX's default float).

    Returns:
        :class:`LabSweep` (NumPy arrays).

    Raises:
        ValueError: non-positive widths, label counts, betas, steps or sample counts; a noise
            law without a finite variance; an unknown label kind, objective or activation.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> gold = gj.lab.random_gold(jax.random.key(0), dim=2, width=8)
        >>> res = gj.lab.lab_sweep(jax.random.key(1), gold, seeds=1, widths=[2, 4],
        ...                        label_counts=[16], betas=[1.0], train_steps=5,
        ...                        policy_steps=3, policy_samples=4, bon_n=[1, 4], bon_draws=4,
        ...                        probe_samples=8)
        >>> res.gold.shape   # (S, W, N, O, B, T + 1)
        (1, 2, 1, 1, 1, 4)
    """
    owner = "lab_sweep"
    gold = _as_reward(gold, owner)
    if isinstance(seeds, (int, np.integer)):
        seeds_arr = np.arange(check_positive_int("seeds", seeds, owner=owner))
    else:
        seeds_arr = np.atleast_1d(np.asarray(seeds))
        if seeds_arr.ndim != 1 or seeds_arr.size == 0 or not all(
                float(v) == int(v) and int(v) >= 0 for v in seeds_arr.tolist()):
            raise ValueError(f"{owner}: seeds must be a number >= 1 or a list of integers >= 0, "
                             f"got {seeds!r}")
        if len(set(seeds_arr.tolist())) != seeds_arr.size:
            raise ValueError(f"{owner}: seeds must be distinct, got {seeds!r}")
        seeds_arr = seeds_arr.astype(np.int64)
    widths_arr = _positive_ints("widths", widths, owner)
    counts_arr = _positive_ints("label_counts", label_counts, owner)
    betas_arr = np.atleast_1d(np.asarray(betas, dtype=float))
    if betas_arr.ndim != 1 or betas_arr.size == 0:
        raise ValueError(f"{owner}: betas must be a non-empty list of numbers > 0, got {betas!r}")
    check_param("betas", betas_arr, lo=0.0, lo_open=True, owner=owner)
    depth = check_positive_int("depth", depth, owner=owner)
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {', '.join(ACTIVATIONS)}, got "
                         f"{activation!r}")
    if labels not in ("regression", "preference"):
        raise ValueError(f"{owner}: labels must be 'regression' or 'preference', got {labels!r}")
    if noise is not None:
        noise = parse_dist(noise)
        if labels == "regression" and not has_finite_variance(noise):
            raise ValueError(f"{owner}: noise must have a finite variance for least-squares "
                             f"training, got {noise.spec} (tail exponent <= 2)")
    check_param("temperature", temperature, lo=0.0, lo_open=True, owner=owner)
    members = check_positive_int("ensemble", ensemble, owner=owner)
    objectives = tuple(objectives) if not isinstance(objectives, str) else (objectives,)
    if not objectives or any(o not in OBJECTIVES for o in objectives):
        raise ValueError(f"{owner}: objectives must be a non-empty subset of "
                         f"{', '.join(OBJECTIVES)}, got {objectives!r}")
    check_param("lam", lam, lo=0.0, owner=owner)
    train_steps = check_positive_int("train_steps", train_steps, owner=owner)
    check_param("train_learning_rate", train_learning_rate, lo=0.0, lo_open=True, owner=owner)
    check_param("weight_decay", weight_decay, lo=0.0, owner=owner)
    policy_steps = check_positive_int("policy_steps", policy_steps, owner=owner)
    check_param("policy_learning_rate", policy_learning_rate, lo=0.0, lo_open=True, owner=owner)
    policy_samples = check_positive_int("policy_samples", policy_samples, minimum=2, owner=owner)
    if policy_samples % 2:
        raise ValueError(f"{owner}: policy_samples must be even (antithetic pairs), got "
                         f"{policy_samples}")
    ns = check_ns(bon_n, owner)
    bon_draws = check_positive_int("bon_draws", bon_draws, minimum=2, owner=owner)
    probe_samples = check_positive_int("probe_samples", probe_samples, minimum=2, owner=owner)
    block_size = check_positive_int("block_size", block_size, owner=owner)
    dtype = float_dtype(dtype)

    dim = gold.dim
    S, W, N = seeds_arr.size, widths_arr.size, counts_arr.size
    n_configs = S * W * N
    devs = devices
    if chunk_size is None:
        chunk_size = 2
    chunk_size = min(check_positive_int("chunk_size", chunk_size, owner=owner), n_configs)
    n_chunks = -(-n_configs // chunk_size)

    gold_params = MLPParams(*jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype),
                                                     tuple(gold.params)))
    k_root = jax.random.fold_in(key, 0)
    stream_key = jax.random.fold_in(key, 1)
    data = _labels(jax.random.fold_in(k_root, 0), gold_params, jnp.asarray(seeds_arr), noise,
                   temperature, gold_model=gold.model, preference=labels == "preference",
                   cap=int(counts_arr.max()))
    probe_x, gold_base, table = _prepare(key, gold_params, gold_model=gold.model,
                                         probe_samples=probe_samples, n_chunks=n_chunks)
    root = jax.random.key_data(k_root)
    gold_base = float(gold_base)
    if labels == "preference":
        label_error = np.full((S, int(counts_arr.max())), np.nan)
    else:
        label_error = np.asarray(data.y - jax.vmap(gold.model.apply, in_axes=(None, 0))(
            gold_params, data.x))
    if np.unique(np.asarray(table), axis=0).shape[0] != n_chunks:  # pragma: no cover
        raise RuntimeError("lab_sweep: two chunk keys coincide")

    proxy_model = reward_mlp(dim, int(widths_arr.max()), depth, activation)
    spec = _Spec(gold.model, proxy_model, members, objectives, bool(bootstrap), train_steps,
                 policy_steps, policy_samples, ns, bon_draws, block_size, (S, W, N),
                 n_chunks * chunk_size)
    args = (table, root, gold_params, data,
            jnp.asarray(seeds_arr, jnp.int32), jnp.asarray(widths_arr, jnp.int32),
            jnp.asarray(counts_arr, jnp.int32), jnp.asarray(betas_arr, dtype),
            jnp.asarray(lam, dtype), jnp.asarray(train_learning_rate, dtype),
            jnp.asarray(weight_decay, dtype), jnp.asarray(policy_learning_rate, dtype), probe_x)
    out = _run_stream(_chunk_fn(spec), stream_key, args, num_samples=n_chunks * chunk_size,
                      chunk_size=chunk_size, devices=devs)
    out = {k: np.asarray(v)[:n_configs].reshape((S, W, N) + v.shape[1:]) for k, v in out.items()}
    var = np.maximum(out["bon_gold_sq"] - out["bon_gold"] ** 2, 0.0) * bon_draws / (bon_draws - 1)
    n_arr = np.asarray(ns, float)
    return LabSweep(
        seeds=seeds_arr, widths=widths_arr, label_counts=counts_arr, betas=betas_arr,
        objectives=objectives, n=n_arr, kl_bon=np.asarray(kl_best_of_n(n_arr)),
        gold_base=gold_base, train_loss=out["train_loss"], probe_error=out["probe_error"],
        probe_corr=out["probe_corr"], label_error=label_error, bon_gold=out["bon_gold"],
        bon_gold_se=np.sqrt(var / bon_draws), bon_proxy=out["bon_proxy"], gold=out["gold"],
        proxy=out["proxy"], kl=out["kl"])
