"""How far a law fitted to 1e6 draws can be trusted at P(U >= t) = 1e-2 .. 1e-4 (issue #15, pt 3).

Two tables over seeds 1000..1000+S-1, partner ``normal(0, 1)``, thresholds where the true
``P(U >= t)`` is 1e-2, 1e-3, 3e-4, 1e-4 (the true law's exact ``gj.conditional_value``):

1. **the plain empirical law** of the draws, no model at all (NumPy/SciPy only): with a normal
   partner ``E[V | U >= t]`` is a sum over the draws, ``Σ phi(t - x_i) / Σ Phi(-(t - x_i))``
   for the draws as the error (Stein's identity) and ``Σ v_i Phi(v_i - t) / Σ Phi(v_i - t)``
   for the draws as the value.  Its spread is the information the draws hold;
2. ``gj.Empirical.fit`` (the smooth body and GPD tails at the default threshold rule).

Each row: the standard deviation over seeds of the relative error (percent), and the worst.
Run: ``python tests/reference/empirical_spread.py [S]`` (S = 10 seeds by default; ~10 min).
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

jax.config.update("jax_enable_x64", True)

import goodhart_jax as gj  # noqa: E402

LAWS = {"normal": (gj.Normal(), lambda r, n: r.standard_normal(n)),
        "t3": (gj.StudentT(3.0), lambda r, n: r.standard_t(3.0, n)),
        "lognormal": (gj.LogNormal(1.0), lambda r, n: r.lognormal(0.0, 1.0, n))}
P = np.array([1e-2, 1e-3, 3e-4, 1e-4])


def thresholds(value, error):
    grid = np.concatenate([np.linspace(-10.0, 10.0, 81), np.geomspace(10.0, 200.0, 60)[1:]])
    lp = np.asarray(gj.log_tail_prob(value, error, jnp.asarray(grid)))
    return np.interp(-np.log(P), -lp, grid)


def main(seeds: int = 10) -> None:
    print(f"P(U >= t):{'':28s}" + "".join(f"{p:>9.0e}" for p in P))
    for name, role in (("t3", "value"), ("t3", "error"), ("lognormal", "value"),
                       ("lognormal", "error"), ("normal", "value"), ("normal", "error")):
        true, draw = LAWS[name]
        pair = (true, gj.Normal()) if role == "value" else (gj.Normal(), true)
        t = thresholds(*pair)
        ref = np.asarray(gj.conditional_value(*pair, jnp.asarray(t)))
        raw, fit = [], []
        for seed in range(seeds):
            x = draw(np.random.default_rng(1000 + seed), 10**6)
            a = t[:, None] - x[None, :]
            if role == "error":
                got = stats.norm.pdf(a).sum(1) / stats.norm.sf(a).sum(1)
            else:
                w = stats.norm.sf(a)
                got = (w * x).sum(1) / w.sum(1)
            raw.append(got / ref - 1)
            law = gj.Empirical.fit(x)
            emp = (law, gj.Normal()) if role == "value" else (gj.Normal(), law)
            fit.append(np.asarray(gj.conditional_value(*emp, jnp.asarray(t))) / ref - 1)
        for label, e in (("plain empirical", raw), ("gj.Empirical.fit", fit)):
            e = 100 * np.asarray(e)
            print(f"{name:9s} as {role:5s} {label:17s} sd%" + "".join(f"{v:9.2f}" for v in e.std(0)))
            print(f"{'':37s}max%" + "".join(f"{v:9.2f}" for v in np.abs(e).max(0)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
