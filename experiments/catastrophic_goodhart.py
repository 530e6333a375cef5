"""Catastrophic vs light-tailed Goodhart under best-of-n and KL tilting (Kwa, Thomas & Garriga-Alonso 2024).

Following the best-of-n appendix of Kwa et al.: the value ``V`` is ``N(0, 2^2)`` or a Student
t(10) scaled to the same variance (``2 sqrt(8/10) t(10)``); the error ``X`` is normal, t(3) or
t(5) scaled to unit variance (``sqrt((df - 2)/df) t(df)``), lognormal ``LogN(0, ln 2) - 1``
(``sigma = ln 2``: variance ~1) or Lévy (no mean).  For ``n = 4^0 ... 4^8``:

* ``E[V]`` under best-of-n, exactly (:func:`goodhart_jax.best_of_n_value`, skipped in quick mode
  where it would be compile-bound) and from one pool by the unbiased order-statistic estimator
  (:func:`goodhart_jax.pools.best_of_n_pool`, ± 2 standard errors);
* ``E[V]`` under the tilt ``softmax(u / beta)`` of the same pool over a grid of ``beta``, against
  its KL.

Expected (their theorems): normal ``X`` rises without bound; t and lognormal ``X`` rise, peak
and fall back towards ``E[V] = 0`` (catastrophic Goodhart); Lévy ``X`` stays near 0.

Second figure, their Theorem 1: for a heavy-tailed base reward law ``Q`` the mixtures
``pi_t = (1 - delta_t) Q + delta_t Q(. | U > t)`` with ``delta_t = 1 / (-log S_Q(t) log t)``
have ``KL(pi_t || Q) -> 0`` while ``E[U] -> inf``; for a normal ``Q`` the same construction
has ``E[U] -> 0`` too, as it must: ``E_pi[U] <= sqrt(2 KL)`` for every policy (Donsker-Varadhan).
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results, sweeps
from goodhart_jax.pools import best_of_n_pool, sample_pool, tilted_stats
from goodhart_jax.selection import best_of_n_value, kl_best_of_n


def values() -> dict:
    return {
        "normal": (gj.Normal(0.0, 2.0), "V ~ N(0, 2^2)"),
        "student_t10": (gj.StudentT(10.0, 0.0, 2.0 * math.sqrt(0.8)), "V ~ 2 sqrt(0.8) t(10)"),
    }


def errors() -> dict:
    return {
        "normal": (gj.Normal(0.0, 1.0), "X ~ N(0, 1)"),
        "t3": (gj.StudentT(3.0, 0.0, math.sqrt(1.0 / 3.0)), "X ~ t(3) / sqrt 3"),
        "t5": (gj.StudentT(5.0, 0.0, math.sqrt(3.0 / 5.0)), "X ~ t(5) sqrt(3/5)"),
        "lognormal": (gj.LogNormal(math.log(2.0), -1.0), "X ~ LogN(0, ln 2) - 1"),
        "levy": (gj.Levy(1.0), "X ~ Levy(1)"),
    }


def _robust_scale(u: np.ndarray) -> float:
    q75, q25 = np.percentile(u, [75, 25])
    return float(q75 - q25) / 1.349


def theorem1(t: np.ndarray) -> dict:
    """E[U] and KL of ``pi_t = (1 - d) Q + d Q(. | U > t)`` for each base ``Q``, exactly.

    ``d = 1 / (-log S_Q(t) * log t)``.  Then ``KL(pi_t || Q) ~ d (-log S_Q(t)) = 1 / log t -> 0``
    for every ``Q``, while ``E_pi[U] - E_Q[U] = d E[U - E U; U > t] / S_Q(t) ~ d t`` grows without
    bound when ``-log S_Q(t) = o(t / log t)`` (power laws: ``t / (alpha log^2 t)``; lognormal:
    ``2 sigma^2 t / log^3 t``) and vanishes for a normal ``Q`` (``~ 2 / (t log t)``).
    """
    bases = {
        "t3": (gj.StudentT(3.0, 0.0, math.sqrt(1.0 / 3.0)), "Q = t(3)/sqrt 3 (heavy)"),
        "lognormal": (gj.LogNormal(math.log(2.0), -1.0), "Q = LogN(0, ln 2) - 1 (heavy)"),
        "normal": (gj.Normal(0.0, 1.0), "Q = N(0, 1) (light)"),
    }
    out = {}
    tt = jnp.asarray(t)
    for name, (q, label) in bases.items():
        log_p = q.log_sf(tt)
        delta = 1.0 / (-log_p * jnp.log(tt))
        # E[U | U > t] - E[U] = G(t) / S(t)
        excess = jnp.exp(q.log_mean_excess(tt) - log_p)
        mean = q.mean() + delta * excess
        p_a = (1.0 - delta) * jnp.exp(log_p) + delta  # pi(A), A = {U > t}
        log_ratio_a = jnp.logaddexp(jnp.log1p(-delta), jnp.log(delta) - log_p)
        kl = p_a * log_ratio_a + (1.0 - p_a) * jnp.log1p(-delta)
        # G(t) / S(t) is a difference of two logs of size -log S(t): beyond 1e10 float64 has
        # fewer than six digits of it left, so those points are dropped (light tails only)
        ok = np.asarray(-log_p) < 1e10
        out[name] = {"label": label, "spec": q.spec, "t": t[ok], "delta": np.asarray(delta)[ok],
                     "kl": np.asarray(kl)[ok], "mean": np.asarray(mean)[ok]}
    return out


def main(quick: bool, out: Path, seed: int, *, max_power: int = 8, pool_size: int = 1 << 22,
         num_betas: int = 60, exact: bool | None = None) -> dict:
    """Write ``catastrophic_goodhart.png``, ``theorem1.png`` and ``numbers.json``; return numbers.

    Quick mode: pools of 2^16,
    ``n <= 4^6``, no exact curves (they are compile-bound: about ten seconds per pair of laws).
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_positive_int

    max_power = check_positive_int("max_power", max_power, minimum=1)
    pool_size = check_positive_int("pool_size", pool_size, minimum=1024)
    num_betas = check_positive_int("num_betas", num_betas, minimum=2)
    if quick:
        pool_size, num_betas, max_power = min(pool_size, 1 << 16), min(num_betas, 30), min(max_power, 6)
    exact = (not quick) if exact is None else bool(exact)
    ns = 4.0 ** np.arange(max_power + 1)
    kl_bon = np.asarray(kl_best_of_n(ns))
    num_batches = 16
    pool_ns = ns[ns <= pool_size // num_batches]
    key = jax.random.key(seed)
    numbers: dict = {
        "n": ns, "kl_bon": kl_bon, "pool_size": pool_size, "exact": exact,
        "source": "Kwa, Thomas & Garriga-Alonso (2024), best-of-n appendix",
        "series": {},
    }
    vals, errs = values(), errors()

    def one(point: list) -> dict:  # one (value, error) pair: pools, tilts, exact best-of-n
        vname, xname = point
        i, j = list(vals).index(vname), list(errs).index(xname)
        value, error = vals[vname][0], errs[xname][0]
        pool = sample_pool(jax.random.fold_in(key, 16 * i + j), value, error, pool_size)
        est = best_of_n_pool(pool, pool_ns, num_batches=num_batches)
        u = np.asarray(pool.proxy)
        # from a near-greedy tilt to one flatter than the whole pool's range
        lo_b = 1e-3 * _robust_scale(u)
        betas = np.geomspace(lo_b, max(30.0 * float(u.max() - np.median(u)), 1e3 * lo_b), num_betas)
        tilt = tilted_stats(pool, betas)
        bon = np.asarray(best_of_n_value(value, error, ns)) if exact else None
        rec = {
            "value": value.spec, "error": error.spec,
            "bon_exact": bon,
            "bon_pool": np.asarray(est.mean), "bon_pool_se": np.asarray(est.stderr),
            "pool_n": pool_ns,
            "beta": betas, "tilt_kl": np.asarray(tilt.kl), "tilt_value": np.asarray(tilt.value),
            "tilt_proxy": np.asarray(tilt.proxy), "tilt_ess": np.asarray(tilt.ess),
            "pool_mean_value": float(np.mean(np.asarray(pool.value))),
        }
        curve = bon if bon is not None else np.asarray(est.mean)
        k = int(np.nanargmax(curve))
        rec["bon_argmax_n"] = float((ns if bon is not None else pool_ns)[k])
        rec["bon_max"] = float(curve[k])
        return rec

    points = [[vname, xname] for vname in vals for xname in errs]
    recs = sweeps.sweep(out, "pairs", {"quick": quick, "seed": seed, "max_power": max_power,
                                       "pool_size": pool_size, "num_betas": num_betas,
                                       "exact": exact}, points, one, label="pairs")
    panels = []
    for vname, (value, vlabel) in vals.items():
        series = []
        numbers["series"][vname] = {}
        for xname, (error, xlabel) in errs.items():
            rec = recs[points.index([vname, xname])]
            rec = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in rec.items()}
            numbers["series"][vname][xname] = rec
            bon = rec["bon_exact"]
            series.append({"label": xlabel, "kl_bon": kl_bon if bon is not None else kl_bon[:len(pool_ns)],
                           "bon": bon, "bon_pool": rec["bon_pool"] if bon is None else
                           np.pad(rec["bon_pool"], (0, len(ns) - len(pool_ns)), constant_values=np.nan),
                           "bon_pool_se": rec["bon_pool_se"] if bon is None else
                           np.pad(rec["bon_pool_se"], (0, len(ns) - len(pool_ns)), constant_values=np.nan),
                           "tilt_kl": rec["tilt_kl"], "tilt_value": rec["tilt_value"],
                           "tilt_ess": rec["tilt_ess"]})
        panels.append({"label": vlabel, "series": series})
    t = np.geomspace(3.0, 1e60, 400)
    th = theorem1(t)
    numbers["theorem1"] = th
    from goodhart_jax.plots.pressure import catastrophic_figure, theorem1_figure

    fig = catastrophic_figure(panels, title="Best-of-n and KL tilting on U = V + X: light vs heavy-tailed error")
    results.save_figure(out / "catastrophic_goodhart.png", fig)
    kl_grid = np.geomspace(1e-6, 1e3, 200)
    series = []
    for name, rec in th.items():
        s = {"label": rec["label"], "kl": rec["kl"], "mean": rec["mean"]}
        if name == "normal":
            s["bound"] = (kl_grid, np.sqrt(2.0 * kl_grid))
            s["bound_label"] = "normal Q: sup over all pi with KL <= k is sqrt(2k)"
        series.append(s)
    results.save_figure(out / "theorem1.png", theorem1_figure(series))
    results.save_json(out / "numbers.json", numbers)
    return numbers
