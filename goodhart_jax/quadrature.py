"""The one fixed-node quadrature rule: anchors, graded log-distance panels, log-space weights.

An integral over the real line whose mass sits near a few *anchors* (a distribution's bulk,
a threshold minus another's bulk, a support edge or kink, an interior saddle) is split at the
midpoints between neighbouring anchors.  Each anchor owns up to two *sides*; on a side the
distance ``d`` from the anchor is mapped to ``w = log1p(d / s)`` (``s`` the anchor's width), so
that a power-law tail becomes a smooth exponential in ``w`` and a side of length 1e100 costs no
more than one of length 10.  ``[0, W]`` is cut into Gauss-Legendre panels:

* graded towards the anchor, ``w`` in [0, 3.6] (cusps, jumps and narrow peaks sit there);
* geometric from 3.6 to ``W_mid`` (tails);
* graded towards the far end, ``[W_mid, W]`` (a flat integrand piles its mass at a side's end).

Sides whose integrand is singular at the anchor get a finer grading towards it; sides of an
integrand analytic everywhere (normal and Student t pairings) a coarser one.  An anchor's width
is lowered to the scale of any narrower structure close by (:func:`neighbour_widths`).

``W`` is the side's full extent, or shorter where the caller knows the integrand is negligible
beyond (``w_cut``).  The node count is fixed, so the rule jits, vmaps over thresholds and
differentiates; nodes come back as (anchor, signed offset) pairs so that callers can form
``t - y`` without cancellation when ``t`` is huge.

Math:  ``∫ g(y) dy = Σ_k Σ_± ∫_0^{W} g(a_k ± s_k expm1(w)) s_k e^w dw``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["AnchoredNodes", "anchored_rule", "at_nodes", "panel_middles", "side_rule", "side_lengths",
           "merge_widths", "neighbour_widths", "gauss_legendre", "NODES_PER_SIDE",
           "NODES_PER_FINE_SIDE", "NODES_PER_SMOOTH_SIDE", "W_PROBES"]

# Gauss-Legendre panel order (8 leaves 1e-8 errors in geometric tail panels; 10 gives 1e-10).
_ORDER = 10
# Panels near the anchor (absolute in w).
_W_NEAR = np.array([0.0, 1e-4, 2e-3, 0.02, 0.1, 0.3, 0.6, 1.0, 1.5, 2.1, 2.8, 3.6])
# For sides where the integrand is *singular* at the anchor (the score |x|^(p-1) of a cusped
# density, p < 1): panels graded geometrically with ratio 3 from 1e-9 to 0.1, then as _W_NEAR.
# A Gauss-Legendre panel [a, 3a] sees a singularity at 0 through a Bernstein ellipse of
# parameter 2 + sqrt(3): order 10 gives ~1e-11 relative per panel; the innermost panel [0, 1e-9]
# carries ~(1e-9)^p of the mass.  Ratios of 5-20 (the plain grading) leave 1e-6..1e-4.
_W_NEAR_FINE = np.concatenate([[0.0], 1e-9 * 3.0 ** np.arange(0, 17), _W_NEAR[4:]])
# Geometric panels from the last near breakpoint to W_mid: this many.
_N_MID = 8
# Panels graded towards the far end: W - _W_TOP.
_W_TOP = np.array([6.0, 3.5, 2.0, 1.0, 0.4, 0.0])


class _Grid(NamedTuple):
    """A side's panel layout: breakpoints near the anchor (absolute in ``w``), the number of
    geometric panels after them, and the far-end grading (``W`` minus these)."""

    near: np.ndarray
    n_mid: int
    top: np.ndarray

    @property
    def panels(self) -> int:
        return len(self.near) - 1 + self.n_mid + len(self.top) - 1


_PLAIN = _Grid(_W_NEAR, _N_MID, _W_TOP)
_FINE = _Grid(_W_NEAR_FINE, _N_MID, _W_TOP)
# For integrands analytic on the whole side (both densities smooth, no support edge: normal and
# Student t pairings): no grading for cusps or jumps at the anchor (7 near panels, not 11) and
# a shorter far-end grading (4 panels, not 5); the 8 geometric panels stay (with 5 or 6, a
# heavy V against an error 1e3 times wider lost 1e-7).  19 panels a side instead of 24.
_SMOOTH = _Grid(np.array([0.0, 0.1, 0.3, 0.8, 1.4, 2.1, 2.8, 3.6]), _N_MID,
                np.array([4.0, 2.0, 1.0, 0.4, 0.0]))
NODES_PER_SIDE = _PLAIN.panels * _ORDER
NODES_PER_FINE_SIDE = _FINE.panels * _ORDER
NODES_PER_SMOOTH_SIDE = _SMOOTH.panels * _ORDER
# Probe points (in w) where callers may test whether a side's integrand is still alive.
W_PROBES = np.array([4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0])


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1] (float64 NumPy)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


_GL_X, _GL_W = gauss_legendre(_ORDER)


class AnchoredNodes(NamedTuple):
    """Nodes of the rule: node ``i`` sits at ``anchor[index[i]] + offset[i]``.

    Attributes:
        index: (M,) NumPy int array (static: it depends only on which sides are built),
            which anchor (in the caller's order) owns the node; :func:`at_nodes` spreads
            per-anchor values over the nodes.
        offset: (M,) signed distance from that anchor.
        log_weight: (M,) log of the quadrature weight (``-inf`` for empty panels).
    """

    index: np.ndarray
    offset: jax.Array
    log_weight: jax.Array


def _breakpoints(w_end, w_cut, dtype, grid=_PLAIN):
    """Monotone breakpoints on [0, min(w_end, w_cut)] (no sort needed)."""
    w = jnp.minimum(w_end, w_cut)
    near_top = float(grid.near[-1])
    # far-end grading only when the side really ends there (not when cut short)
    top_len = jnp.where(w_cut >= w_end, jnp.minimum(float(grid.top[0]), 0.5 * w), 0.0)
    w_mid = w - top_len
    near = jnp.minimum(jnp.asarray(grid.near, dtype), w_mid)
    ratio = jnp.maximum(w_mid, near_top) / near_top
    mid = near_top * ratio ** (jnp.arange(1, grid.n_mid + 1, dtype=dtype) / grid.n_mid)
    mid = jnp.minimum(mid, w_mid)
    top = w - jnp.minimum(jnp.asarray(grid.top[1:], dtype), top_len)
    top = jnp.maximum(top, w_mid)
    return jnp.concatenate([near, mid, top])


def side_rule(length, scale, w_cut=jnp.inf, *, fine: bool = False, smooth: bool = False):
    """Offsets (>= 0) and log-weights covering ``[0, length]`` from an anchor of width ``scale``.

    Args:
        length: the side's length (may be ``inf``: then cut where ``w`` would overflow).
        scale: the anchor's width.
        w_cut: optional cut in ``w`` beyond which the integrand is known to be negligible.
        fine: (static) grade geometrically down to ``w = 1e-9`` for an integrand singular at
            the anchor (``NODES_PER_FINE_SIDE`` nodes instead of ``NODES_PER_SIDE``).
        smooth: (static) the integrand is analytic on the whole side: a coarser layout
            (``NODES_PER_SMOOTH_SIDE`` nodes).  ``fine`` wins over ``smooth``.
    """
    dtype = jnp.result_type(length, scale)
    big = jnp.asarray(jnp.finfo(dtype).max, dtype) ** 0.9
    length = jnp.minimum(length, big)
    w_end = jnp.log1p(length / scale)
    grid = _FINE if fine else _SMOOTH if smooth else _PLAIN
    bp = _breakpoints(w_end, jnp.asarray(w_cut, dtype), dtype, grid)
    return _panels(bp, scale, _GL_X, _GL_W, dtype)


def _panels(bp, scale, gl_x, gl_w, dtype):
    """Gauss-Legendre panels between consecutive breakpoints ``bp`` (in w)."""
    a, b = bp[:-1], bp[1:]
    h = b - a
    live = h > 0
    h_safe = jnp.where(live, h, 1.0)  # keeps gradients finite through empty panels
    w = a[:, None] + h[:, None] * jnp.asarray(gl_x, dtype)[None, :]
    lw = jnp.log(jnp.asarray(gl_w, dtype))[None, :] + jnp.log(h_safe)[:, None]
    # d = s expm1(w), dd/dw = s e^w
    offset = scale * jnp.expm1(w)
    log_weight = lw + jnp.log(scale) + w
    log_weight = jnp.where(live[:, None], log_weight, -jnp.inf)
    return offset.reshape(-1), log_weight.reshape(-1)


def merge_widths(anchors, widths):
    """Each anchor's width, lowered to the narrowest width among anchors at the same position.

    Of several coincident anchors only the outermost sides have length; they must resolve the
    narrowest structure there.
    """
    same = anchors[:, None] == anchors[None, :]
    return jnp.min(jnp.where(same, widths[None, :], jnp.inf), axis=1)


def _gap(y1, y2, x1, x2):
    """``y2 - y1`` for points given as ``y`` and ``x = t - y``, taken from whichever of the two
    coordinates has the smaller magnitude (``x1 - x2``: no cancellation near a huge ``t``)."""
    use_x = jnp.maximum(jnp.abs(x1), jnp.abs(x2)) < jnp.maximum(jnp.abs(y1), jnp.abs(y2))
    return jnp.where(use_x, x1 - x2, y2 - y1)


def neighbour_widths(anchors, widths, *, mirror=None):
    """Each anchor's width, lowered to ``max(s_j, |a_i - a_j|)`` for every other anchor ``j``.

    Math: ``s_i' = min_j max(s_j, |a_i - a_j|)`` (``j = i`` gives ``s_i``).  A narrow structure
    (width ``s_j``) close to a wide anchor ``i`` reaches into ``i``'s sides, where it varies on
    the scale ``max(s_j, distance)``: ``i``'s panels must resolve that scale.  (A narrow error
    at a threshold within a few of its widths of V's centre cost 7e-6 with widths merged only
    at coincident anchors.)  Coincident anchors get the narrowest width among them, as with
    :func:`merge_widths`.

    Args:
        anchors: (K,) positions ``y``.
        widths: (K,) positive widths.
        mirror: optional (K,) ``t - y``; distances are taken from whichever of ``y`` and
            ``t - y`` has the smaller magnitude (see :func:`side_lengths`).
    """
    if mirror is None:
        dist = jnp.abs(anchors[None, :] - anchors[:, None])
    else:
        dist = jnp.abs(_gap(anchors[:, None], anchors[None, :], mirror[:, None], mirror[None, :]))
    dist = jnp.where(jnp.isnan(dist), jnp.inf, dist)
    return jnp.min(jnp.maximum(widths[None, :], dist), axis=1)


def side_lengths(anchors, lo, hi, *, mirror=None, mirror_hi=None):
    """Left and right side lengths of each anchor (split at midpoints; ends at lo, hi).

    Args:
        anchors: (K,) positions ``y``.
        lo, hi: the ends of the domain.
        mirror: optional (K,) ``t - y`` of each anchor, for anchors given as ``t`` minus a
            small number at huge ``t``: two such anchors 1/3 apart at ``t = 6e11`` differ by a
            few ulps of ``y``, so distances between neighbours are taken from whichever of
            ``y`` and ``t - y`` has the smaller magnitude (the one without cancellation).
        mirror_hi: ``t - hi`` (with ``mirror``; ``None`` when ``hi`` is infinite).
    """
    if mirror is None:
        order = jnp.argsort(anchors)
    else:
        order = jnp.lexsort((-mirror, anchors))  # ties in y (rounding) broken by t - y
    sp = anchors[order]
    dtype = sp.dtype
    gap = sp[1:] - sp[:-1]
    end_hi = jnp.asarray(hi, dtype) - sp[-1]
    if mirror is not None:
        sx = mirror[order]
        gap = _gap(sp[:-1], sp[1:], sx[:-1], sx[1:])
        if mirror_hi is not None:
            end_hi = jnp.where(jnp.abs(sx[-1]) < jnp.abs(sp[-1]), sx[-1] - mirror_hi, end_hi)
    half = 0.5 * jnp.maximum(gap, 0.0)
    left_sorted = jnp.concatenate([(sp[0] - jnp.asarray(lo, dtype))[None], half])
    right_sorted = jnp.concatenate([half, end_hi[None]])
    inv = jnp.argsort(order)
    # NaN only from inf - inf (an anchor at an infinite end): an empty side
    left = jnp.maximum(jnp.where(jnp.isnan(left_sorted), 0.0, left_sorted), 0.0)[inv]
    right = jnp.maximum(jnp.where(jnp.isnan(right_sorted), 0.0, right_sorted), 0.0)[inv]
    return left, right


def anchored_rule(anchors, widths, lo, hi, *, cut_left=None, cut_right=None,
                  sides=None, fine=(), smooth: bool = False, lengths=None) -> AnchoredNodes:
    """Fixed-size rule for ``∫_lo^hi g`` with mass near ``anchors`` (1-D, any order).

    Anchors must lie in ``[lo, hi]`` (callers clip them); the region between two neighbours is
    split at the midpoint; the two outermost sides run to ``lo`` and ``hi`` (which may be
    infinite, in which case the side is cut where ``w`` would overflow, or at ``cut_*``).

    Args:
        anchors: (K,) positions.
        widths: (K,) positive widths (the scale on which the integrand varies near each).
        lo, hi: integration limits (scalars, ``lo < hi``; infinite allowed).
        cut_left, cut_right: optional (K,) cuts in ``w`` per side (see :func:`side_rule`).
        sides: optional static tuple of (anchor index, +1 or -1): the sides to build (default:
            both sides of every anchor).  Leave out sides known to be empty.
        fine: optional static tuple of sides (as in ``sides``) where the integrand is singular
            at the anchor: they get the finer grading of ``side_rule(..., fine=True)``.
        smooth: (static) the integrand is analytic everywhere (no cusp, jump or kink at any
            anchor): the other sides get the coarser layout of ``side_rule(..., smooth=True)``.
        lengths: optional (left, right) side lengths (default ``side_lengths(anchors, lo,
            hi)``; pass ``side_lengths(..., mirror=...)`` for anchors near a huge ``t``).

    Returns:
        :class:`AnchoredNodes`, ``NODES_PER_SIDE`` nodes per side (``NODES_PER_FINE_SIDE``
        on ``fine`` sides), indexed into ``anchors``.
    """
    anchors = jnp.asarray(anchors)
    dtype = anchors.dtype
    widths = jnp.asarray(widths, dtype)
    k = anchors.shape[0]
    inf = jnp.full((k,), jnp.inf, dtype)
    cut_left = inf if cut_left is None else cut_left
    cut_right = inf if cut_right is None else cut_right
    left, right = side_lengths(anchors, lo, hi) if lengths is None else lengths
    if sides is None:
        sides = tuple((i, s) for i in range(k) for s in (-1, 1))
    parts = []
    for group, is_fine in ((tuple(sd for sd in sides if sd not in fine), False),
                           (tuple(sd for sd in sides if sd in fine), True)):
        if not group:
            continue
        idx = np.array([i for i, _ in group])
        sign = np.array([s for _, s in group], dtype=float)
        length = jnp.where(sign < 0, left[idx], right[idx])
        cut = jnp.where(sign < 0, cut_left[idx], cut_right[idx])
        rule = partial(side_rule, fine=is_fine, smooth=smooth)
        off, lw = jax.vmap(rule)(length, widths[idx], cut)
        index = np.repeat(idx, off.shape[1])
        offset = (jnp.asarray(sign, dtype)[:, None] * off).reshape(-1)
        parts.append(AnchoredNodes(index, offset, lw.reshape(-1)))
    index, offset, log_weight = zip(*parts)
    return AnchoredNodes(np.concatenate(index), jnp.concatenate(offset),
                         jnp.concatenate(log_weight))


def at_nodes(values, index: np.ndarray) -> jax.Array:
    """``values[index]`` for a rule's static ``index`` (runs of equal anchors): broadcasts of
    single entries, not a gather (cheaper under ``vmap`` on CPU)."""
    cuts = np.flatnonzero(np.diff(index)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [index.shape[0]]])
    return jnp.concatenate([jnp.broadcast_to(values[int(index[a])], (int(b - a),))
                            for a, b in zip(starts, ends)])


def panel_middles(values: jax.Array) -> jax.Array:
    """The entries of ``values`` (one per node of a rule, last axis) at the middle node of every
    Gauss-Legendre panel: one node in ``_ORDER``, spread over the whole rule."""
    return values[..., _ORDER // 2::_ORDER]
