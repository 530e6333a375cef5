"""Benchmark: exact conditioning as users call it, against SciPy scripts; best-of-n.

Prints, in one run:

1. For three pairings (V ~ N(0, 1) / X ~ t(3); gennorm(0.5) / exponential(1); lognormal(0.5) /
   Pareto(1.5)) and 1; 1,000; 100,000 thresholds: ``gj.conditional_value`` exactly as users
   write it — eager, warm (median of repeats) — beside the same call under the user's own
   ``jax.jit``, the first call in a fresh process (with an empty and with a warm persistent
   compilation cache), and two ``scipy.integrate.quad`` loops over the same thresholds: one
   over ``scipy.stats`` frozen distributions (what most scripts do), one over plain
   ``scipy.special`` functions with finite limits and break points (the careful version).
   SciPy loops over many thresholds are timed on a subset and extrapolated per threshold.
   Accuracy: the largest relative error against mpmath (50 digits) for normal / t(3), and the
   largest relative difference from the careful SciPy loop for every pairing.
2. ``gj.best_of_n_value`` over n = 1, ..., 1000 (normal / t(3)): eager warm, under ``jax.jit``
   (where every traced n gets its own rule), the first call in a fresh process.
3. Samples/s of the ``mc`` estimator against a NumPy implementation of the same estimator
   (float32 ``standard_normal`` in chunks), normal/normal.
4. Peak RSS of the ``mc`` estimator for 1e6 and 1e9 samples (separate processes).

Run: ``goodhart-jax bench conditioning`` (``--quick`` for a shorter run).  Needs SciPy and
mpmath (the ``test`` extra).  Saves ``results/bench_conditioning/bench.json``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path("results") / "bench_conditioning"


def _mpmath_reference(ts) -> np.ndarray:
    import mpmath as mp

    mp.mp.dps = 50
    nu = mp.mpf(3)

    def sf(x):  # P(T_3 > x), exact incomplete-beta form
        x = mp.mpf(x)
        tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + x * x), regularized=True) / 2
        return tail if x > 0 else 1 - tail

    def phi(v):
        return mp.exp(-v * v / 2) / mp.sqrt(2 * mp.pi)

    out = []
    for t in ts:
        t = mp.mpf(float(t))
        pts = [-40, -5, 0, 5, 40]
        num = mp.quad(lambda v: v * phi(v) * sf(t - v), pts)
        den = mp.quad(lambda v: phi(v) * sf(t - v), pts)
        out.append(float(num / den))
    return np.array(out)


PAIRINGS = {
    "normal/t3": ("normal(0, 1)", "student_t(df=3)", (50.0, 1e6)),
    "gennorm/exponential": ("gennorm(p=0.5)", "exponential(rate=1)", (50.0, 1e4)),
    "lognormal/pareto": ("lognormal(sigma=0.5)", "pareto(alpha=1.5)", (50.0, 1e6)),
}


def _thresholds_for(pair: str, n: int) -> np.ndarray:
    lin, top = PAIRINGS[pair][2]
    if n == 1:
        return np.array([5.0])
    return np.concatenate([np.linspace(0.0, lin, n // 2), np.geomspace(lin, top, n - n // 2)])


def _frozen_laws(pair: str):
    from scipy import stats

    return {"normal/t3": (stats.norm(0.0, 1.0), stats.t(3.0)),
            "gennorm/exponential": (stats.gennorm(0.5), stats.expon()),
            "lognormal/pareto": (stats.lognorm(0.5), stats.pareto(1.5))}[pair]


def _scipy_frozen(ts, pair: str = "normal/t3") -> np.ndarray:
    from scipy import integrate

    v_dist, x_dist = _frozen_laws(pair)
    out = np.empty(len(ts))
    for i, t in enumerate(ts):
        num = integrate.quad(lambda v: v * v_dist.pdf(v) * x_dist.sf(t - v), -np.inf, np.inf)[0]
        den = integrate.quad(lambda v: v_dist.pdf(v) * x_dist.sf(t - v), -np.inf, np.inf)[0]
        out[i] = num / den if den > 0 else np.nan  # quad found no mass: the loop's failure
    return out


def _careful(pair: str):
    """(integrand of P(U >= t) given t, ``(lo, hi, break points)`` given t): plain scipy.special."""
    from scipy import special

    if pair == "normal/t3":
        c = 1.0 / math.sqrt(2.0 * math.pi)

        def den(v, t):
            return c * math.exp(-0.5 * v * v) * special.stdtr(3.0, v - t)

        return den, lambda t: (-40.0, 40.0, [-5.0, 0.0, 5.0])
    if pair == "gennorm/exponential":
        c = 0.5 / (2.0 * math.gamma(2.0))  # p / (2 Gamma(1/p)), p = 1/2

        def den(v, t):
            sx = math.exp(-(t - v)) if v < t else 1.0
            return c * math.exp(-math.sqrt(abs(v))) * sx

        return den, lambda t: (-2500.0, t + 2500.0, sorted({-100.0, 0.0, t, t + 100.0}))

    def den(v, t):  # lognormal(0.5) value, Pareto(1.5) error: S_X(x) = x^-1.5 for x >= 1
        if v <= 0.0:
            return 0.0
        z = math.log(v) / 0.5
        fv = math.exp(-0.5 * z * z) / (v * 0.5 * math.sqrt(2.0 * math.pi))
        x = t - v
        return fv * (x ** -1.5 if x >= 1.0 else 1.0)

    return den, lambda t: (0.0, math.inf, sorted({1.0, 10.0, t - 1.0} - {0.0}))


def _scipy_special(ts, pair: str = "normal/t3") -> np.ndarray:
    """The careful loop: one quad per integral, finite limits where the mass is, break points
    at the bulk and the kinks."""
    from scipy import integrate

    den, limits = _careful(pair)
    out = np.empty(len(ts))
    for i, t in enumerate(ts):
        lo, hi, pts = limits(t)
        pts = [p for p in pts if lo < p < hi]
        pieces = [(lo, hi, pts)] if math.isfinite(hi) else [(lo, pts[-1], pts[:-1]),
                                                             (pts[-1], hi, None)]
        num = den_t = 0.0
        for a, b, p in pieces:
            num += integrate.quad(lambda v, t=t: v * den(v, t), a, b, points=p, limit=200)[0]
            den_t += integrate.quad(lambda v, t=t: den(v, t), a, b, points=p, limit=200)[0]
        out[i] = num / den_t
    return out


def _median_time(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return float(np.median(runs))


def _alternating(first, second, repeats: int, block: int = 1) -> tuple[float, float]:
    """Medians of ``first()`` and ``second()`` timed in turns, per call of ``block``
    consecutive calls (a call timed right after the other function's measures Python's caches
    cleared by it, not the warm cost of calling one function again and again)."""
    runs: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((first, second), runs):
            start = time.perf_counter()
            for _ in range(block):
                fn()
            out.append((time.perf_counter() - start) / block)
    return float(np.median(runs[0])), float(np.median(runs[1]))


def first_call(code: str, cache_dir: str) -> dict:
    """Run ``code`` in a fresh Python (float64, the given compilation cache); it prints
    ``import_s first_call_s``."""
    env = dict(os.environ, GOODHART_JAX_CACHE_DIR=cache_dir, JAX_ENABLE_X64="1")
    env.pop("GOODHART_JAX_CACHE", None)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    wall = time.perf_counter() - start
    imp, first = (float(x) for x in out.stdout.split()[-2:])
    return {"import_s": imp, "first_call_s": first, "process_wall_s": wall}


def first_call_code(call: str) -> str:
    """A Python program that imports goodhart_jax, runs ``call`` once and prints
    ``import_s first_call_s`` (for :func:`first_call`)."""
    return ("import time; s = time.perf_counter()\n"
            "import jax, numpy as np, goodhart_jax as gj\n"
            "imp = time.perf_counter() - s; s = time.perf_counter()\n"
            f"jax.block_until_ready({call})\n"
            "print(imp, time.perf_counter() - s)\n")


def _best_time(fn, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _rss_child(num_samples: int) -> dict:
    code = (
        "import resource, time, jax, goodhart_jax as gj\n"
        f"n = {num_samples}\n"
        "s = time.perf_counter()\n"
        "e = gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), 1.0,"
        " num_samples=n, method='mc')\n"
        "e.mean.block_until_ready()\n"
        "el = time.perf_counter() - s\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, el, float(e.mean))\n"
    )
    env = dict(os.environ, JAX_ENABLE_X64="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    rss_kb, elapsed, mean = out.stdout.split()
    return {"num_samples": num_samples, "peak_rss_mib": int(rss_kb) / 1024,
            "seconds": float(elapsed), "mean": float(mean)}


def main(quick: bool = False) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import goodhart_jax as gj

    import tempfile

    sizes = (1, 1000, 10_000) if quick else (1, 1000, 100_000)
    report: dict = {"backend": jax.default_backend(), "devices": len(jax.devices()),
                    "conditioning": {}}
    print(f"E[V | U >= t] by gj.conditional_value as users call it (backend "
          f"{jax.default_backend()}, {len(jax.devices())} device(s), float64); times in seconds")
    print(f"  {'pairing':<20}{'thresholds':>10}{'eager':>10}{'jit':>10}{'eager/jit':>10}"
          f"{'careful':>10}{'vs ours':>9}{'stats':>10}{'vs ours':>9}{'diff careful':>13}")
    for pair in PAIRINGS:  # SciPy's imports and first calls, not timed
        _scipy_special([5.0], pair)
        _scipy_frozen([5.0], pair)
    for pair, (v_spec, x_spec, _) in PAIRINGS.items():
        value, error = gj.parse_dist(v_spec), gj.parse_dist(x_spec)
        jitted = jax.jit(lambda t, value=value, error=error: gj.conditional_value(value, error, t))
        for n in sizes:
            ts = _thresholds_for(pair, n)
            ours = np.asarray(gj.conditional_value(value, error, ts))  # compiles (not timed)
            jitted(ts).block_until_ready()
            # eager and jitted calls alternate, medians of each: a slow spell of a shared machine
            # hits both
            t_eager, t_jit = _alternating(
                lambda: gj.conditional_value(value, error, ts).block_until_ready(),
                lambda: jitted(ts).block_until_ready(),
                # a sub-millisecond call needs many repeats for a stable median: 101 turns
                # of 10 calls each
                101 if n == 1 else 21 if n <= 1000 else 3, block=10 if n == 1 else 1)
            sub = np.unique(np.linspace(0, n - 1, min(n, 40 if quick else 200)).astype(int))
            start = time.perf_counter()
            careful = _scipy_special(ts[sub], pair)
            t_careful = (time.perf_counter() - start) * n / len(sub)
            sub_f = sub[:: max(1, len(sub) // (5 if quick else 20))]
            start = time.perf_counter()
            frozen = _scipy_frozen(ts[sub_f], pair)
            t_frozen = (time.perf_counter() - start) * n / len(sub_f)
            diff = float(np.max(np.abs(careful / ours[sub] - 1.0)))
            row = {"thresholds": n, "eager_s": t_eager, "jit_s": t_jit,
                   "eager_over_jit": t_eager / t_jit, "scipy_special_quad_s": t_careful,
                   "scipy_stats_quad_s": t_frozen, "speedup_eager_vs_scipy_special":
                   t_careful / t_eager, "speedup_eager_vs_scipy_stats": t_frozen / t_eager,
                   "max_rel_diff_vs_scipy_special": diff,
                   "scipy_stats_failed_thresholds": int(np.sum(~np.isfinite(frozen))),
                   "scipy_thresholds_timed": [len(sub), len(sub_f)]}
            if pair == "normal/t3" and n == 1000:
                ref_idx = sub[:: (5 if quick else 2)]
                ref = _mpmath_reference(ts[ref_idx])
                pos = {int(i): k for k, i in enumerate(sub)}
                row["max_rel_err_vs_mpmath"] = float(np.max(np.abs(ours[ref_idx] / ref - 1)))
                row["max_rel_err_scipy_special_vs_mpmath"] = float(np.max(np.abs(
                    np.array([careful[pos[int(i)]] for i in ref_idx]) / ref - 1)))
                row["mpmath_points"] = len(ref_idx)
            if n == 1000:
                call = (f"gj.conditional_value(gj.parse_dist({v_spec!r}), "
                        f"gj.parse_dist({x_spec!r}), np.linspace(0.0, 50.0, 1000))")
                with tempfile.TemporaryDirectory() as cache:
                    row["fresh_process_empty_cache"] = first_call(first_call_code(call), cache)
                    row["fresh_process_warm_cache"] = first_call(first_call_code(call), cache)
            report["conditioning"].setdefault(pair, []).append(row)
            print(f"  {pair:<20}{n:>10}{t_eager:>10.4f}{t_jit:>10.4f}{t_eager / t_jit:>10.2f}"
                  f"{t_careful:>10.3f}{t_careful / t_eager:>8.1f}x{t_frozen:>10.2f}"
                  f"{t_frozen / t_eager:>8.0f}x{diff:>13.1e}")
    print("  (eager: the call as users write it, warm, median; jit: the same inside jax.jit;\n"
          "   careful: scipy quad over scipy.special with limits and break points; stats: quad "
          "over scipy.stats frozen laws;\n   SciPy on a subset, extrapolated per threshold; "
          "diff careful: largest relative difference of the careful loop from ours)")
    for pair, rows in report["conditioning"].items():
        for row in rows:
            if "fresh_process_empty_cache" in row:
                e, w = row["fresh_process_empty_cache"], row["fresh_process_warm_cache"]
                print(f"  first call in a fresh process, {pair}, 1,000 thresholds: "
                      f"{e['first_call_s']:.2f} s (empty compilation cache), "
                      f"{w['first_call_s']:.2f} s (warm cache); import {w['import_s']:.2f} s")
            if "max_rel_err_vs_mpmath" in row:
                print(f"  accuracy, {pair}: ours {row['max_rel_err_vs_mpmath']:.1e}, careful "
                      f"SciPy {row['max_rel_err_scipy_special_vs_mpmath']:.1e} (max rel err vs "
                      f"mpmath at {row['mpmath_points']} thresholds, 50 digits)")

    # 2. best_of_n_value over 1,000 n
    value, error = gj.Normal(), gj.StudentT(3.0)
    ns = np.arange(1.0, 1001.0)
    gj.best_of_n_value(value, error, ns).block_until_ready()
    t_eager = _median_time(lambda: gj.best_of_n_value(value, error, ns).block_until_ready(),
                           3 if quick else 7)
    bon_jit = jax.jit(lambda n: gj.best_of_n_value(value, error, n))
    ns_jit = ns[:100]  # under jit every n gets its own rule: 100 of them
    start = time.perf_counter()
    bon_jit(ns_jit).block_until_ready()
    t_jit_first = time.perf_counter() - start
    t_jit = _median_time(lambda: bon_jit(ns_jit).block_until_ready(), 1)
    call = "gj.best_of_n_value(gj.Normal(), gj.StudentT(3.0), np.arange(1.0, 1001.0))"
    with tempfile.TemporaryDirectory() as cache:
        cold = first_call(first_call_code(call), cache)
        warm = first_call(first_call_code(call), cache)
    report["best_of_n"] = {"n": "1..1000", "eager_s": t_eager, "jit_n": len(ns_jit),
                           "jit_s": t_jit, "jit_first_s": t_jit_first,
                           "fresh_process_empty_cache": cold, "fresh_process_warm_cache": warm}
    print(f"\nbest_of_n_value, V ~ N(0,1), X ~ t(3), n = 1..1000: eager {t_eager:.3f} s warm; "
          f"under jax.jit {t_jit:.2f} s for {len(ns_jit)} n (every traced n gets its own rule; "
          f"first call {t_jit_first:.1f} s);\n  first call in a fresh process "
          f"{cold['first_call_s']:.1f} s (empty cache), {warm['first_call_s']:.1f} s (warm cache)")

    # 2. samples/s: mc vs NumPy, float32 normal/normal
    num = 1 << (22 if quick else 25)
    chunk = 1 << 16
    key = jax.random.key(0)

    def run_mc():
        est = gj.sample_conditional_value(key, gj.Normal(), gj.Normal(), 1.0, num_samples=num,
                                          method="mc", chunk_size=chunk, dtype=np.float32)
        est.mean.block_until_ready()
        return est

    run_mc()
    t_mc = _best_time(run_mc, 2)

    def run_numpy():
        rng = np.random.default_rng(0)
        cnt = s1 = s2 = 0.0
        for _ in range(num // chunk):
            v = rng.standard_normal(chunk, dtype=np.float32)
            x = rng.standard_normal(chunk, dtype=np.float32)
            kept = v[(v + x) >= np.float32(1.0)]
            cnt += kept.size
            s1 += float(kept.sum(dtype=np.float64))
            s2 += float((kept.astype(np.float64) ** 2).sum())
        return s1 / cnt

    t_np = _best_time(run_numpy, 2)
    report["sampling"] = {"num_samples": num, "chunk": chunk, "mc_samples_per_s": num / t_mc,
                          "numpy_samples_per_s": num / t_np, "ratio": t_np / t_mc}
    s = report["sampling"]
    print(f"\nmc estimator, normal/normal float32, {num:.3g} sample pairs")
    print(f"  goodhart_jax mc : {s['mc_samples_per_s'] / 1e6:8.1f} M pairs/s")
    print(f"  NumPy (chunks)  : {s['numpy_samples_per_s'] / 1e6:8.1f} M pairs/s")
    print(f"  ratio           : {s['ratio']:8.2f}x")

    # 3. memory: peak RSS, 1e6 vs 1e9 (1e8 in quick mode)
    big = 10**8 if quick else 10**9
    small_run, big_run = _rss_child(10**6), _rss_child(big)
    report["memory"] = {"small": small_run, "big": big_run,
                        "rss_ratio": big_run["peak_rss_mib"] / small_run["peak_rss_mib"]}
    print("\npeak RSS of the mc estimator (separate processes)")
    for r in (small_run, big_run):
        print(f"  {r['num_samples']:>12.0e} samples: {r['peak_rss_mib']:8.1f} MiB  "
              f"({r['seconds']:.1f} s, estimate {r['mean']:.5f})")
    print(f"  ratio: {report['memory']['rss_ratio']:.3f}")

    from goodhart_jax import results

    results.save_json(OUT / "bench.json", report)
    print(f"\nsaved {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv))
