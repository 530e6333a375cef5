"""Regressional Goodhart for a joint normal: the ellipse's major axis is not the regression line.

``V ~ N(0, s_V^2)`` and ``X ~ N(0, s_X^2)`` independent, proxy ``U = V + X`` (``s_U^2 = s_V^2 +
s_X^2``).  The joint density of ``(U, V)`` has elliptical contours; the line one eyeballs through
them is the principal (semi-major) axis, slope ``(sqrt(s_X^4 + 4 s_V^4) - s_X^2) / (2 s_V^2)``,
but what selection on ``U`` delivers is the regression ``E[V | U = u] = (s_V^2 / s_U^2) u``,
which is always flatter.  Second panel: ``E[V | U >= t]`` against ``t``, equal to
``(s_V^2 / s_U) phi(a) / (1 - Phi(a))`` with ``a = t / s_U`` and asymptotically linear with the
regression slope: the normal baseline of the heavy-tails analysis (Kwa, Thomas & Garriga-Alonso
2024, "Catastrophic Goodhart"), where the tails "come apart" only regressionally.

The regression line comes from :func:`goodhart_jax.value_given_proxy` and the curve from
:func:`goodhart_jax.conditional_value` (quadrature); the closed forms are saved beside them.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results


def major_axis_slope(value_scale: float, error_scale: float) -> float:
    """Slope of the principal axis of ``Cov(U, V) = [[s_V^2 + s_X^2, s_V^2], [s_V^2, s_V^2]]``."""
    sv2, sx2 = value_scale ** 2, error_scale ** 2
    return (math.sqrt(sx2 * sx2 + 4.0 * sv2 * sv2) - sx2) / (2.0 * sv2)


def main(quick: bool, out: Path, seed: int, *, value_scale: float = 1.0, error_scale: float = 1.0,
         t_max: float = 10.0, num_points: int = 200, grid: int = 241) -> dict:
    """Write ``elliptical_regression.png`` and ``numbers.json`` into ``out``; return the numbers.

    ``seed`` is unused (everything is exact).
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    check_param("value_scale", value_scale, lo=0.0, lo_open=True)
    check_param("error_scale", error_scale, lo=0.0, lo_open=True)
    check_param("t_max", t_max, lo=0.0, lo_open=True)
    num_points = check_positive_int("num_points", num_points, minimum=2)
    grid = check_positive_int("grid", grid, minimum=11)
    if quick:
        num_points, grid = min(num_points, 41), min(grid, 121)
    sv, sx = float(value_scale), float(error_scale)
    su = math.hypot(sv, sx)
    value, error = gj.Normal(0.0, sv), gj.Normal(0.0, sx)

    # joint density of (U, V) = f_V(v) f_X(u - v) on a square window of +-3.5 s_U
    half = 3.5 * su
    u = np.linspace(-half, half, grid)
    v = np.linspace(-half, half, grid)
    uu, vv = np.meshgrid(u, v)  # rows: v, columns: u
    log_density = np.asarray(value.log_prob(vv) + error.log_prob(uu - vv))
    # contour of Mahalanobis radius r: log f = log f(0) - r^2 / 2
    log_peak = float(value.log_prob(0.0) + error.log_prob(0.0))
    radii = np.array([3.0, 2.0, 1.0])
    levels = log_peak - radii ** 2 / 2

    # regression line E[V | U = u], by quadrature, and its least-squares slope through the origin
    reg_u = np.linspace(-3.0 * su, 3.0 * su, 13)
    reg_v = np.asarray(gj.value_given_proxy(value, error, reg_u))
    regression_slope = float(np.dot(reg_u, reg_v) / np.dot(reg_u, reg_u))
    slope_major = major_axis_slope(sv, sx)

    t = np.linspace(0.0, t_max, num_points)
    cond = np.asarray(gj.conditional_value(value, error, t))
    a = jnp.asarray(t / su)
    closed = np.asarray(sv ** 2 / su * jnp.exp(jax.scipy.stats.norm.logpdf(a)
                                               - jax.scipy.special.log_ndtr(-a)))
    numbers = {
        "value": value.spec, "error": error.spec,
        "value_scale": sv, "error_scale": sx, "proxy_scale": su,
        "covariance_uv": [[su ** 2, sv ** 2], [sv ** 2, sv ** 2]],
        "regression_u": reg_u, "regression_value": reg_v,
        "regression_slope": regression_slope,
        "regression_slope_closed_form": sv ** 2 / su ** 2,
        "major_axis_slope": slope_major,
        "t": t, "conditional_value": cond, "conditional_value_closed_form": closed,
        "max_rel_error_vs_closed_form": float(np.max(np.abs(cond / closed - 1.0))),
        "asymptotic_slope": sv ** 2 / su ** 2,
    }
    from goodhart_jax.plots.heavy_tails import elliptical_regression_figure

    fig = elliptical_regression_figure(
        u, v, log_density, levels=levels, level_labels=[f"{r:g}σ" for r in radii],
        regression_u=reg_u, regression_v=reg_v, regression_slope=regression_slope,
        major_axis_slope=slope_major, t=t, conditional_value=cond, closed_form=closed,
        title=f"V ~ N(0, {sv:g}^2), X ~ N(0, {sx:g}^2), U = V + X: "
              "regressional Goodhart (the tails come apart linearly)")
    results.save_figure(out / "elliptical_regression.png", fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
