"""The one fixed-node quadrature rule: anchors, graded log-distance panels, log-space weights.

An integral over the real line whose mass sits near a few *anchors* (a distribution's bulk,
a threshold minus another's bulk, a support edge or kink, an interior saddle) is split at the
midpoints between neighbouring anchors.  Each anchor then owns two *sides*; on a side of length
``D`` the distance ``d`` from the anchor is mapped to ``w = log1p(d / s)`` (``s`` the anchor's
width), and ``[0, log1p(D / s)]`` is cut into Gauss-Legendre panels graded towards both ends:
fine near the anchor (cusps, jumps, narrow peaks), geometric in the middle (power-law tails,
which are smooth exponentials in ``w``), fine again near the far end (flat integrands whose
mass lies at the side's end).  The node count is fixed, so the rule jits, vmaps over
thresholds and differentiates; the node positions are returned as (anchor, signed offset)
pairs so that callers can form ``t - y`` without cancellation when ``t`` is huge.

Math:  ``∫ g(y) dy = Σ_k Σ_± ∫_0^{W} g(a_k ± s_k expm1(w)) s_k e^w dw``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["AnchoredNodes", "anchored_rule", "gauss_legendre", "NODES_PER_SIDE"]

# Gauss-Legendre panel order.
_ORDER = 8
# Breakpoints in w graded towards the anchor (w = 0); clipped to the side's extent.
_W_LOW = np.array([
    0.0, 1e-6, 1e-4, 1e-3, 5e-3, 0.02, 0.06, 0.15, 0.3, 0.5, 0.75, 1.05, 1.4, 1.8, 2.3, 2.9,
    3.6, 4.5, 5.6, 7.0, 9.0, 12.0, 16.0, 21.0, 28.0, 37.0, 49.0, 65.0, 86.0, 115.0, 150.0,
    200.0, 270.0, 360.0, 480.0, 640.0,
])
# Breakpoints graded towards the far end of the side (W - c).
_W_TOP = np.array([0.25, 0.7, 1.4, 2.5, 4.0, 6.5])
_N_BREAK = len(_W_LOW) + len(_W_TOP) + 1
NODES_PER_SIDE = (_N_BREAK - 1) * _ORDER


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] (float64 NumPy)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


_GL_X, _GL_W = gauss_legendre(_ORDER)


class AnchoredNodes(NamedTuple):
    """Nodes of the rule: node ``i`` sits at ``anchor[index[i]] + offset[i]``.

    Attributes:
        index: (M,) int, which anchor (in the caller's order) owns the node.
        offset: (M,) signed distance from that anchor.
        log_weight: (M,) log of the quadrature weight (``-inf`` for empty panels).
    """

    index: jax.Array
    offset: jax.Array
    log_weight: jax.Array


def _side(length, scale, dtype):
    """Offsets (>= 0) and log-weights covering [0, length] from an anchor of width ``scale``."""
    big = jnp.asarray(jnp.finfo(dtype).max, dtype) ** 0.9
    length = jnp.minimum(length, big)
    w_end = jnp.log1p(length / scale)
    low = jnp.minimum(jnp.asarray(_W_LOW, dtype), w_end)
    top = jnp.clip(w_end - jnp.asarray(_W_TOP, dtype), 0.0, w_end)
    bp = jnp.sort(jnp.concatenate([low, top, w_end[None]]))
    a, b = bp[:-1], bp[1:]
    h = b - a
    live = h > 0
    h_safe = jnp.where(live, h, 1.0)  # keeps gradients finite through empty panels
    w = a[:, None] + h[:, None] * jnp.asarray(_GL_X, dtype)[None, :]
    lw = jnp.log(jnp.asarray(_GL_W, dtype))[None, :] + jnp.log(h_safe)[:, None]
    # d = s expm1(w), dd/dw = s e^w
    offset = scale * jnp.expm1(w)
    log_weight = lw + jnp.log(scale) + w
    log_weight = jnp.where(live[:, None], log_weight, -jnp.inf)
    return offset.reshape(-1), log_weight.reshape(-1)


def anchored_rule(anchors, widths, lo, hi) -> AnchoredNodes:
    """Fixed-size rule for ``∫_lo^hi g`` with mass near ``anchors`` (1-D, any order).

    Anchors must lie in ``[lo, hi]`` (callers clip them); the region between two neighbours is
    split at the midpoint; the two outermost sides run to ``lo`` and ``hi`` (which may be infinite, in which
    case the side is cut where ``w`` would overflow).

    Args:
        anchors: (K,) positions.
        widths: (K,) positive widths (the scale on which the integrand varies near each).
        lo, hi: integration limits (scalars, ``lo < hi``; infinite allowed).

    Returns:
        :class:`AnchoredNodes` with ``2 K NODES_PER_SIDE`` nodes, indexed into ``anchors``.
    """
    anchors = jnp.asarray(anchors)
    dtype = anchors.dtype
    widths = jnp.asarray(widths, dtype)
    order = jnp.argsort(anchors)
    sp = anchors[order]
    mids = 0.5 * sp[:-1] + 0.5 * sp[1:]
    left_end = jnp.concatenate([jnp.asarray(lo, dtype)[None], mids])
    right_end = jnp.concatenate([mids, jnp.asarray(hi, dtype)[None]])
    left_len = jnp.maximum(sp - left_end, 0.0)
    right_len = jnp.maximum(right_end - sp, 0.0)
    ws = widths[order]
    off_l, lw_l = jax.vmap(_side, in_axes=(0, 0, None))(left_len, ws, dtype)
    off_r, lw_r = jax.vmap(_side, in_axes=(0, 0, None))(right_len, ws, dtype)
    idx = jnp.broadcast_to(order[:, None], off_l.shape)
    index = jnp.concatenate([idx, idx]).reshape(-1)
    offset = jnp.concatenate([-off_l, off_r]).reshape(-1)
    log_weight = jnp.concatenate([lw_l, lw_r]).reshape(-1)
    return AnchoredNodes(index, offset, log_weight)
