"""The domains of the mesa model's parameters: one table, one check.

:data:`DOMAINS` maps every parameter name the model's functions validate to its allowed
interval ``(lo, hi, lo_open, hi_open)``; :func:`check_params` consults it, so a parameter's range
is declared once and every message names the parameter and that range.
"""

from __future__ import annotations

import math
from typing import Any

from goodhart_jax.validation import check_param

__all__ = ["CAPABILITY_MAX", "DOMAINS", "check_params"]

CAPABILITY_MAX = 200.0

_INF = math.inf

#: name -> ``(lo, hi, lo_open, hi_open)``.  The model's parameters first (``capabilities``,
#: ``oversights`` and ``oversight_levels`` are grids of ``capability`` and ``oversight``), then
#: the searches' and the dashboard's settings and the Hubinger toy's episode counts.
DOMAINS: dict[str, tuple[float, float, bool, bool]] = {
    "pressure": (0.0, _INF, False, False),
    "rho": (0.0, 1.0, False, False),
    "shift": (0.0, _INF, False, False),
    "capability": (0.0, CAPABILITY_MAX, False, False),
    "oversight": (0.0, 1.0, False, False),
    "oversight_eval": (0.0, 1.0, False, False),
    "oversight_deploy": (0.0, 1.0, False, False),
    "capability_spread": (0.0, _INF, False, False),
    "capabilities": (0.0, CAPABILITY_MAX, False, False),
    "oversights": (0.0, 1.0, False, False),
    "oversight_levels": (0.0, 1.0, False, False),
    "init_pressure": (0.0, _INF, True, False),
    "learning_rate": (0.0, _INF, True, False),
    "pressure_max": (0.0, _INF, True, False),
    "training_episodes": (0, _INF, False, False),
    "deployment_episodes": (0, _INF, False, False),
    "episodes_to_modify": (1, _INF, False, False),
}


def check_params(*, owner: str = "", **params: Any) -> None:
    """Validate model parameters by name (in the order given), without computing anything.

    Known names and domains (:data:`DOMAINS`): ``pressure >= 0``, ``rho in [0, 1]``,
    ``shift >= 0``, ``capability in [0, 200]``, ``oversight``, ``oversight_eval``,
    ``oversight_deploy`` in ``[0, 1]``, ``capability_spread >= 0``; the grids ``capabilities``
    and ``oversights``/``oversight_levels``; ``init_pressure``, ``learning_rate`` and
    ``pressure_max > 0``; ``training_episodes``, ``deployment_episodes >= 0`` and
    ``episodes_to_modify >= 1``.

    Raises:
        ValueError: naming the first parameter outside its domain (or an unknown name).

    Example:
        >>> check_params(rho=0.5, shift=2.0)
        >>> check_params(rho=1.5)
        Traceback (most recent call last):
        ...
        ValueError: rho must be a finite number in [0, 1], got 1.5
    """
    for name, value in params.items():
        if name not in DOMAINS:
            raise ValueError(f"{owner + ': ' if owner else ''}unknown model parameter {name!r}; "
                             f"known: {', '.join(DOMAINS)}")
        lo, hi, lo_open, hi_open = DOMAINS[name]
        check_param(name, value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, owner=owner)
