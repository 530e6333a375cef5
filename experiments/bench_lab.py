"""Benchmark: the learned-proxy lab — policy optimisation steps/s and configurations/s.

Two measurements, each a first call (compile + run) and a timed second call:

1. **Policy optimisation.**  ``P`` Gaussian policies (one per KL coefficient, vmapped) trained
   by :func:`goodhart_jax.lab.optimize_policy` on one trained MLP proxy (width 64, depth 2,
   ``d = 8``) with the gold tracked at every step, ``T`` steps of ``M`` reparameterised samples
   in one ``lax.scan``: policy-steps per second (``P * T / wall``) and proxy evaluations per
   second.  One device (a plain ``jit``).
2. **The sweep.**  :func:`goodhart_jax.lab.lab_sweep` on the documented grid (below): label
   data, proxy training, best-of-n and the policies for every configuration, sharded over the
   devices by :func:`goodhart_jax.engine.stream`; configurations per second (seeds x widths x
   label counts x betas / wall) and policy-steps per second, on all devices and on one, and
   with 2 configurations vmapped per chunk (the default) and with 1.

Documented sweep (``--quick`` in brackets): gold a random tanh MLP on R^8 (width 64, depth 2);
proxies GELU MLPs of depth 2, widths 4, 16, 64 [4, 16]; label counts 128, 512, 2048 [128,
512]; 2 seeds; betas 0.01, 0.03, 0.1, 0.3 [0.01, 0.1]; 500 [200] AdamW steps of proxy
training; 300 [100] policy steps of 128 [64] samples; best-of-n up to 1024 [256] with 128
[64] replicates; one proxy per configuration.

On CPU the benchmark asks JAX for one CPU device per core (``jax_num_cpu_devices``, as ``bench
sampling`` does) unless ``JAX_NUM_CPU_DEVICES`` is set.  No GPU was lent to this work: the
figures in the README are CPU figures; on a GPU the same command runs unchanged.

Run: ``goodhart-jax bench lab`` (``--quick`` for the smaller grid).  Figures are saved to
``results/bench_lab/bench.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from goodhart_jax.experiments.bench_sampling import use_all_cores

OUT = Path("results") / "bench_lab"


def _twice(fn):
    """(first call seconds, second call seconds, result of the second call)."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return first, time.perf_counter() - t0, out


def _policies(quick: bool) -> dict:
    import jax
    import jax.numpy as jnp

    from goodhart_jax import lab

    dim, n_pol = 8, 16 if quick else 64
    steps, samples = (100, 64) if quick else (300, 128)
    gold = lab.random_gold(jax.random.key(0), dim, width=64, depth=2, dtype=jnp.float32)
    labels = lab.regression_labels(jax.random.key(1), gold, 1024, noise="normal(0, 0.5)",
                                   dtype=jnp.float32)
    model = lab.reward_mlp(dim, 64, 2)
    proxy = lab.Reward(model, lab.train_proxy(jax.random.key(2), model, labels, steps=300).params)
    betas = jnp.geomspace(0.01, 1.0, n_pol).astype(jnp.float32)

    @jax.jit
    def run(b):
        return jax.vmap(lambda beta: lab.optimize_policy(
            jax.random.key(3), proxy, gold, beta=beta, steps=steps, learning_rate=0.1,
            num_samples=samples).trace.kl[-1])(b)

    first, wall, _ = _twice(lambda: run(betas))
    return {"policies": n_pol, "steps": steps, "samples": samples, "first_call_s": first,
            "wall_s": wall, "policy_steps_per_s": n_pol * steps / wall,
            "proxy_evals_per_s": n_pol * steps * samples / wall}


def _sweep(quick: bool, devices, chunk_size: int) -> dict:
    import jax
    import jax.numpy as jnp

    from goodhart_jax import lab

    grid = {"seeds": 2, "widths": (4, 16) if quick else (4, 16, 64),
            "label_counts": (128, 512) if quick else (128, 512, 2048),
            "betas": (0.01, 0.1) if quick else (0.01, 0.03, 0.1, 0.3),
            "train_steps": 200 if quick else 500, "policy_steps": 100 if quick else 300,
            "policy_samples": 64 if quick else 128,
            "bon_n": (1, 4, 16, 64, 256) if quick else (1, 4, 16, 64, 256, 1024),
            "bon_draws": 64 if quick else 128, "noise": "normal(0, 0.5)", "dtype": jnp.float32}
    gold = lab.random_gold(jax.random.key(0), 8, width=64, depth=2, dtype=jnp.float32)
    first, wall, _ = _twice(lambda: lab.lab_sweep(
        jax.random.key(1), gold, devices=devices, chunk_size=chunk_size, **grid).gold)
    n_cfg = grid["seeds"] * len(grid["widths"]) * len(grid["label_counts"])
    n_full = n_cfg * len(grid["betas"])
    return {"devices": len(jax.devices()) if devices is None else devices,
            "chunk_size": chunk_size, "proxy_configs": n_cfg, "configs": n_full,
            "first_call_s": first, "wall_s": wall, "configs_per_s": n_full / wall,
            "proxy_configs_per_s": n_cfg / wall,
            "policy_steps_per_s": n_full * grid["policy_steps"] / wall,
            "grid": {k: (list(v) if isinstance(v, tuple) else v) for k, v in grid.items()
                     if k != "dtype"}}


def main(quick: bool = False) -> int:
    """Print the lab's throughput on the present backend; write ``bench.json``."""
    how = use_all_cores()
    import jax

    backend = jax.default_backend()
    devices = [str(d) for d in jax.devices()]
    gpu = backend in ("gpu", "cuda", "rocm")
    print(f"bench lab: backend {backend}, {len(devices)} device(s) ({how}), "
          f"CPU cores {os.cpu_count()}")
    if not gpu:
        print("  no GPU was lent to this work: CPU figures only (the same command runs on a GPU)")
    pol = _policies(quick)
    print(f"policy optimisation: {pol['policies']} vmapped Gaussian policies x {pol['steps']} "
          f"steps x {pol['samples']} samples (MLP proxy, width 64): "
          f"{pol['policy_steps_per_s']:,.0f} policy-steps/s, "
          f"{pol['proxy_evals_per_s']:.3g} proxy evaluations/s "
          f"(compile + first call {pol['first_call_s']:.1f} s)")
    rows = []
    n_dev = len(jax.devices())
    variants = [(None, 2)] + ([(1, 2)] if n_dev > 1 else []) + [(None, 1)]
    print(f"{'devices':>8} {'chunk':>6} {'configs':>8} {'compile+1st s':>14} {'wall s':>8} "
          f"{'configs/s':>10} {'policy-steps/s':>15}")
    for devs, chunk in variants:
        r = _sweep(quick, devs, chunk)
        rows.append(r)
        print(f"{r['devices']:>8} {chunk:>6} {r['configs']:>8} {r['first_call_s']:>14.1f} "
              f"{r['wall_s']:>8.2f} {r['configs_per_s']:>10.2f} {r['policy_steps_per_s']:>15,.0f}")
    summary = {"backend": backend, "devices": devices, "device_setting": how, "gpu": gpu,
               "quick": quick, "policies": pol, "sweeps": rows,
               "gpu_note": None if gpu else "no GPU lent to this work: not measured"}
    from goodhart_jax.results import save_json

    OUT.mkdir(parents=True, exist_ok=True)
    save_json(OUT / "bench.json", summary)
    print(f"written {OUT / 'bench.json'}")
    print(json.dumps({"configs_per_s": rows[0]["configs_per_s"],
                      "policy_steps_per_s": pol["policy_steps_per_s"], "backend": backend}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
