"""Figures for the limit of E[V | U >= t]: the phase diagram and the independence exercises.

Builders draw numbers the experiments computed (lists and dicts as saved in ``numbers.json``)
and return a matplotlib ``Figure``; nothing here computes the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["REGIME_COLORS", "phase_diagram_figure", "independence_figure"]

REGIME_COLORS = {
    "catastrophic": "#d9534f",
    "bounded": "#f0c05a",
    "unbounded": "#4a7fc1",
    "undetermined": "#bbbbbb",
}


def _index_map(values: Sequence[float]):
    """Data coordinate -> cell index (piecewise linear through the grid values)."""
    vals = np.asarray(values, dtype=float)
    idx = np.arange(vals.size, dtype=float)
    return lambda z: np.interp(np.asarray(z, dtype=float), vals, idx)


def _densify(x, y, n: int = 100):
    """Points along a polyline (so that its image under the index map bends where it should)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    s = np.linspace(0.0, 1.0, n)[:, None]
    xs = (x[:-1] + s * (x[1:] - x[:-1])).T.reshape(-1)
    ys = (y[:-1] + s * (y[1:] - y[:-1])).T.reshape(-1)
    return xs, ys


def phase_diagram_figure(panels: Sequence[Mapping], *, title: str = ""):
    """Heatmaps of the numerical regime per cell, the theory's boundaries, disagreements marked.

    Cells sit on a uniform index grid (the parameter values label the ticks); boundary lines are
    mapped into it piecewise linearly, so a line through a grid value passes through the centres
    of that value's cells.

    Args:
        panels: dicts with ``x`` (error parameters, columns), ``y`` (value parameters, rows),
            ``regime`` (rows of regime names, the numerical verdict), ``predicted`` (the
            theory's, same shape), optional ``annotation`` (rows of short strings drawn in the
            cells), ``lines`` (dicts with ``x``, ``y`` polylines in data coordinates and a
            ``label``), ``xlabel``, ``ylabel``, ``title``.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = list(REGIME_COLORS)
    cmap = ListedColormap([REGIME_COLORS[n] for n in names])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.6 * len(panels), 6.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        xs, ys = list(p["x"]), list(p["y"])
        reg = np.array([[names.index(r) for r in row] for row in p["regime"]], dtype=float)
        ax.imshow(reg, origin="lower", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
                  aspect="auto", interpolation="nearest")
        small = max(len(xs), len(ys)) > 8
        for i in range(len(ys)):
            for j in range(len(xs)):
                if p.get("annotation") is not None:
                    ax.text(j, i, p["annotation"][i][j], ha="center", va="center",
                            fontsize=6 if small else 8, color="black",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.55,
                                  "lw": 0})
                if p["regime"][i][j] != p["predicted"][i][j]:
                    ax.plot(j, i, marker="x", color="black", ms=16, mew=2.5)
        fx, fy = _index_map(xs), _index_map(ys)
        for k, line in enumerate(p.get("lines", [])):
            lx, ly = _densify(line["x"], line["y"])
            ax.plot(fx(lx), fy(ly), color="black", ls=("--", ":", "-.")[k % 3], lw=1.8,
                    label=line.get("label"))
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys], fontsize=8)
        ax.set_xlabel(p.get("xlabel", ""))
        ax.set_ylabel(p.get("ylabel", ""))
        ax.set_title(p.get("title", ""), fontsize=10)
        handles = [Patch(color=REGIME_COLORS[n], label=n) for n in names[:3]]
        handles += [h for h in ax.get_legend_handles_labels()[0]]
        handles.append(Line2D([], [], marker="x", color="black", ls="", ms=9, mew=2,
                              label="numerics != theory"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.text(0.5, 0.005, "cell text: slope of log(E[V|U>=t] - E[V]) vs log t far out; "
             "bounded cells: E[V | U >= t_max]", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def independence_figure(curves: Sequence[Mapping], *, mean: float = 0.0,
                        far: Sequence[Mapping] = (), random_check: Mapping | None = None,
                        t_max: float | None = None, title: str = ""):
    """E[V | U >= t] for dependent and independent proxies, their far tails, the random check.

    Args:
        curves: dicts with ``label``, ``t``, ``value`` (exact E[V | U >= t]), optional
            ``limit`` (dashed asymptote), optional ``mc_t``, ``mc_mean``, ``mc_stderr``
            (Monte Carlo points, drawn with ±2 se bars).
        mean: ``E[V]`` (a horizontal line).
        far: dicts with ``label``, ``t``, ``distance`` (a positive distance to the limit,
            drawn log-log) and optional ``asymptote`` (same length, dashed).
        random_check: optional dict with ``t``, ``excess`` (``E[V | U >= t] - E[V]`` over
            random independent families) and ``label``.
        t_max: right end of the first panel's t axis.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    n = 1 + bool(far) + (random_check is not None)
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 4.6), squeeze=False)
    axes = list(axes[0])
    ax = axes[0]
    for i, c in enumerate(curves):
        t, val = np.asarray(c["t"], float), np.asarray(c["value"], float)
        keep = t <= (t_max if t_max is not None else np.inf)
        ax.plot(t[keep], val[keep], color=f"C{i}", lw=2, label=c["label"])
        if c.get("limit") is not None and np.isfinite(c["limit"]):
            ax.axhline(c["limit"], color=f"C{i}", ls="--", lw=1)
        if c.get("mc_t") is not None:
            ax.errorbar(c["mc_t"], c["mc_mean"], yerr=2 * np.asarray(c["mc_stderr"], float),
                        fmt="o", color=f"C{i}", ms=4, capsize=2, mec="black", mew=0.5)
    ax.axhline(mean, color="black", lw=1, label="E[V]")
    ax.set_xlabel("threshold t")
    ax.set_ylabel("E[V | U >= t]")
    ax.set_title("exact (lines), Monte Carlo ±2 se (dots)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    k = 1
    if far:
        ax = axes[k]
        k += 1
        for i, f in enumerate(far):
            t = np.asarray(f["t"], float)
            d = np.asarray(f["distance"], float)
            ok = np.isfinite(d) & (d > 0)
            ax.loglog(t[ok], d[ok], color=f.get("color", f"C{i}"), lw=2, label=f["label"])
            if f.get("asymptote") is not None:
                ax.loglog(t, np.asarray(f["asymptote"], float), color="black", ls="--", lw=0.8)
        ax.set_xlabel("threshold t")
        ax.set_ylabel("distance to the limit")
        ax.set_title("far out (dashed: asymptotes)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if random_check is not None:
        ax = axes[k]
        t = np.asarray(random_check["t"], float)
        d = np.asarray(random_check["excess"], float)
        ax.scatter(t, d, s=8, c=np.asarray(random_check.get("color", np.zeros(t.size)), float),
                   cmap="tab10", alpha=0.8)
        ax.set_yscale("symlog", linthresh=1e-8)
        ax.set_xscale("symlog", linthresh=10.0)
        ax.axhline(0.0, color="black", lw=1)
        ax.set_xlabel("threshold t")
        ax.set_ylabel("E[V | U >= t] - E[V]")
        ax.set_title(random_check.get("label", "independent pairs"), fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
