"""Power-law fits of a sample's upper tail, the method of Clauset, Shalizi & Newman (2009).

:func:`powerlaw_fit` fits ``p(x) ∝ x^(-alpha)`` to the points ``x >= xmin`` by maximum likelihood
(Clauset, Shalizi & Newman 2009, SIAM Review 51, 661-703; arXiv:0706.1062):

* continuous data: ``alpha = 1 + n / Σ log(x_i / xmin)`` (their eq. 3.1), standard error
  ``(alpha - 1) / sqrt(n)`` (eq. 3.2);
* discrete (integer) data: the maximiser of the Hurwitz-zeta likelihood
  ``L(alpha) = -n log ζ(alpha, xmin) - alpha Σ log x_i`` (eq. 3.5), found by Newton steps
  (clipped to 0.5) from the approximation of eq. 3.7, standard error
  ``1 / sqrt(n (d²/dalpha²) log ζ(alpha, xmin))`` (eq. 3.6);

and, when ``xmin`` is not given, chooses it as they do: the candidate whose fitted law is closest
to the tail data in Kolmogorov-Smirnov distance ``D = max_{x >= xmin} |S(x) - P(x)|`` (their
section 3.3).  ``D`` is the supremum over all ``x`` (at a point of the sample both sides of the
jump of the empirical distribution function are compared, so ties count properly).

The candidates are the distinct values of ``x`` that leave at least ``min_tail`` points at or
above them (not the largest value).  Their KS distances are computed in jitted blocks: a
candidate with ``m`` tail points is evaluated together with the others whose ``m`` lies in the
same octave ``(2^(b-1), 2^b]``, on the distinct values among the top ``2^b`` points (the tails
of up to ``2^12`` points share one block), so the work is about ``per_octave * 2 n`` whatever
the number of candidates, and about ``log2(n) - 11`` programs are compiled.  When an octave holds more than
``per_octave`` (default 128) distinct candidates, ``per_octave`` of them, evenly spaced in
``log m``, are evaluated (a cap; pass ``per_octave=len(x)`` for the exhaustive search).

The hurwitz zeta ``ζ(s, q) = Σ_{k>=0} (q + k)^(-s)`` is summed directly for 16 terms and the rest
by Euler-Maclaurin with 8 Bernoulli corrections (:func:`hurwitz_zeta`; relative error below
``1e-13`` against mpmath for ``1 < s <= 6``, ``q >= 1``); it is plain ``jax.numpy``
arithmetic, so its derivatives in ``s`` (the likelihood's Newton steps, the standard error) come
from forward-mode differentiation of a fixed expansion (``jax.scipy.special.zeta`` computes the
same function).

Example:
    >>> import numpy as np
    >>> x = (1.0 - np.random.default_rng(0).uniform(size=20_000)) ** (-1.0 / 1.5)  # alpha = 2.5
    >>> fit = powerlaw_fit(x, 1.0)
    >>> round(fit.alpha, 2), fit.n_tail
    (2.49, 20000)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.numerics import host_float
from goodhart_jax.validation import check_param, check_positive_int, is_concrete

__all__ = ["PowerLawFit", "powerlaw_fit", "hurwitz_zeta", "candidate_count", "candidate_tails"]

_Z_TERMS = 16
# B_2j / (2j)!, j = 1..8
_BERNOULLI = (1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0, -1.0 / 1209600.0, 1.0 / 47900160.0,
              -691.0 / 1307674368000.0, 1.0 / 74724249600.0, -3617.0 / 10670622842880000.0)
_ALPHA_MAX = 50.0
_SMALL_OCTAVE = 12


class PowerLawFit(NamedTuple):
    """A power-law fit ``p(x) ∝ x^(-alpha)``, ``x >= xmin`` (:func:`powerlaw_fit`).

    Attributes:
        alpha: the maximum-likelihood exponent.
        alpha_se: its standard error.
        xmin: the lower end of the fitted tail (given, or chosen by the KS distance).
        n_tail: the number of points ``x >= xmin``.
        ks: the Kolmogorov-Smirnov distance between the tail data and the fitted law.
        discrete: whether the discrete (Hurwitz-zeta) law was fitted.
    """

    alpha: float
    alpha_se: float
    xmin: float
    n_tail: int
    ks: float
    discrete: bool


# --- the Hurwitz zeta function ----------------------------------------------------------------


def hurwitz_zeta(s, q) -> jax.Array:
    """The Hurwitz zeta function ``ζ(s, q) = Σ_{k>=0} (q + k)^(-s)``, ``s > 1``, ``q > 0``.

    Math: ``Σ_{k<16} (q+k)^(-s) + a^(1-s)/(s-1) + a^(-s)/2
    + Σ_{j=1..8} B_2j/(2j)! (s)_(2j-1) a^(-s-2j+1)`` with ``a = q + 16`` (Euler-Maclaurin;
    ``(s)_r`` the rising factorial).  Pure ``jax.numpy``: differentiable in ``s`` and ``q``.

    Example:
        >>> import math
        >>> round(float(hurwitz_zeta(2.0, 1.0)), 14) == round(math.pi ** 2 / 6, 14)
        True
    """
    s, q = jnp.asarray(s), jnp.asarray(q)
    head = sum(jnp.exp(-s * jnp.log(q + k)) for k in range(_Z_TERMS))
    a = q + _Z_TERMS
    la = jnp.log(a)
    tail = jnp.exp((1.0 - s) * la) / (s - 1.0) + 0.5 * jnp.exp(-s * la)
    rising = s  # (s)_(2j-1)
    for j, b in enumerate(_BERNOULLI, start=1):
        tail = tail + b * rising * jnp.exp((-s - 2 * j + 1) * la)
        rising = rising * (s + 2 * j - 1) * (s + 2 * j)
    return head + tail


def _zeta_derivatives(s, q):
    """``ζ(s, q)``, ``∂_s ζ`` and ``∂²_s ζ`` by forward-mode differentiation (small programs)."""
    def first(t):
        return jax.jvp(lambda u: hurwitz_zeta(u, q), (t,), (jnp.ones_like(t),))

    (z, dz), (_, ddz) = jax.jvp(first, (s,), (jnp.ones_like(s),))
    return z, dz, ddz


def _discrete_alpha(mean_log, q, n):
    """The discrete MLE and its standard error for one tail (vmapped over candidates).

    Newton's method on the concave log-likelihood per point
    ``l(a) = -a mean_log - log ζ(a, q)``: ``l' = -mean_log - ζ'/ζ``,
    ``l'' = -(ζ''/ζ - (ζ'/ζ)^2)`` (minus the variance of ``log X``), steps clipped to 0.5,
    30 steps from the continuous approximation of eq. 3.7.
    """
    a0 = 1.0 + 1.0 / jnp.maximum(mean_log - jnp.log(q - 0.5), 1e-3)
    a0 = jnp.clip(a0, 1.0 + 1e-6, _ALPHA_MAX)

    def step(_, a):
        z, dz, ddz = _zeta_derivatives(a, q)
        g = -mean_log - dz / z
        h = -(ddz / z - (dz / z) ** 2)
        delta = jnp.clip(-g / jnp.minimum(h, -1e-300), -0.5, 0.5)
        return jnp.clip(a + delta, 1.0 + 1e-9, _ALPHA_MAX)

    alpha = jax.lax.fori_loop(0, 30, step, a0)
    z, dz, ddz = _zeta_derivatives(alpha, q)
    return alpha, 1.0 / jnp.sqrt(n * (ddz / z - (dz / z) ** 2))


_discrete_alphas = jax.jit(jax.vmap(_discrete_alpha))


def _rank_counts(y):
    """For ``y`` descending: the numbers of points ``> y_j`` and ``>= y_j`` (ties counted),
    in ``O(n)``: the start and the end of each run of equal values."""
    n = y.shape[0]
    j = jnp.arange(n)
    new_run = jnp.concatenate([jnp.ones(1, bool), y[1:] != y[:-1]])
    run_ends = jnp.concatenate([y[1:] != y[:-1], jnp.ones(1, bool)])
    gt = jax.lax.cummax(jnp.where(new_run, j, 0))
    ge = jax.lax.cummin(jnp.where(run_ends, j + 1, n), reverse=True)
    return gt.astype(y.dtype), ge.astype(y.dtype)


def _ks_one(y, gt, ge, m, alpha, xmin, discrete, log_y=None):
    """The KS distance of one candidate: ``y`` points (or distinct values) of the sample,
    ``gt``/``ge`` the numbers of sample points ``>``/``>=`` each, ``m`` the tail size; the
    entries ``y >= xmin`` are the tail; ``log_y``: ``log y`` where valid (continuous)."""
    valid = y >= xmin
    yv = jnp.where(valid, y, xmin)
    if log_y is None and not discrete:
        log_y = jnp.log(yv)
    if discrete:
        zq = hurwitz_zeta(alpha, xmin)
        s_at = hurwitz_zeta(alpha, yv) / zq  # P(X >= y)
        s_after = hurwitz_zeta(alpha, yv + 1.0) / zq  # P(X > y)
    else:
        s_at = jnp.exp(-(alpha - 1.0) * (log_y - jnp.log(xmin)))
        s_after = s_at
    # at a point y of the tail the empirical P(X > y) is gt / m and P(X >= y) is ge / m: the
    # two sides of the jump there (and, discrete, the fit's value just below the next point up)
    d = jnp.maximum(jnp.abs(s_after - gt / m), jnp.abs(s_at - ge / m))
    return jnp.max(jnp.where(valid, d, 0.0))


def _ks_block(y, gt, ge, m, alpha, xmin, discrete: bool):
    log_y = None if discrete else jnp.log(jnp.maximum(y, jnp.min(xmin)))
    return jax.lax.map(lambda c: _ks_one(y, gt, ge, c[0], c[1], c[2], discrete, log_y),
                       (m, alpha, xmin), batch_size=16)


_ks_block_jit = jax.jit(_ks_block, static_argnums=(6,))


def _fixed_core(y, xmin, discrete: bool):
    """The fit at ``xmin`` from the sample sorted in descending order (``-inf`` padding last)."""
    x = y
    mask = x >= xmin
    n = jnp.sum(mask)
    nf = n.astype(x.dtype)
    logs = jnp.where(mask, jnp.log(jnp.where(mask, x, xmin)), 0.0)
    if discrete:
        alpha, se = _discrete_alpha(jnp.sum(logs) / nf, xmin, nf)
    else:
        alpha = 1.0 + nf / (jnp.sum(logs) - nf * jnp.log(xmin))
        se = (alpha - 1.0) / jnp.sqrt(nf)
    gt, ge = _rank_counts(y)
    return alpha, se, n, _ks_one(y, gt, ge, nf, alpha, xmin, discrete)


_fixed_core_jit = jax.jit(_fixed_core, static_argnums=(2,))


# --- the xmin search --------------------------------------------------------------------------


def _pow2(k: int, least: int = 8) -> int:
    return max(least, 1 << max(0, (int(k) - 1).bit_length()))


def _candidates(xd: np.ndarray, min_tail: int, per_octave: int) -> np.ndarray:
    """Tail sizes ``m`` of the candidates ``xmin = xd[m - 1]`` (``xd`` descending), capped."""
    ends = np.flatnonzero(np.append(xd[:-1] > xd[1:], True)) + 1  # m: the last of each value
    ends = ends[(ends >= min_tail) & (xd[ends - 1] < xd[0])]
    if ends.size == 0:
        return ends
    octave = np.ceil(np.log2(ends)).astype(int)
    keep = []
    for b in np.unique(octave):
        group = ends[octave == b]
        if group.size > per_octave:
            pos = np.unique(np.round(np.linspace(0, group.size - 1, per_octave)).astype(int))
            group = group[pos]
        keep.append(group)
    return np.concatenate(keep)


def candidate_tails(x, *, min_tail: int = 10, per_octave: int = 128) -> np.ndarray:
    """The tail sizes ``n_tail`` of the candidate ``xmin`` that :func:`powerlaw_fit` evaluates for
    ``x`` (each candidate is ``xmin = `` the ``n_tail``-th largest positive point), ascending.

    Math: distinct values leaving at least ``min_tail`` points at or above them (not the
    largest), at most ``per_octave`` per octave of the tail size.

    Example:
        >>> candidate_tails([1.0, 2.0, 2.0, 3.0] * 5, min_tail=2).tolist()
        [15, 20]
    """
    xd = np.sort(np.asarray(host_float(x), dtype=np.float64))[::-1]
    min_tail = check_positive_int("min_tail", min_tail, minimum=2, owner="candidate_tails")
    per_octave = check_positive_int("per_octave", per_octave, owner="candidate_tails")
    return _candidates(xd[xd > 0], min_tail, per_octave)


def candidate_count(x, *, min_tail: int = 10, per_octave: int = 128) -> int:
    """The number of candidate ``xmin`` :func:`powerlaw_fit` evaluates for ``x``
    (:func:`candidate_tails`' length).

    Example:
        >>> candidate_count([1.0, 2.0, 2.0, 3.0] * 5, min_tail=2)
        2
    """
    return int(candidate_tails(x, min_tail=min_tail, per_octave=per_octave).size)


def _search(xd: np.ndarray, discrete: bool, min_tail: int, per_octave: int):
    """(KS distances, alphas, standard errors, tail sizes) of the candidates, or None."""
    ms = _candidates(xd, min_tail, per_octave)
    if ms.size == 0:
        return None
    xmins = xd[ms - 1]
    lx = np.log(xd)
    if discrete:
        c = ms.size
        pad = _pow2(c, 1)
        alphas, ses = _discrete_alphas(
            jnp.asarray(np.pad(np.cumsum(lx)[ms - 1] / ms, (0, pad - c), mode="edge")),
            jnp.asarray(np.pad(xmins, (0, pad - c), mode="edge")),
            jnp.asarray(np.pad(ms, (0, pad - c), mode="edge").astype(xd.dtype)))
        alphas, ses = np.asarray(alphas)[:c], np.asarray(ses)[:c]
    else:
        alphas = 1.0 + ms / (np.cumsum(lx)[ms - 1] - ms * lx[ms - 1])
        ses = (alphas - 1.0) / np.sqrt(ms)
    # distinct values, descending, with the numbers of points above and at-or-above each
    starts = np.flatnonzero(np.insert(xd[1:] < xd[:-1], 0, True))
    values = xd[starts]
    gt = starts.astype(xd.dtype)
    ge = np.append(starts[1:], xd.shape[0]).astype(xd.dtype)
    ks = np.empty(ms.size)
    # tails of up to 2^12 points share one block (one program to compile, little work)
    octave = np.maximum(np.ceil(np.log2(ms)).astype(int), _SMALL_OCTAVE)
    for b in np.unique(octave):
        idx = np.flatnonzero(octave == b)
        # the distinct values in the tails of this octave's candidates
        count = int(np.searchsorted(-values, -xmins[idx].min(), side="right"))
        size = _pow2(count, 1 << _SMALL_OCTAVE)
        pad = size - count
        pad_value = 0.5 * float(values[count - 1])
        top = np.pad(values[:count], (0, pad), constant_values=pad_value)
        sel = np.pad(idx, (0, _pow2(idx.size) - idx.size), mode="edge")
        out = _ks_block_jit(jnp.asarray(top), jnp.asarray(np.pad(gt[:count], (0, pad))),
                            jnp.asarray(np.pad(ge[:count], (0, pad))),
                            jnp.asarray(ms[sel].astype(xd.dtype)), jnp.asarray(alphas[sel]),
                            jnp.asarray(xmins[sel]), discrete)
        ks[idx] = np.asarray(out)[:idx.size]
    return ks, alphas, ses, ms


# --- the public fit ---------------------------------------------------------------------------


def powerlaw_fit(x, xmin=None, *, discrete: bool = False, min_tail: int = 10,
                 per_octave: int = 128) -> PowerLawFit:
    """Fit a power law ``p(x) ∝ x^(-alpha)``, ``x >= xmin``, by maximum likelihood.

    Math: continuous ``alpha = 1 + n / Σ_{x_i >= xmin} log(x_i / xmin)``,
    ``se = (alpha - 1) / sqrt(n)`` (Clauset, Shalizi & Newman 2009, eqs. 3.1-3.2); discrete:
    ``alpha = argmax -n log ζ(alpha, xmin) - alpha Σ log x_i`` (eq. 3.5),
    ``se = 1 / sqrt(n ∂²_alpha log ζ(alpha, xmin))`` (eq. 3.6); ``xmin = None``: the candidate
    (a distinct value of ``x``) minimising the KS distance ``max_{x >= xmin} |S(x) - P(x)|``
    between the tail data and its fitted law (their section 3.3), searched as the module
    docstring describes (at most ``per_octave`` candidates per doubling of the tail size).

    With ``xmin`` given the fit is ``jax.jit``-traceable (the result's fields are then arrays);
    the search for ``xmin`` runs on concrete data.

    Args:
        x: the sample (one-dimensional, finite; integers at and above ``xmin`` for
            ``discrete``).  Points ``<= 0`` are never in the tail (``xmin > 0``); the search
            ignores them.
        xmin: the lower end of the tail (``> 0``; an integer ``>= 1`` for ``discrete``), or
            ``None`` to choose it.
        discrete: fit the discrete (Hurwitz-zeta) law of integer data.
        min_tail: the fewest tail points a candidate ``xmin`` may leave (``>= 2``).
        per_octave: the most candidates evaluated per doubling of the tail size (``>= 1``).

    Returns:
        A :class:`PowerLawFit` (Python numbers, or arrays under tracing).

    Raises:
        ValueError: ``x`` not one-dimensional, not finite, or too short; ``xmin`` not positive
            (or not an integer for ``discrete``); fewer than 2 points ``>= xmin``; tail points not
            integers for ``discrete``; bad ``min_tail``/``per_octave``; no candidate ``xmin``.

    Example:
        >>> import numpy as np
        >>> x = np.array([1, 1, 1, 2, 2, 3, 5, 8, 13, 40] * 20)
        >>> fit = powerlaw_fit(x, 1, discrete=True)
        >>> round(fit.alpha, 4), fit.n_tail, fit.discrete
        (1.5793, 200, True)
    """
    owner = "powerlaw_fit"
    x = host_float(x)
    if x.ndim != 1:
        raise ValueError(f"{owner}: x must be one-dimensional, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{owner}: x needs at least 2 points, got {x.shape[0]}")
    min_tail = check_positive_int("min_tail", min_tail, minimum=2, owner=owner)
    per_octave = check_positive_int("per_octave", per_octave, owner=owner)
    concrete = is_concrete(x)
    if concrete:
        check_param("x", x, owner=owner)
    if xmin is None:
        if not concrete:
            raise ValueError(f"{owner}: x must be concrete to choose xmin (pass xmin= to trace)")
        return _fit_searching(np.asarray(x, dtype=np.float64), discrete, min_tail, per_octave)
    if is_concrete(xmin):
        check_param("xmin", xmin, lo=0.0, lo_open=True, owner=owner)
        if discrete and (float(xmin) != math.floor(float(xmin)) or float(xmin) < 1):
            raise ValueError(f"{owner}: xmin must be an integer >= 1 for discrete data, got {xmin!r}")
    # (concrete: a NumPy scalar, which the compiled call takes without a device_put of its own)
    xmin_arr = (np.asarray(xmin, dtype=x.dtype) if concrete and is_concrete(xmin)
                else jnp.asarray(xmin, dtype=x.dtype))
    if concrete:
        tail = np.asarray(x)[np.asarray(x) >= float(xmin)]
        if tail.size < 2:
            raise ValueError(f"{owner}: xmin leaves {tail.size} point(s) of x at or above it; "
                             f"at least 2 are needed (xmin = {float(xmin):g}, max(x) = "
                             f"{float(np.max(np.asarray(x))):g})")
        if discrete and not np.all(tail == np.round(tail)):
            bad = tail[tail != np.round(tail)][0]
            raise ValueError(f"{owner}: x must be integers at and above xmin for discrete=True, "
                             f"got {bad:g}")
    if concrete:  # the tail only, sorted by NumPy (XLA's CPU sort is ~50x slower), padded
        # below xmin: one compiled program per power-of-two tail length
        size = max(64, 1 << (int(tail.size) - 1).bit_length())
        y = np.pad(np.sort(tail)[::-1], (0, size - tail.size), constant_values=-np.inf)
    else:
        y = jnp.flip(jnp.sort(x))
    out = _fixed_core_jit(y, xmin_arr, bool(discrete))
    if not concrete:
        return PowerLawFit(*out[:2], xmin_arr, *out[2:], discrete)
    alpha, se, n, ks = jax.device_get(out)  # one transfer for the four numbers
    return PowerLawFit(float(alpha), float(se), float(xmin), int(n), float(ks), discrete)


def _fit_searching(x: np.ndarray, discrete: bool, min_tail: int, per_octave: int) -> PowerLawFit:
    owner = "powerlaw_fit"
    if not np.all(x > 0):
        x = x[x > 0]
    xd = np.sort(x)[::-1]
    if discrete and not np.all(xd == np.round(xd)):
        bad = xd[xd != np.round(xd)][0]
        raise ValueError(f"{owner}: x must be integers for discrete=True, got {bad:g}")
    found = _search(xd, discrete, min_tail, per_octave) if xd.size >= min_tail else None
    if found is None:
        raise ValueError(f"{owner}: no candidate xmin leaves at least min_tail = {min_tail} "
                         f"points of x above it (with more than one distinct value)")
    ks, alphas, ses, ms = found
    best = int(np.argmin(np.where(np.isfinite(ks), ks, np.inf)))
    return PowerLawFit(float(alphas[best]), float(ses[best]), float(xd[ms[best] - 1]),
                       int(ms[best]), float(ks[best]), bool(discrete))
