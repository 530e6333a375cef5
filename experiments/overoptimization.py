"""Overoptimisation curves (Gao, Schulman & Hilton 2022) and the best pressure, by gradient.

Model: ``V ~ N(0, 1)`` (gold), ``X ~ t(3)`` (the proxy's error), ``U = V + X`` (proxy).

1. **Curves and fits.**  Gold ``E[V] - E_0[V]`` against ``d = sqrt(KL)``:
   best-of-n (exact quadrature; the pool estimator in quick mode) fitted by ``d (alpha - beta d)``;
   optax-pushed policies on a pool — natural-gradient proxy ascent (mirror descent), Adam proxy
   ascent, and Adam on the KL-penalised objective — fitted by ``d (alpha - beta log d)``
   (:func:`goodhart_jax.fit_overoptimization`), on the part of each run where the pool has not
   saturated (effective sample size >= 100).
2. **Optimal pressure, by gradient** (:mod:`goodhart_jax.pressure`): the threshold ``t*``, the
   best-of-n ``n*`` (log-parameterised), the tilt ``beta*`` and the early-stopping step ``k*``,
   each found by an optax search and checked on a dense grid, for ``X ~ t(3)`` (interior optima)
   and ``X ~ N(0, 1)`` (``E[V]`` grows without bound: the searches report no interior optimum).
   Quick mode runs the pool-based searches (``beta*``, ``k*``) only: the exact ones are
   compile-bound (tens of seconds per law on this CPU).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import goodhart_jax as gj
from goodhart_jax import pressure
from goodhart_jax import results
from goodhart_jax.pools import best_of_n_pool, push, sample_pool
from goodhart_jax.selection import best_of_n_value, kl_best_of_n


def _fit_record(fit) -> dict:
    return {k: (v if isinstance(v, str) else float(v)) for k, v in fit._asdict().items()}


def _optimum_record(o, *, label: str, panel: int, log_x: bool) -> dict:
    return {
        "label": label, "measure": o.measure, "pressure": float(o.pressure), "value": float(o.value),
        "interior": bool(o.interior), "reason": o.reason, "agrees": bool(o.agrees),
        "grid_pressure": float(o.grid_pressure), "resolution": float(o.resolution),
        "search_pressure": float(o.search.pressure), "search_converged": bool(o.search.converged),
        "grid": np.asarray(o.grid), "grid_values": np.asarray(o.grid_values),
        "panel": panel, "log_x": log_x,
    }


def main(quick: bool, out: Path, seed: int, *, df: float = 3.0, pool_size: int = 1 << 20,
         steps: int = 400, learning_rate: float = 5e-4, kl_beta: float = 0.5,
         exact: bool | None = None, min_ess: float = 100.0) -> dict:
    """Write ``overoptimization.png``, ``optimal_pressure.png`` and ``numbers.json``; return numbers."""
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    check_param("df", df, lo=1.0, lo_open=True)
    pool_size = check_positive_int("pool_size", pool_size, minimum=1024)
    steps = check_positive_int("steps", steps, minimum=2)
    check_param("learning_rate", learning_rate, lo=0.0, lo_open=True)
    check_param("kl_beta", kl_beta, lo=0.0, lo_open=True)
    if quick:
        pool_size, steps = min(pool_size, 1 << 16), min(steps, 200)
    exact = (not quick) if exact is None else bool(exact)
    value = gj.Normal(0.0, 1.0)
    error = gj.StudentT(df)
    key = jax.random.key(seed)
    pool = sample_pool(jax.random.fold_in(key, 0), value, error, pool_size)
    base = float(jnp.mean(pool.value))
    numbers: dict = {"value": value.spec, "error": error.spec, "pool_size": pool_size,
                     "exact": exact, "source": "Gao, Schulman & Hilton (2022)", "curves": {}}
    curves = []

    # --- 1a. best-of-n --------------------------------------------------------------------------
    num_batches = 16
    if exact:
        ns = np.geomspace(1.0, 4.0**8, 33)
        gold = np.asarray(best_of_n_value(value, error, ns)) - float(value.mean())
        gold_se = None
        how = "exact quadrature"
    else:
        ns = np.unique(np.round(np.geomspace(1.0, pool_size // num_batches, 25)))
        est = best_of_n_pool(pool, ns, num_batches=num_batches)
        gold, gold_se = np.asarray(est.mean) - base, np.asarray(est.stderr)
        how = f"pool estimator (M = {pool_size})"
    d = np.sqrt(np.asarray(kl_best_of_n(ns)))
    fit = pressure.fit_overoptimization(d, gold, "bon",
                                   weights=None if gold_se is None else 1.0 / np.maximum(gold_se, 1e-6) ** 2)
    numbers["curves"]["best_of_n"] = {"n": ns, "d": d, "gold": gold, "gold_se": gold_se, "how": how,
                                      "fit": _fit_record(fit)}
    curves.append({"label": f"best-of-n ({how})", "d": d, "gold": gold, "gold_se": gold_se,
                   "fit": _fit_record(fit), "panel": 0})

    # --- 1b. optax-pushed policies on the pool -------------------------------------------------
    runs = {
        "natural_sgd": (dict(beta=0.0, learning_rate=learning_rate, geometry="natural"),
                        f"proxy ascent, natural gradient (mirror descent), lr {learning_rate:g}"),
        "adam": (dict(beta=0.0, learning_rate=0.05, geometry="euclidean"),
                 "proxy ascent, Adam (lr 0.05)"),
        "adam_kl": (dict(beta=kl_beta, learning_rate=0.05, geometry="euclidean"),
                    f"E[U] - {kl_beta:g} KL, Adam (lr 0.05)"),
    }
    for name, (kw, label) in runs.items():
        res = push(pool, steps=steps, **kw)
        tr = res.trace
        kl, ess = np.asarray(tr.kl), np.asarray(tr.ess)
        dd = np.sqrt(kl)
        g = np.asarray(tr.value) - base
        use = (ess >= min_ess) & (dd > 0)
        rec = {"label": label, "step": np.arange(steps + 1), "d": dd, "gold": g,
               "proxy": np.asarray(tr.proxy) - float(jnp.mean(pool.proxy)), "kl": kl, "ess": ess,
               "gap": np.asarray(tr.gap), "fit_points": int(use.sum())}
        if use.sum() >= 3:
            f = pressure.fit_overoptimization(dd[use], g[use], "rl")
            rec["fit"] = _fit_record(f)
        numbers["curves"][name] = rec
        curves.append({"label": label, "d": dd[use], "gold": g[use], "fit": rec.get("fit"),
                       "panel": 1})

    # --- 2. optimal pressure ----------------------------------------------------------------------
    optima = []
    numbers["optima"] = {}
    laws = {"t": (error, f"X ~ t({df:g})"), "normal": (gj.Normal(0.0, 1.0), "X ~ N(0, 1)")}
    for j, (lname, (err, elabel)) in enumerate(laws.items()):
        p = pool if lname == "t" else sample_pool(jax.random.fold_in(key, 1), value, err, pool_size)
        found = {}
        if exact:
            found["threshold"] = (pressure.optimal_threshold(value, err), 0, False)
            found["best_of_n"] = (pressure.optimal_best_of_n(value, err), 1, True)
        found["beta"] = (pressure.optimal_tilt(p, min_ess=min_ess), 2, True)
        found["steps"] = (pressure.optimal_stopping(p, learning_rate=learning_rate, max_steps=steps,
                                               min_ess=min_ess), 3, False)
        numbers["optima"][lname] = {}
        for m, (o, panel, log_x) in found.items():
            rec = _optimum_record(o, label=elabel, panel=panel, log_x=log_x)
            numbers["optima"][lname][m] = rec
            optima.append(rec)

    from goodhart_jax.plots.pressure import optimal_pressure_figure, overoptimization_figure

    fig = overoptimization_figure(curves, title=f"Gold V against d = sqrt(KL): V ~ N(0, 1), X ~ t({df:g})")
    results.save_figure(out / "overoptimization.png", fig)
    fig = optimal_pressure_figure(optima, title="Optimal pressure by optax search (stars) vs dense grids")
    results.save_figure(out / "optimal_pressure.png", fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
