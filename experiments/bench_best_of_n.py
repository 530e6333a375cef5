"""Benchmark: Kwa et al. 2024's best-of-n figure, exactly, against their Monte Carlo.

The grid of their best-of-n appendix: V in {N(0, 2^2), 2 sqrt(0.8) t(10)}, X in {N(0, 1),
t(3)/sqrt 3, t(5) sqrt(3/5), LogN(0, ln 2) - 1, Levy(1)}, n = 4^0, ..., 4^8 (2 x 5 x 9 = 90
points).  ``gj.best_of_n_value`` computes it exactly (the nine n of a pair share one outer rule);
a NumPy Monte Carlo with 400 trials per point (what they ran) computes it by sampling.  Printed,
in one run: the exact grid's time from a fresh process with an empty and with a warm
persistent compilation cache, and warm in this process; the Monte Carlo's time; and how many
Monte Carlo points lie within 4 of their standard errors of the exact values.

Run: ``goodhart-jax bench best_of_n`` (``--quick``: 100 trials per point).  Saves
``results/bench_best_of_n/bench.json``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path("results") / "bench_best_of_n"
NS = 4 ** np.arange(9)

_GRID = (
    "import goodhart_jax as gj\n"
    "from goodhart_jax.experiments.catastrophic_goodhart import values, errors\n"
    "ns = 4.0 ** np.arange(9)\n"
    "grid = [np.asarray(gj.best_of_n_value(v, e, ns)) for v, _ in values().values()\n"
    "        for e, _ in errors().values()]\n"
)


def _sample(name: str, rng: np.random.Generator, shape) -> np.ndarray:
    """Draws of the laws of the grid, by NumPy (as Kwa et al.'s script)."""
    if name == "v/normal":
        return 2.0 * rng.standard_normal(shape)
    if name == "v/student_t10":
        return 2.0 * math.sqrt(0.8) * rng.standard_t(10.0, shape)
    if name == "x/normal":
        return rng.standard_normal(shape)
    if name == "x/t3":
        return rng.standard_t(3.0, shape) / math.sqrt(3.0)
    if name == "x/t5":
        return rng.standard_t(5.0, shape) * math.sqrt(3.0 / 5.0)
    if name == "x/lognormal":
        return rng.lognormal(0.0, math.log(2.0), shape) - 1.0
    if name == "x/levy":
        return 1.0 / rng.standard_normal(shape) ** 2
    raise ValueError(name)


def monte_carlo(v_name: str, x_name: str, trials: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Best-of-n by sampling: ``trials`` replicates of n pairs, the V of the largest V + X."""
    rng = np.random.default_rng(seed)
    means, ses = [], []
    for n in NS:
        best = np.empty(trials)
        block = max(1, (1 << 20) // int(n))  # trials per block: ~1M draws in memory
        for i in range(0, trials, block):
            k = min(block, trials - i)
            v = _sample("v/" + v_name, rng, (k, int(n)))
            u = v + _sample("x/" + x_name, rng, (k, int(n)))
            best[i:i + k] = v[np.arange(k), np.argmax(u, axis=1)]
        means.append(best.mean())
        ses.append(best.std(ddof=1) / math.sqrt(trials))
    return np.array(means), np.array(ses)


def main(quick: bool = False) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import goodhart_jax as gj
    from goodhart_jax import results
    from goodhart_jax.experiments.bench_conditioning import first_call, first_call_code
    from goodhart_jax.experiments.catastrophic_goodhart import errors, values

    code = first_call_code("0").replace("jax.block_until_ready(0)\n", _GRID)
    with tempfile.TemporaryDirectory() as cache:
        cold = first_call(code, cache)
        warm_cache = first_call(code, cache)
    pairs = [(vn, v, en, e) for vn, (v, _) in values().items() for en, (e, _) in errors().items()]

    def grid():
        return [np.asarray(gj.best_of_n_value(v, e, NS.astype(float))) for _, v, _, e in pairs]

    exact = grid()  # compiles (or loads) in this process
    runs = []
    for _ in range(3 if quick else 7):
        start = time.perf_counter()
        grid()
        runs.append(time.perf_counter() - start)
    t_warm = float(np.median(runs))
    trials = 100 if quick else 400
    start = time.perf_counter()
    mc = [monte_carlo(vn, en, trials, seed=i) for i, (vn, _, en, _) in enumerate(pairs)]
    t_mc = time.perf_counter() - start
    z = np.array([np.abs(m - x) / np.where(s > 0, s, np.inf) for (m, s), x in zip(mc, exact)])
    within = int(np.sum(z <= 4.0))
    report = {
        "grid": "V {N(0,4), 2 sqrt(0.8) t(10)} x X {N(0,1), t3/sqrt3, t5 sqrt(3/5), "
                "LogN(0, ln 2) - 1, Levy(1)} x n = 4^0..4^8",
        "exact_fresh_process_empty_cache": cold, "exact_fresh_process_warm_cache": warm_cache,
        "exact_warm_s": t_warm, "exact_warm_runs_s": runs,
        "monte_carlo_trials": trials, "monte_carlo_s": t_mc,
        "points": int(z.size), "within_4_se": within, "max_z": float(np.max(z)),
        "exact": {f"{vn}/{en}": x for (vn, _, en, _), x in zip(pairs, exact)},
        "monte_carlo": {f"{vn}/{en}": {"mean": m, "se": s}
                        for (vn, _, en, _), (m, s) in zip(pairs, mc)},
    }
    print(f"Kwa et al. 2024's best-of-n grid, 2 x 5 x 9 = {z.size} points "
          f"(backend {jax.default_backend()})")
    print(f"  exact, fresh process, empty compilation cache : {cold['first_call_s']:7.2f} s "
          f"(+ import {cold['import_s']:.2f} s)")
    print(f"  exact, fresh process, warm compilation cache  : {warm_cache['first_call_s']:7.2f} s "
          f"(+ import {warm_cache['import_s']:.2f} s)")
    print(f"  exact, warm, in process (median of {len(runs)})     : {t_warm:7.3f} s")
    print(f"  NumPy Monte Carlo, {trials} trials per point        : {t_mc:7.2f} s")
    print(f"  Monte Carlo points within 4 se of the exact value: {within} / {z.size} "
          f"(largest |z| {np.max(z):.2f})")
    results.save_json(OUT / "bench.json", report)
    print(f"saved {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv))
