"""Validation at the public boundary.

Checks run only on concrete values: inside ``jit``/``vmap``/``grad`` the arguments are
tracers and are trusted (the public function already validated them on the way in, or the
caller chose to trace through).  Every failure is a ``ValueError`` that names the parameter
and the allowed range, so that the command line can print it as a one-line message.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

__all__ = ["is_concrete", "check_param", "check_finite", "check_positive_int"]


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds no tracer (so it can be inspected in Python)."""
    leaves = jax.tree_util.tree_leaves(value)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _as_array(value: Any) -> np.ndarray | None:
    if not is_concrete(value):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def check_param(
    name: str,
    value: Any,
    *,
    lo: float = -math.inf,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
    owner: str = "",
) -> None:
    """Raise ``ValueError`` unless every element of ``value`` lies in the given interval.

    NaN always fails; infinities fail unless the interval is unbounded on that side and
    open there is not requested (infinite parameters are never allowed).
    """
    arr = _as_array(value)
    where = f"{owner}: " if owner else ""
    if arr is None:
        if is_concrete(value):
            raise ValueError(f"{where}{name} must be a real number, got {value!r}")
        return
    if _within(arr, lo, hi, lo_open, hi_open):
        return
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    allowed = f"{lb}{_fmt(lo)}, {_fmt(hi)}{rb}"
    bad = ~np.isfinite(arr)
    bad |= (arr <= lo) if lo_open else (arr < lo)
    bad |= (arr >= hi) if hi_open else (arr > hi)
    if np.any(bad):
        first = arr[bad].flat[0] if arr.ndim else arr
        raise ValueError(f"{where}{name} must be a finite number in {allowed}, got {first:g}")


def _within(arr: np.ndarray, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    """True when every element is finite and in the interval, in reading passes without
    temporaries (the common case; a large array costs one sum, plus a min / max for each finite
    bound): a sum is finite exactly when no element is NaN or infinite, unless finite elements
    overflow it, which falls back to the elementwise test."""
    if arr.size == 0:
        return True
    if arr.size <= 16:  # a few numbers: Python floats beat NumPy's reductions (~5 us each)
        xs = arr.ravel().tolist()
        return all(math.isfinite(x) and ((x > lo) if lo_open else (x >= lo))
                   and ((x < hi) if hi_open else (x <= hi)) for x in xs)
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isfinite(np.sum(arr)) and not np.all(np.isfinite(arr)):
            return False
    if lo > -math.inf:
        low = np.min(arr)
        if (low <= lo) if lo_open else (low < lo):
            return False
    if hi < math.inf:
        high = np.max(arr)
        if (high >= hi) if hi_open else (high > hi):
            return False
    return True


def check_finite(name: str, value: Any, *, owner: str = "") -> None:
    """Raise ``ValueError`` if ``value`` has a NaN or an infinity."""
    check_param(name, value, owner=owner)


def check_positive_int(name: str, value: Any, *, minimum: int = 1, owner: str = "") -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``, else raise."""
    where = f"{owner}: " if owner else ""
    try:
        ok = float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or int(value) < minimum:
        raise ValueError(f"{where}{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _fmt(x: float) -> str:
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    return f"{x:g}"
