"""Figures for a contaminated error ``(1 - eps) N(0, 1) + eps H``: where selection collapses.

The builder draws the numbers ``experiments/contaminated_error.py`` saved; it computes nothing.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["contaminated_error_figure"]


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def contaminated_error_figure(numbers: Mapping):
    """Best-of-n and threshold curves per ``eps``; ``n*``, ``t*`` and the peaks against ``eps``.

    Args:
        numbers: the experiment's numbers: ``eps``, ``n`` (``None`` without best-of-n), ``t``,
            ``light`` (``bon``, ``threshold``: the ``eps = 0`` curves) and ``series``: per heavy
            law a dict with ``label``, ``threshold`` (one row per ``eps``), ``t_star``,
            ``t_star_theory``, ``threshold_peak``, ``inv_tail_prob_at_t_star`` and, with
            best-of-n, ``bon``, ``n_star``, ``n_star_theory``, ``bon_peak``, ``bon_peak_theory``.

    Returns:
        A ``Figure``: two rows of three panels.
    """
    import matplotlib.pyplot as plt
    from matplotlib import cm

    eps = _a(numbers["eps"])
    t = _a(numbers["t"])
    bon_on = numbers.get("n") is not None
    ns = _a(numbers["n"]) if bon_on else None
    series = numbers["series"]
    main_name = next(iter(series))
    main = series[main_name]
    colors = cm.viridis(np.linspace(0.0, 0.9, len(eps)))
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    (ax_b, ax_t, ax_p), (ax_n, ax_ts, ax_2) = axes
    light = numbers["light"]

    def eps_label(e):
        return f"eps = {e:.0e}".replace("e-0", "e-")

    def bon_panel(ax, s, title, stars):
        for i, e in enumerate(eps):
            ax.plot(ns, _a(s["bon"])[i], color=colors[i], lw=1.5, label=eps_label(e))
            if stars:
                ax.plot(s["n_star"][i], s["bon_peak"][i], "o", color=colors[i], ms=4)
        ax.plot(ns, _a(light["bon"]), "k--", lw=1.5, label="eps = 0 (light)")
        ax.set_xscale("log")
        ax.set_xlabel("n (best of n)")
        ax.set_ylabel("E[V | best of n]")
        ax.set_title(title)
        ax.legend(fontsize=7, ncol=2)

    if bon_on:
        bon_panel(ax_b, main, f"best-of-n, H = {main['label']} (dots: n*)", True)
    else:
        ax_b.set_axis_off()
    for i, e in enumerate(eps):
        ax_t.plot(t, _a(main["threshold"])[i], color=colors[i], lw=1.5, label=eps_label(e))
        ax_t.plot(main["t_star"][i], main["threshold_peak"][i], "o", color=colors[i], ms=4)
    ax_t.plot(t, _a(light["threshold"]), "k--", lw=1.5, label="eps = 0 (light)")
    ax_t.set_xlabel("threshold t")
    ax_t.set_ylabel("E[V | V + X >= t]")
    ax_t.set_title(f"threshold, H = {main['label']} (dots: t*)")
    ax_t.legend(fontsize=7, ncol=2)

    markers = ["o", "s", "^", "D"]
    for j, (name, s) in enumerate(series.items()):
        m, c = markers[j % 4], f"C{j}"
        if bon_on:
            ax_n.loglog(eps, s["n_star"], m, color=c, label=f"n*, H = {s['label']}")
            ax_n.loglog(eps, s["n_star_theory"], "-", color=c, lw=1,
                        label=f"theory 2 u*^(a-2) / (c eps), H = {s['label']}")
            ax_n.loglog(eps, s["inv_tail_prob_at_t_star"], "x", color=c, ms=6,
                        label=f"1 / P(U >= t*), H = {s['label']}")
            ax_p.semilogx(eps, s["bon_peak"], m + "-", color=c, label=f"best-of-n peak, H = {s['label']}")
            ax_p.semilogx(eps, s["bon_peak_theory"], ":", color=c, lw=1.5,
                          label=f"theory E_0(n*) exp(-2/u*^2), H = {s['label']}")
        ax_p.semilogx(eps, s["threshold_peak"], m + "--", color=c, mfc="none",
                      label=f"threshold peak, H = {s['label']}")
        ax_ts.semilogx(eps, s["t_star"], m, color=c, label=f"t*, H = {s['label']}")
        ax_ts.semilogx(eps, s["t_star_theory"], "-", color=c, lw=1,
                       label=f"theory S(t*) = eps c t*^(2-a) / 2, H = {s['label']}")
    for ax in ((ax_n, ax_ts, ax_p) if bon_on else (ax_ts, ax_p)):
        ax.set_xlabel("eps (weight of H)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    ax_n.set_ylabel("n*")
    ax_n.set_title("best n against eps (log-log)")
    ax_ts.set_ylabel("t*")
    ax_ts.set_title("best threshold against eps")
    ax_p.set_ylabel("peak E[V]")
    ax_p.set_title("peak E[V] against eps")
    if not bon_on:
        ax_n.set_axis_off()
    other = [n for n in series if n != main_name]
    if bon_on and other:
        s = series[other[0]]
        bon_panel(ax_2, s, f"best-of-n, H = {s['label']}", False)
    else:
        ax_2.set_axis_off()
    fig.suptitle("V ~ N(0, 1), X = (1 - eps) N(0, 1) + eps H: selection rises like the light "
                 "case, then collapses to E[V] = 0", fontsize=12)
    fig.tight_layout()
    return fig
