"""Figures for model A (proxy = value + error): conditional value against pressure."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["tails_come_apart_figure"]


def tails_come_apart_figure(series: Sequence[dict], *, t_max: float | None = None,
                            max_bits: float | None = None, title: str = ""):
    """E[V | U >= t] against t (left) and against bits of selection (right).

    Args:
        series: dicts with ``label``, ``t``, ``value`` (E[V | U >= t]), ``bits``
            (-log2 P(U >= t)), optional ``limit`` (a horizontal asymptote, drawn dashed),
            optional ``mc_t``, ``mc_mean``, ``mc_stderr`` (sampled points with 2-sigma bars).
        t_max: right end of the t axis (left panel).
        max_bits: right end of the bits axis (right panel).
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for i, s in enumerate(series):
        color = f"C{i}"
        t, bits, val = (np.asarray(s[k]) for k in ("t", "bits", "value"))
        left = t <= (t_max if t_max is not None else np.inf)
        right = bits <= (max_bits if max_bits is not None else np.inf)
        axes[0].plot(t[left], val[left], color=color, lw=2, label=s["label"])
        axes[1].plot(bits[right], val[right], color=color, lw=2, label=s["label"])
        for ax in axes:
            if s.get("limit") is not None and np.isfinite(s["limit"]):
                ax.axhline(s["limit"], color=color, ls="--", lw=1)
        if "mc_t" in s:
            axes[0].errorbar(s["mc_t"], s["mc_mean"], yerr=2 * np.asarray(s["mc_stderr"]), fmt="o",
                             color=color, ms=4, capsize=2)
    axes[0].set_xlabel("threshold t")
    axes[1].set_xlabel("bits of selection  -log2 P(U >= t)")
    for ax in axes:
        ax.set_ylabel("E[V | U >= t]")
        ax.grid(alpha=0.3)
    axes[0].set_title("against the threshold (dots: conditional Monte Carlo, ±2 se)", fontsize=9)
    axes[1].set_title("against optimisation pressure in bits", fontsize=9)
    axes[1].legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
