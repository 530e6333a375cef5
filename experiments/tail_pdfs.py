"""The tails of a catastrophic pair: densities and negative log densities of ``V`` and ``X``.

Default pair ``V ~ N(0, 1)``, ``X ~ t(3)``: near 0 the value's density is the larger, but its
negative log density grows like ``x^2 / 2`` while the error's grows like ``4 log |x|``, so
beyond a crossing point ``x*`` the error is the more likely of the two to be large.  That is
the condition of catastrophic Goodhart (Kwa, Thomas & Garriga-Alonso 2024, Theorem 5: ``X``
subexponential with ``t^p S_V(t) / S_X(t) -> 0``): a large proxy ``U = V + X`` is then almost
always a large error, and ``E[V | U >= t] -> E[V]``.  Any two distributions can be compared
(``--set value=... --set error=...``, specs as in :func:`goodhart_jax.parse_dist`, e.g.
``gennorm(2)`` against ``gennorm(0.5)``).

Saved: the grid, both log densities (the distributions' ``log_prob``), every point where they
are equal (bisection to float64 precision) and ``overtake``, the largest crossing on the
positive side, beyond which ``X``'s density stays above ``V``'s on the grid.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import goodhart_jax as gj
from goodhart_jax import results


def crossings(value, error, x: np.ndarray, *, iterations: int = 200) -> np.ndarray:
    """All points of ``x``'s range where ``log f_V = log f_X``, refined by bisection.

    Brackets are the sign changes of ``log f_X - log f_V`` between neighbouring grid points
    (an exact zero at a grid point counts once).
    """
    diff = np.asarray(error.log_prob(x) - value.log_prob(x))
    ok = np.isfinite(diff)
    sign = np.sign(np.where(ok, diff, np.nan))
    roots = [float(x[i]) for i in np.flatnonzero(sign == 0)]
    idx = np.flatnonzero(ok[:-1] & ok[1:] & (sign[:-1] * sign[1:] < 0))
    if idx.size:
        lo, hi = jnp.asarray(x[idx]), jnp.asarray(x[idx + 1])
        s_lo = jnp.sign(error.log_prob(lo) - value.log_prob(lo))
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            s_mid = jnp.sign(error.log_prob(mid) - value.log_prob(mid))
            same = s_mid == s_lo
            lo, hi = jnp.where(same, mid, lo), jnp.where(same, hi, mid)
            if bool(jnp.all((hi - lo) <= 4 * jnp.finfo(hi.dtype).eps * jnp.abs(hi))):
                break
        roots.extend(np.asarray(0.5 * (lo + hi)).tolist())
    return np.sort(np.asarray(roots, dtype=float))


def main(quick: bool, out: Path, seed: int, *, value: str = "normal",
         error: str = "student_t(df=3)", x_max: float = 15.0, num_points: int = 3001) -> dict:
    """Write ``tail_pdfs.png`` and ``numbers.json`` into ``out``; return the numbers.

    ``seed`` is unused (everything is exact).
    """
    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.validation import check_param, check_positive_int

    value_dist, error_dist = gj.parse_dist(value), gj.parse_dist(error)
    check_param("x_max", x_max, lo=0.0, lo_open=True, hi=1e6)
    num_points = check_positive_int("num_points", num_points, minimum=11)
    if quick:
        num_points = min(num_points, 1201)
    x = np.linspace(-float(x_max), float(x_max), num_points)
    log_v = np.asarray(value_dist.log_prob(x))
    log_x = np.asarray(error_dist.log_prob(x))
    roots = crossings(value_dist, error_dist, x)
    # overtake: the largest positive crossing, if X's density is above V's from there to x_max
    positive = roots[roots > 0]
    overtake = None
    if positive.size:
        beyond = x > positive[-1]
        if np.all(log_x[beyond] > log_v[beyond]):
            overtake = float(positive[-1])
    numbers = {
        "value": value_dist.spec, "error": error_dist.spec, "x": x,
        "log_pdf_value": log_v, "log_pdf_error": log_x,
        "crossings": roots, "overtake": overtake,
        "log_pdf_at_overtake": (float(value_dist.log_prob(overtake))
                                if overtake is not None else None),
    }
    from goodhart_jax.plots.heavy_tails import tail_pdfs_figure

    pdf_xlim = float(min(x_max, max(5.0, 2.5 * (overtake or 0.0))))
    fig = tail_pdfs_figure(x, log_v, log_x, value_label=f"value V ~ {value_dist.spec}",
                           error_label=f"error X ~ {error_dist.spec}", crossings=roots,
                           overtake=overtake, pdf_xlim=pdf_xlim,
                           title="A catastrophic pair: the error's tail is heavier than the value's")
    results.save_figure(out / "tail_pdfs.png", fig)
    results.save_json(out / "numbers.json", numbers)
    return numbers
