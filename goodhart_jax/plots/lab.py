"""Figures for the learned-proxy lab (``experiments/learned_proxy.py``): they draw, never compute.

Every builder takes the numbers the experiment saved (dicts of lists/arrays) and returns a
matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ensembles_figure", "learned_proxy_figure", "noise_tails_figure"]


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _curve(ax, c: Mapping, color, *, label=None, marker=None):
    """A seed-mean curve (``d``, ``gold``, ``gold_se``) with a 2-se band and its fit."""
    d, g = _a(c["d"]), _a(c["gold"])
    ax.plot(d, g, color=color, lw=1.6, marker=marker, ms=3, label=label)
    if c.get("gold_se") is not None:
        se = _a(c["gold_se"])
        ok = np.isfinite(se)
        ax.fill_between(d[ok], (g - 2 * se)[ok], (g + 2 * se)[ok], color=color, alpha=0.15, lw=0)
    fit = c.get("fit")
    if fit is not None and np.isfinite(fit.get("alpha", np.nan)):
        dd = np.linspace(1e-3, max(float(np.nanmax(d)), 1e-3), 200)
        if fit["form"] == "bon":
            model = dd * (fit["alpha"] - fit["beta"] * dd)
        else:
            model = dd * (fit["alpha"] - fit["beta"] * np.log(dd))
        ax.plot(dd, model, color=color, lw=0.9, ls="--")


def _style(ax, title, xlabel="d = sqrt(KL)  [sqrt nats]", ylabel="gold  E[r*] - E_pi0[r*]"):
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def _coef_panel(ax, rows: Sequence[Mapping], xkey: str, xlabel: str, title: str):
    """Fitted overoptimisation coefficients (mean +- 2 se across seeds) against ``xkey``."""
    for form, color, mk in (("bon", "C0", "o"), ("rl", "C3", "s")):
        sel = [r for r in rows if r["form"] == form]
        if not sel:
            continue
        x = _a([r[xkey] for r in sel])
        m = _a([r["beta_mean"] for r in sel])
        e = 2 * _a([r["beta_se"] for r in sel])
        lab = "best-of-n  β in d(α - β d)" if form == "bon" else "policy  β in d(α - β log d)"
        ax.errorbar(x, m, yerr=e, color=color, marker=mk, ms=5, capsize=3, lw=1.4, label=lab)
    ax.set_xscale("log", base=2)
    _style(ax, title, xlabel=xlabel, ylabel="fitted β (mean ± 2 se over seeds)")
    ax.legend(fontsize=7)


def learned_proxy_figure(panels: Mapping, *, title: str = ""):
    """Gold against ``sqrt(KL)`` over proxy sizes and label counts, and the fitted coefficients.

    Args:
        panels: dict with ``by_width`` and ``by_count`` (each a dict with ``bon`` and ``rl``:
            lists of curves ``{label, d, gold, gold_se, fit}``), ``coef_width`` and
            ``coef_count`` (rows ``{form, width | label_count, beta_mean, beta_se}``) and the
            subtitles ``width_note``, ``count_note``.
        title: figure title.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    for row, key, note in ((0, "by_width", panels.get("width_note", "")),
                           (1, "by_count", panels.get("count_note", ""))):
        for col, kind in ((0, "bon"), (1, "rl")):
            ax = axes[row, col]
            for i, c in enumerate(panels[key][kind]):
                _curve(ax, c, f"C{i}", label=c["label"], marker="o" if kind == "bon" else None)
            what = "best-of-n under pi0 (dashed: d(α - β d))" if kind == "bon" else \
                "optax Gaussian policy (dashed: d(α - β log d))"
            _style(ax, f"{what}\n{note}")
            ax.legend(fontsize=7)
    _coef_panel(axes[0, 2], panels["coef_width"], "width", "proxy width (hidden units)",
                "overoptimisation coefficient against proxy size")
    _coef_panel(axes[1, 2], panels["coef_count"], "label_count", "label count N",
                "overoptimisation coefficient against label count")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def noise_tails_figure(data: Mapping, *, title: str = ""):
    """Light against heavy-tailed label noise: the proxy's error tail and the gold curves.

    Args:
        data: dict with ``tails`` (list of ``{label, x, sf}``: empirical survival functions
            of the error's right tail, plus the label noise laws), ``bon`` and ``rl`` (curve
            lists as in :func:`learned_proxy_figure`) and ``note``.
        title: figure title.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    for i, t in enumerate(data["tails"]):
        ax.semilogy(_a(t["x"]), _a(t["sf"]), color=t.get("color", f"C{i}"), ls=t.get("ls", "-"),
                    lw=1.5, label=t["label"])
    _style(ax, "right tail of the proxy's error r_proxy - r* under pi0\n(dotted: the label noise; "
           "a normal tail bends down, a power law stays straighter)",
           xlabel="x (error minus its median)", ylabel="P(error > x)")
    ax.legend(fontsize=7, loc="upper right")
    for ax, kind in ((axes[1], "bon"), (axes[2], "rl")):
        for i, c in enumerate(data[kind]):
            _curve(ax, c, c.get("color", f"C{i}"), label=c["label"],
                   marker="o" if kind == "bon" else None)
        what = "best-of-n" if kind == "bon" else "optax Gaussian policy"
        _style(ax, f"{what}: light vs heavy label noise\n{data.get('note', '')}")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def ensembles_figure(data: Mapping, *, title: str = ""):
    """Gold against ``sqrt(KL)`` for ensemble objectives (single, mean, min, mean - lam var).

    Args:
        data: dict with ``bon`` and ``rl`` (curve lists with an optional ``peak``:
            ``{d, gold}`` marked with a star) and ``note``.
        title: figure title.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, kind in ((axes[0], "bon"), (axes[1], "rl")):
        for i, c in enumerate(data[kind]):
            color = f"C{i}"
            _curve(ax, {**c, "fit": None}, color, label=c["label"],
                   marker="o" if kind == "bon" else None)
            pk = c.get("peak")
            if pk is not None:
                ax.plot([pk["d"]], [pk["gold"]], "*", color=color, ms=13, mec="k", mew=0.5)
        what = "best-of-n under pi0" if kind == "bon" else "optax Gaussian policy"
        _style(ax, f"{what} against an ensemble objective (stars: peaks)\n{data.get('note', '')}")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
