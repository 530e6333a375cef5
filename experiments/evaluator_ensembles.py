"""Ensembles of evaluators: U = V + (the mean of k independent errors).

Averaging ``k`` independent evaluators divides a finite variance by ``k`` but keeps the tail
index, and does nothing at all to stable laws:

* t(3) (unit variance) and lognormal ``LogN(0, ln 2) - 1`` errors: the mean of ``k`` has
  variance ``1/k`` and the same (subexponential) tail, ``P(mean > x) ~ k P(X > k x)``; the
  catastrophic regime moves to larger ``n`` / ``t`` as ``k`` grows (within a fixed budget it
  disappears) but Kwa et al.'s Theorem 5 still applies in the limit;
* Cauchy errors: the mean of ``k`` iid Cauchy is the *same* Cauchy — averaging does nothing;
* Lévy errors: the mean of ``k`` iid Lévy(c) is Lévy(k c) — averaging makes the error
  ``k`` times *larger*.

``E[V]`` under best-of-n (``n = 4^0 ... 4^7``) and ``E[V | U >= t]`` on a threshold grid, by
Monte Carlo on one pool per ``(error, k)`` (the unbiased order-statistic estimator and the
conditional sample mean, with standard errors).  In full mode the stable cases also get the
exact curves (the closed-form laws of the mean through :func:`goodhart_jax.best_of_n_value`).
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results, sweeps
from goodhart_jax.pools import best_of_n_pool, sample_pool
from goodhart_jax.distributions import mean_of
from goodhart_jax.selection import best_of_n_value

SHORT = {
    "t3": "mean of k: variance 1/k, same tail index",
    "lognormal": "mean of k: variance 1/k, still subexponential",
    "cauchy": "mean of k iid Cauchy = the same Cauchy",
    "levy": "mean of k iid Levy(c) = Levy(k c)",
}
NOTES = {
    "t3": "mean of k iid t(3): variance 1/k, same tail index 3: catastrophe pushed to larger n, "
          "not removed in the limit",
    "lognormal": "mean of k iid lognormals: variance 1/k, still subexponential: catastrophe "
                 "pushed to larger n, not removed in the limit",
    "cauchy": "Cauchy averages stay Cauchy: the mean of k iid Cauchy(c) is Cauchy(c) "
              "(averaging does nothing)",
    "levy": "Levy averages stay Levy: the mean of k iid Levy(c) is Levy(k c) "
            "(averaging makes it k times worse)",
}


def errors() -> dict:
    return {
        "t3": (gj.StudentT(3.0, 0.0, math.sqrt(1.0 / 3.0)), "X ~ t(3)/sqrt 3 (unit variance)"),
        "lognormal": (gj.LogNormal(math.log(2.0), -1.0), "X ~ LogN(0, ln 2) - 1"),
        "cauchy": (gj.StudentT(1.0), "X ~ Cauchy(0, 1)"),
        "levy": (gj.Levy(1.0), "X ~ Levy(1)"),
    }


def _threshold_curve(value: np.ndarray, proxy: np.ndarray, t: np.ndarray, min_count: int):
    mean, se, count = [], [], []
    for ti in t:
        sel = value[proxy >= ti]
        c = sel.size
        count.append(c)
        if c >= min_count:
            mean.append(float(sel.mean()))
            se.append(float(sel.std(ddof=1) / math.sqrt(c)))
        else:
            mean.append(np.nan)
            se.append(np.nan)
    return np.array(mean), np.array(se), np.array(count)


def _peak_then_fall(mean: np.ndarray, se: np.ndarray, sigmas: float = 3.0) -> bool:
    """Whether the curve peaks inside the range and then falls significantly."""
    k = int(np.nanargmax(mean))
    if k == len(mean) - 1:
        return False
    drop = mean[k] - mean[-1]
    return bool(drop > sigmas * math.hypot(se[k], se[-1]))


def main(quick: bool, out: Path, seed: int, *, ks: tuple = (1, 2, 4, 8, 16, 32, 64),
         max_power: int = 7, pool_size: int = 1 << 20, t_max: float = 8.0,
         exact: bool | None = None) -> dict:
    """Write ``evaluator_ensembles.png`` and ``numbers.json``; return the numbers."""
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    ks = tuple(check_positive_int("ks", k) for k in ks)
    max_power = check_positive_int("max_power", max_power)
    pool_size = check_positive_int("pool_size", pool_size, minimum=1024)
    check_param("t_max", t_max, lo=0.0, lo_open=True)
    if quick:
        ks = tuple(k for k in ks if k in (1, 4, 16)) or ks[:3]
        pool_size, max_power = min(pool_size, 1 << 16), min(max_power, 6)
    exact = (not quick) if exact is None else bool(exact)
    num_batches = 16
    ns = 4.0 ** np.arange(max_power + 1)
    ns = ns[ns <= pool_size // num_batches]
    t = np.linspace(0.0, t_max, 17)
    value = gj.Normal(0.0, 1.0)
    key = jax.random.key(seed)
    numbers: dict = {"value": value.spec, "ks": list(ks), "n": ns, "t": t, "pool_size": pool_size,
                     "exact": exact, "errors": {}}
    errs = errors()

    def one(point: list) -> dict:  # one (error law, k) pair: a pool, best-of-n and thresholds
        ename, k = point
        i, j = list(errs).index(ename), list(ks).index(k)
        err_k = mean_of(errs[ename][0], k)
        pool = sample_pool(jax.random.fold_in(key, 64 * i + j), value, err_k, pool_size)
        est = best_of_n_pool(pool, ns, num_batches=num_batches)
        m, se = np.asarray(est.mean), np.asarray(est.stderr)
        tm, tse, tc = _threshold_curve(np.asarray(pool.value), np.asarray(pool.proxy), t, 30)
        rec = {"error_law": getattr(err_k, "spec", repr(err_k)), "bon": m, "bon_se": se,
               "bon_argmax_n": float(ns[int(np.nanargmax(m))]),
               "catastrophic_in_range": _peak_then_fall(m, se),
               "threshold_mean": tm, "threshold_se": tse, "threshold_count": tc}
        if exact and ename in ("cauchy", "levy"):
            rec["bon_exact"] = np.asarray(best_of_n_value(value, err_k, ns))
        return rec

    points = [[ename, k] for ename in errs for k in ks]
    done = sweeps.sweep(out, "laws", {"quick": quick, "seed": seed, "ks": list(ks),
                                      "max_power": max_power, "pool_size": pool_size,
                                      "t_max": t_max, "exact": exact}, points, one, label="laws")
    panels = []
    for ename, (error, elabel) in errs.items():
        curves, tcurves, recs = [], [], {}
        for k in ks:
            rec = done[points.index([ename, k])]
            rec = {key_: (np.asarray(v, dtype=float) if isinstance(v, list) else v)
                   for key_, v in rec.items()}
            recs[str(k)] = rec
            curves.append({"k": k, "n": ns, "mean": rec["bon"], "stderr": rec["bon_se"]})
            tcurves.append({"k": k, "t": t, "mean": rec["threshold_mean"],
                            "stderr": rec["threshold_se"]})
        numbers["errors"][ename] = {"label": elabel, "note": NOTES[ename], "k": recs}
        panels.append({"label": elabel, "short_note": SHORT[ename], "curves": curves,
                       "threshold": tcurves})
    from goodhart_jax.plots.pressure import ensembles_figure

    fig = ensembles_figure(panels, title="U = V + mean of k evaluators' errors, V ~ N(0, 1)")
    results.save_figure(out / "evaluator_ensembles.png", fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
