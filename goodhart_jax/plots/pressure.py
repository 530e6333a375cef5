"""Figures for optimisation pressure on model A: best-of-n, KL tilts, overoptimisation, ensembles.

Each builder draws numbers the library computed (dicts of arrays, as saved by the experiments)
and returns a matplotlib ``Figure``; nothing here computes the model.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "catastrophic_figure",
    "theorem1_figure",
    "overoptimization_figure",
    "optimal_pressure_figure",
    "ensembles_figure",
]


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _band(ax, x, mean, se, color, label=None, **kw):
    x, mean, se = _a(x), _a(mean), _a(se)
    ax.plot(x, mean, color=color, label=label, **kw)
    ok = np.isfinite(se)
    ax.fill_between(x[ok], (mean - 2 * se)[ok], (mean + 2 * se)[ok], color=color, alpha=0.15, lw=0)


def catastrophic_figure(panels: Sequence[Mapping], *, title: str = ""):
    """E[V] under best-of-n (against KL_bon) and under beta-tilting (against KL), per value law.

    Args:
        panels: one dict per value distribution with ``label`` and ``series``: a list of dicts with
            ``label``, ``kl_bon``, ``bon`` (exact E[V], may be ``None``), ``bon_pool`` and
            ``bon_pool_se`` (pool estimates), ``tilt_kl`` and ``tilt_value`` (the tilted pool
            policies), optional ``tilt_ess`` (drawn dotted where below ``min_ess``, default
            100: the pool has collapsed onto a few outcomes there).
        title: figure title.

    Returns:
        A ``Figure`` with two panels per value law (best-of-n | tilt).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 4.3 * len(panels)), squeeze=False)
    for row, panel in enumerate(panels):
        ax_b, ax_t = axes[row]
        for i, s in enumerate(panel["series"]):
            c = f"C{i}"
            kl = _a(s["kl_bon"])
            if s.get("bon") is not None:
                ax_b.plot(kl, _a(s["bon"]), "-o", color=c, ms=3, label=f"{s['label']} (exact)")
                if s.get("bon_pool") is not None:
                    ax_b.errorbar(kl, _a(s["bon_pool"]), yerr=2 * _a(s["bon_pool_se"]), fmt="x",
                                  color=c, ms=4, capsize=2)
            elif s.get("bon_pool") is not None:
                _band(ax_b, kl, s["bon_pool"], s["bon_pool_se"], c, label=f"{s['label']} (pool)",
                      marker="o", ms=3)
            tk, tv = _a(s["tilt_kl"]), _a(s["tilt_value"])
            if s.get("tilt_ess") is not None:  # solid while the pool is not saturated
                ok = _a(s["tilt_ess"]) >= s.get("min_ess", 100.0)
                ax_t.plot(tk, tv, color=c, lw=0.8, ls=":")
                ax_t.plot(np.where(ok, tk, np.nan), np.where(ok, tv, np.nan), color=c,
                          label=s["label"])
            else:
                ax_t.plot(tk, tv, color=c, label=s["label"])
        ax_b.set_xlabel("KL_bon(n) = log n - (n-1)/n  [nats]   (n = 1, 4, 16, ...)")
        ax_t.set_xlabel("KL(pi_beta || pi_0)  [nats]   (tilts softmax(u / beta) of a pool; "
                        "dotted: ESS < 100)")
        for ax in (ax_b, ax_t):
            ax.set_ylabel("E[V]")
            ax.axhline(0.0, color="k", lw=0.6)
            ax.grid(alpha=0.3)
        ax_b.set_title(f"{panel['label']}: best-of-n", fontsize=10)
        ax_t.set_title(f"{panel['label']}: KL-regularised tilt", fontsize=10)
        ax_b.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def theorem1_figure(series: Sequence[Mapping], *, title: str = ""):
    """E[U] against KL for the mixtures ``(1 - delta) Q + delta Q(. | U > t)`` as ``t`` grows.

    Args:
        series: dicts with ``label``, ``kl``, ``mean`` and an optional ``bound`` (a curve
            ``(kl, mean)`` drawn dashed, e.g. ``sqrt(2 KL)`` for a standard normal base).
        title: figure title.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, s in enumerate(series):
        c = f"C{i}"
        kl, m = _a(s["kl"]), _a(s["mean"])
        ok = np.isfinite(kl) & np.isfinite(m) & (kl > 0) & (m > 0)
        ax.plot(kl[ok], m[ok], color=c, lw=2, label=s["label"])
        if s.get("bound") is not None:
            bk, bm = (_a(v) for v in s["bound"])
            ax.plot(bk, bm, color=c, ls="--", lw=1, label=s.get("bound_label", "bound"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-4)
    ax.set_xlabel("KL(pi || Q)  [nats]")
    ax.set_ylabel("E_pi[U]")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "Kwa et al. (2024) Thm 1: heavy tails give unbounded E[U] at vanishing KL",
                 fontsize=10)
    fig.tight_layout()
    return fig


def overoptimization_figure(curves: Sequence[Mapping], *, title: str = ""):
    """Gold reward against ``d = sqrt(KL)``, with Gao et al.'s fitted forms.

    Args:
        curves: dicts with ``label``, ``d``, ``gold`` (relative to the base policy), optional
            ``gold_se``, and optional ``fit`` (dict with ``form``, ``alpha``, ``beta``, ``peak_d``).
        title: figure title.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, cv in enumerate(curves):
        ax = axes[0] if cv.get("panel", 0) == 0 else axes[1]
        c = f"C{i}"
        d, g = _a(cv["d"]), _a(cv["gold"])
        if cv.get("gold_se") is not None:
            ax.errorbar(d, g, yerr=2 * _a(cv["gold_se"]), fmt="o", ms=3, color=c, capsize=2,
                        label=cv["label"])
        else:
            ax.plot(d, g, "o", ms=3, color=c, label=cv["label"])
        fit = cv.get("fit")
        if fit is not None:
            dd = np.linspace(1e-3, max(d.max(), 1e-3), 300)
            if fit["form"] == "bon":
                model = dd * (fit["alpha"] - fit["beta"] * dd)
                form = "d(α - β d)"
            else:
                model = dd * (fit["alpha"] - fit["beta"] * np.log(dd))
                form = "d(α - β log d)"
            ax.plot(dd, model, color=c, lw=1.5,
                    label=f"fit {form}: α={fit['alpha']:.3g}, β={fit['beta']:.3g}, d*={fit['peak_d']:.3g}")
    for ax, t in zip(axes, ["best-of-n", "optax-pushed policies on a pool"]):
        ax.set_xlabel("d = sqrt(KL)  [sqrt nats]")
        ax.set_ylabel("gold  E[V] - E_0[V]")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(t, fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def optimal_pressure_figure(optima: Sequence[Mapping], *, title: str = ""):
    """One panel per pressure measure: E[V] on the dense grid, the searched optimum marked.

    Args:
        optima: dicts with ``label``, ``measure``, ``grid``, ``grid_values``, ``pressure``,
            ``value``, ``interior``, ``log_x`` (bool), ``panel`` (index of the panel) and
            optionally ``grid_pressure`` (where the grid's maximum over its valid range is; an
            open circle when the optimum is not interior).
        title: figure title.
    """
    import matplotlib.pyplot as plt

    panels = sorted({o["panel"] for o in optima})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    axes = axes[0]
    colors: dict[str, str] = {}
    for o in optima:
        ax = axes[panels.index(o["panel"])]
        c = colors.setdefault(o["label"], f"C{len(colors)}")
        g, v = _a(o["grid"]), _a(o["grid_values"])
        ax.plot(g, v, color=c, lw=1.5, label=o["label"])
        if o["interior"]:
            ax.plot([o["pressure"]], [o["value"]], "*", color=c, ms=12)
        else:
            gp = o.get("grid_pressure", g[np.nanargmax(v)])
            gv = v[np.nanargmin(np.abs(g - gp))]
            ax.plot([gp], [gv], "o", mfc="none", color=c, ms=9)
            ax.annotate("no interior optimum", xy=(gp, gv), fontsize=7, color=c,
                        xytext=(5, 8), textcoords="offset points")
        if o.get("log_x"):
            ax.set_xscale("log")
        ax.set_xlabel(o["measure"])
        ax.set_ylabel("E[V]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ensembles_figure(panels: Sequence[Mapping], *, title: str = ""):
    """Per error law: E[V] under best-of-n against n, one curve per ensemble size k.

    Args:
        panels: dicts with ``label`` (the error law), optional ``short_note`` (a second title
            line) and ``curves``: dicts with
            ``k``, ``n``, ``mean``, ``stderr``; optionally ``threshold`` curves with ``k``, ``t``,
            ``mean``, ``stderr`` (drawn in a second row).
        title: figure title.
    """
    import matplotlib.pyplot as plt

    has_t = any(p.get("threshold") for p in panels)
    rows = 2 if has_t else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(4.4 * len(panels), 4.0 * rows),
                             squeeze=False)
    for j, p in enumerate(panels):
        ax = axes[0, j]
        for i, cv in enumerate(p["curves"]):
            _band(ax, cv["n"], cv["mean"], cv["stderr"], f"C{i}", label=f"k = {cv['k']}",
                  marker="o", ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("n (best-of-n)")
        ax.set_ylabel("E[V]")
        ax.set_title(p["label"] + (f"\n{p['short_note']}" if p.get("short_note") else ""),
                     fontsize=9)
        ax.axhline(0.0, color="k", lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        if has_t:
            ax2 = axes[1, j]
            for i, cv in enumerate(p.get("threshold", [])):
                _band(ax2, cv["t"], cv["mean"], cv["stderr"], f"C{i}", label=f"k = {cv['k']}")
            ax2.set_xlabel("threshold t")
            ax2.set_ylabel("E[V | U >= t]")
            ax2.axhline(0.0, color="k", lw=0.6)
            ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
