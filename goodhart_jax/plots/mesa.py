"""Figures for model B (mesa-optimisation): the four-panel dashboard and the population heatmap.

They draw a :class:`goodhart_jax.mesa.DashboardData` (or a population sweep) that the library
computed; nothing here computes the model.  The dashboard builder returns its artists so that
the live explorer (:mod:`goodhart_jax.explorer`) can move them with :func:`update_dashboard`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "TRAIN_COLOR",
    "DEPLOY_COLOR",
    "draw_dashboard",
    "update_dashboard",
    "dashboard_figure",
    "population_figure",
]

TRAIN_COLOR = "c"  # cyan
DEPLOY_COLOR = "r"  # red


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if np.isfinite(x) else "unbounded"


def draw_dashboard(axes: Sequence[Any], data) -> dict[str, Any]:
    """Draw the four panels into four axes; return the artists by name.

    Panels: (0) proxy and true performance against pressure, the optimum ``P*`` marked;
    (1) the Goodhart gap against pressure; (2) ``P(deception)`` against capability for
    several oversight levels (the chosen one bold); (3) the proxy-true scatter, training cyan
    and deployment red.

    Args:
        axes: four matplotlib axes.
        data: a :class:`goodhart_jax.mesa.DashboardData`.

    Returns:
        A dict of artists (``"proxy"``, ``"true"``, ``"optimum_line"``, ``"optimum_point"``,
        ``"pressure_line"``, ``"pressure_point"``, ``"gap"``, ``"gap_point"``, ``"levels"``
        (a list of lines), ``"deception"``, ``"deception_point"``, ``"train"``, ``"deploy"``,
        ``"perf_text"``, ``"deception_text"``, ``"scatter_text"``) and the ``"axes"``.
    """
    ax_perf, ax_gap, ax_dec, ax_sc = axes
    art: dict[str, Any] = {"axes": list(axes)}

    (art["proxy"],) = ax_perf.plot([], [], color="C0", lw=2, label="proxy  P")
    (art["true"],) = ax_perf.plot([], [], color="C2", lw=2, label="true  P rho - delta P^2")
    art["optimum_line"] = ax_perf.axvline(0.0, color="C3", ls="--", lw=1, label="best pressure P*")
    (art["optimum_point"],) = ax_perf.plot([], [], "o", color="C3", ms=7)
    art["pressure_line"] = ax_perf.axvline(0.0, color="0.4", ls=":", lw=1, label="chosen pressure")
    (art["pressure_point"],) = ax_perf.plot([], [], "s", color="0.3", ms=5)
    art["perf_text"] = ax_perf.text(0.02, 0.97, "", transform=ax_perf.transAxes, va="top",
                                    fontsize=8)
    ax_perf.set_xlabel("optimisation pressure P")
    ax_perf.set_ylabel("performance")
    ax_perf.set_title("proxy vs true performance", fontsize=10)
    ax_perf.legend(fontsize=7, loc="lower left")

    (art["gap"],) = ax_gap.plot([], [], color="C1", lw=2, label="gap  P - true")
    (art["gap_point"],) = ax_gap.plot([], [], "s", color="0.3", ms=5)
    art["gap_optimum_line"] = ax_gap.axvline(0.0, color="C3", ls="--", lw=1)
    ax_gap.set_xlabel("optimisation pressure P")
    ax_gap.set_ylabel("Goodhart gap")
    ax_gap.set_title("the Goodhart gap", fontsize=10)
    ax_gap.legend(fontsize=7, loc="upper left")

    levels = _a(data.oversight_levels)
    art["levels"] = []
    cmap_colors = [f"C{i % 10}" for i in range(len(levels))]
    for lvl, color in zip(levels, cmap_colors):
        (line,) = ax_dec.plot([], [], color=color, lw=1, alpha=0.6, label=f"oversight {lvl:g}")
        art["levels"].append(line)
    (art["deception"],) = ax_dec.plot([], [], color="k", lw=2.5, label="chosen oversight")
    (art["deception_point"],) = ax_dec.plot([], [], "o", color="k", ms=7)
    art["deception_text"] = ax_dec.text(0.02, 0.97, "", transform=ax_dec.transAxes, va="top",
                                        fontsize=8)
    ax_dec.axhline(0.5, color="0.7", lw=0.8)
    ax_dec.set_xlim(0.0, float(_a(data.capabilities)[-1]))
    ax_dec.set_ylim(-0.02, 1.02)
    ax_dec.set_xlabel("capability")
    ax_dec.set_ylabel("P(deception)")
    ax_dec.set_title("P(deception) = sigmoid(capability/20 - 5 oversight)", fontsize=10)
    ax_dec.legend(fontsize=6, loc="lower right")

    art["train"] = ax_sc.scatter(np.zeros(0), np.zeros(0), s=8, color=TRAIN_COLOR, alpha=0.6,
                                 label="training")
    art["deploy"] = ax_sc.scatter(np.zeros(0), np.zeros(0), s=8, color=DEPLOY_COLOR, alpha=0.5,
                                  label="deployment")
    art["scatter_text"] = ax_sc.text(0.02, 0.97, "", transform=ax_sc.transAxes, va="top",
                                     fontsize=8)
    ax_sc.set_xlabel("proxy performance")
    ax_sc.set_ylabel("true performance")
    ax_sc.set_title("proxy vs true: training and deployment", fontsize=10)
    ax_sc.legend(fontsize=7, loc="lower right")

    for ax in axes:
        ax.grid(alpha=0.3)
    update_dashboard(art, data)
    return art


def update_dashboard(art: dict[str, Any], data) -> None:
    """Move the artists of :func:`draw_dashboard` to new data (no redraw is forced)."""
    ps = _a(data.pressures)
    p = float(data.pressure)
    p_star = float(data.optimal_pressure)
    bounded = bool(data.bounded)
    ax_perf, ax_gap, ax_dec, ax_sc = art["axes"]

    art["proxy"].set_data(ps, _a(data.proxy))
    art["true"].set_data(ps, _a(data.true))
    art["pressure_line"].set_xdata([p, p])
    art["pressure_point"].set_data([p], [float(data.true_at_pressure)])
    for name in ("optimum_line", "gap_optimum_line"):
        art[name].set_visible(bounded)
        if bounded:
            art[name].set_xdata([p_star, p_star])
    art["optimum_point"].set_visible(bounded)
    if bounded:
        art["optimum_point"].set_data([p_star], [float(data.optimal_true)])
    art["perf_text"].set_text(
        f"rho = {float(data.rho):.3g}, shift = {float(data.shift):.3g}\n"
        f"P* = {_fmt(p_star)}, true(P*) = {_fmt(float(data.optimal_true))}"
        + ("" if bounded else "  (delta = 0)")
        + ("" if not bounded or p_star <= ps[-1] else "  (P* off scale)")
    )
    art["gap"].set_data(ps, _a(data.gap))
    art["gap_point"].set_data([p], [float(data.gap_at_pressure)])
    for ax in (ax_perf, ax_gap):
        ax.set_xlim(0.0, float(ps[-1]))
        ax.relim(visible_only=True)
        ax.autoscale_view(scalex=False)

    caps = _a(data.capabilities)
    for line, curve in zip(art["levels"], _a(data.deception)):
        line.set_data(caps, curve)
    art["deception"].set_data(caps, _a(data.deception_curve))
    art["deception_point"].set_data([float(data.capability)], [float(data.deception_at)])
    art["deception_text"].set_text(
        f"capability = {float(data.capability):.3g}, oversight = {float(data.oversight):.3g}\n"
        f"P(deception) = {float(data.deception_at):.3f}"
    )

    tp, tt = _a(data.train_proxy), _a(data.train_true)
    dp, dt = _a(data.deploy_proxy), _a(data.deploy_true)
    art["train"].set_offsets(np.column_stack([tp, tt]))
    art["deploy"].set_offsets(np.column_stack([dp, dt]))
    xs, ys = np.concatenate([tp, dp]), np.concatenate([tt, dt])
    pad_x = 0.05 * (xs.max() - xs.min() or 1.0)
    pad_y = 0.05 * (ys.max() - ys.min() or 1.0)
    ax_sc.set_xlim(xs.min() - pad_x, xs.max() + pad_x)
    ax_sc.set_ylim(ys.min() - pad_y, ys.max() + pad_y)
    art["scatter_text"].set_text(
        f"corr: training {float(data.train_corr):.2f}, deployment {float(data.deploy_corr):.2f}"
        f" (exact {float(data.deploy_corr_exact):.2f})"
    )


def dashboard_figure(data, *, title: str = ""):
    """The four panels of the simulator in one figure.

    Args:
        data: a :class:`goodhart_jax.mesa.DashboardData`.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    draw_dashboard(axes.ravel(), data)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def population_figure(capabilities, oversights, summary, *, title: str = ""):
    """Heatmaps of a population sweep over median capability x oversight.

    Left: the fraction of models that defect in deployment; right: how much evaluation
    overstates deployed true performance (``mean_evaluated - mean_deployed``).  The dashed line
    is ``capability = 100 oversight``, where ``P(deception) = 1/2``.

    Args:
        capabilities: 1-D median capabilities (rows of the sweep).
        oversights: 1-D oversight levels (columns).
        summary: a :class:`goodhart_jax.mesa.PopulationSummary` of shape
            ``(len(capabilities), len(oversights))``.
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    caps, ovs = _a(capabilities), _a(oversights)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = (
        ("fraction_defected", "fraction that defects in deployment", "magma"),
        ("gap", "evaluated - deployed true performance", "viridis"),
    )
    for ax, (field, label, cmap) in zip(axes, panels):
        z = _a(getattr(summary, field))
        mesh = ax.pcolormesh(ovs, caps, z, shading="nearest", cmap=cmap)
        fig.colorbar(mesh, ax=ax, label=label)
        ax.plot(ovs, 100.0 * ovs, "w--", lw=1, label="capability = 100 oversight")
        ax.set_xlim(ovs.min(), ovs.max())
        ax.set_ylim(caps.min(), caps.max())
        ax.set_xlabel("oversight (evaluation and deployment)")
        ax.set_ylabel("median capability")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
