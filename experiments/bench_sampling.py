"""Benchmark: the streaming estimator of E[V | U >= t] against its ceiling, NumPy and the limits.

Prints, in one run (``goodhart-jax bench sampling``, ``--quick`` for a shorter run):

1. Throughput, normal/normal, float32, ``t = 1``: sample pairs per second of the streaming
   ``mc`` estimator; the ceiling — the same draws streamed with nothing but a sum (no
   estimator arithmetic) — and ``jax.random.normal`` streamed the same way; the estimator with
   ``sampler="jax"``; a NumPy implementation of the same estimator (float32
   ``standard_normal`` in chunks of 2^16, one core); ratios estimator/ceiling (goal >= 0.7)
   and estimator/NumPy (goal >= 2 on a 2-core CPU).  Timings are the best of a few rounds,
   interleaved, so that a busy machine slows all of them alike.
2. The progress bar's cost: the estimator with and without the bar.
3. Draws per second of the families, float32: normal, Student t(3) and gennorm(p=1.5), each
   by the engine's sampler and by the distribution's own ``sample`` (``jax.random``; its
   gamma, behind t and gennorm, runs a rejection loop per element on CPU).
4. Chunk size and PRNG implementation: the estimator's throughput for chunk sizes 2^12..2^20
   and for threefry (the engine's fused stream), rbg, unsafe_rbg and philox4x32 keys.
5. float64: the estimator's throughput in float64, the reach of the normal samplers (largest
   ``|z|`` each can draw) and a threshold beyond the float32 reach, where ``mc`` has nothing
   to average and ``cmc`` and the exact quadrature still answer.
6. Peak RSS of the estimator for 2^20 and 2^32 samples (2^28 with ``--quick``), each in its
   own process, and their ratio (goal <= 1.2).

On CPU the benchmark asks JAX for one CPU device per core (``jax_num_cpu_devices``) unless
``JAX_NUM_CPU_DEVICES`` is set, so the engine's ``shard_map`` uses every core.  On a GPU the
same code runs with the GPU chunk size (:func:`goodhart_jax.engine.default_chunk_size`) and
larger sample counts.  Figures are saved to ``results/bench_sampling/bench.json``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

OUT = Path("results") / "bench_sampling"


def use_all_cores() -> str:
    """One JAX CPU device per core, if JAX has not started yet (must run before any JAX op)."""
    import jax

    if os.environ.get("JAX_NUM_CPU_DEVICES"):
        return f"JAX_NUM_CPU_DEVICES={os.environ['JAX_NUM_CPU_DEVICES']} (environment)"
    n = os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", n)
        return f"jax_num_cpu_devices={n} (one per core, set by the benchmark)"
    except RuntimeError:
        return "JAX already started: default CPU device count"


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return r.ru_utime + r.ru_stime


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int,
                 cpu: dict | None = None) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` interleaved rounds (after a warm-up).

    If ``cpu`` is a dict, it receives the least process CPU time of each function (all
    threads): a figure a busy machine disturbs less than wall time.
    """
    import jax

    for f in fns.values():
        jax.block_until_ready(f())
    best = {k: math.inf for k in fns}
    least = {k: math.inf for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            c0 = _cpu_seconds()
            start = time.perf_counter()
            jax.block_until_ready(f())
            best[k] = min(best[k], time.perf_counter() - start)
            least[k] = min(least[k], _cpu_seconds() - c0)
    if cpu is not None:
        cpu.update(least)
    return best


# --- chunk functions (module level: static arguments of the engine's compiled loop) -----------

def _sum_engine_pairs(key, mask, t):
    from goodhart_jax import rng

    z1, z2 = rng.normal_pair(key, mask.shape[0], t.dtype)
    return (z1 + z2).sum()


def _sum_jax_normal(key, mask, t):
    import jax

    return jax.random.normal(key, (2, mask.shape[0]), t.dtype).sum()


def _sum_family(key, mask, dist, t):
    return dist.sample(key, mask.shape, t.dtype).sum()


def _sum_engine_family(key, mask, dist, t):
    h1, h2 = dist.sample_halves(key, mask.shape[0] // 2, t.dtype)
    return h1.sum() + h2.sum()


def _numpy_estimator(num: int, chunk: int = 1 << 16, t: float = 1.0) -> float:
    """The same estimator in NumPy: float32 standard normals in chunks, one core."""
    rng = np.random.default_rng(0)
    cnt = s1 = s2 = 0.0
    for _ in range(num // chunk):
        v = rng.standard_normal(chunk, dtype=np.float32)
        x = rng.standard_normal(chunk, dtype=np.float32)
        kept = v[(v + x) >= np.float32(t)]
        cnt += kept.size
        s1 += float(kept.sum(dtype=np.float64))
        s2 += float((kept.astype(np.float64) ** 2).sum())
    return s1 / cnt


def _rss_child(num_samples: int, devices_env: dict) -> dict:
    code = (
        "import resource, time, jax, jax.numpy as jnp, goodhart_jax as gj\n"
        f"n = {num_samples}\n"
        "s = time.perf_counter()\n"
        "e = gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), 1.0,"
        " num_samples=n, method='mc', dtype=jnp.float32, progress=False)\n"
        "e.mean.block_until_ready()\n"
        "el = time.perf_counter() - s\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, el, float(e.mean),"
        " float(e.count), len(jax.devices()))\n"
    )
    env = dict(os.environ, JAX_ENABLE_X64="0", **devices_env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    rss_kb, elapsed, mean, count, ndev = out.stdout.split()
    return {"num_samples": num_samples, "peak_rss_mib": int(rss_kb) / 1024,
            "seconds": float(elapsed), "samples_per_s": num_samples / float(elapsed),
            "mean": float(mean), "accepted": float(count), "devices": int(ndev)}


def main(quick: bool = False) -> int:
    how = use_all_cores()
    import jax

    jax.config.update("jax_enable_x64", True)  # for section 5; float32 figures pass the dtype
    import jax.numpy as jnp

    import goodhart_jax as gj
    from goodhart_jax import engine, rng

    backend = jax.default_backend()
    on_cpu = backend == "cpu"
    f32 = jnp.float32
    chunk = engine.default_chunk_size()
    num = 1 << ((25 if quick else 27) if on_cpu else (33 if quick else 36))
    rounds = 2 if quick else 3
    key = jax.random.key(0)
    t32 = jnp.asarray([1.0], f32)
    V, X = gj.Normal(), gj.Normal()
    report: dict = {"backend": backend, "devices": len(jax.devices()), "device_setup": how,
                    "device_kind": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
                    "jax": jax.__version__, "chunk_size": chunk, "quick": quick}
    print(f"backend {backend} ({report['device_kind']}), {len(jax.devices())} device(s) "
          f"[{how}], {os.cpu_count()} CPU cores, jax {jax.__version__}, chunk {chunk}")

    def estimator(n=num, c=chunk, k=key, dtype=f32, sampler="engine", prog=False):
        return lambda: gj.sample_conditional_value(k, V, X, 1.0, num_samples=n, chunk_size=c,
                                                   dtype=dtype, sampler=sampler,
                                                   progress=prog).mean

    # 1. throughput ------------------------------------------------------------------------
    fns = {
        "estimator": estimator(),
        "ceiling": lambda: engine.stream(_sum_engine_pairs, key, t32, num_samples=num,
                                         chunk_size=chunk, progress=False),
        "jax_normal_ceiling": lambda: engine.stream(_sum_jax_normal, key, t32, num_samples=num,
                                                    chunk_size=chunk, progress=False),
        "estimator_jax_sampler": estimator(sampler="jax"),
    }
    num_np = num if on_cpu else 1 << 27
    fns["numpy"] = lambda: _numpy_estimator(num_np)
    cpu: dict = {}
    best = _interleaved(fns, rounds, cpu)
    count = {k: (num_np if k == "numpy" else num) for k in fns}
    rate = {k: count[k] / v for k, v in best.items()}
    rate_cpu = {k: count[k] / v for k, v in cpu.items()}
    thr = {f"{k}_pairs_per_s": v for k, v in rate.items()}
    thr.update({f"{k}_pairs_per_cpu_s": v for k, v in rate_cpu.items()})
    thr.update(num_samples=num, estimator_over_ceiling=rate["estimator"] / rate["ceiling"],
               estimator_over_numpy=rate["estimator"] / rate["numpy"],
               jax_sampler_over_jax_ceiling=(rate["estimator_jax_sampler"]
                                             / rate["jax_normal_ceiling"]),
               cpu_estimator_over_ceiling=rate_cpu["estimator"] / rate_cpu["ceiling"],
               cpu_estimator_over_numpy=rate_cpu["estimator"] / rate_cpu["numpy"])
    report["throughput"] = thr
    print(f"\n1. E[V | U >= 1], V, X ~ N(0, 1), float32, {num:.3g} sample pairs "
          f"(best of {rounds}, interleaved)")
    print(f"  {'':<42}{'wall':>10}{'per CPU-s':>12}   (M pairs/s)")
    rows = [("streaming mc estimator (engine normals)", "estimator"),
            ("ceiling: same draws, summed only", "ceiling"),
            ("mc estimator, sampler='jax'", "estimator_jax_sampler"),
            ("jax.random.normal draws, summed only", "jax_normal_ceiling"),
            ("NumPy estimator (float32, 1 core)", "numpy")]
    for label, k in rows:
        print(f"  {label:<42}{rate[k] / 1e6:10.1f}{rate_cpu[k] / 1e6:12.1f}")
    print(f"  estimator / ceiling   : {thr['estimator_over_ceiling']:6.2f} wall, "
          f"{thr['cpu_estimator_over_ceiling']:.2f} per CPU-s   (goal >= 0.7)")
    print(f"  estimator / NumPy     : {thr['estimator_over_numpy']:6.2f}x wall, "
          f"{thr['cpu_estimator_over_numpy']:.2f}x per CPU-s  (goal >= 2 wall on 2 cores)")
    print(f"  jax sampler / its ceiling: {thr['jax_sampler_over_jax_ceiling']:6.2f} wall")

    # 2. progress bar cost ------------------------------------------------------------------
    sink = io.StringIO()

    def with_bar():
        with contextlib.redirect_stderr(sink):
            return estimator(prog=True)()

    cpu = {}
    best = _interleaved({"off": estimator(prog=False), "on": with_bar}, rounds + 1, cpu)
    report["progress"] = {"off_pairs_per_s": num / best["off"], "on_pairs_per_s": num / best["on"],
                          "on_over_off": best["off"] / best["on"],
                          "cpu_on_over_off": cpu["off"] / cpu["on"],
                          "bar_lines": sink.getvalue().count("\n")}
    p = report["progress"]
    print(f"\n2. progress bar: off {p['off_pairs_per_s'] / 1e6:.1f}, "
          f"on {p['on_pairs_per_s'] / 1e6:.1f} M pairs/s; on/off = {p['on_over_off']:.3f} wall, "
          f"{p['cpu_on_over_off']:.3f} per CPU-s")

    # 3. draws of the families ------------------------------------------------------------
    n_fam = num if on_cpu else num // 8
    n_gamma = (1 << (20 if quick else 21)) if on_cpu else n_fam // 8

    def draws(chunk_fn, dist, n):
        return (lambda: engine.stream(chunk_fn, key, dist, t32, num_samples=n, chunk_size=chunk,
                                      progress=False), n)

    fam = {}
    for label, dist in [("normal", gj.Normal()), ("student_t(df=3)", gj.StudentT(3.0)),
                        ("gennorm(p=1.5)", gj.GenNormal(1.5))]:
        fam[f"{label}, engine sampler"] = draws(_sum_engine_family, dist,
                                                n_fam if label == "normal" else n_fam // 4)
        fam[f"{label}, jax.random"] = draws(_sum_family, dist,
                                            n_fam // 2 if label == "normal" else n_gamma)
    best = _interleaved({k: f for k, (f, _) in fam.items()}, rounds)
    report["families"] = {k: n / best[k] for k, (_, n) in fam.items()}
    print("\n3. draws per second, float32 (streamed, summed)")
    for k, v in report["families"].items():
        print(f"  {k:<42}{v / 1e6:10.1f} M draws/s")

    # 4. chunk size and PRNG --------------------------------------------------------------
    exps = ([12, 14, 16, 18, 20] if on_cpu else [20, 22, 24, 26, 28])
    if quick:
        exps = exps[1:4]
    n_sweep = num // 2
    best = _interleaved({e: estimator(n=n_sweep, c=1 << e) for e in exps}, rounds)
    report["chunk_sweep"] = {f"2^{e}": n_sweep / best[e] for e in exps}
    top = min(best, key=best.get)
    print(f"\n4. chunk size (estimator, {n_sweep:.3g} pairs)")
    for e in exps:
        mark = "  <- fastest" if e == top else ""
        print(f"  chunk 2^{e:<3}{n_sweep / best[e] / 1e6:10.1f} M pairs/s{mark}")
    n_prng = num // 4
    runs, failed = {}, {}
    for i in ["threefry2x32", "rbg", "unsafe_rbg", "philox4x32"]:
        run = estimator(n=n_prng, k=jax.random.key(0, impl=i))
        try:
            jax.block_until_ready(run())
            runs[i] = run
        except Exception as exc:  # e.g. philox4x32's mulhi does not lower inside shard_map
            failed[i] = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:100]
    best = _interleaved(runs, rounds)
    report["prng"] = {i: n_prng / best[i] for i in runs}
    report["prng_failed"] = failed
    print(f"  PRNG keys (estimator, {n_prng:.3g} pairs; threefry: the engine's fused stream, "
          f"others through jax.random.bits)")
    for i in runs:
        print(f"  {i:<14}{n_prng / best[i] / 1e6:10.1f} M pairs/s")
    for i, why in failed.items():
        print(f"  {i:<14}    failed: {why}")

    # 5. float64 ---------------------------------------------------------------------------
    n64 = num // 4
    best = _interleaved({"f32": estimator(n=n64), "f64": estimator(n=n64, dtype=jnp.float64)},
                        rounds)
    zero = jnp.zeros(1, jnp.uint32)
    reach = {
        "engine_float32": float(rng.box_muller(zero, None, zero, None, f32)[0][0]),
        "engine_float64": float(rng.box_muller(zero, zero, zero, zero, jnp.float64)[0][0]),
    }
    for name, dt in [("jax_float32", np.float32), ("jax_float64", np.float64)]:
        lowest = jnp.asarray(np.nextafter(dt(-1), dt(0)), dt)  # jax.random.normal's extreme u
        reach[name] = -float(np.sqrt(2) * jax.lax.erf_inv(lowest))
    t_far = 7.0 * math.sqrt(2.0)  # 7 sd of U: beyond every float32 normal draw
    exact = float(gj.conditional_value(V, X, t_far))
    far = {"t": t_far, "exact": exact}
    n_far = 1 << 20
    for name, dt in [("float32", f32), ("float64", jnp.float64)]:
        mc = gj.sample_conditional_value(key, V, X, t_far, num_samples=n_far, dtype=dt,
                                         progress=False)
        cmc = gj.sample_conditional_value(key, V, X, t_far, num_samples=n_far, dtype=dt,
                                          method="cmc", progress=False)
        far[name] = {"mc_accepted": float(mc.count), "cmc": float(cmc.mean),
                     "cmc_stderr": float(cmc.stderr)}
    report["float64"] = {"f32_pairs_per_s": n64 / best["f32"], "f64_pairs_per_s": n64 / best["f64"],
                         "reach_sd": reach, "far_threshold": far}
    print(f"\n5. float64: estimator {n64 / best['f64'] / 1e6:.1f} M pairs/s "
          f"(float32 {n64 / best['f32'] / 1e6:.1f})")
    print("  largest |z| a normal sampler can draw (sd): "
          f"engine {reach['engine_float32']:.2f} (float32) / "
          f"{reach['engine_float64']:.2f} (float64); "
          f"jax.random.normal {reach['jax_float32']:.2f} / {reach['jax_float64']:.2f}")
    print(f"  t = 7 sd of U (P(U >= t) = 1.3e-12): exact {exact:.6f}; "
          f"{n_far:.3g} draws: mc accepted {far['float32']['mc_accepted']:.0f} (float32), "
          f"{far['float64']['mc_accepted']:.0f} (float64); "
          f"cmc {far['float32']['cmc']:.6f} ± {far['float32']['cmc_stderr']:.1e} (float32), "
          f"{far['float64']['cmc']:.6f} ± {far['float64']['cmc_stderr']:.1e} (float64)")

    # 6. memory ----------------------------------------------------------------------------
    big = 1 << (28 if quick else 32)
    dev_env = {"JAX_NUM_CPU_DEVICES": str(len(jax.devices()))} if on_cpu else {}
    small_run, big_run = _rss_child(1 << 20, dev_env), _rss_child(big, dev_env)
    report["memory"] = {"small": small_run, "big": big_run,
                        "rss_ratio": big_run["peak_rss_mib"] / small_run["peak_rss_mib"]}
    print("\n6. peak RSS of the mc estimator (separate processes, float32)")
    for r in (small_run, big_run):
        print(f"  2^{int(math.log2(r['num_samples'])):<3} samples: {r['peak_rss_mib']:8.1f} MiB  "
              f"({r['seconds']:.1f} s, {r['samples_per_s'] / 1e6:.1f} M pairs/s incl. compile, "
              f"estimate {r['mean']:.6f})")
    print(f"  ratio: {report['memory']['rss_ratio']:.3f}   (goal <= 1.2)")

    from goodhart_jax import results

    results.save_json(OUT / "bench.json", report)
    print(f"\nsaved {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv))
