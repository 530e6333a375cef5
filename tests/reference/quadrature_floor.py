"""How fast the exact quadrature could be with free special functions (issue #13, point 2).

Point 2 asks ``gj.conditional_value`` at 1,000 thresholds to be 10x the careful SciPy loop
(``scipy.integrate.quad`` over closed-form integrands, ``experiments/bench_conditioning.py``).
For gennorm(0.5) / exponential(1) and lognormal(0.5) / Pareto(1.5) this script times, each in
a fresh process with the persistent compilation cache off:

1. the public call as users write it (eager, warm, median of 9), the real families;
2. the same call with the value's survival function, CDF and mean excess replaced by one
   cheap expression each (a power or a log: no incomplete gamma, no ``log_ndtr``).  The
   numbers are wrong; the time is what the fixed-node quadrature costs by itself: its nodes,
   the error's density, the sums.  No choice of special-function algorithm can go below it.

and the careful SciPy loop on 200 of the thresholds, extrapolated (as the bench does).  Prints each pairing's
ratios to the SciPy loop.
Run: ``python tests/reference/quadrature_floor.py`` (~2 min).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import goodhart_jax as gj
from goodhart_jax import distributions as D
pair, cheap = sys.argv[1], sys.argv[2] == "cheap"
if cheap and pair == "gennorm/exponential":
    D.GenNormal._std_log_sf = lambda self, z: -jnp.abs(z) ** self.p - 0.7
    D.GenNormal._std_log_mean_excess = lambda self, z: -jnp.abs(z) ** self.p + 0.1
if cheap and pair == "lognormal/pareto":
    D.LogNormal.log_sf = lambda self, x: -jnp.log(jnp.abs(x) + 1.0)
    D.LogNormal.log_cdf = lambda self, x: -jnp.log(jnp.abs(x) + 2.0)
    D.LogNormal.log_mean_excess = lambda self, x: -jnp.log(jnp.abs(x) + 3.0)
value, error = {"gennorm/exponential": (gj.GenNormal(0.5), gj.Exponential(1.0)),
                "lognormal/pareto": (gj.LogNormal(0.5), gj.Pareto(1.5))}[pair]
ts = np.asarray(json.loads(sys.argv[3]))
np.asarray(gj.conditional_value(value, error, ts))
runs = []
for _ in range(9):
    start = time.perf_counter()
    np.asarray(gj.conditional_value(value, error, ts))
    runs.append(time.perf_counter() - start)
print(json.dumps(float(np.median(runs))))
"""


def _child(pair: str, mode: str, ts: np.ndarray) -> float:
    env = dict(os.environ, GOODHART_JAX_CACHE="0")
    out = subprocess.run([sys.executable, "-c", CHILD, pair, mode, json.dumps(ts.tolist())],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    from goodhart_jax.experiments.bench_conditioning import _scipy_special, _thresholds_for

    print("E[V | U >= t] at 1,000 thresholds, eager and warm (median of 9), 2 cores, float64")
    for pair in ("gennorm/exponential", "lognormal/pareto"):
        ts = _thresholds_for(pair, 1000)
        real = _child(pair, "real", ts)
        floor = _child(pair, "cheap", ts)
        _scipy_special([5.0], pair)  # SciPy's imports and first call, not timed (as the bench)
        sub = ts[np.unique(np.linspace(0, len(ts) - 1, 200).astype(int))]  # the bench's subset
        start = time.perf_counter()
        _scipy_special(sub, pair)
        careful = (time.perf_counter() - start) * len(ts) / len(sub)
        print(f"  {pair:20s} real {real:.3f} s ({careful / real:4.1f}x the careful loop), "
              f"free special functions {floor:.3f} s ({careful / floor:4.1f}x); careful loop "
              f"{careful:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
