"""Figures of ``goodhart-jax diagnose``: they draw what :func:`goodhart_jax.diagnose` computed.

Each function takes a :class:`~goodhart_jax.diagnose.TailReport` (or the best-of-``n`` numbers)
and returns a matplotlib ``Figure``; nothing here estimates anything.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["histogram_figure", "qq_figure", "tail_index_figure", "mean_excess_figure",
           "best_of_n_figure"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def histogram_figure(rep):
    """The histogram (density scale, log y) with a fitted normal and the fitted GPD tail."""
    plt = _plt()
    p = rep.plots
    counts, edges = np.asarray(p["hist_counts"], float), np.asarray(p["hist_edges"])
    width = np.diff(edges)
    dens = counts / (counts.sum() * width)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.bar(edges[:-1], dens, width=width, align="edge", color="0.8", edgecolor="0.6", lw=0.3,
           label=f"{rep.name} scores (n = {rep.n})")
    x = np.linspace(edges[0], edges[-1], 400)
    mu, sd = p["mean"], max(p["sd"], 1e-300)
    ax.plot(x, np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)), "C0",
            lw=1.5, label="normal fit")
    u, xi, s, m = p["threshold"], p["gpd_xi"], p["gpd_scale"], p["tail_mass"]
    y = x[x >= u] - u
    z = 1.0 + xi * y / s
    ok = z > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(ok, m / s * (np.where(ok, z, 1.0) ** (-1.0 / xi - 1.0) if xi != 0
                                  else np.exp(-y / s)), np.nan)
    ax.plot(x[x >= u], g, "C3", lw=2, label=f"GPD tail above u (xi = {xi:.3f})")
    ax.axvline(u, color="C3", ls=":", lw=1)
    ax.set_yscale("log")
    pos = dens[dens > 0]
    if pos.size:
        ax.set_ylim(pos.min() * 0.3, pos.max() * 3)
    ax.set_xlabel(f"{rep.name} score")
    ax.set_ylabel("density")
    ax.set_title(f"{rep.name}: histogram and fitted densities", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _qq_panel(ax, theory, sample, line, color, label, xlabel, ylabel, title):
    """One QQ panel: the points, a reference line ``line(theory)``, labels."""
    ax.plot(theory, sample, ".", ms=2, color=color)
    ax.plot(theory, line(theory), "k--", lw=1, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def qq_figure(rep):
    """Normal QQ plot (all scores) and exponential QQ plot (the excesses over the threshold)."""
    plt = _plt()
    p = rep.plots
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    _qq_panel(axes[0], np.asarray(p["qq_normal_theory"]), np.asarray(p["qq_normal_sample"]),
              lambda a: p["mean"] + p["sd"] * a, "C0", "normal with the sample's mean, sd",
              "standard normal quantile", "sample quantile",
              "normal QQ (a light tail bends down, a heavy one up)")
    b = np.asarray(p["qq_exp_sample"])
    slope = float(np.mean(b)) if b.size else 1.0
    _qq_panel(axes[1], np.asarray(p["qq_exp_theory"]), b, lambda a: slope * a, "C1",
              "exponential with the excesses' mean", "standard exponential quantile",
              f"excess over u = {p['threshold']:.4g}",
              f"exponential QQ of the top k = {p['k']} (straight: exponential)")
    fig.tight_layout()
    return fig


def tail_index_figure(rep):
    """Hill and moment estimates of ``xi`` against ``k`` with 95% bands; the chosen ``k`` marked."""
    plt = _plt()
    p = rep.plots
    k = np.asarray(p["hill_k"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, key, label, color in ((axes[0], "hill", "Hill", "C0"), (axes[1], "moments", "moments", "C2")):
        ax.plot(k, p[f"{key}_xi"], color=color, lw=1.5, label=label)
        ax.fill_between(k, p[f"{key}_lo"], p[f"{key}_hi"], color=color, alpha=0.2, label="95% CI")
        ax.axvline(p["k"], color="C3", ls="--", lw=1, label=f"k = {p['k']} (GPD, moments, c)")
        if key == "hill" and p.get("hill_k_star"):
            ax.axvline(p["hill_k_star"], color="C1", ls=":", lw=1.5,
                       label=f"double bootstrap k = {p['hill_k_star']}")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("k (points above the threshold)")
        ax.set_title(f"{label} estimate of xi over k", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("xi")
    lo = np.nanpercentile(np.concatenate([p["hill_lo"], p["moments_lo"]]), 2)
    hi = np.nanpercentile(np.concatenate([p["hill_hi"], p["moments_hi"]]), 98)
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        axes[0].set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    fig.tight_layout()
    return fig


def mean_excess_figure(rep):
    """The mean excess ``e(u)`` with 95% bars (rising: heavy; flat: exponential; falling: light)."""
    plt = _plt()
    p = rep.plots
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if p["me_u"] is not None:
        ax.errorbar(p["me_u"], p["me_e"], yerr=1.96 * np.asarray(p["me_se"]), fmt="o-", ms=3,
                    capsize=2, color="C4")
    ax.axvline(p["threshold"], color="C3", ls=":", lw=1, label="tail threshold")
    ax.set_xlabel("threshold u")
    ax.set_ylabel("mean excess E[U - u | U > u]")
    ax.set_title(f"{rep.name}: mean excess (rising = heavy, flat = exponential)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def best_of_n_figure(bon: dict, curves: dict | None = None):
    """Left: empirical best-of-``n`` gold (±1.96 se) against ``KL_bon``, Gao's fitted form and
    the curve predicted by the fitted laws.  Right: ``E[V | U >= t]``, the data's and the fitted
    laws'."""
    plt = _plt()
    kl, gold, se = (np.asarray(bon[k], float) for k in ("kl", "gold", "stderr"))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    ax.errorbar(kl, gold, yerr=1.96 * np.where(np.isfinite(se), se, 0.0), fmt="o", ms=3,
                capsize=2, color="C0", label="empirical best-of-n (Gao et al., ±1.96 se)")
    fit = bon.get("gao_fit")
    if fit:
        kk = np.linspace(0.0, kl.max(), 200)
        d = np.sqrt(kk)
        ax.plot(kk, gold[0] + d * (fit["alpha"] - fit["beta"] * d), "C1", lw=1.5,
                label=f"fit d(alpha - beta d): alpha = {fit['alpha']:.3g}, beta = {fit['beta']:.3g}")
    if curves is not None and "best_of_n" in curves:
        n = np.asarray(curves["n"], float)
        ax.plot(np.log(n) - (n - 1) / n, curves["best_of_n"], "C2--", lw=1.5,
                label="predicted by the fitted laws of V and X")
    if bon.get("n_star"):
        n = bon["n_star"]
        ax.axvline(math.log(n) - (n - 1) / n, color="C3", ls=":", label=f"n* = {n}")
    ax.set_xlabel("KL_bon = log n - (n-1)/n  (nats)")
    ax.set_ylabel("gold of the best of n")
    ax.set_title("best-of-n: gold against selection pressure", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if curves is not None:
        t = np.asarray(curves["t"], float)
        if "empirical_conditional_value" in curves:
            ax2.plot(t, curves["empirical_conditional_value"], "o", ms=3, color="C0",
                     label="data: mean gold of the rows with proxy >= t")
        ax2.plot(t, curves["conditional_value"], "C2--", lw=1.5,
                 label="predicted by the fitted laws of V and X")
        ax2.axhline(curves["value_mean"], color="k", lw=0.8, ls=":", label="E[V] (fitted)")
        ax2.set_xlabel("proxy threshold t")
        ax2.set_ylabel("E[V | U >= t]")
        ax2.set_title("E[V | U >= t]: does selection on the proxy keep paying?", fontsize=10)
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3)
    else:
        ax2.set_axis_off()
    fig.tight_layout()
    return fig
