"""Best-of-n selection on the proxy: exact (quadrature) and sampled (streaming Monte Carlo).

Model A (docs/design.md): ``U = V + X``; best-of-``n`` draws ``n`` independent pairs and keeps the
one with the largest ``U``.  Its true value is

    ``E[V_bon(n)] = ∫ E[V | U = u] · n F_U(u)^(n-1) f_U(u) du``,

the law of the largest of ``n`` proxies against the regression of ``V`` on ``U``.  The inner
quantities come from :mod:`goodhart_jax.conditioning` (``f_U(u)`` and
``f_U(u) (E[V | U = u] - E[V])`` from one quadrature, ``log P(U >= u)`` from another) evaluated
at a fixed set of *outer* nodes placed in the quantile variable ``s = -log P(U >= u)``, where
the law of the maximum of ``n`` peaks at ``s = log n`` with the same shape for every ``n``: one
rule serves a whole window of ``n``.  Everything is in log space, so ``n = 1e12`` (or ``1e100``)
is as cheap and as accurate as ``n = 2``; ``n`` enters the integrand only through
``log n + (n - 1) log F_U``, so the result is differentiable in ``n`` taken as continuous.

The selection costs ``KL_bon(n) = log n - (n - 1)/n`` nats (Beirami et al. 2024 show it is an
upper bound on the true KL of best-of-n against the base policy; it is the standard
"analytical" KL of Gao et al. 2022 and Kwa et al. 2024).
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax import engine
from goodhart_jax.compile_cache import persistent_jit
from goodhart_jax.validation import check_param, check_positive_int
from goodhart_jax.conditioning import (check_exact, check_value_mean, as_distributions, bucket_size,
                                       cast_parameters, unpad, proxy_quadrature, quadrature_batch,
                                       tail_quadrature)
from goodhart_jax.distributions import Distribution
from goodhart_jax.mixture import leaf_components
from goodhart_jax.numerics import float_dtype, host_float, log1mexp, mean_estimate
from goodhart_jax.quadrature import gauss_legendre
from goodhart_jax.numerics import Estimate

__all__ = [
    "kl_best_of_n",
    "best_of_n_value",
    "best_of_n_quantile",
    "sample_best_of_n_value",
    "OUTER_NODES",
]

Array = jax.Array
_LOG2 = math.log(2.0)

# --- the outer rule ---------------------------------------------------------------------------
# In s = -log S_U(u) the law of the maximum of n proxies has one shape for every n: the weight
# n (1 - e^-s)^(n-1) e^-s ds peaks at s = log n with unit width (Gumbel), and falls doubly
# exponentially to its left (e^-e^4.5 = e^-90 at s = log n - 4.5) and like e^-(s - log n) to its
# right.  So one rule serves every n in a window of log n, and the inner quadratures at its
# nodes are shared by all of them:
#
# * middle: _K_MID Gauss-Legendre panels in u between the quantiles u(s_j),
#   s_j = s_lo + j (s_top - s_lo) / _K_MID (s_lo = max(log 2, log n_min - 4.5),
#   s_top = log n_max + 4): panels of at most _MAX_STEP nats of s, where every Gumbel peak of
#   the window lives;
# * left of u(s_lo): the median (or deep in the dead left flank of the smallest n), mapped to
#   w = log1p(d / s) (s the inverse hazard there) and cut at _W_SIDE, graded again towards a
#   finite lower end of U's support (a kink of f_U);
# * right of u(s_top): the same mapping (power-law tails become exponentials in w) out to
#   d / s ~ e^110.
#
# The quantiles come from a shared pass of the tail quadrature over geometric probes, then one
# pass at the interpolated u(s_j) themselves, merged and interpolated again (a panel's ends need
# not be exact quantiles: the rule's weights are exact in u whatever its breakpoints).
_OUTER_ORDER = 6
_K_MID = 64
_MAX_STEP = 0.25
_LEFT_MARGIN = 4.5
_RIGHT_MARGIN = 4.0
_WINDOW = _K_MID * _MAX_STEP  # s_top - s_lo of one window
_W_SIDE = np.array([0.0, 0.05, 0.1, 0.16, 0.23, 0.31, 0.4, 0.5, 0.61, 0.73, 0.86, 1.0, 1.15, 1.31,
                    1.48, 1.66, 1.86, 2.1, 2.4, 2.75, 3.15, 3.6, 4.3, 5.3, 6.6, 8.3, 10.5, 13.5,
                    17.5, 23.0, 31.0, 42.0, 57.0, 78.0, 110.0])
_W_TOP = np.array([2.0, 0.8, 0.25])  # breakpoints W - c near a finite far end
_SIDE_PANELS = len(_W_SIDE) + len(_W_TOP)
OUTER_NODES = (2 * _SIDE_PANELS + _K_MID) * _OUTER_ORDER
_GLX, _GLW = gauss_legendre(_OUTER_ORDER)

# Probes of log S_U (offsets in units of U's bulk width): fine from the bulk to 1e3 widths,
# coarse beyond (the second pass refines where the windows need it).  64 of them, one batch of
# the tail quadrature as each quantile round's 65 points are: 128 probes (one more batch) gave
# Kwa et al.'s grid within 1.2e-14 of these values, and 256 within 9e-15 of 128's.
_PROBES = np.concatenate([-np.geomspace(1e3, 1e-2, 8), [0.0], np.geomspace(1e-2, 1e3, 36),
                          np.geomspace(1e3, 1e200, 20)[1:]])


def kl_best_of_n(n) -> Array:
    """KL divergence (nats) of best-of-``n`` from the base policy: ``log n - (n - 1)/n``.

    Math: ``KL_bon(n) = log n - (n - 1) / n`` (0 at ``n = 1``; ``~ log n - 1`` for large ``n``).

    Args:
        n: number of draws, ``n >= 1`` (any shape; real ``n`` allowed).

    Returns:
        Array of the shape of ``n``.

    Raises:
        ValueError: if some ``n < 1`` (or is not finite).

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.kl_best_of_n(2)), 4)
        0.1931
    """
    check_param("n", n, lo=1.0, owner="kl_best_of_n")
    return _kl(host_float(n))


@jax.jit
def _kl(n):
    return jnp.log(n) - (n - 1.0) / n



def _side(length, scale, dtype, extra=None):
    """Offsets ``>= 0`` and log-weights covering ``[0, length]`` from an anchor of width ``scale``
    (``extra``: further breakpoints, as offsets; those outside ``[0, length]`` are idle)."""
    big = jnp.asarray(jnp.finfo(dtype).max, dtype) ** 0.9
    w_end = jnp.log1p(jnp.minimum(length, big) / scale)
    low = jnp.minimum(jnp.asarray(_W_SIDE, dtype), w_end)
    top = jnp.clip(w_end - jnp.asarray(_W_TOP, dtype), 0.0, w_end)
    parts = [low, top, w_end[None]]
    if extra is not None:
        parts.append(jnp.clip(jnp.log1p(jnp.maximum(extra, 0.0) / scale), 0.0, w_end))
    bp = jnp.sort(jnp.concatenate(parts))
    a, h = bp[:-1], bp[1:] - bp[:-1]
    live = h > 0
    w = a[:, None] + h[:, None] * jnp.asarray(_GLX, dtype)[None, :]
    lw = (jnp.log(jnp.asarray(_GLW, dtype))[None, :] + jnp.log(jnp.where(live, h, 1.0))[:, None]
          + jnp.log(scale) + w)
    lw = jnp.where(live[:, None], lw, -jnp.inf)
    return (scale * jnp.expm1(w)).reshape(-1), lw.reshape(-1), scale * jnp.expm1(bp[1:])


def _lower_end(value: Distribution, error: Distribution, dtype):
    lo = jnp.asarray(value.support()[0], dtype) + jnp.asarray(error.support()[0], dtype)
    return jnp.where(jnp.isnan(lo), -jnp.inf, lo)


def _monotone(s):
    """``-log S`` made non-decreasing (NaN, beyond the float range far out, counts as ``inf``)."""
    return jax.lax.cummax(jnp.where(jnp.isnan(s), jnp.inf, s))


def _interpolate(pts, s_pts, target, c, scale):
    """``u(target)`` by linear interpolation of the points ``(pts, s_pts)`` (sorted in ``u``) in
    ``z = asinh((u - c) / scale)`` (linear in the bulk, logarithmic far out, where ``s`` of a
    power law is linear in ``log u``), and the local inverse hazard ``du / ds`` there."""
    m = pts.shape[0]
    k = jnp.clip(jnp.searchsorted(s_pts, target, side="left"), 1, m - 1)
    a, b, sa, sb = pts[k - 1], pts[k], s_pts[k - 1], s_pts[k]
    drop = sb - sa
    ok = jnp.isfinite(drop) & (drop > 0) & jnp.isfinite(b)
    frac = jnp.clip((target - sa) / jnp.where(ok, drop, 1.0), 0.0, 1.0)
    za, zb = (jnp.arcsinh((jnp.where(ok, x, c) - c) / scale) for x in (a, b))
    z = za + frac * (zb - za)
    u = jnp.where(ok, c + scale * jnp.sinh(z), a)
    slope = scale * jnp.cosh(z) * (zb - za) / jnp.where(ok, drop, 1.0)
    return jnp.clip(u, a, jnp.where(ok, b, a)), jnp.where(ok, slope, jnp.abs(a - c) + scale)


class _Rule(NamedTuple):
    """One window's outer rule: nodes and log-weights."""

    u: Array
    log_weight: Array
    edge: Array  # per panel: its end away from the rule's middle (sides), its left end (middle)


def _window_rule(pts, s_pts, s_lo, s_top, c, scale, lo, extra=None) -> _Rule:
    """A window's rule from the quantile points ``(pts, s_pts)`` (sorted); ``extra`` (or
    ``None``): further breakpoints in ``u`` (a mixture's, see :func:`_pair_points`)."""
    dtype = pts.dtype
    s_mid = s_lo + (s_top - s_lo) * jnp.linspace(0.0, 1.0, _K_MID + 1, dtype=dtype)
    u_mid, slope = jax.vmap(_interpolate, in_axes=(None, None, 0, None, None))(
        pts, s_pts, s_mid, c, scale)
    u_mid = jax.lax.cummax(u_mid)
    cap = jnp.maximum(jnp.abs(u_mid), scale) * 1e3
    width = jnp.clip(slope, 1e-8 * scale, cap)
    u_lo, u_hi = u_mid[0], u_mid[-1]
    if extra is not None:
        u_mid = jnp.sort(jnp.concatenate([u_mid, jnp.clip(extra, u_lo, u_hi)]))
    # middle panels
    a, h = u_mid[:-1], u_mid[1:] - u_mid[:-1]
    live = h > 0
    u_m = (a[:, None] + h[:, None] * jnp.asarray(_GLX, dtype)[None, :]).reshape(-1)
    lw_m = (jnp.log(jnp.asarray(_GLW, dtype))[None, :]
            + jnp.log(jnp.where(live, h, 1.0))[:, None])
    lw_m = jnp.where(live[:, None], lw_m, -jnp.inf).reshape(-1)
    # the two sides
    left_len = jnp.where(jnp.isfinite(lo), u_lo - lo, jnp.inf)
    off_l, lw_l, end_l = _side(jnp.maximum(left_len, 0.0), width[0], dtype,
                        None if extra is None else u_lo - extra)
    off_r, lw_r, end_r = _side(jnp.asarray(jnp.inf, dtype), width[-1], dtype,
                        None if extra is None else extra - u_hi)
    u = jnp.concatenate([u_lo - off_l, u_m, u_hi + off_r])
    lw = jnp.concatenate([lw_l, lw_m, lw_r])
    edge = jnp.concatenate([u_lo - end_l, u_mid[:-1], u_hi + end_r])
    return _Rule(jnp.where(jnp.isfinite(lw), u, u_lo), lw, edge)


# Multiples of a pair's width at which a mixture's outer rule gets breakpoints: around the
# centre of V_i + X_j for every pair of pieces, so that no panel of the rule (placed at the
# quantiles of U, where a mixture's U may be flat over a gap between its modes) spans a mode's
# flank and the gap beyond it at once.
_PAIR_STEPS = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0])
_PAIR_GRID = np.concatenate([-_PAIR_STEPS[::-1], [0.0], _PAIR_STEPS])


def _pair_points(value, error, dtype):
    """Breakpoints ``c_i + c_j + sqrt(s_i^2 + s_j^2) k`` (``k`` in ``_PAIR_GRID``) for every pair
    of a value piece and an error piece (:func:`goodhart_jax.mixture.leaf_components`, bulk
    ``(c, s)`` each); ``None`` (static) when neither law is a mixture."""
    vs = [d for _, d in leaf_components(value)]
    xs = [d for _, d in leaf_components(error)]
    if len(vs) == 1 and len(xs) == 1:
        return None
    grid = jnp.asarray(_PAIR_GRID, dtype)
    out = []
    for dv in vs:
        c_v, s_v = (jnp.asarray(a, dtype) for a in dv.bulk())
        for dx in xs:
            c_x, s_x = (jnp.asarray(a, dtype) for a in dx.bulk())
            out.append(c_v + c_x + jnp.sqrt(s_v * s_v + s_x * s_x) * grid)
    return jax.lax.stop_gradient(jnp.concatenate(out))


def _log_weights(n, log_f, log_s):
    """``log[n F^(n-1) f]`` at the outer nodes, with ``F = 1 - S`` (0 where ``S`` rounds to 1).

    ``F = -expm1(log S)`` is accurate to ~1e-16 absolute, not relative where ``F`` is tiny; that
    region carries no weight: the weight of ``{F_U(U) < eps}`` under ``n F^(n-1) dF`` is exactly
    ``eps^n``, so it cannot move the integral (or its ``n``-derivative) by more than ``~eps``.
    """
    f_pos = log_s < 0
    ls = jnp.where(f_pos, log_s, -1.0)
    log_cdf = log1mexp(ls)  # log(1 - S)
    nm1 = n - 1.0
    power = jnp.where(f_pos, nm1 * log_cdf, jnp.where(nm1 > 0, -jnp.inf, 0.0))
    return jnp.log(n) + power + log_f


class _OuterNodes(NamedTuple):
    """The outer rules of the windows and the inner quantities at their nodes (``(G, M)``)."""

    log_weight: Array  # log of the rule's weights (-inf: empty panel)
    log_sf: Array      # log S_U at the nodes
    log_pdf: Array     # log f_U at the nodes
    excess: Array      # E[V | U = u] - E[V] at the nodes
    pts: Array         # points u (sorted) where s = -log S_U is known: the quantile grid
    s_pts: Array
    c: Array           # U's centre and bulk width (for interpolating in the quantile grid)
    scale: Array


_PASSES = 3  # the probes, then two rounds at each window's interpolated quantiles


def _live(kernel, value, error, u, want=True, fallback=None):
    """``kernel(value, error, u)`` (:func:`tail_quadrature` or :func:`proxy_quadrature`, 1-D
    ``u``), NaN-safe to differentiate in the distributions' parameters.

    The outer rules reach ``|u| ~ 1e277`` scales out, where the first output (``log S_U`` or
    ``log f_U``) is ``-inf`` or NaN (beyond the float range) and the derivatives of the
    densities inside are ``inf`` (``d/ds log f(u / s)`` with ``u^2`` overflowing): a zero
    cotangent times an infinite partial is NaN.  Those nodes carry no weight; their derivative
    is taken at a live node instead (the values are untouched) and set to 0.

    ``want`` (a traced bool): whether the derivative is wanted at all (a pass whose values
    only steer the rules is not).  Where it is not, or no node is live, the derivative is
    taken at ``fallback`` (default ``u[0]``), a point where it is finite: in reverse mode the
    zero cotangents of such a pass still run through the kernel's derivative, and at the
    probes far out (``1e200`` widths) an infinite partial made every gradient NaN.
    """
    want = jnp.broadcast_to(jnp.asarray(want, bool), u.shape)
    fallback = u[0] if fallback is None else jnp.asarray(fallback, u.dtype)
    return _live_masked(kernel, value, error, u, want, fallback)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _live_masked(kernel, value, error, u, want, fallback):
    return kernel(value, error, u)


@_live_masked.defjvp
def _live_jvp(kernel, primals, tangents):
    value, error, u, want, fallback = primals
    out = kernel(value, error, u)
    first = out[0] if isinstance(out, tuple) else out
    live = jnp.isfinite(first) & want
    anchor = jnp.where(jnp.any(live), u[jnp.argmax(live)], jax.lax.stop_gradient(fallback))
    safe = jnp.where(live, u, anchor)
    tv, te, tu = tangents[:3]
    _, t_out = jax.jvp(kernel, (value, error, safe), (tv, te, jnp.where(live, tu, 0.0)))
    return out, jax.tree_util.tree_map(
        lambda o, t: jnp.where(live & jnp.isfinite(o), t, jnp.zeros_like(t)), out, t_out)


def _pad_to(x, size):
    """``x`` (1-D) padded to ``size`` with copies of its last entry."""
    return jnp.concatenate([x, jnp.broadcast_to(x[-1:], (size - x.shape[0],))])


def _sorted_known(known, s_known):
    order = jnp.argsort(known)
    return known[order], _monotone(s_known[order])


def _sf_cost(d: Distribution) -> int:
    """The largest ``sf_cost`` of ``d``'s pieces (static)."""
    return max(getattr(type(leaf), "sf_cost", 1) for _, leaf in leaf_components(d))


def _tail_passes(value, error, probes, s_lo, s_top, c, scale, lo, extra):
    """Every tail quadrature of the windows in one loop over chunks of points (one compiled
    tail quadrature: each call site is a copy of the kernel, the bulk of the program).

    The passes: the probes, then ``_PASSES - 1`` rounds at the quantiles ``u(s_j)`` of every
    window as interpolated from all the points so far, then the windows' rules (from the final
    points) and ``log S_U`` at their middle panels' nodes and where the middle starts (the
    sides' come from the density: :func:`_log_sf_sides`).  A pass's points are computed when its first chunk comes up; the
    points of the quantile passes only steer the rules, so they carry no derivative, while
    ``log S_U`` at the rules' nodes differentiates in the distributions' parameters (nodes held
    fixed).

    Returns the points ``u`` (sorted) with ``s(u) = -log S_U(u)``, the rules (``(G, M)``) and
    ``log S_U`` at their middle nodes and, last, at the start ``u_lo`` of their middle
    (``(G, M_mid + 1)``).
    """
    dtype = probes.dtype
    g, p = s_lo.shape[0], probes.shape[0]
    # P(V + X >= u) = int f_X(u - y) S_V(y) dy = int f_V(u - y) S_X(y) dy: with the cheaper
    # survival function (a t value's continued fraction at every node cost 3x a normal's)
    survival_order = (error, value) if _sf_cost(value) > _sf_cost(error) else (value, error)
    m = g * (_K_MID + 1)
    interp = jax.vmap(_interpolate, in_axes=(None, None, 0, None, None))
    window_rule = jax.vmap(_window_rule, in_axes=(None, None, 0, 0, None, None, None, None))
    shape = jax.eval_shape(  # (G, M): M is OUTER_NODES plus a mixture's extra breakpoints' nodes
        lambda q: window_rule(q, q, s_lo, s_top, c, scale, lo, extra), probes).u.shape
    mid = _middle(extra)
    n_left = mid.start // _OUTER_ORDER
    sizes = [p] + [m] * (_PASSES - 1) + [g * (mid.stop - mid.start + 1)]
    chunk = quadrature_batch(max(sizes), tuple(sizes))
    counts = [-(-k // chunk) for k in sizes]  # chunks per pass
    width = max(counts) * chunk               # a pass's points, padded
    n_known = sum(counts[:-1]) * chunk        # the quantile passes' points
    # per chunk: its pass's start (0: none, 1: a quantile round, 2: the rules), where it reads
    # in its pass's points, where it writes, whether it is the rules' pass (all static)
    kind = np.concatenate([[0 if i == 0 else 1 if i < _PASSES else 2] + [0] * (k - 1)
                           for i, k in enumerate(counts)])
    read = np.concatenate([np.arange(k) * chunk for k in counts])
    write = np.concatenate([np.arange(sum(counts[:-1])) * chunk, np.arange(counts[-1]) * chunk])
    last = np.arange(sum(counts)) >= sum(counts[:-1])
    xs = tuple(jnp.asarray(a) for a in (kind, read, write, last))
    s_mid = (s_lo[:, None] + (s_top - s_lo)[:, None]
             * jnp.linspace(0.0, 1.0, _K_MID + 1, dtype=dtype)[None, :]).reshape(-1)

    def keep(points, rule, known, s_known):
        return points, rule

    def quantiles(points, rule, known, s_known):
        est = interp(*_sorted_known(known, s_known), s_mid, c, scale)[0]
        return _pad_to(est, width), rule

    def rules(points, rule, known, s_known):
        r = window_rule(*_sorted_known(known, s_known), s_lo, s_top, c, scale, lo, extra)
        at = jnp.concatenate([r.u[:, mid], r.edge[:, n_left:n_left + 1]], axis=1)  # + u_lo
        return _pad_to(at.reshape(-1), width), r

    def body(carry, x):
        points, rule, known, s_known, out = carry
        k, at_read, at_write, final = x
        points, rule = jax.lax.stop_gradient(
            jax.lax.switch(k, (keep, quantiles, rules), points, rule, known, s_known))
        batch = jax.lax.dynamic_slice(points, (at_read,), (chunk,))
        log_s = _live(tail_quadrature, *survival_order, batch, want=final, fallback=c)
        known = jnp.where(final, known, jax.lax.dynamic_update_slice(known, batch, (at_write,)))
        s_known = jnp.where(final, s_known, jax.lax.dynamic_update_slice(
            s_known, -jax.lax.stop_gradient(log_s), (at_write,)))
        out = jnp.where(final, jax.lax.dynamic_update_slice(out, log_s, (at_write,)), out)
        return (points, rule, known, s_known, out), None

    inf = jnp.full((n_known + 1,), jnp.inf, dtype)  # never-written points count as u = inf
    zeros = jnp.zeros(shape, dtype)
    init = (_pad_to(probes, width), _Rule(zeros, zeros, zeros[:, ::_OUTER_ORDER]), inf, inf,
            jnp.zeros((counts[-1] * chunk,), dtype))
    (_, rule, known, s_known, out), _ = jax.lax.scan(body, init, xs)
    pts, s_pts = _sorted_known(known, s_known)
    return pts, s_pts, rule, out[:sizes[-1]].reshape(g, -1)


def _middle(extra) -> slice:
    """Where a window's middle panels' nodes sit in its rule (static): after the left side."""
    n_extra = 0 if extra is None else extra.shape[0]
    start = (_SIDE_PANELS + n_extra) * _OUTER_ORDER
    return slice(start, start + (_K_MID + n_extra) * _OUTER_ORDER)


# The sides of the rule get S_U from the density at their nodes.  Right side: the mass beyond a
# node, the side's panels further out (by the rule's own weights) plus the integral from the
# node to its panel's outer end, by _SUB-point Gauss-Legendre rules on the polynomial in w
# through log(f_U du/dw) at the panel's nodes (a power-law tail is linear there).  Left side:
# S_U(u_lo) (tail quadrature) plus the mass between u_lo and the node, the panels further in
# plus the integral from the node to its panel's inner end, on the polynomial in u through
# log f_U (exact for a normal tail).  There the weights n F^(n-1) f hardly feel an error of S:
# on the right n S <= e^-4; on the left an absolute error e of S moves them by (n - 1) e / F
# with F^(n-1) <= 2^(1-n) (e <= 3e-12 against mpmath for a normal V with a Levy X; best-of-n
# values of Kwa et al.'s grid moved by <= 1e-14 from the tail quadrature's).  The middle
# panels, where n S ~ 1 and a panel may span the change from U's bulk to its tail, keep the
# tail quadrature: the density's polynomial put 4e-8 into S there (a normal V, a Levy X).
_SUB = 8


def _lagrange(points, nodes):
    """The Lagrange basis of ``nodes`` (``(..., order)``) at ``points`` (``(..., S)``):
    ``(..., S, order)``; NumPy in, NumPy out (coincident nodes count as distinct)."""
    xp = np if isinstance(points, np.ndarray) and isinstance(nodes, np.ndarray) else jnp
    eye = np.eye(nodes.shape[-1], dtype=bool)
    diff = points[..., :, None, None] - nodes[..., None, None, :]     # zeta - u_m
    gap = nodes[..., :, None] - nodes[..., None, :]                     # u_k - u_m
    gap = xp.where(eye | (gap == 0), 1.0, gap)
    return xp.prod(xp.where(eye, 1.0, diff / gap[..., None, :, :]), axis=-1)


def _log_floor(dtype) -> float:
    """``-2 log(max float)`` (-1,420 in float64): far below any log-density term that counts."""
    return -2.0 * float(np.log(np.finfo(dtype).max))


def _part_rule(outward: bool):
    """For the stretch from each node ``x_j`` of a panel ``[0, 1]`` to its end ``1``
    (``outward``) or ``0``: the Lagrange basis at the stretch's ``_SUB`` Gauss-Legendre points
    ``(order, _SUB, order)``, the log of their weights ``(order, _SUB)`` and the integrals of
    the basis over it ``(order, order)`` (degree ``order - 1``: ``_SUB`` points are exact)."""
    xi, eta = gauss_legendre(_SUB)
    x = _GLX[:, None]
    a, b = (x, np.ones_like(x)) if outward else (np.zeros_like(x), x)
    pts = a + (b - a) * xi[None, :]
    w = (b - a) * eta[None, :]
    basis = _lagrange(pts, _GLX)
    return basis, np.log(w), np.einsum("jm,jmi->ji", w, basis)


_PART_RULES = {True: _part_rule(True), False: _part_rule(False)}


def _log_parts_in_x(log_g, outward: bool):
    """``log`` of the integral of ``g`` from each node of a panel to one of its ends (rows of
    ``log_g``: ``log g`` at a panel's nodes, ``g`` the integrand in the panel's ``x``).

    Where every node counts (:func:`_counts`): the polynomial through ``log g``; else (a panel
    reaching where ``f_U`` underflows) the polynomial through ``g`` itself."""
    basis, log_w, exact = (jnp.asarray(a, log_g.dtype) for a in _PART_RULES[outward])
    ok = _counts(log_g)
    finite = jnp.all(ok, axis=-1, keepdims=True)
    smooth = jax.nn.logsumexp(
        jnp.einsum("jmi,pi->pjm", basis, jnp.where(finite, log_g, 0.0)) + log_w, axis=-1)
    top = jnp.max(jnp.where(ok, log_g, -jnp.inf), axis=-1, keepdims=True)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    total = jnp.where(ok, jnp.exp(jnp.where(ok, log_g, top) - top), 0.0) @ exact.T
    some = total > 0
    rough = jnp.where(some, jnp.log(jnp.where(some, total, 1.0)) + top, -jnp.inf)
    return jnp.where(finite, smooth, rough)


def _counts(log_x):
    """Where a log-density term counts: above ``-2 log(max float)`` (-1,420 in float64; a
    normal tail far out gives ``-1e50``, whose polynomial or derivative would overflow)."""
    return jnp.isfinite(log_x) & (log_x > _log_floor(log_x.dtype))


def _log_parts_in_u(log_f, u, end):
    """``log`` of the integral of ``f_U`` from each node to ``end`` (rows: a panel's nodes
    ``u`` and ``log f_U`` there; ``end`` per panel), on the polynomial in ``u`` through
    ``log f_U``; and where that applies (every node counts: :func:`_counts`)."""
    dtype = log_f.dtype
    xi, eta = (jnp.asarray(a, dtype) for a in gauss_legendre(_SUB))
    # an empty panel (its nodes all at one point, its end possibly infinite) gets a stand-in
    # geometry: inf or NaN in the basis would be NaN in a gradient even where nothing uses it
    good = jnp.all(jnp.isfinite(u), axis=-1) & jnp.isfinite(end) & (u[:, -1] != u[:, 0])
    u = jnp.where(good[:, None], u, jnp.asarray(_GLX, dtype))
    end = jnp.where(good, end, 0.0)
    span = end[:, None] - u                                          # signed (P, order)
    basis = _lagrange(u[:, :, None] + span[:, :, None] * xi, u[:, None, :])  # (P, order, _SUB, order)
    # a panel spanning e^500 in u (the rule's last ones) overflows its basis: not used there
    good &= jnp.all(jnp.isfinite(basis), axis=(1, 2, 3))
    basis = jnp.where(good[:, None, None, None], basis, 0.0)
    finite = jnp.all(_counts(log_f), axis=-1, keepdims=True)
    poly = jnp.einsum("pjmk,pk->pjm", basis, jnp.where(finite, log_f, 0.0))
    size = jnp.abs(span)
    out = jax.nn.logsumexp(poly + jnp.log(eta), axis=-1) + jnp.log(jnp.where(size > 0, size, 1.0))
    return finite & good[:, None] & (size > 0), jnp.where(size > 0, out, -jnp.inf)


def _log_sf_sides(rule: _Rule, log_f, log_s_lo, mid: slice):
    """``log S_U`` at one window's side nodes (``(M,)`` each of ``rule.u``, ``log_f``) from
    ``log f_U`` there and ``log S_U(u_lo)`` (see the comment above); what lies beyond the
    rule's right end (``e^-110``-relative or less in ``w``) is left out.

    Returns ``(log S_U on the left side, on the right side)``.
    """
    k = _OUTER_ORDER
    term = jnp.where(jnp.isnan(log_f) | ~jnp.isfinite(rule.log_weight), -jnp.inf,
                     rule.log_weight + log_f).reshape(-1, k)     # the rule's terms w f_U
    log_g = term - jnp.log(jnp.asarray(_GLW, term.dtype))      # log(f_U du/dx) at the nodes
    # Sums of logs run on a floor far below anything that counts (-1,420 in float64): a sum of
    # -inf's is -inf with a NaN derivative (0 / 0), NaN even under a zero cotangent, and the
    # outermost panels are all -inf where f_U underflows.  Back to -inf at the end.
    floor = _log_floor(term.dtype)
    panel = jax.nn.logsumexp(jnp.maximum(term, floor), axis=-1)
    n_left, n_right = mid.start // k, mid.stop // k
    bottom = jnp.full((1,), floor, term.dtype)
    # right side (panels outward): the panels further out, and the node's part of its own
    beyond = jax.lax.cumlogsumexp(panel[n_right:], reverse=True)
    beyond = jnp.concatenate([beyond[1:], bottom])
    part = jnp.minimum(_log_parts_in_x(log_g[n_right:], outward=True), panel[n_right:, None])
    right = jnp.logaddexp(beyond[:, None], jnp.maximum(part, floor))
    # left side (panels outward from u_lo): S(u_lo), the panels further in, the node's part
    inside = jax.lax.cumlogsumexp(panel[:n_left])
    inside = jnp.concatenate([bottom, inside[:-1]])
    inner_end = jnp.concatenate([rule.edge[n_left:n_left + 1], rule.edge[:n_left - 1]])
    ok, in_u = _log_parts_in_u(log_f.reshape(-1, k)[:n_left], rule.u.reshape(-1, k)[:n_left],
                               inner_end)
    part = jnp.where(ok, in_u, _log_parts_in_x(log_g[:n_left], outward=False))
    part = jnp.minimum(part, panel[:n_left, None])
    left = jnp.logaddexp(jnp.maximum(log_s_lo, floor),
                         jnp.logaddexp(inside[:, None], jnp.maximum(part, floor)))

    def done(x):  # (M,): at most 0 (S <= 1), -inf on the floor
        x = jnp.minimum(x, 0.0).reshape(-1)
        return jnp.where(x > 0.5 * floor, x, -jnp.inf)

    return done(left), done(right)


def _outer_nodes(value, error, s_lo, s_top) -> _OuterNodes:
    """The rules of the windows ``[s_lo, s_top]`` (1-D, one per window) and the inner quantities.

    One pass of the tail quadrature over the probes (shared by every window), two over each
    window's interpolated quantiles and one over the rules' middle panels (the passes are one
    loop: one compiled tail quadrature), then the density / regression quadrature at the
    rules' nodes, which also gives ``S_U`` on the rules' sides (:func:`_log_sf_sides`).
    """
    dtype = s_lo.dtype
    c_v, s_v = (jnp.asarray(a, dtype) for a in value.bulk())
    c_x, s_x = (jnp.asarray(a, dtype) for a in error.bulk())
    c, scale = jax.lax.stop_gradient((c_v + c_x, s_v + s_x))
    lo = jax.lax.stop_gradient(_lower_end(value, error, dtype))
    probes = c + scale * jnp.asarray(_PROBES, dtype)
    probes = jnp.where(jnp.isfinite(lo), jnp.maximum(probes, lo + 1e-9 * scale), probes)
    extra = _pair_points(value, error, dtype)
    pts, s_pts, rules, log_s_mid = _tail_passes(value, error, probes, s_lo, s_top, c, scale, lo,
                                                extra)
    log_s_mid, log_s_lo = log_s_mid[:, :-1], log_s_mid[:, -1]
    shape = rules.u.shape
    # the inner quantities differentiate in the distributions' parameters (nodes held fixed)
    log_f, pos, neg = (a.reshape(shape) for a in
                       _live(proxy_quadrature, value, error, rules.u.reshape(-1)))
    mid = _middle(extra)
    left, right = jax.vmap(_log_sf_sides, in_axes=(0, 0, 0, None))(rules, log_f, log_s_lo, mid)
    log_s = jnp.concatenate([left, log_s_mid, right], axis=-1)
    ok_f = jnp.isfinite(log_f)
    lf_s = jnp.where(ok_f, log_f, 0.0)
    # E[V | U = u] - E[V] overflows far out for a heavy-tailed V (~u at u ~ 1e277): the value
    # stays (inf: _combine makes the result NaN if such a node carries weight), its derivative
    # is 0 (an infinite partial times a zero cotangent would make every gradient NaN)
    big = float(np.log(np.finfo(log_f.dtype).max)) - 1.0
    fits = ok_f & (pos - lf_s < big) & (neg - lf_s < big)
    excess = jnp.where(fits, jnp.exp(jnp.where(fits, pos - lf_s, 0.0))
                       - jnp.exp(jnp.where(fits, neg - lf_s, 0.0)),
                       jax.lax.stop_gradient(jnp.where(ok_f, jnp.exp(pos - lf_s)
                                                        - jnp.exp(neg - lf_s), 0.0)))
    return _OuterNodes(rules.log_weight, log_s, log_f, excess, pts, s_pts, c, scale)


def _combine(n, nodes: _OuterNodes):
    """(E[V_bon(n)] - E[V], log of the rule's total weight): cheap, differentiable in ``n``."""
    lom = nodes.log_weight + _log_weights(n, nodes.log_pdf, nodes.log_sf)
    lom = jnp.where(jnp.isfinite(nodes.log_weight) & ~jnp.isnan(lom), lom, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(lom, axis=-1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    wts = jnp.exp(lom - top)
    total = jnp.sum(wts, axis=-1)
    # Far-out nodes can carry no weight (underflow) and an excess that overflowed (inf - inf:
    # E[V | U = u] ~ u for heavy-tailed V); they are left out.  A non-finite excess at a node
    # that does carry weight makes the result NaN (never silently dropped).
    finite = jnp.isfinite(nodes.excess)
    excess = jnp.where(finite, nodes.excess, 0.0)
    delta = jnp.sum(jnp.where(wts > 0, wts * excess, 0.0), axis=-1) / total
    broken = jnp.any(~finite & (wts > 0), axis=-1)
    return jnp.where(broken, jnp.nan, delta), jnp.log(total) + top[..., 0]


def _window_ends(log_n_lo, log_n_hi):
    """``(s_lo, s_top)`` of the window for ``log n`` in ``[log_n_lo, log_n_hi]``."""
    xp = jnp if isinstance(log_n_lo, jax.Array) else np
    s_lo = xp.maximum(_LOG2, log_n_lo - _LEFT_MARGIN)
    return s_lo, xp.maximum(log_n_hi + _RIGHT_MARGIN, s_lo + _RIGHT_MARGIN)


def _windows(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy windows over the sorted ``log n`` (each spans at most ``_WINDOW`` nats of s):
    ``(s_lo, s_top, window of each n)``, the windows padded to :func:`bucket_size`."""
    log_n = np.log(n)
    group = np.zeros(n.shape, np.int32)
    starts: list[float] = []
    ends: list[float] = []
    for i in np.argsort(log_n):
        s_lo, s_top = _window_ends(starts[-1], log_n[i]) if starts else (0.0, np.inf)
        if float(s_top - s_lo) > _WINDOW:
            starts.append(log_n[i])
            ends.append(log_n[i])
        ends[-1] = log_n[i]
        group[i] = len(starts) - 1
    pad = bucket_size(len(starts)) - len(starts)
    lo = np.array(starts + starts[-1:] * pad)
    hi = np.array(ends + ends[-1:] * pad)
    s_lo, s_top = _window_ends(lo, hi)
    return np.asarray(s_lo, n.dtype), np.asarray(s_top, n.dtype), group


@persistent_jit
def _windows_nodes(value, error, s_lo, s_top) -> _OuterNodes:
    """The windows' rules and inner quantities: the costly part, compiled once per family
    structure, number of windows (a bucket, usually 1) and dtype."""
    return _outer_nodes(*cast_parameters((value, error), s_lo.dtype), s_lo, s_top)


@persistent_jit
def _bon_combine(value, n, group, nodes: _OuterNodes):
    """E[V_bon(n)], ``u_n`` and its width for 1-D ``n`` in the windows ``group``: cheap."""
    value = cast_parameters(value, n.dtype)
    mine = nodes._replace(**{f: getattr(nodes, f)[group]
                             for f in ("log_weight", "log_sf", "log_pdf", "excess")})
    delta, _ = _combine(n[:, None], mine)
    target = jnp.maximum(jnp.log(jax.lax.stop_gradient(n)), _LOG2)
    u_n, width = jax.vmap(_interpolate, in_axes=(None, None, 0, None, None))(
        nodes.pts, nodes.s_pts, target, nodes.c, nodes.scale)
    return value.mean().astype(delta.dtype) + delta, u_n, width


def _best_of_n(value, error, n):
    """``(E[V_bon(n)], u_n, width)`` for ``n`` of any shape (validated)."""
    n = host_float(n)
    shape, size = n.shape, int(np.prod(n.shape))
    flat = n.reshape(-1)
    if isinstance(flat, np.ndarray):  # windows over the values of n, padded lengths
        pad = bucket_size(size) - size
        flat = np.concatenate([flat, np.broadcast_to(flat[:1] if size else np.ones(1, n.dtype),
                                                     (pad,))])
        s_lo, s_top, group = _windows(flat)
    else:  # traced n: one window per n
        pad = 0
        s_lo, s_top = _window_ends(*(jnp.log(jax.lax.stop_gradient(flat)),) * 2)
        group = jnp.arange(size)
    out = _bon_combine(value, flat, group, _windows_nodes(value, error, s_lo, s_top))
    return unpad(out, size, shape)


def best_of_n_value(value, error, n) -> Array:
    """Exact ``E[V]`` of the best-of-``n`` draw by proxy ``U = V + X`` (quadrature).

    Math: ``E[V_bon(n)] = ∫ E[V | U = u] n F_U(u)^(n-1) f_U(u) du``, with the outer integral on
    a fixed rule (``OUTER_NODES`` nodes) placed in ``s = -log S_U(u)``, where the law of the
    maximum has one shape for every ``n`` (a peak at ``s = log n``), computed in log space and
    normalised by the rule's own total weight (which is 1 up to quadrature error).  The ``n``
    of one call share a rule and its inner quadratures while ``log n_max + 4 - max(log 2,
    log n_min - 4.5) <= 16`` (so ``n`` from 1 to 3e5, or any ratio up to ~1,800, cost what one
    ``n`` costs: the Kwa et al. grid ``n = 1, 4, ..., 65536`` is one rule); further ``n`` open
    further windows.

    ``n`` may be real (the formula is analytic in ``n``); gradients in ``n`` and in the
    distributions' parameters go through (nodes fixed under differentiation).  Under ``jit``
    (a traced ``n``) every ``n`` gets its own rule.

    Args:
        value: distribution of ``V`` (finite mean), or a spec string.
        error: distribution of ``X``, or a spec string.
        n: number of draws, ``n >= 1``, any shape (``n = 1e12`` is fine).

    Returns:
        Array of the shape of ``n``.

    Raises:
        ValueError: ``n < 1`` or not finite; ``value`` without a finite mean.

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.best_of_n_value(gj.Normal(), gj.Normal(), 2.0)), 6)  # 0.5642 / sqrt 2
        0.398942
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_exact(value, error, proxy=True)
    check_param("n", n, lo=1.0, owner="best_of_n_value")
    return _best_of_n(value, error, n)[0]


def best_of_n_quantile(value, error, n) -> tuple[Array, Array]:
    """Where the best of ``n`` proxies lives: ``u_n`` with ``P(U >= u_n) = 1/n``, and its width.

    Math: ``log P(U >= u_n) = -log n``; width ``S_U(u_n) / f_U(u_n)`` (inverse hazard rate).
    For ``n <= 2`` the median.  Approximate (interpolated between quadrature points placed
    around it: good to a small fraction of the width).

    Example:
        >>> import goodhart_jax as gj
        >>> u, w = gj.best_of_n_quantile(gj.Normal(), gj.Normal(), 2.0)
        >>> abs(float(u)) < 1e-6
        True
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_exact(value, error, proxy=True)
    check_param("n", n, lo=1.0, owner="best_of_n_quantile")
    return _best_of_n(value, error, n)[1:]


# --- sampled best-of-n -------------------------------------------------------------------------

def _bon_chunk(key, mask, value, error, n, center, block):
    """Best of ``n`` for ``mask.shape[0]`` replicates, ``block`` candidates at a time."""
    dtype = center.dtype
    reps = mask.shape[0]
    n_blocks = (n + block - 1) // block
    arange = jnp.arange(block)

    def body(j, carry):
        best_u, best_v = carry
        kv, kx = jax.random.split(jax.random.fold_in(key, j))
        v = value.sample(kv, (reps, block), dtype)
        x = error.sample(kx, (reps, block), dtype)
        u = jnp.where((j * block + arange < n)[None, :], v + x, -jnp.inf)
        i = jnp.argmax(u, axis=1)
        u_top = jnp.take_along_axis(u, i[:, None], 1)[:, 0]
        v_top = jnp.take_along_axis(v, i[:, None], 1)[:, 0]
        better = u_top > best_u
        return jnp.where(better, u_top, best_u), jnp.where(better, v_top, best_v)

    init = (jnp.full((reps,), -jnp.inf, dtype), jnp.zeros((reps,), dtype))
    best_u, best_v = jax.lax.fori_loop(0, n_blocks, body, init)
    dv = jnp.where(mask, best_v - center, 0.0)
    du = jnp.where(mask, best_u, 0.0)
    return (mask.sum(dtype=dtype), dv.sum(), (dv * dv).sum(), du.sum())


@lru_cache(maxsize=None)
def _chunk_fn(block: int):
    """One chunk function per block size (a static argument of the engine's compiled loop)."""
    return partial(_bon_chunk, block=block)


def sample_best_of_n_value(key: Array, value, error, n: int, *, num_draws: int,
                           chunk_size: int = 64, block_size: int = 1 << 14,
                           dtype=None) -> Estimate:
    """Monte Carlo ``E[V]`` of the best-of-``n`` draw, streaming (memory bounded in ``n``).

    Each of ``num_draws`` replicates draws ``n`` pairs ``(V, X)`` and keeps the ``V`` of the
    largest ``U = V + X``; candidates are drawn ``block_size`` at a time (a running argmax), and
    replicates ``chunk_size`` at a time through :func:`goodhart_jax.engine.stream`, so memory is
    ``chunk_size * block_size`` draws whatever ``n`` and ``num_draws`` are.

    Math: ``mean = (1/R) Σ_r V_r``, ``stderr = sd(V_r) / sqrt(R)``, ``V_r = V_{argmax_i U_i}``.

    Args:
        key: PRNG key (explicit).
        value, error: distributions (anything with ``sample(key, shape, dtype)``; ``value`` needs
            a finite mean for the estimate to mean anything).
        n: candidates per replicate, an integer ``>= 1`` (``1e6`` is fine).
        num_draws: replicates ``R >= 2``.
        chunk_size: replicates per chunk; block_size: candidates per block.
        dtype: float dtype of the draws (default JAX's default float).

    Returns:
        :class:`goodhart_jax.Estimate` (``count = R``).

    Example:
        >>> import jax, goodhart_jax as gj
        >>> est = gj.sample_best_of_n_value(jax.random.key(0), gj.Normal(), gj.Normal(), 4,
        ...                                 num_draws=20_000)
        >>> abs(float(est.mean) - 1.0294 / 2**0.5) < 4 * float(est.stderr)
        True
    """
    value, error = as_distributions(value, error)
    n = check_positive_int("n", n, owner="sample_best_of_n_value")
    num_draws = check_positive_int("num_draws", num_draws, minimum=2, owner="sample_best_of_n_value")
    chunk_size = check_positive_int("chunk_size", chunk_size, owner="sample_best_of_n_value")
    block_size = check_positive_int("block_size", block_size, owner="sample_best_of_n_value")
    dtype = float_dtype(dtype)
    block = min(block_size, n)
    mean = value.mean()
    center = jnp.asarray(jnp.where(jnp.isfinite(mean), mean, 0.0), dtype)
    cnt, s1, s2, _ = engine.stream(_chunk_fn(block), key, value, error, jnp.asarray(n), center,
                                   num_samples=num_draws, chunk_size=chunk_size)
    return mean_estimate(cnt, s1, s2, center)


# --- the mean of k independent errors ----------------------------------------------------------
