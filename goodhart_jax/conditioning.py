"""Exact conditioning on the proxy: E[V | V + X >= t], log P(V + X >= t), E[V | V + X = u].

Exact means fixed-node quadrature (:mod:`goodhart_jax.quadrature`) of positive integrands in
log space:

* ``P(U >= t) = ∫ f_X(t - y) S_V(y) dy``;
* ``E[V | U >= t] = E[V] + ∫ f_X(t - y) G(y) dy / P(U >= t)``, with
  ``G(y) = E[(V - E V) 1{V > y}] >= 0`` (integration by parts of the textbook
  ``∫ v f_V(v) S_X(t - v) dv``), so no cancellation happens even when the answer is E[V] + 1e-100;
* ``E[V | U = u] = E[V] - [∫ G(y) f_X'(u - y) dy + G(u - lo_X) f_X(lo_X)] / f_U(u)``.

Anchors for the rule: V's bulk, ``t`` minus X's bulk, the support edges (``lo_V`` and
``t - lo_X``, where densities jump or survival functions kink) and the saddle of the integrand,
found by a coarse search and a few Newton steps.  Node positions are carried as (anchor, offset)
pairs so that ``t - y`` is exact near ``y ≈ t`` even for ``t = 1e200``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax._validation import check_finite
from goodhart_jax.distributions import Distribution, parse_dist
from goodhart_jax.quadrature import anchored_rule

__all__ = ["conditional_value", "log_tail_prob", "value_given_proxy"]

# Candidate fractions along [c_V, t - c_X] for the saddle search.
_Q = np.concatenate([
    [-3.0, -1.0, -0.3, -0.1, -0.03, -0.01],
    np.geomspace(1e-4, 0.5, 14),
    1.0 - np.geomspace(1e-4, 0.5, 14)[::-1][1:],
    [1.01, 1.03, 1.1, 1.3, 2.0, 4.0],
])
_NEWTON_STEPS = 8


def _dists(value, error) -> tuple[Distribution, Distribution]:
    value, error = parse_dist(value), parse_dist(error)
    return value, error


def _check_value_mean(value: Distribution) -> None:
    from goodhart_jax._validation import is_concrete

    if not is_concrete(value):
        return
    with jax.ensure_compile_time_eval():
        finite = bool(np.all(np.isfinite(np.asarray(value.mean()))))
    if not finite:
        raise ValueError(f"value must have a finite mean for E[V | ...]; {value!r} has none")


def _saddle(logh, lo_y, hi_y, c_v, c_x_y, span_scale):
    """Maximiser of ``logh`` (a scalar function of y): coarse search, then safeguarded Newton."""
    dtype = jnp.result_type(c_v)
    cand = c_v + jnp.asarray(_Q, dtype) * (c_x_y - c_v)
    cand = jnp.clip(cand, lo_y, hi_y)
    vals = jax.vmap(logh)(cand)
    vals = jnp.where(jnp.isnan(vals), -jnp.inf, vals)
    best = jnp.argmax(vals)
    y0, h0 = cand[best], vals[best]
    d1 = jax.grad(logh)
    d2 = jax.grad(d1)
    max_step = jnp.abs(c_x_y - c_v) + span_scale

    def body(_, carry):
        y, hy, by, bh = carry
        g, c = d1(y), d2(y)
        ok = jnp.isfinite(g) & jnp.isfinite(c) & (c < 0)
        step = jnp.where(ok, -g / jnp.where(ok, c, -1.0), 0.0)
        step = jnp.clip(step, -max_step, max_step)
        yn = jnp.clip(y + step, lo_y, hi_y)
        hn = logh(yn)
        hn = jnp.where(jnp.isnan(hn), -jnp.inf, hn)
        better = hn > bh
        return yn, hn, jnp.where(better, yn, by), jnp.where(better, hn, bh)

    _, _, y_best, _ = jax.lax.fori_loop(0, _NEWTON_STEPS, body, (y0, h0, y0, h0))
    curv = d2(y_best)
    ok = jnp.isfinite(curv) & (curv < 0)
    width = jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, -curv, 1.0)), span_scale)
    width = jnp.clip(width, 1e-6 * span_scale, jnp.maximum(span_scale, jnp.abs(c_x_y - c_v)))
    return jax.lax.stop_gradient(y_best), jax.lax.stop_gradient(width)


def _layout(value: Distribution, error: Distribution, t, inner_log):
    """Anchors as (y, t - y) pairs with widths, and the upper end of the y-domain.

    ``inner_log(y)`` is the log of V's factor of the integrand (S_V or f_V), used to find the
    saddle of ``log f_X(t - y) + inner_log(y)``.
    """
    dtype = jnp.result_type(t)
    c_v, s_v = (jnp.asarray(a, dtype) for a in value._bulk())
    c_x, s_x = (jnp.asarray(a, dtype) for a in error._bulk())
    lo_v = jnp.asarray(value.support()[0], dtype)
    lo_x = jnp.asarray(error.support()[0], dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    fin_v, fin_x = jnp.isfinite(lo_v), jnp.isfinite(lo_x)
    hi = jnp.where(fin_x, t - jnp.where(fin_x, lo_x, 0.0), inf)
    lo_v_s = jnp.where(fin_v, lo_v, c_v)
    lo_x_s = jnp.where(fin_x, lo_x, c_x)

    def logh(y):
        return error.log_prob(t - y) + inner_log(y)

    span_scale = s_v + s_x
    y_star, s_star = _saddle(logh, jnp.where(fin_v, lo_v - 10 * span_scale, -inf), hi, c_v,
                             t - c_x, span_scale)
    ya = jnp.stack([c_v, t - c_x, lo_v_s, t - lo_x_s, y_star])
    xa = jnp.stack([t - c_v, c_x, t - lo_v_s, lo_x_s, t - y_star])
    wa = jnp.stack([s_v, s_x, s_v, s_x, s_star])
    # Anchors beyond the end of the domain (y > t - lo_X) move to it.
    over = ya > hi
    ya = jnp.where(over, hi, ya)
    xa = jnp.where(over, jnp.where(fin_x, lo_x, 0.0), xa)
    return ya, xa, wa, hi


def _nodes(ya, xa, wa, hi, t):
    """Node positions (y, x = t - y) and log-weights.

    Nodes are held fixed under differentiation (``stop_gradient``): derivatives are those of the
    integrand at fixed nodes, which is exact for integrands continuous in ``y``; ``t`` enters
    through ``x = t - y`` alone.  The one moving discontinuity, the end ``hi = t - lo_X`` of the
    domain where ``f_X`` may jump, gets its Leibniz term from :func:`_edge_correction`.
    """
    ya, xa, wa, hi = jax.lax.stop_gradient((ya, xa, wa, hi))
    dtype = ya.dtype
    rule = anchored_rule(ya, wa, jnp.asarray(-jnp.inf, dtype), hi)
    y = ya[rule.index] + rule.offset
    x = (xa[rule.index] - rule.offset) + (t - jax.lax.stop_gradient(t))
    return y, x, rule.log_weight


def _edge_correction(log_total, log_edge, edge):
    """``log_total`` plus a zero whose derivative is ``g(edge) edge' / total`` (Leibniz rule).

    ``log_edge`` is the log of the integrand just inside the moving end ``edge`` of the domain
    (``-inf`` when it vanishes there, nothing is added then).
    """
    ok = jnp.isfinite(log_edge) & jnp.isfinite(edge)
    ratio = jnp.exp(jnp.where(ok, log_edge, -jnp.inf) - jax.lax.stop_gradient(log_total))
    ratio = jnp.where(ok, ratio, 0.0)
    edge_s = jnp.where(ok, edge, 0.0)
    return log_total + ratio * (edge_s - jax.lax.stop_gradient(edge_s))


def _upper_edge(error, t):
    """(``hi = t - lo_X``, ``log f_X(lo_X)``); ``hi = inf`` when X is unbounded below."""
    lo_x = error.support()[0]
    fin = jnp.isfinite(lo_x)
    lo_xs = jnp.where(fin, lo_x, 0.0)
    lf = jnp.where(fin, error.log_prob(lo_xs), -jnp.inf)
    return jnp.where(fin, t - lo_xs, jnp.inf), jnp.where(jnp.isnan(lf), -jnp.inf, lf)


def _lse(a):
    m = jnp.max(a)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m + jnp.log(jnp.sum(jnp.exp(a - m)))


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


def _tail_integrands(value, error, y, x, lw):
    lf = lw + error.log_prob(x)
    return lf + value.log_sf(y), lf + value._log_mean_excess(y)


def _tail_integrand(value, error, y, x, lw):
    return (lw + error.log_prob(x) + value.log_sf(y),)


@jax.jit
def _tail_terms(value, error, t):
    """(log P(U >= t), log ∫ f_X(t - y) G(y) dy) for scalar t."""
    ya, xa, wa, hi = _layout(value, error, t, value.log_sf)
    y, x, lw = _nodes(ya, xa, wa, hi, t)
    p_terms, n_terms = _live_terms(_tail_integrands, value, error, y, x, lw)
    edge, log_fx_edge = _upper_edge(error, t)
    log_p = _edge_correction(_lse(p_terms), log_fx_edge + value.log_sf(edge), edge)
    log_n = _edge_correction(_lse(n_terms), log_fx_edge + value._log_mean_excess(edge), edge)
    return log_p, log_n


@jax.jit
def _tail_only(value, error, t):
    ya, xa, wa, hi = _layout(value, error, t, value.log_sf)
    y, x, lw = _nodes(ya, xa, wa, hi, t)
    (p_terms,) = _live_terms(_tail_integrand, value, error, y, x, lw)
    edge, log_fx_edge = _upper_edge(error, t)
    return _edge_correction(_lse(p_terms), log_fx_edge + value.log_sf(edge), edge)


def _vmap_t(fn, value, error, t):
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    flat = t.reshape(-1)
    out = jax.vmap(fn, in_axes=(None, None, 0))(value, error, flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(t.shape), out)


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
    value, error = _dists(value, error)
    check_finite("t", t)
    return _vmap_t(_tail_only, value, error, t)


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
    value, error = _dists(value, error)
    _check_value_mean(value)
    check_finite("t", t)
    log_p, log_n = _vmap_t(_tail_terms, value, error, t)
    return value.mean().astype(log_p.dtype) + jnp.exp(log_n - log_p)


def _proxy_integrands(value, error, y, x, lw):
    """log terms of f_U(u), and of the positive / negative parts of ∫ G f_X score."""
    lfx = lw + error.log_prob(x)
    score = -jax.vmap(jax.grad(lambda z: error.log_prob(z)))(x)  # -d/dx log f_X
    score = jnp.where(jnp.isfinite(score), score, 0.0)
    terms = lfx + value._log_mean_excess(y)
    pos = score > 0
    neg = score < 0
    log_pos = jnp.where(pos, terms + jnp.log(jnp.where(pos, score, 1.0)), -jnp.inf)
    log_neg = jnp.where(neg, terms + jnp.log(jnp.where(neg, -score, 1.0)), -jnp.inf)
    return lfx + value.log_prob(y), log_pos, log_neg


@jax.jit
def _proxy_terms(value, error, u):
    """(log f_U(u), log of the positive and negative parts of f_U(u) (E[V | U = u] - E[V]))."""
    ya, xa, wa, hi = _layout(value, error, u, value.log_prob)
    y, x, lw = _nodes(ya, xa, wa, hi, u)
    fu_terms, pos_terms, neg_terms = _live_terms(_proxy_integrands, value, error, y, x, lw)
    log_fu, pos, neg = _lse(fu_terms), _lse(pos_terms), _lse(neg_terms)
    # I = ∫ G(y) f_X(u - y) score(u - y) dy - G(u - lo_X) f_X(lo_X)  (jump of f_X at lo_X)
    lo_x = error.support()[0]
    fin = jnp.isfinite(lo_x)
    lo_xs = jnp.where(fin, lo_x, 0.0)
    edge = jnp.where(fin, value._log_mean_excess(u - lo_xs) + error.log_prob(lo_xs), -jnp.inf)
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
    value, error = _dists(value, error)
    _check_value_mean(value)
    check_finite("u", u)
    log_fu, pos, neg = _vmap_t(_proxy_terms, value, error, u)
    return value.mean().astype(log_fu.dtype) + jnp.exp(pos - log_fu) - jnp.exp(neg - log_fu)
