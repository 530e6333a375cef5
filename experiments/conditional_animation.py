"""Animation: the density of ``V`` given ``U = V + X >= t`` as the threshold ``t`` rises.

Default pair: a Laplace value ``V ~ exp(-|v|) / 2`` (``gennorm(1)``) and a Student ``X ~
t(3)`` error, a catastrophic pair (Kwa, Thomas & Garriga-Alonso 2024, Theorem 5: ``X``
subexponential and ``t^p S_V(t) / S_X(t) -> 0``).  The conditional density
``f_V(v) S_X(t - v) / P(U >= t)`` (:func:`goodhart_jax.conditional_density`) has mass in two
places: near ``v = 0`` (the error did the work) and a spike near ``v = t`` (the value did).
As ``t`` rises the spike near ``t`` shrinks (its mass falls like ``e^{-t} t^3``) and the mass
returns to ``v ≈ 0``; the dashed line ``E[V | U >= t]`` (:func:`goodhart_jax.conditional_value`)
rises, peaks and falls back towards ``E[V] = 0``.  The log-scale panel shows the spike long
after it is invisible on the linear one.

With a normal value (``--set value=normal``) the spike near ``t`` is only ``e^{-t^2/2}``
high: the density merely slides right and back, which is why the default value has an
exponential tail.

Outputs: ``conditional_animation.gif`` (one frame per threshold), ``conditional_frames.png``
(a few frames overlaid, for the gallery) and ``numbers.json`` (the thresholds, the grid, the
density of every frame, the conditional means and the masses ``P(|V| <= w | U >= t)`` and
``P(|V - t| <= w | U >= t)``, by Gauss-Legendre quadrature of
:func:`goodhart_jax.conditional_density`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results

_NODES = 48  # Gauss-Legendre nodes per half window, for the window masses


def _window_rule(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights for ``[lo, hi]`` (per row), split at 0 if inside."""
    x, wt = np.polynomial.legendre.leggauss(_NODES)
    mid = np.clip(0.0, lo, hi)
    pts, wts = [], []
    for a, b in ((lo, mid), (mid, hi)):
        half = (b - a)[:, None] / 2
        pts.append((a + b)[:, None] / 2 + half * x[None, :])
        wts.append(half * wt[None, :])
    return np.concatenate(pts, axis=1), np.concatenate(wts, axis=1)


def _save_gif(path: Path, anim, fps: int, dpi: int) -> None:
    """Save ``anim`` as a GIF atomically (Pillow writes to a temporary ``.gif``, then rename)."""
    from matplotlib.animation import PillowWriter

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".gif", dir=path.parent)
    os.close(fd)
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps), dpi=dpi)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(quick: bool, out: Path, seed: int, *, value: str = "gennorm(p=1.0)",
         error: str = "student_t(df=3)", t_max: float = 16.0, num_frames: int = 48,
         fps: int = 8, window: float = 1.0, span: float = 12.0, num_points: int = 2001,
         view: float = 5.0) -> dict:
    """Write ``conditional_animation.gif``, ``conditional_frames.png`` and ``numbers.json``.

    The grid runs from ``-span`` to ``t_max + span`` (plus the node 0, where a Laplace value
    has its cusp); the figures show ``[-view, t_max + view]``.  ``window`` is the half-width
    of the intervals around 0 and around ``t`` whose conditional masses are saved.  ``seed``
    is unused (everything is exact).  Quick mode: at most 6 frames and a small GIF.
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    value_dist, error_dist = gj.parse_dist(value), gj.parse_dist(error)
    check_param("t_max", t_max, lo=0.0, lo_open=True, hi=1e4)
    check_param("window", window, lo=0.0, lo_open=True, hi=1e4)
    check_param("span", span, lo=0.0, lo_open=True, hi=1e4)
    check_param("view", view, lo=0.0, lo_open=True, hi=1e4)
    num_frames = check_positive_int("num_frames", num_frames, minimum=2)
    fps = check_positive_int("fps", fps)
    num_points = check_positive_int("num_points", num_points, minimum=11)
    if quick:
        num_frames = min(num_frames, 6)
    t = np.linspace(0.0, float(t_max), num_frames)
    v = np.unique(np.concatenate([np.linspace(-float(span), float(t_max) + float(span),
                                              num_points), [0.0]]))
    num_points = v.size
    # Window masses: Gauss-Legendre on gj.conditional_density at a few nodes per frame, each
    # window split at 0 (where f_V may have a cusp or a support end).
    w = float(window)
    zero_pts, zero_wts = _window_rule(np.full(num_frames, -w), np.full(num_frames, w))
    t_pts, t_wts = _window_rule(t - w, t + w)
    win = np.concatenate([zero_pts, t_pts], axis=1)
    dens = np.asarray(gj.conditional_density(value_dist, error_dist, win, t[:, None]))
    near_zero = np.sum(zero_wts * dens[:, :zero_pts.shape[1]], axis=1)
    near_t = np.sum(t_wts * dens[:, zero_pts.shape[1]:], axis=1)
    # The grid: one quadrature per frame for P(U >= t), broadcast over v.
    density = np.asarray(gj.conditional_density(value_dist, error_dist, v[None, :], t[:, None]))
    log_p = np.asarray(gj.log_tail_prob(value_dist, error_dist, t))
    means = np.asarray(gj.conditional_value(value_dist, error_dist, t))
    numbers = {
        "value": value_dist.spec, "error": error_dist.spec, "t": t, "v": v,
        "density": density, "conditional_value": means, "window": w,
        "mass_near_zero": near_zero, "mass_near_t": near_t,
        "grid_mass": np.sum((density[:, 1:] + density[:, :-1]) / 2 * np.diff(v), axis=1),
        "log_tail_prob": log_p,
    }
    from goodhart_jax.plots.heavy_tails import conditional_animation, conditional_frames_figure

    def short(spec: str) -> str:
        return spec.replace(", loc=0.0", "").replace(", scale=1.0", "")

    title = (f"V ~ {short(value_dist.spec)}, X ~ {short(error_dist.spec)}: "
             "density of V given V + X >= t")
    frames = sorted(set(np.linspace(0, num_frames - 1, min(num_frames, 5)).round().astype(int)))
    xlim = (-float(view), float(t_max) + float(view))
    fig = conditional_frames_figure(v, t, density, means, frames=frames, xlim=xlim, title=title)
    results.save_figure(out / "conditional_frames.png", fig)
    figsize, dpi = ((8.0, 3.3), 60) if quick else ((11.0, 4.2), 80)
    fig, anim = conditional_animation(v, t, density, means, near_zero=near_zero, near_t=near_t,
                                      window=w, figsize=figsize, xlim=xlim, title=title)
    try:
        _save_gif(out / "conditional_animation.gif", anim, fps, dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
