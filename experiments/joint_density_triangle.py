"""Where the selected mass sits: the density of ``(V, X)`` on the half-plane ``V + X >= t``.

Three independent pairs, each drawn as the joint density restricted to ``V + X >= t``
(brightness: log density relative to its maximum; white lines: contours every 2 nats) beside
``E[V | U >= t]`` against ``t``:

* normal ``V, X ~ N(0, 1)``: the densest point of the region is ``(t/2, t/2)``; value and error
  share the excess and ``E[V | U >= t]`` grows like ``t / 2``;
* equal heavy tails ``V, X ~ exp(-|x|^c)`` with ``c < 1`` (``GenNormal(c)``): the density on the
  line ``v + x = t`` peaks at the two corners ``(t, 0)`` and ``(0, t)``: either the value or the
  error does all the work, with equal odds, so ``E[V | U >= t] = E[U | U >= t] / 2 >= t / 2``;
* one tail heavier, ``V ~ exp(-|v|^c_V)``, ``X ~ exp(-|x|^c)`` with ``c < c_V``: the corner
  ``(0, t)`` wins, the error does the work and ``E[V | U >= t]`` rises, peaks and falls back
  towards ``E[V] = 0`` — catastrophic Goodhart (Kwa, Thomas & Garriga-Alonso 2024, Theorem 5;
  the family ``exp(-|x|^c)`` switches regime at ``c = 1``).

Curves from :func:`goodhart_jax.conditional_value` (exact quadrature), densities from the
distributions' ``log_prob``.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results, sweeps


def cases(c: float, c_value: float) -> dict:
    """name -> (value, error, label) for the three pairs."""
    return {
        "normal": (gj.Normal(0.0, 1.0), gj.Normal(0.0, 1.0), "normal: V, X ~ N(0, 1)"),
        "equal_heavy": (gj.GenNormal(c), gj.GenNormal(c),
                        f"equal heavy tails: V, X ~ exp(-|x|^{c:g})"),
        "error_heavier": (gj.GenNormal(c_value), gj.GenNormal(c),
                          f"error heavier: V ~ exp(-|v|^{c_value:g}), X ~ exp(-|x|^{c:g})"),
    }


def _boundary_modes(value, error, t: float, lo: float, hi: float) -> list[dict]:
    """Local maxima of ``log f_V(v) + log f_X(t - v)`` along the line ``v + x = t``."""
    v = np.unique(np.concatenate([np.linspace(lo, hi, 4001), [0.0, t / 2, t]]))
    prof = np.asarray(value.log_prob(v) + error.log_prob(t - v))
    modes = []
    for i in range(1, len(v) - 1):
        if prof[i] >= prof[i - 1] and prof[i] >= prof[i + 1] and (
                prof[i] > prof[i - 1] or prof[i] > prof[i + 1]):
            modes.append({"v": float(v[i]), "x": float(t - v[i]), "log_density": float(prof[i])})
    return modes


def main(quick: bool, out: Path, seed: int, *, t_mark: float = 10.0, t_max: float = 40.0,
         c: float = 0.5, c_value: float = 0.8, num_points: int = 161, grid: int = 301) -> dict:
    """Write ``joint_density_triangle.png`` and ``numbers.json`` into ``out``; return the numbers.

    ``c`` is the tail exponent of the heavy error (and of both in the equal case), ``c_value``
    the value's exponent in the third case; ``seed`` is unused (everything is exact).
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    check_param("t_mark", t_mark, lo=0.0, lo_open=True, hi=200.0)
    check_param("t_max", t_max, lo=0.0, lo_open=True, hi=1e4)
    check_param("c", c, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    check_param("c_value", c_value, lo=float(c), hi=10.0, lo_open=True)
    num_points = check_positive_int("num_points", num_points, minimum=2)
    grid = check_positive_int("grid", grid, minimum=11)
    if quick:
        num_points, grid = min(num_points, 41), min(grid, 151)
    t_mark, t_max = float(t_mark), float(t_max)
    # the t grid contains t_mark exactly
    t = np.unique(np.concatenate([np.linspace(0.0, max(t_max, t_mark), num_points), [t_mark]]))
    chosen = cases(float(c), float(c_value))

    def curve(name: str) -> dict:
        value, error, _ = chosen[name]
        return {"conditional_value": np.asarray(gj.conditional_value(value, error, t))}

    params = {"quick": quick, "t": t, "c": c, "c_value": c_value}
    curves = dict(zip(chosen, sweeps.sweep(out, "conditional_value", params, list(chosen), curve)))

    lo, hi = -4.0, t_mark + 6.0
    v = np.linspace(lo, hi, grid)
    x = np.linspace(lo, hi, grid)
    vv, xx = np.meshgrid(v, x)  # rows: x, columns: v
    numbers = {"t_mark": t_mark, "t": t, "cases": {}}
    panels = []
    k = int(np.flatnonzero(t == t_mark)[0])
    for name, (value, error, label) in chosen.items():
        logd = np.asarray(value.log_prob(vv) + error.log_prob(xx))
        logd = np.where(vv + xx >= t_mark, logd, np.nan)
        cond = np.asarray(curves[name]["conditional_value"], dtype=float)
        modes = _boundary_modes(value, error, t_mark, lo, hi)
        numbers["cases"][name] = {
            "value": value.spec, "error": error.spec, "label": label,
            "conditional_value": cond, "value_at_mark": float(cond[k]),
            "modes_on_boundary": modes,
        }
        panels.append({"label": label, "v": v, "x": x, "log_density": logd, "t_mark": t_mark,
                       "t": t, "conditional_value": cond, "value_at_mark": float(cond[k]),
                       "modes": [(m["v"], m["x"]) for m in modes]})
    from goodhart_jax.plots.heavy_tails import joint_density_triangle_figure

    fig = joint_density_triangle_figure(
        panels, title="Selecting U = V + X >= t: where the mass of (V, X) sits, and E[V | U >= t]")
    results.save_figure(out / "joint_density_triangle.png", fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
