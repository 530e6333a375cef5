"""Figures for the heavy-tails analysis of model A (proxy ``U = V + X``).

Builders for the experiments ``elliptical_regression``, ``joint_density_triangle``,
``tail_pdfs`` and ``conditional_animation``.  They take numbers computed by the library and
draw them; nothing here computes a distribution.  ``matplotlib.pyplot`` is imported inside
each function so that importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "conditional_animation",
    "conditional_frames_figure",
    "elliptical_regression_figure",
    "joint_density_triangle_figure",
    "tail_pdfs_figure",
]


def elliptical_regression_figure(u: np.ndarray, v: np.ndarray, log_density: np.ndarray, *,
                                 levels: Sequence[float], regression_u: np.ndarray,
                                 regression_v: np.ndarray, regression_slope: float,
                                 major_axis_slope: float, t: np.ndarray,
                                 conditional_value: np.ndarray,
                                 closed_form: np.ndarray | None = None,
                                 level_labels: Sequence[str] | None = None, title: str = ""):
    """Contours of the joint normal density of ``(U, V)`` with the two lines, and ``E[V | U >= t]``.

    Args:
        u: grid of proxy values (the x axis), shape ``(nu,)``.
        v: grid of true values (the y axis), shape ``(nv,)``.
        log_density: ``log f_{U,V}`` on the grid, shape ``(nv, nu)``.
        levels: increasing log-density levels for the contour lines.
        regression_u: proxy values where ``E[V | U = u]`` was computed.
        regression_v: ``E[V | U = u]`` at ``regression_u`` (drawn as dots on the regression line).
        regression_slope: slope of the regression line ``E[V | U = u]`` (through the origin).
        major_axis_slope: slope of the ellipses' principal (semi-major) axis.
        t: thresholds for the right panel.
        conditional_value: ``E[V | U >= t]`` at ``t``.
        closed_form: optional closed-form ``E[V | U >= t]`` (drawn dashed over the curve).
        level_labels: optional labels for the contour levels (e.g. ``"1σ"``).
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    u, v = np.asarray(u), np.asarray(v)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.4), gridspec_kw={"width_ratios": [1.0, 1.15]})
    ax = axes[0]
    cs = ax.contour(u, v, np.asarray(log_density), levels=list(levels), colors="0.35",
                    linewidths=1.0, linestyles="solid")
    if level_labels is not None:
        ax.clabel(cs, fmt=dict(zip(cs.levels, level_labels)), fontsize=7)
    line_u = np.array([u.min(), u.max()])
    ax.plot(line_u, major_axis_slope * line_u, color="C1", ls="--", lw=2,
            label=f"naive: major axis of the ellipses, slope {major_axis_slope:.4f}")
    ax.plot(line_u, regression_slope * line_u, color="C0", lw=2,
            label=f"regression E[V | U = u], slope {regression_slope:.4f}")
    ax.plot(regression_u, regression_v, "o", color="C0", ms=4)
    ax.set_xlim(u.min(), u.max())
    ax.set_ylim(v.min(), v.max())
    ax.set_aspect("equal")
    ax.set_xlabel("proxy U = V + X")
    ax.set_ylabel("true value V")
    ax.set_title("joint density of (U, V): contours at 1, 2, 3 sigma", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.25)

    ax = axes[1]
    t = np.asarray(t)
    ax.plot(t, conditional_value, color="C0", lw=2.5, label="E[V | U >= t] (quadrature)")
    if closed_form is not None:
        ax.plot(t, closed_form, color="k", ls=":", lw=1.5,
                label="closed form (s_V^2 / s_U) phi(a) / (1 - Phi(a)), a = t / s_U")
    ax.plot(t, regression_slope * t, color="C0", ls="--", lw=1,
            label=f"asymptote: regression slope x t = {regression_slope:.4f} t")
    ax.plot(t, major_axis_slope * t, color="C1", ls="--", lw=1,
            label=f"naive: major-axis slope x t = {major_axis_slope:.4f} t")
    ax.set_xlabel("threshold t on the proxy")
    ax.set_ylabel("E[V | U >= t]")
    ax.set_title("selecting U >= t: asymptotically linear with the regression slope", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def joint_density_triangle_figure(cases: Sequence[dict], *, depth: float = 14.0, title: str = ""):
    """For each case: the density of ``(V, X)`` on ``V + X >= t`` and ``E[V | U >= t]`` against ``t``.

    Args:
        cases: dicts with ``label`` (str), ``v`` and ``x`` (grids, shapes ``(nv,)``, ``(nx,)``),
            ``log_density`` (``log f_V(v) + log f_X(x)`` on the grid, shape ``(nx, nv)``, NaN
            outside ``v + x >= t``), ``t_mark`` (the threshold drawn), ``t`` and
            ``conditional_value`` (the curve ``E[V | U >= t]``), ``value_at_mark``
            (``E[V | U >= t_mark]``), and optional ``modes`` (``(v, x)`` pairs: the local maxima
            of the density along the line ``v + x = t_mark``, drawn as stars).
        depth: the colour scale spans ``depth`` nats below each panel's maximum.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    n = len(cases)
    fig, axes = plt.subplots(n, 2, figsize=(12.0, 4.6 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1.0, 1.1]})
    for i, c in enumerate(cases):
        ax = axes[i, 0]
        v, x = np.asarray(c["v"]), np.asarray(c["x"])
        logd = np.asarray(c["log_density"], dtype=float)
        top = np.nanmax(logd)
        rel = np.clip(logd - top, -depth, 0.0)
        cmap = plt.get_cmap("magma").with_extremes(bad="0.88")
        im = ax.imshow(np.ma.masked_invalid(rel), origin="lower", aspect="equal", cmap=cmap,
                       extent=(v[0], v[-1], x[0], x[-1]), vmin=-depth, vmax=0.0,
                       interpolation="bilinear")
        levels = np.arange(-depth + 2.0, 0.0, 2.0)
        ax.contour(v, x, np.where(np.isfinite(logd), logd - top, -np.inf), levels=levels,
                   colors="w", linewidths=0.6, alpha=0.8, linestyles="solid")
        t_mark = float(c["t_mark"])
        ax.plot([v[0], v[-1]], [t_mark - v[0], t_mark - v[-1]], color="C9", lw=1.5)
        if c.get("modes"):
            mv, mx = np.asarray(c["modes"], dtype=float).T
            ax.plot(mv, mx, "*", color="cyan", ms=12, mec="k", mew=0.5, ls="none",
                    label=f"local maxima on v + x = {t_mark:g}")
            ax.legend(fontsize=7, loc="upper right")
        ax.set_xlim(v[0], v[-1])
        ax.set_ylim(x[0], x[-1])
        ax.set_xlabel("true value V")
        ax.set_ylabel("error X")
        ax.set_title(f"{c['label']}\ndensity of (V, X) on V + X >= {t_mark:g} (grey: excluded)",
                     fontsize=9)
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("log density - max (nats)", fontsize=8)

        ax = axes[i, 1]
        t, val = np.asarray(c["t"]), np.asarray(c["conditional_value"])
        ax.plot(t, val, color=f"C{i}", lw=2.2, label="E[V | U >= t]")
        ax.plot(t, t / 2, color="0.5", ls=":", lw=1, label="t / 2")
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.axvline(t_mark, color="C9", lw=1)
        ax.plot([t_mark], [c["value_at_mark"]], "o", color="k", ms=6,
                label=f"t = {t_mark:g}: E[V | U >= t] = {float(c['value_at_mark']):.3f}")
        ax.set_xlabel("threshold t")
        ax.set_ylabel("E[V | U >= t]")
        span = max(1.0, float(np.max(val)) - min(0.0, float(np.min(val))))
        ax.set_ylim(min(0.0, float(np.min(val))) - 0.05 * span,
                    max(float(np.max(val)), 0.0) + 0.3 * span)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def tail_pdfs_figure(x: np.ndarray, log_pdf_value: np.ndarray, log_pdf_error: np.ndarray, *,
                     value_label: str, error_label: str, crossings: Sequence[float] = (),
                     overtake: float | None = None, pdf_xlim: float | None = None,
                     title: str = ""):
    """Densities (left) and negative log densities (right) of ``V`` and ``X`` on one grid.

    Args:
        x: grid, shape ``(n,)``.
        log_pdf_value: ``log f_V(x)``.
        log_pdf_error: ``log f_X(x)``.
        value_label: legend label for ``V``.
        error_label: legend label for ``X``.
        crossings: points where the two densities are equal (drawn as vertical lines).
        overtake: the point beyond which ``X``'s density stays above ``V``'s (named in the
            title; wherever ``X``'s density is the larger is shaded).
        pdf_xlim: half-width of the left panel's x range (default: the whole grid).
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    x = np.asarray(x)
    lv, lx = np.asarray(log_pdf_value), np.asarray(log_pdf_error)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6))
    for ax, fv, fx in ((axes[0], np.exp(lv), np.exp(lx)), (axes[1], -lv, -lx)):
        ax.plot(x, fv, color="C0", lw=2, label=value_label)
        ax.plot(x, fx, color="C3", lw=2, label=error_label)
        for c in crossings:
            ax.axvline(c, color="0.4", ls=":", lw=1)
        ax.fill_between(x, 0, 1, where=lx > lv, color="C3", alpha=0.08, lw=0,
                        transform=ax.get_xaxis_transform())
        ax.grid(alpha=0.3)
        ax.set_xlabel("x")
    if pdf_xlim is not None:
        axes[0].set_xlim(-pdf_xlim, pdf_xlim)
    axes[1].set_xlim(x[0], x[-1])
    finite = np.concatenate([-lv[np.isfinite(lv)], -lx[np.isfinite(lx)]])
    if finite.size:
        axes[1].set_ylim(min(0.0, finite.min()), min(finite.max(), 4 * np.max(-lx[np.isfinite(lx)]))
                         * 1.05)
    axes[0].set_ylabel("density f(x)")
    axes[1].set_ylabel("-log f(x)")
    axes[0].set_title("densities: near 0 the value V is the more likely", fontsize=9)
    note = (f"beyond x = {overtake:.4g} the error X is the more likely (shaded)"
            if overtake is not None else "the error's density never overtakes the value's here")
    axes[1].set_title(f"negative log densities: {note}", fontsize=9)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[1].legend(fontsize=8, loc="upper center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _frame_text(t: float, mean: float, near_zero: float, near_t: float, window: float) -> str:
    return (f"t = {t:.2f}   E[V | U >= t] = {mean:.3f}\n"
            f"P(|V| <= {window:g} | U >= t) = {near_zero:.3f}   "
            f"P(|V - t| <= {window:g} | U >= t) = {near_t:.2e}")


def conditional_frames_figure(v: np.ndarray, t: np.ndarray, density: np.ndarray,
                              means: np.ndarray, *, frames: Sequence[int],
                              xlim: tuple[float, float] | None = None, log_floor: float = 1e-6,
                              title: str = ""):
    """A few frames of the conditional density of ``V`` given ``U >= t``, overlaid.

    Args:
        v: grid of values, shape ``(n,)``.
        t: thresholds of all frames, shape ``(f,)``.
        density: the conditional density on ``v`` for every frame, shape ``(f, n)``.
        means: ``E[V | U >= t]`` for every frame (dashed vertical lines).
        frames: indices of the frames to draw.
        xlim: the x range shown (default: the grid's).
        log_floor: lower limit of the log-scale panel.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    v, t, density = np.asarray(v), np.asarray(t), np.asarray(density)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4))
    cmap = plt.get_cmap("viridis")
    for j, k in enumerate(frames):
        color = cmap(j / max(1, len(frames) - 1) * 0.9)
        for ax in axes:
            ax.plot(v, density[k], color=color, lw=1.8,
                    label=f"t = {t[k]:.2f}, E[V | U >= t] = {float(means[k]):.3f}")
            ax.axvline(float(means[k]), color=color, ls="--", lw=1.2)
            ax.axvline(float(t[k]), color=color, ls=":", lw=0.8)
    axes[1].set_yscale("log")
    axes[1].set_ylim(log_floor, 2 * float(np.max(density[list(frames)])))
    for ax in axes:
        ax.set_xlim(*(xlim if xlim is not None else (v[0], v[-1])))
        ax.set_xlabel("true value v")
        ax.set_ylabel("density of V given U >= t")
        ax.grid(alpha=0.3)
    axes[0].set_title("linear scale (dashed: conditional mean; dotted: v = t)", fontsize=9)
    axes[1].set_title("log scale: the bump near v = t", fontsize=9)
    axes[0].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def conditional_animation(v: np.ndarray, t: np.ndarray, density: np.ndarray, means: np.ndarray,
                          *, near_zero: np.ndarray, near_t: np.ndarray, window: float,
                          figsize: tuple[float, float] = (11.0, 4.2),
                          xlim: tuple[float, float] | None = None, log_floor: float = 1e-6,
                          title: str = "") -> tuple[Any, Any]:
    """An animation of the conditional density of ``V`` given ``U >= t``, one frame per ``t``.

    Args:
        v: grid of values, shape ``(n,)``.
        t: thresholds, one per frame, shape ``(f,)``.
        density: the conditional density on ``v`` per frame, shape ``(f, n)``.
        means: ``E[V | U >= t]`` per frame (dashed vertical line).
        near_zero: ``P(|V| <= window | U >= t)`` per frame (shown in the text).
        near_t: ``P(|V - t| <= window | U >= t)`` per frame (shown in the text).
        window: the half-width behind ``near_zero`` and ``near_t``.
        figsize: figure size in inches.
        xlim: the x range shown (default: the grid's).
        log_floor: lower limit of the log-scale panel.
        title: figure title.

    Returns:
        ``(fig, animation)``: a matplotlib ``Figure`` and its ``FuncAnimation`` (save it with a
        ``PillowWriter``; close the figure afterwards).
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    v, t, density = np.asarray(v), np.asarray(t), np.asarray(density)
    small = figsize[0] < 8
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    top = float(np.max(density))
    lines, mean_lines, t_lines = [], [], []
    for ax in axes:
        (line,) = ax.plot(v, density[0], color="C0", lw=2)
        mean_lines.append(ax.axvline(float(means[0]), color="C3", ls="--", lw=1.5,
                                     label="E[V | U >= t]"))
        t_lines.append(ax.axvline(float(t[0]), color="0.4", ls=":", lw=1, label="v = t"))
        lines.append(line)
        ax.set_xlim(*(xlim if xlim is not None else (v[0], v[-1])))
        ax.set_xlabel("true value v", fontsize=7 if small else 9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=6 if small else 8)
    axes[0].set_ylim(0.0, 1.08 * top)
    axes[1].set_yscale("log")
    axes[1].set_ylim(log_floor, 2 * top)
    axes[0].set_ylabel("density of V given U >= t", fontsize=7 if small else 9)
    axes[0].legend(fontsize=6 if small else 8, loc="upper right")
    text = fig.text(0.5, 0.005, "", ha="center", va="bottom", fontsize=6 if small else 9)
    if title:
        fig.suptitle(title, fontsize=8 if small else 11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))

    def draw(k: int):
        for line in lines:
            line.set_ydata(density[k])
        for ml in mean_lines:
            ml.set_xdata([float(means[k])] * 2)
        for tl in t_lines:
            tl.set_xdata([float(t[k])] * 2)
        text.set_text(_frame_text(float(t[k]), float(means[k]), float(near_zero[k]),
                                  float(near_t[k]), window))
        return [*lines, *mean_lines, *t_lines, text]

    anim = FuncAnimation(fig, draw, frames=len(t), blit=False, repeat=False)
    return fig, anim
