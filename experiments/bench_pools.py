"""Benchmark: KL-regularised pushing on pools of outcomes (one jitted ``lax.scan``).

For pools of ``N`` outcomes (``V ~ N(0, 1)``, ``X ~ t(3)``, float32) it times
:func:`goodhart_jax.pools.push` — the whole optimisation (softmax policy, the four tracked
statistics, the optax update) is one compiled ``lax.scan`` — and prints steps per second and
pool-elements per second, for natural-gradient SGD (mirror descent) and for Adam on the
KL-penalised objective.  Compile time is reported apart (first call), the timed call is the
second.  It runs on whatever JAX backend is present and says which: on a machine without a
GPU the GPU rows are reported as not measured.

Run: ``goodhart-jax bench pools`` (``--quick`` for pools up to 1e6 only).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

OUT = Path("results") / "bench_pools"


def _time_push(pool, *, steps: int, geometry: str, beta: float, lr: float) -> dict:
    import jax

    from goodhart_jax.pools import push

    t0 = time.perf_counter()
    res = push(pool, beta=beta, steps=steps, learning_rate=lr, geometry=geometry)
    jax.block_until_ready(res.logits)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = push(pool, beta=beta, steps=steps, learning_rate=lr, geometry=geometry)
    jax.block_until_ready(res.logits)
    wall = time.perf_counter() - t0
    return {"steps": steps, "first_call_s": first, "wall_s": wall, "steps_per_s": steps / wall,
            "elements_per_s": steps * pool.size / wall, "final_kl": float(res.trace.kl[-1]),
            "final_value": float(res.trace.value[-1])}


def main(quick: bool = False) -> int:
    """Print steps/s against pool size on the present backend; write ``bench.json``."""
    import jax
    import jax.numpy as jnp

    from goodhart_jax.distributions import Normal, StudentT
    from goodhart_jax.pools import sample_pool

    backend = jax.default_backend()
    devices = [str(d) for d in jax.devices()]
    gpu = backend in ("gpu", "cuda", "rocm")
    sizes = [10**5, 10**6] if quick else [10**5, 10**6, 10**7]
    steps = 20 if quick else 50
    print(f"bench pools: backend {backend}, devices {devices}, CPU cores {os.cpu_count()}")
    if not gpu:
        print("  no GPU here: CPU rows only (on an H100/H200 run the same command there)")
    print(f"{'N':>10} {'optimizer':>24} {'steps':>6} {'compile+1st s':>14} {'steps/s':>10} "
          f"{'elements/s':>12}")
    rows = []
    key = jax.random.key(0)
    for n in sizes:
        pool = sample_pool(key, Normal(), StudentT(3.0), n, dtype=jnp.float32)
        for name, kw in (("natural SGD (mirror)", dict(geometry="natural", beta=0.0, lr=1e-3)),
                         ("Adam, E[U] - 0.5 KL", dict(geometry="euclidean", beta=0.5, lr=0.05))):
            r = _time_push(pool, steps=steps, **kw)
            r.update({"N": n, "optimizer": name, "backend": backend})
            rows.append(r)
            print(f"{n:>10,d} {name:>24} {steps:>6d} {r['first_call_s']:>14.2f} "
                  f"{r['steps_per_s']:>10.1f} {r['elements_per_s']:>12.3g}")
    summary = {"backend": backend, "devices": devices, "gpu": gpu, "quick": quick, "rows": rows,
               "gpu_note": None if gpu else "no GPU available on this machine: not measured"}
    OUT.mkdir(parents=True, exist_ok=True)
    from goodhart_jax.results import save_json

    save_json(OUT / "bench.json", summary)
    print(f"written {OUT / 'bench.json'}")
    print(json.dumps({"max_pool": max(sizes), "backend": backend}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
