"""The live mesa-optimisation explorer: the web simulator's four panels on the desktop.

``goodhart-jax explore`` opens a matplotlib window with five sliders (pressure, rho, shift,
capability, oversight).  Moving any slider recomputes :func:`goodhart_jax.mesa.dashboard_data`
(one jitted call) and moves the artists of :func:`goodhart_jax.plots.mesa.draw_dashboard`.

The figure is built by :func:`build_explorer`, which works under any backend (tests drive its
sliders under Agg with ``Slider.set_val``); :func:`main` only picks the backend and shows it.

Example:
    >>> ex = build_explorer()                      # doctest: +SKIP
    >>> ex.sliders["rho"].set_val(0.9)             # doctest: +SKIP
    >>> float(ex.data.optimal_pressure)            # doctest: +SKIP
    4.5
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import jax

from goodhart_jax import mesa

__all__ = ["SLIDERS", "Explorer", "build_explorer", "main"]

#: name -> (label, lower, upper, initial value)
SLIDERS: dict[str, tuple[str, float, float, float]] = {
    "pressure": ("pressure P", 0.0, 10.0, 1.0),
    "rho": ("alignment rho", 0.0, 1.0, 0.7),
    "shift": ("shift", 0.0, 10.0, 1.0),
    "capability": ("capability", 0.0, mesa.CAPABILITY_MAX, 100.0),
    "oversight": ("oversight", 0.0, 1.0, 0.5),
}


@dataclass
class Explorer:
    """The explorer's figure, sliders and artists, and the data currently drawn.

    Attributes:
        fig: the matplotlib figure.
        sliders: ``matplotlib.widgets.Slider`` by name (keys of :data:`SLIDERS`).
        artists: the artists of :func:`goodhart_jax.plots.mesa.draw_dashboard`.
        data: the :class:`goodhart_jax.mesa.DashboardData` drawn now.
        key: the key of the scatter (fixed: moving a slider moves the same points).
        n_scatter: points per scatter cluster.
        pressure_max: right end of the pressure axis (the pressure slider's range).
    """

    fig: Any
    sliders: dict[str, Any]
    artists: dict[str, Any]
    data: mesa.DashboardData
    key: jax.Array
    n_scatter: int
    pressure_max: float
    redraws: int = field(default=0)

    def values(self) -> dict[str, float]:
        """The slider values by name."""
        return {name: float(s.val) for name, s in self.sliders.items()}

    def compute(self, **values: float) -> mesa.DashboardData:
        """What the panels show for these slider values (the library's numbers)."""
        return mesa.dashboard_data(self.key, pressure_max=self.pressure_max,
                                   n_scatter=self.n_scatter, **values)

    def update(self, _value: Any = None) -> None:
        """Recompute from the sliders and move the artists (the sliders' callback)."""
        from goodhart_jax.plots.mesa import update_dashboard

        self.data = self.compute(**self.values())
        update_dashboard(self.artists, self.data)
        self.redraws += 1
        self.fig.canvas.draw_idle()


def build_explorer(*, seed: int = 0, n_scatter: int = 300, **initial: float) -> Explorer:
    """Build the explorer figure (any backend) with its five sliders wired up.

    Args:
        seed: seed of the scatter's key.
        n_scatter: points per scatter cluster.
        **initial: initial slider values by name (default the last column of :data:`SLIDERS`).

    Returns:
        An :class:`Explorer`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.widgets import Slider

    from goodhart_jax.plots.mesa import draw_dashboard

    unknown = set(initial) - set(SLIDERS)
    if unknown:
        raise ValueError(f"explorer: unknown slider {sorted(unknown)[0]!r}; "
                         f"sliders: {', '.join(SLIDERS)}")
    values = {name: float(initial.get(name, spec[3])) for name, spec in SLIDERS.items()}
    key = jax.random.key(seed)
    pressure_max = SLIDERS["pressure"][2]
    for name, (label, lo, hi, _) in SLIDERS.items():
        if not lo <= values[name] <= hi:
            raise ValueError(f"explorer: {name} must be in [{lo:g}, {hi:g}], got {values[name]:g}")
    data = mesa.dashboard_data(key, pressure_max=pressure_max, n_scatter=n_scatter, **values)

    fig = plt.figure(figsize=(12, 10))
    fig.subplots_adjust(left=0.07, right=0.97, top=0.95, bottom=0.27, hspace=0.35, wspace=0.25)
    axes = [fig.add_subplot(2, 2, i + 1) for i in range(4)]
    artists = draw_dashboard(axes, data)
    fig.suptitle("mesa-optimisation explorer: move the sliders")

    sliders = {}
    for i, (name, (label, lo, hi, _)) in enumerate(SLIDERS.items()):
        ax = fig.add_axes((0.15, 0.18 - 0.035 * i, 0.7, 0.022))
        sliders[name] = Slider(ax, label, lo, hi, valinit=values[name])
    explorer = Explorer(fig=fig, sliders=sliders, artists=artists, data=data, key=key,
                        n_scatter=n_scatter, pressure_max=pressure_max)
    for s in sliders.values():
        s.on_changed(explorer.update)
    return explorer


def _interactive_backends() -> set[str]:
    try:  # matplotlib >= 3.9
        from matplotlib.backends import BackendFilter, backend_registry

        names = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # pragma: no cover - older matplotlib
        from matplotlib import rcsetup

        names = rcsetup.interactive_bk
    return {n.lower() for n in names}


def _is_interactive(backend: str) -> bool:
    b = backend.lower()
    return b.startswith("module://") or b in _interactive_backends()


def _has_display() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # macOS and Windows always have a window system


def main(backend: str | None = None) -> int:
    """Open the explorer window and block until it is closed; return the exit status.

    Args:
        backend: a matplotlib backend (e.g. ``"TkAgg"``, ``"QtAgg"``).  ``None`` uses the
            default interactive backend, and needs a display.  A non-interactive backend
            (``"Agg"``) builds the explorer without opening a window (a dry run) and returns 0.

    Returns:
        0 on success.

    Raises:
        ValueError: no display and no backend given, the default backend is not interactive,
            or the backend is unknown or cannot be loaded (one-line message; the command line
            turns it into exit status 2).
    """
    import matplotlib

    if backend is None:
        if not _has_display():
            raise ValueError("explore needs a display: DISPLAY/WAYLAND_DISPLAY is not set "
                             "(run it on a desktop, or pass --backend)")
        name = str(matplotlib.get_backend())
        if not _is_interactive(name):
            raise ValueError(f"explore needs an interactive matplotlib backend, the default is "
                             f"{name!r} (unset MPLBACKEND or pass --backend, e.g. TkAgg)")
    import matplotlib.pyplot as plt

    if backend is not None:
        try:
            plt.switch_backend(backend)
        except (ImportError, ValueError, RuntimeError) as exc:
            msg = " ".join(str(exc).split())
            raise ValueError(f"cannot use matplotlib backend {backend!r}: {msg}") from None
    explorer = build_explorer()
    if _is_interactive(str(matplotlib.get_backend())):
        plt.show()
    else:
        print(f"explore: backend {matplotlib.get_backend()!r} is not interactive: "
              "the explorer was built, no window opened", file=sys.stderr)
        plt.close(explorer.fig)
    return 0
