"""Exact conditioning on the proxy: E[V | V + X >= t], log P(V + X >= t), E[V | V + X = u].

Exact means fixed-node quadrature (:mod:`goodhart_jax.quadrature`) of positive integrands in
log space:

* ``P(U >= t) = ∫ f_X(t - y) S_V(y) dy = S_X(t - c) - ∫_{y<c} f_X(t - y) F_V(y) dy
  + ∫_{y>=c} f_X(t - y) S_V(y) dy`` (``c`` V's centre: every integrand's mass near an anchor);
* ``E[V | U >= t] = E[V] + ∫ f_X(t - y) G(y) dy / P(U >= t)``, with
  ``G(y) = E[(V - E V) 1{V > y}] >= 0`` (integration by parts of the textbook
  ``∫ v f_V(v) S_X(t - v) dv``), so no cancellation happens even when the answer is E[V] + 1e-100;
* ``E[V | U = u] = E[V] - [∫ G(y) f_X'(u - y) dy + G(u - lo_X) f_X(lo_X)] / f_U(u)``.

Anchors for the rule: V's bulk, ``t`` minus X's bulk, the support edges (``lo_V`` and
``t - lo_X``, where densities jump or survival functions kink) and the saddle of the integrand,
found by a coarse search and a few Newton steps.  A finite mixture (``gj.Mixture``) is
integrated as one law, with these anchors for each of its pieces and a saddle for each pair of
a value piece and an error piece (see :func:`_layout`).  Node positions are carried as (anchor, offset)
pairs so that ``t - y`` is exact near ``y ≈ t`` even for ``t = 1e200``.  The tail integrals are
summed in one pass over the nodes, shifted by their terms at the panels' middle nodes (see
:func:`_lse_one_pass`).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.compile_cache import persistent_jit
from goodhart_jax.validation import check_finite, is_concrete
from goodhart_jax.distributions import Distribution, parse_dist
from goodhart_jax.mixture import leaf_components
from goodhart_jax.numerics import host_float, log_sub_exp, newton_polish
from goodhart_jax.quadrature import (anchored_rule, at_nodes, neighbour_widths, panel_middles,
                                     side_lengths)

__all__ = [
    "conditional_value",
    "conditional_density",
    "log_tail_prob",
    "log_value_excess",
    "value_given_proxy",
]

# Candidate fractions along [c_V, t - c_X] for the saddle search.
_Q = np.concatenate([
    [-3.0, -1.0, -0.3, -0.1, -0.03, -0.01],
    np.geomspace(1e-4, 0.5, 14),
    1.0 - np.geomspace(1e-4, 0.5, 14)[::-1][1:],
    [1.01, 1.03, 1.1, 1.3, 2.0, 4.0],
])
_NEWTON_STEPS = 8
# Distances (in units of the span scale) at which the saddle's width is checked from below.
_DROP_LADDER = 2.0 ** np.arange(-20, 6)


def as_distributions(value, error) -> tuple[Distribution, Distribution]:
    value, error = parse_dist(value), parse_dist(error)
    return value, error




def _blows_up_at_top(d: Distribution) -> bool:
    """Whether ``d`` (concrete parameters) has a finite upper support end at which its density
    grows without bound: ``log f`` still rising between the points ``2^-10`` and ``2^-40`` of the
    way from the bulk's centre to the end (a generalized Pareto law with ``xi < -1``)."""
    if not _bounded_leaf(d, 1) or not is_concrete(d):
        return False
    with jax.ensure_compile_time_eval():
        hi = np.asarray(d.support()[1], np.float64)
        c = np.asarray(d.bulk()[0], np.float64)
        if hi.ndim or not np.isfinite(hi):
            return False
        xs = hi - (hi - c) * np.array([2.0 ** -10, 2.0 ** -40])
        lf = np.asarray(d.log_prob(jnp.asarray(xs)), np.float64)
    return bool(np.isfinite(lf[0]) and lf[1] > lf[0] + 1e-6 * max(1.0, abs(lf[0])))


def check_exact(value: Distribution, error: Distribution, *, proxy: bool = False) -> None:
    """``ValueError`` for pairs the exact quadrature does not reach (concrete parameters).

    An error law whose density grows without bound at its upper support end (generalized Pareto
    with ``xi < -1``) puts an integrable singularity at the moving end ``y = t - hi_X`` of the
    domain; the fixed-node rule neither resolves it to 1e-8 nor differentiates through it.  With
    ``proxy`` (``E[V | U = u]``, best-of-n) the same holds for such a value law.  Monte Carlo
    (``gj.sample_conditional_value``) takes these laws.
    """
    key = _verdict_key((error, value) if proxy else error)
    if key is not None and _VERDICTS.get(("exact", proxy, key)):
        return
    checks = [("error", error)] + ([("value", value)] if proxy else [])
    for role, law in checks:
        for _, leaf in leaf_components(law):
            if _blows_up_at_top(leaf):
                raise ValueError(
                    f"{role} {leaf!r}: its density is unbounded at the upper end of its support "
                    "(generalized Pareto with xi < -1); the exact quadrature does not support it "
                    f"as the {role} here: use Monte Carlo (gj.sample_conditional_value)")
    if key is not None:
        _remember(("exact", proxy, key))


def _verdict_key(laws):
    """``(structure, parameter values)`` of ``laws`` when every parameter is a Python number
    (a hashable key for a remembered check), else ``None``."""
    leaves, treedef = jax.tree_util.tree_flatten(laws)
    if all(type(x) in (float, int) for x in leaves):
        return treedef, tuple(leaves)
    return None


def _remember(key) -> None:
    if len(_VERDICTS) > 4096:
        _VERDICTS.clear()
    _VERDICTS[key] = True


# Checks passed, by kind, family structure and parameter values: the checks evaluate support
# ends and means eagerly (a few small programs each), a noticeable share of one warm call.
_VERDICTS: dict = {}


def check_value_mean(value: Distribution) -> None:
    """``ValueError`` unless ``value`` has a finite mean (concrete parameters only).

    The verdict is remembered per family structure and parameter values: evaluating ``mean()``
    eagerly dispatches a few small programs, a noticeable share of one warm call.
    """
    key = _verdict_key(value)
    if key is None and not is_concrete(value):
        return
    if key is not None and _VERDICTS.get(("mean", key)):
        return
    with jax.ensure_compile_time_eval():
        finite = bool(np.all(np.isfinite(np.asarray(value.mean()))))
    if not finite:
        raise ValueError(f"value must have a finite mean for E[V | ...]; {value!r} has none")
    if key is not None:
        _remember(("mean", key))


def _saddle(logh, lo_y, hi_y, c_v, c_x_y, span_scale):
    """Maximiser of ``logh`` (a scalar function of y): coarse search, then safeguarded Newton."""
    dtype = jnp.result_type(c_v)
    cand = c_v + jnp.asarray(_Q, dtype) * (c_x_y - c_v)
    cand = jnp.clip(cand, lo_y, hi_y)
    vals = jax.vmap(logh)(cand)
    vals = jnp.where(jnp.isnan(vals), -jnp.inf, vals)
    best = jnp.argmax(vals)
    max_step = jnp.abs(c_x_y - c_v) + span_scale
    y_best, _ = newton_polish(logh, cand[best], steps=_NEWTON_STEPS, max_step=max_step,
                              lo=lo_y, hi=hi_y, accept="best")
    curv = jax.grad(jax.grad(logh))(y_best)
    ok = jnp.isfinite(curv) & (curv < 0)
    width = jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, -curv, 1.0)), span_scale)
    # The curvature measures a smooth peak.  At a cusp (gennorm p < 1 at its centre: the
    # curvature of log S_V grows like |z|^(p - 2)) or a maximum on the domain's end it can be
    # orders of magnitude too small, and a width far below the scale on which the integrand
    # decays leaves the rule's geometric mid panels too coarse for that decay (2.8e-6 relative
    # for gennorm(p=0.5, loc=1e-100) + exponential at t = 0).  So the width is at least a
    # quarter of the distance at which log h first drops by half a nat (for a smooth peak of
    # width sigma that distance is in [sigma, 2 sigma): the curvature's width stands).
    h_best = logh(y_best)
    ladder = span_scale * jnp.asarray(_DROP_LADDER, dtype)
    dist = jnp.concatenate([ladder, ladder])
    ys = jnp.clip(y_best + jnp.concatenate([-ladder, ladder]), lo_y, hi_y)
    hs = jax.vmap(logh)(ys)
    dropped = (ys != y_best) & ~(hs >= h_best - 0.5)  # NaN counts as dropped
    d_half = jnp.min(jnp.where(dropped, dist, jnp.inf))
    width = jnp.maximum(width, jnp.where(jnp.isfinite(d_half), 0.25 * d_half, 0.0))
    width = jnp.clip(width, 1e-6 * span_scale, jnp.maximum(span_scale, jnp.abs(c_x_y - c_v)))
    return jax.lax.stop_gradient(y_best), jax.lax.stop_gradient(width)


def _bounded_leaf(d: Distribution, end: int = 0) -> bool:
    """Whether ``d``'s support has a finite lower (``end=0``) or upper (``end=1``) end (static:
    decided at trace time; a traced end counts as possibly finite)."""
    with jax.ensure_compile_time_eval():
        edge = d.support()[end]
    if isinstance(edge, jax.core.Tracer):
        return True
    return bool(np.all(np.isfinite(np.asarray(edge))))


def _top(d: Distribution, dtype):
    """The upper end of ``d``'s support, or ``None`` when it is (statically) infinite."""
    return jnp.asarray(d.support()[1], dtype) if _bounded_leaf(d, 1) else None


def _bounded_below(d: Distribution) -> bool:
    """Whether ``d``'s support has a finite lower end: every piece of a mixture's has (static)."""
    return all(_bounded_leaf(leaf) for _, leaf in leaf_components(d))


def _heavy(d: Distribution) -> bool:
    """Whether ``d`` is known (statically) to be heavy-tailed; unknown counts as not heavy."""
    try:
        return d.tail == "heavy"
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError,
            jax.errors.TracerArrayConversionError):
        return False


def _log_sf_of(d: Distribution, y):
    return d.log_sf(y)


def _log_prob_of(d: Distribution, y):
    return d.log_prob(y)


def _layout(value: Distribution, error: Distribution, t, inner_log):
    """Anchors as (y, t - y) pairs with widths, the end of the y-domain, the static sides, and
    which anchors are X's (static).

    The pieces of a law are its mixture components (:func:`goodhart_jax.mixture.leaf_components`;
    a law that is not a mixture is its own single piece).  Anchors, in this order: V's centre
    (``bulk()``, where P's integrand switches from ``-F_V`` to ``S_V``) when V has several
    pieces; each V piece's bulk; ``t`` minus each X piece's bulk; each V piece's lower support
    end (if finite: a kink of ``S_V``, a jump of ``f_V``); ``t - lo`` for each X piece's lower
    end ``lo`` (if finite: a jump of ``f_X``; for a single X piece ``hi = t - lo_X`` is the end
    of the domain and has a left side only); and, for each pair of a V and an X piece neither
    of which is heavy-tailed, the saddle of ``log f_Xj(t - y) + inner_log(V_i, y)``
    (``inner_log`` gives ``log S`` or ``log f`` of a piece).  With one piece each this is V's
    bulk, ``t - c_X``, ``lo_V``, ``hi``, the saddle.  A piece whose bulk's centre is its lower
    support end (``bulk_at_lower_end``: exponential, Pareto, generalized Pareto) gets one
    anchor there, not two: at coincident anchors all but one side have zero length, and their
    nodes (a third of the rule for a gennorm value with an exponential error) weigh nothing.
    """
    dtype = jnp.result_type(t)
    inf = jnp.asarray(jnp.inf, dtype)
    v_parts = [d for _, d in leaf_components(value)]
    x_parts = [d for _, d in leaf_components(error)]
    ya, xa, wa, sides, own = [], [], [], [], []

    def add(y, x, w, sds, of_x=False):
        ya.append(y)
        xa.append(x)
        wa.append(w)
        own.append(of_x)
        sides.extend((len(ya) - 1, sg) for sg in sds)

    both = (-1, 1)
    if len(v_parts) > 1:
        c, s = (jnp.asarray(a, dtype) for a in value.bulk())
        add(c, t - c, s, both)
    v_bulk = [tuple(jnp.asarray(a, dtype) for a in d.bulk()) for d in v_parts]
    x_bulk = [tuple(jnp.asarray(a, dtype) for a in d.bulk()) for d in x_parts]
    for c, s in v_bulk:
        add(c, t - c, s, both)
    for d, (c, s) in zip(x_parts, x_bulk):
        if not d.bulk_at_lower_end:  # else the anchor t - lo below is the same point
            add(t - c, c, s, both, True)
    bounded_x = _bounded_below(error)
    if bounded_x:
        lo_x = jnp.asarray(error.support()[0], dtype)
        hi = t - lo_x
    else:
        lo_x, hi = None, inf
    v_lo = [jnp.asarray(d.support()[0], dtype) if _bounded_leaf(d) else None for d in v_parts]
    x_lo = [jnp.asarray(d.support()[0], dtype) if _bounded_leaf(d) else None for d in x_parts]
    for d, lo, (_, s) in zip(v_parts, v_lo, v_bulk):
        if lo is not None and not d.bulk_at_lower_end:  # (else the bulk's anchor is there)
            add(lo, t - lo, s, both)
    for lo, (_, s) in zip(x_lo, x_bulk):
        if lo is not None:
            add(t - lo, lo, s, (-1,) if len(x_parts) == 1 else both, True)
    # upper support ends (a law bounded above: f may jump or blow up there, S has a kink): V's
    # at hi_V, X's at t - hi_X.  An end that is infinite after all (a traced parameter decides)
    # doubles the piece's bulk anchor instead (coincident anchors share out its sides).
    v_hi = [_top(d, dtype) for d in v_parts]
    x_hi = [_top(d, dtype) for d in x_parts]
    for hi_v, (c, s) in zip(v_hi, v_bulk):
        if hi_v is not None:
            fin = jnp.isfinite(hi_v)
            y = jnp.where(fin, hi_v, c)
            add(y, t - y, s, both)
    for hi_x, (c, s) in zip(x_hi, x_bulk):
        if hi_x is not None:
            x = jnp.where(jnp.isfinite(hi_x), hi_x, c)
            add(t - x, x, s, both, True)
    for dv, lo_v, hi_v, (c_v, s_v) in zip(v_parts, v_lo, v_hi, v_bulk):
        for dx, lo_j, hi_x, (c_x, s_x) in zip(x_parts, x_lo, x_hi, x_bulk):
            if _heavy(dv) or _heavy(dx):
                continue

            def logh(y, dv=dv, dx=dx):
                return dx.log_prob(t - y) + inner_log(dv, y)

            span_scale = s_v + s_x
            lo_y = lo_v - 10 * span_scale if lo_v is not None else -inf
            hi_j = t - lo_j if lo_j is not None else inf
            if hi_v is not None:  # where the integrand lives: y <= hi_V, y >= t - hi_X
                hi_j = jnp.minimum(hi_j, hi_v)
            if hi_x is not None:
                lo_y = jnp.maximum(lo_y, t - hi_x)
            y_star, s_star = _saddle(logh, lo_y, hi_j, c_v, t - c_x, span_scale)
            add(y_star, t - y_star, s_star, both)
    ya, xa, wa = jnp.stack(ya), jnp.stack(xa), jnp.stack(wa)
    if bounded_x:  # anchors beyond the end of the domain (y > t - lo_X) move to it
        over = ya > hi
        ya = jnp.where(over, hi, ya)
        xa = jnp.where(over, lo_x, xa)
    return ya, xa, wa, hi, tuple(sides), np.array(own)


# Margin (nats) below the largest probed term under which a side's integrand counts as dead.
_CUT_MARGIN = 45.0


def _side_cuts(fn, value, error, ya, xa, wa, lengths, sides):
    """Per-side cuts in ``w``: one probe past the last probe where any integrand of ``fn`` lives."""
    from goodhart_jax.quadrature import W_PROBES

    dtype = ya.dtype
    left, right = lengths
    idx = np.array([i for i, _ in sides])
    sign = jnp.asarray([sg for _, sg in sides], dtype)
    probes = jnp.asarray(np.concatenate([[0.0], W_PROBES]), dtype)
    length = jnp.where(sign < 0, left[idx], right[idx])
    w_end = jnp.log1p(jnp.minimum(length, jnp.finfo(dtype).max ** 0.9) / wa[idx])
    d = sign[:, None] * wa[idx][:, None] * jnp.expm1(probes)[None, :]
    y = ya[idx][:, None] + d
    x = xa[idx][:, None] - d
    jac = jnp.log(wa[idx])[:, None] + probes[None, :]
    inside = probes[None, :] <= w_end[:, None]
    alive = jnp.zeros(y.shape, bool)
    for term in fn(value, error, y, x, jac):
        term = jnp.where(inside & ~jnp.isnan(term), term, -jnp.inf)
        alive |= term > jnp.max(term) - _CUT_MARGIN
    # last alive probe index per side (0 if none), cut at the next probe
    k = jnp.max(jnp.where(alive, jnp.arange(probes.shape[0]), 0), axis=1)
    nxt = jnp.concatenate([probes[1:], jnp.asarray([jnp.inf], dtype)])
    cut = nxt[k]
    # one scatter per side (an anchor's two sides share its index: a single scatter would let
    # the right side's "no cut" overwrite the left side's cut)
    is_left = np.array([sg < 0 for _, sg in sides])
    full = jnp.full(ya.shape, jnp.inf, dtype)
    cut_left = full.at[idx[is_left]].set(cut[is_left]) if is_left.any() else full
    cut_right = full.at[idx[~is_left]].set(cut[~is_left]) if (~is_left).any() else full
    return jax.lax.stop_gradient(cut_left), jax.lax.stop_gradient(cut_right)


class _Territory(NamedTuple):
    """Ends ``a <= b`` of the stretch of ``y`` owned by each anchor, ``x = t - y`` there, and
    which anchors are selected."""

    a: jax.Array
    b: jax.Array
    x_a: jax.Array
    x_b: jax.Array
    selected: jax.Array


def _nodes(value, error, t, inner_log, fn, *, singular_at_error_centre: bool = False,
           with_territory: bool = False, smooth: bool = False):
    """Node positions (y, x = t - y) and log-weights for the integrands ``fn``.

    Nodes are held fixed under differentiation (``stop_gradient``): derivatives are those of the
    integrand at fixed nodes, which is exact for integrands continuous in ``y``; ``t`` enters
    through ``x = t - y`` alone.  The one moving discontinuity, the end ``hi = t - lo_X`` of the
    domain where ``f_X`` may jump, gets its Leibniz term from :func:`_edge_correction`.

    ``singular_at_error_centre`` (static) grades every side finely towards its anchor: the
    integrand has an integrable singularity at the anchor ``t - c_X`` (the score of a cusped
    ``f_X``), and any other anchor may coincide with it and own one of its sides.

    ``smooth`` (static) asks for the coarser layout of
    :func:`goodhart_jax.quadrature.side_rule` when both densities are analytic on the whole
    line (the tail integrals of normal and Student t pairings: 760 nodes instead of 960, no
    loss against the mpmath table or the normal closed forms at scale ratios up to 1e4).

    ``with_territory`` (static) also returns which nodes X's anchors own (``t - c_X`` and, if X
    is bounded below, ``t - lo_X``) and the ends of their stretches (:class:`_Territory`).
    """
    ya, xa, wa, hi, sides, own = _layout(value, error, t, inner_log)
    ya, xa, wa, hi = jax.lax.stop_gradient((ya, xa, wa, hi))
    wa = neighbour_widths(ya, wa, mirror=xa)
    dtype = ya.dtype
    # distances between anchors near a huge t are taken in x = t - y (no cancellation)
    lo_x = jnp.asarray(error.support()[0], dtype) if _bounded_below(error) else None
    lengths = side_lengths(ya, jnp.asarray(-jnp.inf, dtype), hi, mirror=xa, mirror_hi=lo_x)
    cut_left, cut_right = _side_cuts(fn, value, error, ya, xa, wa, lengths, sides)
    fine = sides if singular_at_error_centre else ()
    smooth = smooth and value.smooth and error.smooth
    rule = anchored_rule(ya, wa, jnp.asarray(-jnp.inf, dtype), hi, cut_left=cut_left,
                         cut_right=cut_right, sides=sides, fine=fine, smooth=smooth,
                         lengths=lengths)
    shift = t - jax.lax.stop_gradient(t)
    y = at_nodes(ya, rule.index) + rule.offset
    x = (at_nodes(xa, rule.index) - rule.offset) + shift
    if not with_territory:
        return y, x, rule.log_weight
    # the stretches of y owned by X's anchors (t - c_X and, if X is bounded below, t - lo_X,
    # for every piece of X): [ya_k - left_k, ya_k + right_k] (and of any anchor at the same
    # place: coincident anchors share out its two sides)
    same = (ya[:, None] == ya[None, :]) & (xa[:, None] == xa[None, :])
    own = jnp.any(same & jnp.asarray(own)[None, :], axis=1)
    left, right = lengths
    ends = _Territory(ya - left, ya + right, xa + left + shift, xa - right + shift, own)
    return y, x, rule.log_weight, at_nodes(own, rule.index), ends


def _edge_correction(log_total, log_edge, edge, sign=1.0):
    """``log_total`` plus a zero whose derivative is ``sign g(edge) edge' / total`` (Leibniz).

    ``log_edge`` is the log of the integrand just inside the moving end ``edge`` of the domain
    (``-inf`` when it vanishes there: nothing is added then).
    """
    ok = jnp.isfinite(log_edge) & jnp.isfinite(edge) & jnp.isfinite(log_total)
    ratio = jnp.exp(jnp.where(ok, log_edge - jax.lax.stop_gradient(log_total), -jnp.inf))
    edge_s = jnp.where(ok, edge, 0.0)
    return log_total + sign * ratio * (edge_s - jax.lax.stop_gradient(edge_s))


def _upper_edge(error, t):
    """(``hi = t - lo_X``, ``log f_X(lo_X)``); ``hi = inf`` when X is unbounded below."""
    lo_x = error.support()[0]
    fin = jnp.isfinite(lo_x)
    lo_xs = jnp.where(fin, lo_x, 0.0)
    lf = jnp.where(fin, error.log_prob(lo_xs), -jnp.inf)
    return jnp.where(fin, t - lo_xs, jnp.inf), jnp.where(jnp.isnan(lf), -jnp.inf, lf)


def _jumps(error, t):
    """``[(t - lo, log of the jump of f_X at lo), ...]``: where ``f_X(t - y)`` jumps in ``y``.

    One law: its lower support end (:func:`_upper_edge`, ``inf`` when there is none).  A
    mixture: the lower end of every piece bounded below (the jump ``w_j f_j(lo_j)``).
    """
    parts = leaf_components(error)
    if len(parts) == 1:
        return [_upper_edge(error, t)]
    out = []
    for log_w, d in parts:
        if _bounded_leaf(d):
            edge, log_f = _upper_edge(d, t)
            out.append((edge, log_f + log_w))
    return out


def _lower_jumps(error, t):
    """``[(t - hi, log of f_X just below hi), ...]`` for every piece of X bounded above: where
    ``f_X(t - y)`` jumps in ``y`` at the *lower* end of its stretch (``-inf`` edge when the
    piece's upper end is infinite after all).  A uniform error (generalized Pareto, ``xi = -1``)
    jumps there; a density that vanishes at its upper end contributes nothing."""
    out = []
    for log_w, d in leaf_components(error):
        if not _bounded_leaf(d, 1):
            continue
        hi_x = d.support()[1]
        fin = jnp.isfinite(hi_x)
        hi_s = jnp.where(fin, hi_x, 0.0)
        fixed = jax.lax.stop_gradient(hi_s)
        inner = hi_s + (jnp.nextafter(fixed, -jnp.inf) - fixed)  # the last float below hi
        lf = jnp.where(fin, d.log_prob(inner), -jnp.inf)
        lf = lf if log_w is None else lf + log_w
        out.append((jnp.where(fin, t - jnp.where(fin, hi_x, 0.0), -jnp.inf),
                    jnp.where(jnp.isnan(lf), -jnp.inf, lf)))
    return out


def _lse(a):
    """``log Σ exp(a)``; ``-inf`` (with a zero derivative) when every term is ``-inf``.

    An empty sum would be ``log 0`` with the derivative ``0 / 0``: NaN even under a zero
    cotangent (the proxy integrals' negative part is empty for a normal V with a normal X, say),
    so ``log`` is fed a placeholder there and the ``-inf`` is put back by ``where``.
    """
    m = jnp.max(a)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return _log_sum(jnp.sum(jnp.exp(a - m)), m)


# The one-pass log-sum-exp of the tail integrals.  A two-pass lse (shift by the max) cannot
# start its sum before it has seen every term, so the node terms are kept in memory between
# the passes: a fifth of the time of `conditional_value` on CPU.  Here the shift comes from a
# *subset* of the terms, the middle node of every panel, evaluated on their own (a tenth of
# the nodes).  That reference is <= the largest term M, so lifted by _LIFT of the float range
# the largest scaled term is >= e^-_LIFT: nothing that matters underflows (in float64 every
# term within 420 nats of M keeps full precision; in float32, within 50).  A term could only
# overflow by exceeding every panel's middle node, its own included, by more than _LIFT plus
# the cap (986 nats in float64, 116 in float32): a peak the rule does not resolve.  The cap
# keeps even that sum finite.
_LIFT = 0.4


def _reference(fn, value, error, y, x, lw):
    """Per-output shifts for :func:`_lse_one_pass`: the largest term each output of ``fn`` has
    at the panels' middle nodes (0 if it has none), lifted by ``_LIFT`` of the float range."""
    args = jax.lax.stop_gradient((value, error, *(panel_middles(a) for a in (y, x, lw))))
    lift = _LIFT * float(np.log(np.finfo(y.dtype).max))
    refs = []
    for term in fn(*args):
        m = jnp.max(jnp.where(jnp.isnan(term), -jnp.inf, term))
        refs.append(jnp.where(jnp.isfinite(m), m, 0.0) + lift)
    return refs


def _scaled_exp(a, shift):
    """``exp(a - shift)``, capped so that a sum over ``a`` stays finite."""
    cap = float(np.log(np.finfo(a.dtype).max)) - float(np.log(a.shape[-1])) - 1.0
    return jnp.exp(jnp.minimum(a - shift, cap))


def _log_sum(total, shift):
    """``shift + log(total)`` for a sum ``total >= 0`` of scaled terms: ``-inf`` with a zero
    derivative when it is empty (``log 0``'s derivative would be ``0 / 0``, NaN even under a
    zero cotangent: far thresholds, where every term underflows)."""
    some = total > 0
    return jnp.where(some, shift + jnp.log(jnp.where(some, total, 1.0)), -jnp.inf)


def _lse_one_pass(a, shift):
    """``log Σ exp(a)`` in one pass over ``a`` (``shift`` from :func:`_reference`)."""
    return _log_sum(jnp.sum(_scaled_exp(a, shift)), shift)


def _lse_one_pass_pair(a, b, in_a, shift_a, shift_b):
    """``(log Σ exp(a), log Σ exp(b))`` for terms that live on complementary nodes (``a`` is
    ``-inf`` off ``in_a``, ``b`` on it): one pass, one exponential per node."""
    e = _scaled_exp(jnp.where(in_a, a, b), jnp.where(in_a, shift_a, shift_b))
    zero = jnp.zeros_like(e)
    return (_log_sum(jnp.sum(jnp.where(in_a, e, zero)), shift_a),
            _log_sum(jnp.sum(jnp.where(in_a, zero, e)), shift_b))


# Nodes whose term is below max - _DEAD carry no weight (e^-700 relative): they are left out of
# the derivative, evaluated at a live node instead, so that extreme node positions (|y| ~ 1e200,
# where even the derivative of log Phi overflows) cannot put NaN into a gradient.
_DEAD = 700.0


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _live_terms(fn, value, error, y, x, lw):
    """``fn(value, error, y, x, lw)`` (a tuple of per-node log terms), NaN-safe to differentiate."""
    return fn(value, error, y, x, lw)


@_live_terms.defjvp
def _live_terms_jvp(fn, primals, tangents):
    value, error, y, x, lw = primals
    out = fn(*primals)
    live = jnp.zeros(y.shape, bool)
    for o in out:
        top = jnp.max(jnp.where(jnp.isnan(o), -jnp.inf, o))
        live |= jnp.isfinite(o) & (o > top - _DEAD)
    i = jnp.argmax(jnp.where(jnp.isnan(out[0]), -jnp.inf, out[0]))
    safe = [jnp.where(live, a, a[i]) for a in (y, x, lw)]
    tv, te, ty, tx, tlw = tangents
    tan = [jnp.where(live, a, jnp.zeros_like(a)) for a in (ty, tx, tlw)]
    _, t_out = jax.jvp(fn, (value, error, *safe), (tv, te, *tan))
    t_out = tuple(jnp.where(live & jnp.isfinite(o), t, jnp.zeros_like(t)) for o, t in zip(out, t_out))
    return out, t_out


def _split(value, dtype):
    """Where P's integrand switches from ``-F_V`` to ``S_V``: V's centre (an anchor)."""
    return jax.lax.stop_gradient(jnp.asarray(value.bulk()[0], dtype))


def _tail_integrands(value, error, y, x, lw):
    """log terms of A = ∫_{y<c} f_X F_V, B = ∫_{y>=c} f_X S_V and N = ∫ f_X G (see _tail_terms)."""
    c = _split(value, y.dtype)
    lf = lw + error.log_prob(x)
    left = y < c
    lv = lf + value.log_cdf_or_sf(y, ~left)
    a = jnp.where(left, lv, -jnp.inf)
    b = jnp.where(left, -jnp.inf, lv)
    return a, b, lf + value.log_mean_excess(y)


def _tail_integrand(value, error, y, x, lw):
    return _tail_integrands(value, error, y, x, lw)[:2]


def _log_p(value, error, t, log_a, log_b):
    """``log P(U >= t) = log(S_X(t - c) - A + B)`` with the edge terms of A and B.

    ``P = ∫ f_X(t - y) S_V(y) dy``; on ``y < c`` write ``S_V = 1 - F_V`` and integrate the 1
    exactly: ``∫_{y<c} f_X(t - y) dy = S_X(t - c)``.  Without this, a heavy-tailed X puts P's
    mass at ``|y| ~ t``, far from every anchor; with it, both integrands live near the anchors.
    ``A <= S_X(t - c)`` (it is ``P(X >= t - c, V < t - X)``), so the difference is benign.
    """
    c = _split(value, jnp.result_type(t))
    edge, _ = _upper_edge(error, t)
    below = edge <= c
    # S_X(t - c), flat (value 0, derivative 0) from the left of X's lower end: at a tie the
    # left-sided formula is used throughout, so its derivative pairs with A's edge term below
    log_sx = jnp.where(below, 0.0, error.log_sf(jnp.where(below, c + 1.0, t - c)))
    log_s = jnp.logaddexp(log_sx, log_b)
    log_p = log_sub_exp(log_s, log_a)
    # the domain's end (and a mixture's inner jumps of f_X) move with t and X's parameters: a
    # jump bounds A's stretch if below c, else B's.  V's tails are read at a finite point when
    # there is no end (a family's derivative at infinity may be NaN, and a NaN times the zero
    # cotangent of the unused branch is NaN)
    for edge, log_fx_edge in _jumps(error, t):
        below = edge <= c
        edge_v = jnp.where(jnp.isfinite(edge), edge, c)
        log_p = _edge_correction(
            log_p, jnp.where(below, -jnp.inf, log_fx_edge + value.log_sf(edge_v)), edge)
        log_p = _edge_correction(
            log_p, jnp.where(below, log_fx_edge + value.log_cdf(edge_v), -jnp.inf), edge, sign=-1.0)
    # a jump of f_X at its upper end is the lower end of A's stretch (below c; P = ... - A) or
    # of B's (above c): the signs flip
    for edge, log_fx_edge in _lower_jumps(error, t):
        below = edge <= c
        edge_v = jnp.where(jnp.isfinite(edge), edge, c)
        log_p = _edge_correction(
            log_p, jnp.where(below, -jnp.inf, log_fx_edge + value.log_sf(edge_v)), edge, sign=-1.0)
        log_p = _edge_correction(
            log_p, jnp.where(below, log_fx_edge + value.log_cdf(edge_v), -jnp.inf), edge)
    return log_p


@jax.jit
def _tail_terms(value, error, t):
    """(log P(U >= t), log ∫ f_X(t - y) G(y) dy) for scalar t."""
    y, x, lw = _nodes(value, error, t, _log_sf_of, _tail_integrands, smooth=True)
    ref_a, ref_b, ref_n = _reference(_tail_integrands, value, error, y, x, lw)
    a_terms, b_terms, n_terms = _live_terms(_tail_integrands, value, error, y, x, lw)
    log_a, log_b = _lse_one_pass_pair(a_terms, b_terms, y < _split(value, y.dtype), ref_a, ref_b)
    log_p = _log_p(value, error, t, log_a, log_b)
    log_n = _lse_one_pass(n_terms, ref_n)
    for edge, log_fx_edge in _jumps(error, t):
        edge_v = jnp.where(jnp.isfinite(edge), edge, _split(value, y.dtype))
        log_n = _edge_correction(log_n, log_fx_edge + value.log_mean_excess(edge_v), edge)
    for edge, log_fx_edge in _lower_jumps(error, t):
        edge_v = jnp.where(jnp.isfinite(edge), edge, _split(value, y.dtype))
        log_n = _edge_correction(log_n, log_fx_edge + value.log_mean_excess(edge_v), edge,
                                 sign=-1.0)
    return log_p, log_n


@jax.jit
def _tail_only(value, error, t):
    y, x, lw = _nodes(value, error, t, _log_sf_of, _tail_integrand, smooth=True)
    ref_a, ref_b = _reference(_tail_integrand, value, error, y, x, lw)
    a_terms, b_terms = _live_terms(_tail_integrand, value, error, y, x, lw)
    log_a, log_b = _lse_one_pass_pair(a_terms, b_terms, y < _split(value, y.dtype), ref_a, ref_b)
    return _log_p(value, error, t, log_a, log_b)


# Thresholds per batch on CPU: a batch's node arrays (128 x 760 float64 for a normal / t pair)
# stay in the 2-4 MiB L2 cache (1.5x faster than one vmap over 1,000 thresholds on 2 cores;
# 64 and 256 are 5-15% slower on the normal / t, gennorm and lognormal / Pareto pairs).
# Accelerators get one vmap: they want the whole batch at once.
_CPU_BATCH = 128


def bucket_size(n: int) -> int:
    """The padded length for ``n`` thresholds: the next of 1, 2, 3, 4, 6, 8, 12, 16, ...

    Public calls pad their flattened thresholds to these lengths (repeating the first one) so
    that a new number of thresholds compiles at most once per bucket, not once per length: at
    most ``2 log2(n)`` programs, at most a third of the work wasted on padding.

    Example:
        >>> [bucket_size(n) for n in (1, 5, 7, 100, 1000, 100_000)]
        [1, 6, 8, 128, 1024, 131072]
    """
    if n <= 2:
        return max(n, 1)
    k = (n - 1).bit_length() - 1  # 2^k < n <= 2^(k + 1)
    return 3 << (k - 1) if n <= 3 << (k - 1) else 2 << k


def _cast(tree, dtype):
    """Float leaves of ``tree`` in ``dtype`` (the computation follows the thresholds' dtype)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
        else a, jax.tree_util.tree_map(jnp.asarray, tree))


@partial(persistent_jit, static_argnums=(0, 1))
def _run(kernel, post, value, error, flat):
    """``post(value, kernel(value, error, t) for t in flat)``, compiled once per kernel, family
    structure, bucket length and dtype (batches of ``_CPU_BATCH`` on CPU, one vmap elsewhere)."""
    value, error = _cast((value, error), flat.dtype)
    out = post(value, _map(kernel, value, error, flat.reshape(-1)))
    return jax.tree_util.tree_map(lambda o: o.reshape(flat.shape), out)


def quadrature_batch(size: int, sizes: tuple[int, ...] = ()) -> int:
    """Points per batch when a quadrature kernel maps over ``size`` points (static): on CPU
    the fewest batches of at most ``_CPU_BATCH``, all of equal size (840 points: 7 of 120, not
    7 of 128 with 56 of padding); all of them at once elsewhere.

    With ``sizes`` (several passes of one loop over batches, each padded to whole batches), the
    batch of at most ``_CPU_BATCH`` that pads them least in all.

    Example:
        >>> [quadrature_batch(n) for n in (100, 840, 1024)] if jax.default_backend() == "cpu" \
        ...     else [100, 120, 128]
        [100, 120, 128]
    """
    if jax.default_backend() != "cpu":
        return max((size,) + tuple(sizes))
    if sizes:
        top = min(max(sizes), _CPU_BATCH)
        return min(range(max(1, top // 2), top + 1),
                   key=lambda b: (sum(-(-k // b) * b for k in sizes), -b))
    batches = -(-size // _CPU_BATCH)
    return -(-size // batches) if size else 1


def _map(kernel, value, error, flat):
    """``kernel`` over a 1-D array (traceable): batches of ``_CPU_BATCH`` on CPU, else one vmap.

    The length is padded to whole batches (copies of the first point, dropped from the result):
    ``lax.map`` would trace a remainder batch of another shape, a second compiled copy of the
    kernel (the kernels are the bulk of every program that uses them).
    """
    n = flat.shape[0]
    batch = quadrature_batch(n)
    if batch == n:
        return jax.vmap(kernel, in_axes=(None, None, 0))(value, error, flat)
    pad = -n % batch
    if pad:
        flat = jnp.concatenate([flat, jnp.broadcast_to(flat[:1], (pad,))])
    out = jax.lax.map(lambda s: kernel(value, error, s), flat, batch_size=batch)
    return jax.tree_util.tree_map(lambda o: o[:n], out)


def tail_quadrature(value, error, t) -> jax.Array:
    """``log P(V + X >= t)`` for a 1-D array ``t``: the traceable building block (no validation,
    no padding; parameters already in ``t``'s dtype) behind :func:`log_tail_prob`."""
    return _map(_tail_only, value, error, t)


def proxy_quadrature(value, error, u) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log f_U(u), log A+, log A-)`` for a 1-D array ``u``, ``A± >= 0`` the positive and
    negative parts of ``f_U(u) (E[V | U = u] - E[V])``: the traceable building block behind
    :func:`value_given_proxy` (no validation, no padding)."""
    return _map(_proxy_terms, value, error, u)


def cast_parameters(tree, dtype):
    """The float leaves of ``tree`` (distributions, say) in ``dtype``."""
    return _cast(tree, dtype)


def _identity(value, out):
    return out


def _batched(kernel, value, error, t, post=_identity):
    """``kernel`` over every element of ``t`` (any shape), padded to :func:`bucket_size`.

    A scalar or a 1-D ``t`` of a bucket's length goes in as it is (a JAX array stays on the
    device) and its results come out in its shape: no host round trip, no reshape (together
    ~0.1 ms, a third of a one-threshold call on CPU).  A scalar compiles its own program.
    """
    on_device = (isinstance(t, jax.Array) and jnp.issubdtype(t.dtype, jnp.floating)
                 and not getattr(t, "weak_type", False))  # (a weak type keys its own program)
    if not on_device:
        t = host_float(t)
    shape, size = t.shape, math.prod(t.shape)
    pad = bucket_size(size) - size
    if not pad and t.ndim <= 1:
        return _run(kernel, post, value, error, t)
    if on_device:  # padded on the host
        t = host_float(t)
    xp = np if isinstance(t, np.ndarray) else jnp
    flat = t.reshape(-1)
    if pad:
        fill = flat[:1] if size else xp.zeros((1,), t.dtype)
        flat = xp.concatenate([flat, xp.broadcast_to(fill, (pad,))])
    return unpad(_run(kernel, post, value, error, flat), size, shape)


def unpad(out, size: int, shape: tuple[int, ...]):
    """The first ``size`` entries of each (1-D, padded) array in ``out``, reshaped to ``shape``.

    Concrete arrays that were padded go through the host: slicing on the device would compile
    a program per length (cheap, but not once).  Unpadded ones are reshaped on the device (one
    tiny program per pair of shapes): the host round trip costs ~0.1 ms on CPU, a third of a
    one-threshold call.  Traced ones are sliced in the trace.
    """
    def one(o):
        if o.shape == shape:
            return o
        if isinstance(o, jax.core.Tracer):
            return o[:size].reshape(shape)
        if o.shape[0] == size:
            return o.reshape(shape)
        return jax.device_put(np.asarray(o)[:size].reshape(shape))  # (jnp.asarray compiles)

    return jax.tree_util.tree_map(one, out)


def log_tail_prob(value, error, t) -> jax.Array:
    """``log P(V + X >= t)`` for independent ``V`` and ``X``, exactly (quadrature).

    Math: ``P(U >= t) = ∫ f_X(t - y) S_V(y) dy``, summed in log space.

    Args:
        value: distribution of ``V`` (a :class:`Distribution` or a spec string).
        error: distribution of ``X``.
        t: threshold(s), any shape; finite.

    Returns:
        Array of the shape of ``t``.

    Example:
        >>> import goodhart_jax as gj
        >>> float(gj.log_tail_prob(gj.Normal(), gj.Normal(), 0.0))  # doctest: +ELLIPSIS
        -0.693...
    """
    value, error = as_distributions(value, error)
    check_exact(value, error)
    check_finite("t", t)
    return _batched(_tail_only, value, error, t)


def conditional_value(value, error, t) -> jax.Array:
    """Exact ``E[V | V + X >= t]`` by fixed-node quadrature; jit/vmap/grad friendly.

    Math: ``E[V | U >= t] = E[V] + ∫ f_X(t - y) G(y) dy / ∫ f_X(t - y) S_V(y) dy``,
    ``G(y) = E[(V - E V) 1{V > y}]``.

    Args:
        value: distribution of ``V`` (must have a finite mean), or a spec string.
        error: distribution of ``X``, or a spec string.
        t: threshold(s), any shape; finite.  Computed in ``t``'s float dtype.

    Returns:
        Array of the shape of ``t``.

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.conditional_value(gj.Normal(), gj.StudentT(3.0), 10.0)), 6)
        0.304751
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_exact(value, error)
    check_finite("t", t)
    return _batched(_tail_terms, value, error, t, post=_post_value)


def _post_excess(value, out):
    log_p, log_n = out
    # P(U >= t) lost to underflow (far beyond the documented domain): no number, not inf
    return jnp.where(jnp.isfinite(log_p), log_n - log_p, jnp.nan), log_p


def _post_value(value, out):
    log_excess, log_p = _post_excess(value, out)
    return value.mean().astype(log_p.dtype) + jnp.exp(log_excess)


def log_value_excess(value, error, t) -> tuple[jax.Array, jax.Array]:
    """``log(E[V | V + X >= t] - E[V])`` and ``log P(V + X >= t)``, from one quadrature.

    Math: ``E[V | U >= t] - E[V] = ∫ f_X(t - y) G(y) dy / P(U >= t) >= 0`` with
    ``G(y) = E[(V - E V) 1{V > y}]``; both logs come from the same nodes, so the excess keeps
    its relative accuracy when it is far below the rounding of ``E[V]`` (a catastrophic pair at
    a far threshold), where ``conditional_value(...) - E[V]`` would give 0.

    Args:
        value: distribution of ``V`` (finite mean), or a spec string.
        error: distribution of ``X``, or a spec string.
        t: threshold(s), any shape; finite.

    Returns:
        ``(log_excess, log_tail_prob)``, each of the shape of ``t``.

    Example:
        >>> import goodhart_jax as gj
        >>> import math
        >>> log_d, log_p = gj.log_value_excess(gj.Normal(), gj.StudentT(3.0), 1e6)
        >>> round(math.exp(float(log_d)) * 1e6, 3)  # Var(V) f_X(t) / S_X(t) ~ 3 / t
        3.0
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_exact(value, error)
    check_finite("t", t)
    return _batched(_tail_terms, value, error, t, post=_post_excess)


def _proxy_integrands(value, error, y, x, lw):
    """log terms of f_U(u); of the positive / negative parts of ∫ G f_X score (by parts); and of
    the positive / negative parts of ∫ (y - E V) f_V(y) f_X(u - y) (direct)."""
    lfx = lw + error.log_prob(x)
    lfu = lfx + value.log_prob(y)
    score = -jnp.vectorize(jax.grad(lambda z: error.log_prob(z)))(x)  # -d/dx log f_X
    score = jnp.where(jnp.isfinite(score), score, 0.0)
    terms = lfx + value.log_mean_excess(y)
    pos = score > 0
    neg = score < 0
    log_pos = jnp.where(pos, terms + jnp.log(jnp.where(pos, score, 1.0)), -jnp.inf)
    log_neg = jnp.where(neg, terms + jnp.log(jnp.where(neg, -score, 1.0)), -jnp.inf)
    dev = y - value.mean().astype(y.dtype)
    above = dev > 0
    below = dev < 0
    log_dev = jnp.log(jnp.where(dev != 0, jnp.abs(dev), 1.0))
    dir_pos = jnp.where(above, lfu + log_dev, -jnp.inf)
    dir_neg = jnp.where(below, lfu + log_dev, -jnp.inf)
    return lfu, log_pos, log_neg, dir_pos, dir_neg


@jax.jit
def _proxy_terms(value, error, u):
    """(log f_U(u), log of the positive and negative parts of f_U(u) (E[V | U = u] - E[V])).

    ``f_U (E[V | U = u] - E V) = ∫ (y - E V) f_V(y) f_X(u - y) dy``.  Integrated directly, the
    factor ``y - E V`` cancels under V's bulk when the answer is close to ``E V``; integrated by
    parts, ``∫ G(y) f_X(u - y) score(u - y) dy`` with ``G(y) = E[(V - E V) 1{V > y}] >= 0``,
    the score cancels under X's bulk where ``G`` is flat (a heavy-tailed X at huge u: ``∫ f_X
    score = 0``).  So: by parts everywhere except on the stretches ``[a, b]`` owned by X's
    anchors (``u - c_X`` and ``u - lo_X``, and anchors at the same places), which are integrated
    directly; boundary terms
    ``G(b) f_X(u - b) - G(a) f_X(u - a)`` make the two forms agree, and the jump
    ``- G(u - lo_X) f_X(lo_X)`` at X's lower support end stays as it is.
    """
    # a cusped error density (gennorm, p < 1) has a score |x|^(p-1), singular at its centre
    y, x, lw, direct, ends = _nodes(value, error, u, _log_prob_of, _proxy_integrands,
                                    singular_at_error_centre=error.cusp,
                                    with_territory=True)
    fu_terms, bp_pos, bp_neg, dir_pos, dir_neg = _live_terms(_proxy_integrands, value, error, y, x, lw)
    log_fu = _lse(fu_terms)
    pos = _lse(jnp.where(direct, dir_pos, bp_pos))
    neg = _lse(jnp.where(direct, dir_neg, bp_neg))

    def boundary(yb, xb):  # log G(yb) f_X(xb), -inf at an infinite end or unselected anchor
        fin = jnp.isfinite(yb) & jnp.isfinite(xb) & ends.selected
        val = value.log_mean_excess(jnp.where(fin, yb, 0.0)) + error.log_prob(jnp.where(fin, xb, 1.0))
        return jnp.where(fin & ~jnp.isnan(val), val, -jnp.inf)

    pos = jnp.logaddexp(pos, _lse(boundary(ends.b, ends.x_b)))
    neg = jnp.logaddexp(neg, _lse(boundary(ends.a, ends.x_a)))
    # I = ... - G(u - lo_X) f_X(lo_X)  (jump of f_X at lo_X)
    lo_x = error.support()[0]
    fin = jnp.isfinite(lo_x)
    lo_xs = jnp.where(fin, lo_x, 0.0)
    edge = jnp.where(fin, value.log_mean_excess(u - lo_xs) + error.log_prob(lo_xs), -jnp.inf)
    neg = jnp.logaddexp(neg, jnp.where(jnp.isnan(edge), -jnp.inf, edge))
    return log_fu, pos, neg


def value_given_proxy(value, error, u) -> jax.Array:
    """Exact ``E[V | V + X = u]`` by fixed-node quadrature.

    Math: ``E[V | U = u] = E[V] + ∫ G(y) (-f_X'(u - y)) dy / f_U(u)`` (plus the jump term of
    ``f_X`` at its lower support end), ``G(y) = E[(V - E V) 1{V > y}]``.

    Args:
        value: distribution of ``V`` (finite mean), or a spec string.
        error: distribution of ``X``, or a spec string.
        u: proxy value(s), any shape; finite.

    Returns:
        Array of the shape of ``u``.

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.value_given_proxy(gj.Normal(), gj.Normal(0.0, 2.0), 5.0)), 6)
        1.0
    """
    value, error = as_distributions(value, error)
    check_value_mean(value)
    check_exact(value, error, proxy=True)
    check_finite("u", u)
    return _batched(_proxy_terms, value, error, u, post=_post_proxy)


def _post_proxy(value, out):
    log_fu, pos, neg = out
    return value.mean().astype(log_fu.dtype) + jnp.exp(pos - log_fu) - jnp.exp(neg - log_fu)


def conditional_density(value, error, v, t) -> jax.Array:
    """Density of ``V`` given ``V + X >= t`` at ``v``, exactly.

    Math: ``f_{V | U >= t}(v) = f_V(v) S_X(t - v) / P(U >= t)``, in log space.

    Args:
        value: distribution of ``V`` (a :class:`Distribution` or a spec string).
        error: distribution of ``X``.
        v: value(s) of ``V``; broadcast against ``t``.
        t: threshold(s); finite.

    Returns:
        The density, of the broadcast shape of ``v`` and ``t`` (0 outside ``V``'s support).

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(gj.conditional_density(gj.Normal(), gj.Normal(), 0.0, 0.0)), 6)
        0.398942
    """
    value, error = as_distributions(value, error)
    check_exact(value, error)
    check_finite("t", t)
    t = host_float(t)
    log_p = _batched(_tail_only, value, error, t)  # one quadrature per threshold, then broadcast
    return _density(value, error, host_float(v), t, log_p)


@jax.jit
def _density(value, error, v, t, log_p):
    dtype = jnp.result_type(v, t, log_p)
    value, error = _cast((value, error), dtype)
    return jnp.exp(value.log_prob(v) + error.log_sf(t - v) - log_p)
