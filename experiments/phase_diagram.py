"""Phase diagram: where E[V | U >= t] goes as t -> inf, over tail exponents, against the theory.

Two grids of independent pairs ``U = V + X`` (unit scales, centred, so ``E[V] = 0``):

* ``V ~ gennorm(c_V)``, ``X ~ gennorm(c_X)`` (density ∝ ``exp(-|x|^c)``);
* ``V ~ t(nu_V)``, ``X ~ t(nu_X)`` (power laws, ``S(x) ~ A x^-nu``; ``nu_V > 1`` so ``E[V]`` is
  finite).

Each cell is classified twice:

* numerically, from the exact estimator alone (:func:`goodhart_jax.regimes.numerical_regime`):
  thresholds out to ``P(U >= t) = e^-max_nats`` (default ``e^-1e8``; power laws stop at
  ``t_cap = 1e150``), and the secant slope ``s`` of ``log(E[V | U >= t] - E[V])`` against
  ``log t`` over the last quarter of the log-t window: ``s < -slope_tol`` catastrophic
  (``-> E[V]``), ``s > slope_tol`` unbounded, otherwise bounded;
* by the theory (:func:`goodhart_jax.regimes.predicted_regime`): Kwa, Thomas &
  Garriga-Alonso (2024) Thm 6 (``c_X > 1``: unbounded), the ``c_X = 1`` boundary (bounded for
  ``c_V > 1``, limit ``E[V e^V] / E[e^V]``), Thm 5 (``c_X < 1 < ...``, ``c_V > c_X``:
  catastrophic; ``nu_V - nu_X > 1``: catastrophic), the edge ``nu_V - nu_X = 1`` (bounded,
  limit ``nu_V A_V / ((nu_V - 1) A_X)``), and ``V`` at least as heavy as ``X`` (unbounded).

A second numerical pass stops at ``P(U >= t) = 1e-200`` (``check_nats``) to show how far out
the verdict settles.  Rows of each grid go through :func:`goodhart_jax.sweeps.sweep`, so an
interrupted run resumes.  The figure colours cells by the numerical verdict, draws the
theory's boundaries and crosses out cells where the two disagree.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax

import goodhart_jax as gj
from goodhart_jax import regimes, results, sweeps

QUICK_C = [0.5, 0.75, 1.0, 1.5, 2.0]
FULL_C = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0]
QUICK_NU_V = [1.5, 2.0, 3.0, 4.0, 6.0]
QUICK_NU_X = [0.5, 1.0, 2.0, 3.0, 5.0]
FULL_NU_V = [1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0]
FULL_NU_X = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]


def _grid(name: str, values, default, *, lo: float, lo_open: bool = True) -> list[float]:
    from goodhart_jax.validation import check_param

    if values is None:
        return list(default)
    if isinstance(values, (int, float)) or len(values) < 2:
        raise ValueError(f"{name} must be a list of at least 2 numbers, got {values!r}")
    out = [float(v) for v in values]
    check_param(name, out, lo=lo, lo_open=lo_open, hi=1e6)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must hold distinct values, got {values!r}")
    return sorted(out)


def _on_boundary(family: str, v: float, x: float) -> bool:
    """Cells the theory's boundary lines pass through (c_X = 1, c_V = c_X <= 1; nu_V - nu_X = 1)."""
    eq = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if family == "gennorm":
        return eq(x, 1.0) or (eq(v, x) and x <= 1.0)
    return eq(v - x, 1.0)


def _row(family: str, v: float, xs: list[float], opts: dict) -> dict:
    """Numerical and predicted regimes of one grid row (fixed V, every X)."""
    make = gj.GenNormal if family == "gennorm" else gj.StudentT
    row = {k: [] for k in ("regime", "slope", "slope_before", "t_max", "log_p", "value",
                           "check_regime", "check_slope", "check_t_max", "check_value",
                           "predicted", "predicted_limit", "reason")}
    for x in xs:
        value, error = make(v), make(x)
        num = regimes.numerical_regime(value, error, max_nats=opts["max_nats"], t_cap=opts["t_cap"],
                                       num_points=opts["num_points"], slope_tol=opts["slope_tol"])
        chk = regimes.numerical_regime(value, error, max_nats=opts["check_nats"],
                                       t_cap=opts["t_cap"], num_points=opts["num_points"],
                                       slope_tol=opts["slope_tol"])
        pred = regimes.predicted_regime(value, error)
        for k, val in (("regime", num.regime), ("slope", num.slope),
                       ("slope_before", num.slope_before), ("t_max", num.t_max),
                       ("log_p", num.log_p), ("value", num.value), ("check_regime", chk.regime),
                       ("check_slope", chk.slope), ("check_t_max", chk.t_max),
                       ("check_value", chk.value), ("predicted", pred.regime),
                       ("predicted_limit", pred.limit), ("reason", pred.reason)):
            row[k].append(val)
    return row


def _table(family: str, vs, xs, rows) -> dict:
    """Per-grid summary: the 2-D arrays, agreement counts and the disagreeing cells."""
    grid = {k: [r[k] for r in rows] for k in rows[0]}
    cells, disagree, check_disagree, off_boundary = [], [], [], 0
    counts = {"numerical": {r: 0 for r in regimes.REGIMES + (regimes.UNDETERMINED,)},
              "predicted": {r: 0 for r in regimes.REGIMES}}
    agree_off = 0
    for i, v in enumerate(vs):
        for j, x in enumerate(xs):
            num, pred = grid["regime"][i][j], grid["predicted"][i][j]
            counts["numerical"][num] += 1
            counts["predicted"][pred] += 1
            boundary = _on_boundary(family, v, x)
            cell = {"value_param": v, "error_param": x, "numerical": num, "predicted": pred,
                    "slope": grid["slope"][i][j], "on_boundary": boundary,
                    "reason": grid["reason"][i][j]}
            cells.append(cell)
            if not boundary:
                off_boundary += 1
                agree_off += num == pred
            if num != pred:
                disagree.append(cell)
            if grid["check_regime"][i][j] != pred:
                check_disagree.append({**cell, "numerical_at_check": grid["check_regime"][i][j],
                                       "slope_at_check": grid["check_slope"][i][j]})
    n = len(vs) * len(xs)
    bounded_err = [abs(grid["value"][i][j] - grid["predicted_limit"][i][j])
                   for i in range(len(vs)) for j in range(len(xs))
                   if grid["predicted"][i][j] == regimes.BOUNDED
                   and math.isfinite(grid["predicted_limit"][i][j])]
    return {
        "value_params": vs, "error_params": xs, "grid": grid, "cells": n,
        "agree": n - len(disagree), "agree_off_boundary": agree_off,
        "off_boundary": off_boundary, "disagreements": disagree,
        "agree_at_check": n - len(check_disagree), "check_disagreements": check_disagree,
        "counts": counts,
        "bounded_limit_max_abs_error": max(bounded_err) if bounded_err else None,
    }


def _explain(name: str, table: dict, check_nats: float) -> str:
    n, a = table["cells"], table["agree"]
    text = (f"{name}: numerics agree with the theory on {a}/{n} cells "
            f"({table['agree_off_boundary']}/{table['off_boundary']} off the boundary lines)")
    if table["disagreements"]:
        bad = ", ".join(f"({c['value_param']:g}, {c['error_param']:g}): numerics "
                        f"{c['numerical']} (slope {c['slope']:.3g}), theory {c['predicted']}"
                        + (" [on a boundary line: the slope tends to 0 slowly]"
                           if c["on_boundary"] else "")
                        for c in table["disagreements"])
        text += "; disagree: " + bad
    text += (f"; stopping at P(U >= t) = e^-{check_nats:g} instead: {table['agree_at_check']}/{n} "
             "agree")
    if table["bounded_limit_max_abs_error"] is not None:
        text += (f"; bounded cells: |E[V | U >= t_max] - predicted limit| <= "
                 f"{table['bounded_limit_max_abs_error']:.2g}")
    return text


def main(quick: bool, out: Path, seed: int, *, gennorm_exponents: list | None = None,
         df_values: list | None = None, df_errors: list | None = None, max_nats: float = 1e8,
         check_nats: float = 460.5, t_cap: float = 1e150, slope_tol: float = 0.02,
         num_points: int = 41) -> dict:
    """Write ``phase_diagram.png`` and ``numbers.json`` into ``out``; return the numbers.

    ``seed`` is unused (everything is exact quadrature); grids default to 5 x 5 (quick) or
    14 x 14 gennorm exponents and 10 x 10 Student-t degrees of freedom (full).
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    cs = _grid("gennorm_exponents", gennorm_exponents, QUICK_C if quick else FULL_C, lo=0.0)
    nu_v = _grid("df_values", df_values, QUICK_NU_V if quick else FULL_NU_V, lo=1.0)
    nu_x = _grid("df_errors", df_errors, QUICK_NU_X if quick else FULL_NU_X, lo=0.0)
    check_param("max_nats", max_nats, lo=10.0, hi=1e12)
    check_param("check_nats", check_nats, lo=10.0, hi=1e12)
    check_param("t_cap", t_cap, lo=10.0, hi=1e250)
    check_param("slope_tol", slope_tol, lo=0.0, lo_open=True, hi=1.0)
    num_points = check_positive_int("num_points", num_points, minimum=9)
    opts = {"max_nats": float(max_nats), "check_nats": float(check_nats), "t_cap": float(t_cap),
            "slope_tol": float(slope_tol), "num_points": num_points}
    start = time.perf_counter()
    tables = {}
    for family, vs, xs in (("gennorm", cs, cs), ("student_t", nu_v, nu_x)):
        params = {"quick": quick, "seed": seed, "family": family, "value_params": vs,
                  "error_params": xs, **opts}
        rows = sweeps.sweep(out, family, params, vs, lambda v, f=family, x=xs: _row(f, v, x, opts),
                            label=f"{family} rows")
        tables[family] = _table(family, vs, xs, rows)
    conclusions = [
        _explain("gennorm grid (c_V, c_X)", tables["gennorm"], check_nats),
        _explain("Student-t grid (nu_V, nu_X)", tables["student_t"], check_nats),
        ("gennorm exp(-|x|^c): c_X > 1 unbounded (Thm 6); c_X = 1 bounded iff c_V > 1 (limit "
         "E[V e^V]/E[e^V]); c_X < 1 catastrophic iff c_V > c_X (Thm 5; E - E[V] ~ c_X "
         "t^(c_X-1) Var V, slow near c_X = 1), else unbounded (E ~ t, or t/2 on the diagonal)"),
        ("Student t: nu_V - nu_X > 1 catastrophic (Thm 5; E - E[V] ~ t^max(1-(nu_V-nu_X), -1)); "
         "= 1 bounded, limit nu_V A_V / ((nu_V - 1) A_X) with S(x) ~ A x^-nu; < 1 unbounded "
         "(E ~ t^(1-(nu_V-nu_X)))"),
    ]
    rule = (f"numerical rule: thresholds geometric from sqrt(t_max) to t_max, t_max where "
            f"log P(U >= t) = -{max_nats:g} (or t_cap = {t_cap:g} for power laws); s = secant "
            f"slope of log(E[V | U >= t] - E[V]) vs log t over the last quarter of the log-t "
            f"window; s < -{slope_tol:g} catastrophic, s > {slope_tol:g} unbounded, else bounded")
    numbers = {"rule": rule, "conclusions": conclusions, "grids": tables,
               "compute_s": time.perf_counter() - start}
    from goodhart_jax.plots.regimes import phase_diagram_figure

    panels = []
    for family, xlabel, ylabel, title in (
            ("gennorm", "c_X (error tail exp(-|x|^c_X))", "c_V (value tail exp(-|v|^c_V))",
             "gennorm tails"),
            ("student_t", "nu_X (error: Student t)", "nu_V (value: Student t)",
             "Student-t tails (power laws)")):
        tab = tables[family]
        g = tab["grid"]
        ann = [[_annotation(g["regime"][i][j], g["slope"][i][j], g["value"][i][j])
                for j in range(len(tab["error_params"]))] for i in range(len(tab["value_params"]))]
        panels.append({
            "x": tab["error_params"], "y": tab["value_params"], "regime": g["regime"],
            "predicted": g["predicted"], "annotation": ann, "xlabel": xlabel, "ylabel": ylabel,
            "title": f"{title}: {tab['agree']}/{tab['cells']} cells agree with theory",
            "lines": _lines(family, tab["error_params"], tab["value_params"]),
        })
    fig = phase_diagram_figure(panels, title="lim E[V | U >= t] as t -> inf: numerics (colour) vs "
                               "theory (lines; X marks a disagreement)")
    results.save_figure(out / "phase_diagram.png", fig)
    results.save_json(out / "numbers.json", numbers)
    print(rule)
    for line in conclusions:
        print(line)
    return numbers


def _annotation(regime: str, slope: float, value: float) -> str:
    if regime == regimes.BOUNDED:
        return f"{value:.3g}"
    if not math.isfinite(slope):
        return "?"
    return f"{slope:+.2f}"


def _lines(family: str, xs: list[float], ys: list[float]) -> list[dict]:
    """The theory's boundaries as polylines in data coordinates."""
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    if family == "gennorm":
        lines = []
        if lo_x <= 1.0 <= hi_x:
            lines.append({"x": [1.0, 1.0], "y": [lo_y, hi_y], "label": "c_X = 1"})
        d0, d1 = max(lo_x, lo_y), min(1.0, hi_x, hi_y)
        if d0 < d1:
            lines.append({"x": [d0, d1], "y": [d0, d1], "label": "c_V = c_X (c_X <= 1)"})
        return lines
    x0, x1 = max(lo_x, lo_y - 1.0), min(hi_x, hi_y - 1.0)
    if x0 >= x1:
        return []
    return [{"x": [x0, x1], "y": [x0 + 1.0, x1 + 1.0], "label": "nu_V - nu_X = 1"}]
