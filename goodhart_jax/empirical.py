"""Laws fitted to data: ``Empirical.fit(samples)``, a smooth body spliced to generalized-Pareto tails.

A fitted :class:`Empirical` is a :class:`~goodhart_jax.Distribution` like any other (a pytree:
its arrays are leaves), so it serves as the value ``V`` or the error ``X`` of the exact
conditioning, best-of-n, the samplers and the regime theory; its density is smooth (C2 at the
splices), so the exact quadrature is exact for it too (see docs/empirical.md).  It has three
pieces:

* **the upper tail**: above a threshold ``u`` (the ``(k+1)``-th largest sample), the ``k`` excesses
  ``y = x - u`` are fitted by a generalized Pareto law ``GPD(xi, sigma)`` (maximum likelihood),
  and ``S(x) = (k / n) S_GPD(x - u)`` there;
* **the lower tail**: the same for ``-x`` below a lower threshold;
* **the body**: between the thresholds, ``F(x) = m_L + c (Phi(z(x)) - Phi(z_lo))`` with
  ``x(z)`` a Chebyshev polynomial on ``[z_lo, z_hi]`` fitted by weighted least squares to the
  data's quantiles on up to 256 knots, of the lowest degree whose ``F`` is within one standard
  error (rms) of the data's at the knots, with ``x`` and its first three derivatives fixed at
  the splices so that the density and its first two derivatives are continuous there.

Threshold rule (:func:`tail_count`): ``k = max(30, min(ceil(n^(2/3)), floor(n / 20)))`` order
statistics above the threshold (``k / n -> 0`` and ``k -> inf``, as the GPD approximation of the
excesses needs; at most 5% of the data per tail).  ``tail_fraction=`` or an explicit
``upper_threshold=`` / ``lower_threshold=`` overrides it; fewer than 30 points above a threshold
is refused.  One-sided data (every sample ``>= 0``) get a lower tail too (its ``xi < 0``: the
support starts near the smallest sample); ``lower_tail=False`` / ``upper_tail=False`` leave a
free end.

Tail fit (:func:`fit_generalized_pareto`): Grimshaw's (1993) reduction of the two-parameter
likelihood to one dimension, in ``theta = xi / sigma``: for fixed ``theta`` the likelihood is
maximised by ``xi(theta) = mean(log(1 + theta y))``, ``sigma = xi / theta``, leaving the profile
``l(theta) = -k log sigma(theta) - k (1 + xi(theta))``; a coarse 12-point grid spanning
``theta > -1 / max y`` (``xi >= -1``, where the maximum likelihood estimate exists) brackets its
maximum, safeguarded Newton steps on ``l'(theta)`` (bisection where a step would leave the
bracket) find it, and Newton steps on the full likelihood polish it.  Above 512 excesses that
search runs on a strided subsample of 256 only, to start plain Newton steps over all of them
(one fused pass each, 5-6 in all), and runs on all of them only where those do not converge.  Standard errors
come from the observed information (the inverse of the negative Hessian of the log-likelihood at
the estimate); the 95% interval for ``xi`` is ``xi +- 1.96 se``.

Math: with ``m_U = k_U / n``, ``m_L = k_L / n``: ``S(x) = m_U S_GPD(x - u_U)`` for ``x > u_U``,
``F(x) = m_L S_GPD'(u_L - x)`` for ``x < u_L``, the body between; the mean is the body's
``c ∫ x(z) phi(z) dz`` (Gauss-Legendre, 64 nodes) plus ``m_U E[u_U + Y_U] - m_L E[-u_L + Y_L]``.

Spec syntax (``parse_dist``): ``empirical(FILE)`` with ``FILE`` a ``.npy`` array or a text file
of one number per line (one column of a CSV, optionally under a header line), quoted or bare:
``empirical(scores.npy)``, ``empirical('data/scores.csv')``.

Example:
    >>> import numpy as np, goodhart_jax as gj
    >>> x = np.random.default_rng(0).standard_normal(20_000)
    >>> law = gj.Empirical.fit(x)
    >>> law.upper_tail.count, law.lower_tail.count  # the threshold rule: ceil(20000^(2/3))
    (737, 737)
    >>> bool(abs(float(law.mean()) - x.mean()) < 0.01)
    True
"""

from __future__ import annotations

import ast
import math
import os
import re
import statistics
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri
import numpy as np

from goodhart_jax.distributions import FAMILIES, POSITIVE, Constraint, Distribution, Tail
from goodhart_jax.numerics import as_float, expm1_ratio, float_dtype, log1mexp
from goodhart_jax.quadrature import gauss_legendre
from goodhart_jax.special import log_ndtr
from goodhart_jax.validation import is_concrete

__all__ = ["Empirical", "GPDFit", "tail_count", "fit_generalized_pareto", "read_samples"]

#: The fewest points above a tail threshold that a tail is fitted to.
MIN_TAIL = 30
#: The default number of body knots (quantiles of the data between the thresholds).
KNOTS = 256
# Φ(-1), Φ(0), Φ(1): the bulk's quantiles
_BULK_P = (0.15865525393145707, 0.5, 0.8413447460685429)
_Z95 = 1.959963984540054


# --- the threshold rule and the tail fit (host, float64) ------------------------------------


def tail_count(n: int) -> int:
    """The number ``k`` of order statistics above a tail threshold for ``n`` samples.

    Math: ``k = max(30, min(ceil(n^(2/3)), floor(n / 20)))``.

    Example:
        >>> [tail_count(n) for n in (600, 10_000, 1_000_000)]
        [30, 465, 10000]
    """
    n = int(n)
    return max(MIN_TAIL, min(math.ceil(n ** (2.0 / 3.0) - 1e-9), n // 20))


def _log1p_over(z, xp=np):
    """``log1p(z) / z`` (1 at ``z = 0``; a series for ``|z| < 1e-4``)."""
    small = xp.abs(z) < 1e-4
    zs = xp.where(small, 1.0, z)
    return xp.where(small, 1.0 - z / 2.0 + z * z / 3.0 - z ** 3 / 4.0, xp.log1p(zs) / zs)


def _series(z, coef, direct, xp=np):
    """``direct(z)`` for ``|z| >= 0.01``, else ``Σ_j coef(j) z^j`` (12 terms)."""
    small = xp.abs(z) < 0.01
    zs = xp.where(small, z, 0.0)
    poly = xp.zeros_like(zs)
    for j in range(11, -1, -1):
        poly = poly * zs + coef(j)
    zd = xp.where(small, 0.5, z)
    return xp.where(small, poly, direct(zd))


def _f1(z, xp=np):
    """``(log1p(z) - z / (1 + z)) / z^2`` (-> 1/2 at 0)."""
    return _series(z, lambda j: (-1) ** j * (j + 1) / (j + 2),
                   lambda z: (xp.log1p(z) - z / (1.0 + z)) / z ** 2, xp)


def _g3(z, xp=np):
    """``(-2 log1p(z) + 2 z / (1 + z) + z^2 / (1 + z)^2) / z^3`` (-> -2/3 at 0)."""
    return _series(z, lambda j: (-1) ** (j + 3) * (j + 2) * (j + 1) / (j + 3),
                   lambda z: (-2.0 * xp.log1p(z) + 2.0 * z / (1.0 + z)
                              + z * z / (1.0 + z) ** 2) / z ** 3, xp)


def _gpd_loglik(xi, sigma, y, k):
    """The log-likelihood of excesses ``y`` (``k`` of them, then zeros: a zero adds nothing);
    ``-inf`` outside the parameter space."""
    ok = (sigma > 0) & jnp.isfinite(xi)
    s = jnp.where(ok, sigma, 1.0)
    z = xi * y / s
    ok = ok & jnp.all(1.0 + z > 0)
    zs = jnp.where(1.0 + z > 0, z, 0.0)
    ll = -k * jnp.log(s) - jnp.sum(jnp.log1p(zs)) - jnp.sum(y / s * _log1p_over(zs, jnp))
    return jnp.where(ok, ll, -jnp.inf)


def _gpd_derivatives(xi, sigma, y, k):
    """Gradient and Hessian of the log-likelihood in ``(xi, sigma)`` (stable through ``xi = 0``;
    zero-padded ``y`` as in :func:`_gpd_loglik`).

    Math: with ``u = y / sigma``, ``z = xi u``, ``A = 1 + z``:
    ``l_xi = Σ u^2 f1(z) - Σ u / A``, ``l_sigma = (-k + (1 + xi) Σ u / A) / sigma``,
    ``l_xixi = Σ u^3 g3(z) + Σ u^2 / A^2``, ``l_xisigma = (Σ u / A - (1 + xi) Σ u^2 / A^2) / sigma``,
    ``l_sigmasigma = (k - 2 (1 + xi) Σ u / A + xi (1 + xi) Σ u^2 / A^2) / sigma^2``.
    """
    u = y / sigma
    z = xi * u
    a = 1.0 + z
    su_a = jnp.sum(u / a)
    su2_a2 = jnp.sum(u * u / (a * a))
    g = jnp.stack([jnp.sum(u * u * _f1(z, jnp)) - su_a, (-k + (1.0 + xi) * su_a) / sigma])
    return g, _gpd_hessian(xi, sigma, k, su_a, su2_a2, jnp.sum(u ** 3 * _g3(z, jnp)))


def _gpd_hessian(xi, sigma, k, su_a, su2_a2, su3_g3):
    """The log-likelihood's Hessian in ``(xi, sigma)`` from the sums ``Σ u / A``,
    ``Σ u^2 / A^2`` and ``Σ u^3 g3(z)`` (``u = y / sigma``, ``z = xi u``, ``A = 1 + z``)."""
    h_xx = su3_g3 + su2_a2
    h_xs = (su_a - (1.0 + xi) * su2_a2) / sigma
    h_ss = (k - 2.0 * (1.0 + xi) * su_a + xi * (1.0 + xi) * su2_a2) / sigma ** 2
    return jnp.stack([jnp.stack([h_xx, h_xs]), jnp.stack([h_xs, h_ss])])


def _profile(theta, y, k):
    """Grimshaw's profile: ``(l(theta), xi(theta), sigma(theta))`` for ``theta`` of any shape
    (zero-padded ``y``, ``k`` excesses)."""
    z = theta[..., None] * y
    valid = jnp.all(z > -1.0, axis=-1)
    zs = jnp.where(z > -1.0, z, 0.0)
    sigma = jnp.sum(y * _log1p_over(zs, jnp), axis=-1) / k
    xi = theta * sigma
    ok = valid & (sigma > 0) & (xi >= -1.0)
    ll = -k * jnp.log(jnp.where(ok, sigma, 1.0)) - k * (1.0 + xi)
    ok = ok & jnp.isfinite(ll)
    return jnp.where(ok, ll, -jnp.inf), xi, sigma


# the profile's coarse grid (12 points): theta in (-1/ymax, 0) by 1 + theta ymax in
# {1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9} (times 1/ymax), -1e-4/ybar, 0, and theta ybar in
# {1e-2, 1, 1e2, 1e6}: it brackets the maximum, which safeguarded Newton steps on the profile's
# score then find (each step one pass over the excesses; the 34-point grid and 56 golden-section
# steps before took ~90 passes).  On 101 check cases (GPD xi from -0.9 to 2, k from 30 to
# 10,000, and the tails of exponential, normal, |t(2)|, uniform and lognormal samples) the
# estimates matched the grid-and-golden-section version's to 1.6e-8 (xi relative to
# max(1, |xi|), sigma relative) with log-likelihoods equal to 2e-15 relative
# (tests/test_empirical.py::test_gpd_fit_matches_the_grid_search and its slow version)
_NEG_W = np.array([1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9])
_POS = np.array([1e-2, 1.0, 1e2, 1e6])
_PROFILE_STEPS = 50
_TERMS = 9  # series terms for |z| < 0.01 (the remainder is below 1e-18)
_C_LOG = np.array([(-1) ** j / (j + 1) for j in range(_TERMS)])
_C_F1 = np.array([(-1) ** j * (j + 1) / (j + 2) for j in range(_TERMS)])
_C_G3 = np.array([(-1) ** (j + 3) * (j + 2) * (j + 1) / (j + 3) for j in range(_TERMS)])


def _horner(coef, z):
    p = jnp.full_like(z, coef[-1])
    for c in coef[-2::-1]:
        p = p * z + c
    return p


def _profile_score(theta, y, k):
    """``(ok, l/k, l'/k, l''/k, xi, sigma, H)`` of Grimshaw's profile at a scalar ``theta`` in
    one fused pass (``ok``: the profile is finite there, as :func:`_profile` says; every sum is
    one row of a single reduction, so the excesses are read once); ``H`` is the Hessian of the
    full log-likelihood in ``(xi, sigma)`` at the profile's point ``(xi(theta), sigma(theta))``
    (the same sums, as :func:`_gpd_derivatives` computes it).

    Math: with ``z = theta y``, ``sigma = mean(y log1p(z) / z)``, ``xi = theta sigma``,
    ``A = mean(y^2 f1(z))``: ``l / k = -log sigma - 1 - xi``,
    ``l' / k = A / sigma - mean(y / (1 + z))`` and
    ``l'' / k = mean(y^3 g3(z)) / sigma + (A / sigma)^2 + mean(y^2 / (1 + z)^2)``
    (``xi - theta xi' = theta^2 A`` and ``sigma' = -A``; stable through ``theta = 0``).
    """
    z = theta * y
    inside = z > -1.0
    zs = jnp.where(inside, z, 0.0)
    small = jnp.abs(zs) < 0.01
    zd = jnp.where(small, 0.5, zs)
    lg = jnp.log1p(zd)
    ad = 1.0 / (1.0 + zd)
    r = 1.0 / zd
    w = lg - zd * ad
    lo = jnp.where(small, _horner(_C_LOG, zs), lg * r)
    f1 = jnp.where(small, _horner(_C_F1, zs), w * r * r)
    g3 = jnp.where(small, _horner(_C_G3, zs), (-2.0 * w + zd * zd * ad * ad) * r * r * r)
    a = 1.0 / (1.0 + zs)
    yy = y * y
    sums = jnp.sum(jnp.stack([y * lo, yy * f1, y * a, yy * y * g3, yy * a * a,
                              jnp.where(inside, 0.0, 1.0)]), axis=1)
    sigma = sums[0] / k
    xi = theta * sigma
    ok = (sums[5] == 0) & (sigma > 0) & (xi >= -1.0)
    ll = -jnp.log(jnp.where(ok, sigma, 1.0)) - 1.0 - xi
    ok = ok & jnp.isfinite(ll)
    ratio = sums[1] / k / sigma
    # the full likelihood's Hessian there (u = y / sigma, so z = xi u): sums of u^p g(z)
    hess = _gpd_hessian(xi, sigma, k, sums[2] / sigma, sums[4] / (sigma * sigma),
                        sums[3] / sigma ** 3)
    return (ok, ll, ratio - sums[2] / k,
            sums[3] / k / sigma + ratio * ratio + sums[4] / k, xi, sigma, hess)


def _gpd_fit_robust(y, k, ybar, ymax, polish_steps: int):
    """The fit on zero-padded excesses ``y``: a coarse profile grid, safeguarded Newton on the
    profile's score, Newton polish; returns ``(xi, sigma, loglik, hessian)``."""
    grid = jnp.sort(jnp.concatenate([
        -(1.0 - jnp.asarray(_NEG_W)) / ymax,
        jnp.stack([-1e-4 / ybar, jnp.zeros(())]),
        jnp.asarray(_POS) / ybar]))
    ll, _, _ = _profile(grid, y, k)
    i = jnp.argmax(ll)
    t0 = grid[i]

    def newton(s):
        it, a, b, t, _ = s
        ok, _, g, h, _, _, _ = _profile_score(t, y, k)
        # the maximum is right of t where the score is positive or t is outside the domain
        # (only small theta are: xi(theta) < -1 or 1 + theta y <= 0)
        right = ~ok | (g > 0)
        a, b = jnp.where(right, t, a), jnp.where(right, b, t)
        step = t - g / h
        inside = ok & (h < 0) & jnp.isfinite(step) & (step > a) & (step < b)
        done = inside & (jnp.abs(step - t) <= 1e-9 * jnp.abs(t)) | (ok & (g == 0))
        # else bisect: geometrically in 1 + theta ymax near -1/ymax, in theta for one sign
        wm = (jnp.sqrt(jnp.abs((1.0 + a * ymax) * (1.0 + b * ymax))) - 1.0) / ymax
        gm = jnp.sign(a) * jnp.sqrt(jnp.abs(a * b))
        mid = jnp.where(a * b > 0, jnp.where((a < 0) & (1.0 + b * ymax < 0.5), wm, gm),
                        0.5 * (a + b))
        return it + 1, a, b, jnp.where(inside, step, mid), done

    _, a, b, t, _ = jax.lax.while_loop(
        lambda s: (s[0] < _PROFILE_STEPS) & ~s[4], newton,
        (jnp.zeros((), jnp.int32), grid[jnp.maximum(i - 1, 0)],
         grid[jnp.minimum(i + 1, grid.size - 1)], t0, jnp.zeros((), bool)))
    # the bracket's ends too: where the maximum is at the domain's edge (xi -> -1), the last
    # point inside it (judged by the score's own ``ok``, as the steps were: near ``xi = -1``
    # another rounding of ``sigma`` can put a point on the other side of the edge)
    oks, lls, _, _, xis, sigmas, _ = jax.vmap(_profile_score, (0, None, None))(
        jnp.stack([t0, t, a, b]), y, k)
    lls = jnp.where(oks, lls, -jnp.inf)
    j = jnp.argmax(lls)
    fin = jnp.isfinite(lls[j])  # no finite profile value: the exponential law
    xi = jnp.where(fin, xis[j], 0.0)
    sigma = jnp.where(fin, sigmas[j], ybar)
    best = _gpd_loglik(xi, sigma, y, k)

    def polish(s):
        i, xi, sigma, best, done = s
        g, h = _gpd_derivatives(xi, sigma, y, k)
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]
        dx = -(h[1, 1] * g[0] - h[0, 1] * g[1]) / det
        ds = -(h[0, 0] * g[1] - h[1, 0] * g[0]) / det
        xn, sn = xi + dx, sigma + ds
        stop = done | ~(det != 0) | ~jnp.isfinite(dx) | ~jnp.isfinite(ds) | (xn < -1.0) | ~(sn > 0)
        ln = _gpd_loglik(jnp.where(stop, xi, xn), jnp.where(stop, sigma, sn), y, k)
        stop = stop | ~(ln >= best)
        return (i + 1, jnp.where(stop, xi, xn), jnp.where(stop, sigma, sn),
                jnp.where(stop, best, ln), stop)

    # (a while loop: the steps stop at the first that leaves the parameter space or does not
    # raise the likelihood, as a loop that breaks there would)
    _, xi, sigma, best, _ = jax.lax.while_loop(
        lambda s: (s[0] < polish_steps) & ~s[4], polish,
        (jnp.zeros((), jnp.int32), xi, sigma, best, jnp.zeros((), bool)))
    _, h = _gpd_derivatives(xi, sigma, y, k)
    return xi, sigma, best, h


# the fast path's start: the robust fit of a strided subsample of at most this many excesses
_SUBSAMPLE = 256
_FAST_STEPS = 8


def _gpd_fit_kernel(y, k, ybar, ymax, polish_steps: int):
    """The fit on zero-padded excesses ``y`` (jitted per padded length); returns
    ``(xi, sigma, loglik, hessian)``.

    Up to ``2 * _SUBSAMPLE`` padded excesses: :func:`_gpd_fit_robust`.  Above, a fast path: the
    robust fit of every ``s``-th excess (``s = size // _SUBSAMPLE``) starts plain Newton steps on
    the profile's score over all of them, each one fused pass; when they converge
    (``|step| <= 1e-10 |theta| + 1e-12 / mean y``, every step inside the domain with
    ``l'' < 0``) the profile point there is the estimate (5-6 passes instead of ~15); otherwise
    (e.g. ``xi`` at the edge ``-1``, or a subsample that misleads) the robust fit of all of them
    (``lax.cond``: only one branch runs).  On 101 check cases the estimates equal the robust
    fit's to 1e-9 (tests/test_empirical.py::test_gpd_fit_matches_the_grid_search).
    """
    size = y.shape[0]
    if size <= 2 * _SUBSAMPLE:
        return _gpd_fit_robust(y, k, ybar, ymax, polish_steps)
    stride = size // _SUBSAMPLE
    ys = y[::stride]
    ks = jnp.ceil(k / stride)  # the subsample's real (unpadded) excesses
    ybar_s, ymax_s = jnp.sum(ys) / ks, jnp.max(ys)
    usable = (ybar_s > 0) & (ymax_s > 0)
    xi_s, sigma_s, _, _ = _gpd_fit_robust(ys, ks, jnp.where(usable, ybar_s, ybar),
                                          jnp.where(usable, ymax_s, ymax), 0)
    t0 = jnp.where(usable & (sigma_s > 0), xi_s / sigma_s, 0.0)
    tol = 1e-12 / ybar

    def step(s):
        it, t = s[0], s[1]
        ok, ll, g, h, xi, sigma, hess = _profile_score(t, y, k)
        tn = t - g / h
        good = ok & (h < 0) & jnp.isfinite(tn) & (1.0 + tn * ymax > 0)
        conv = good & (jnp.abs(tn - t) <= 1e-10 * jnp.abs(t) + tol)
        return it + 1, jnp.where(good & ~conv, tn, t), ~good, conv, xi, sigma, ll, hess

    zero = jnp.zeros(())
    _, _, _, conv, xi, sigma, ll, hess = jax.lax.while_loop(
        lambda s: (s[0] < _FAST_STEPS) & ~s[2] & ~s[3], step,
        (jnp.zeros((), jnp.int32), t0, jnp.zeros((), bool), jnp.zeros((), bool), zero, zero, zero,
         jnp.zeros((2, 2))))
    # converged: the profile's point is the estimate, its pass gave the Hessian too
    return jax.lax.cond(conv, lambda _: (xi, sigma, k * ll, hess),
                        lambda _: _gpd_fit_robust(y, k, ybar, ymax, polish_steps), None)


_gpd_fit_jit = jax.jit(_gpd_fit_kernel, static_argnums=(4,))


def _bucket(k: int) -> int:
    """The padded length for ``k`` excesses: the next of 64, 96, 128, 192, 256, ...
    (``2^j`` and ``3 * 2^(j-1)``), so a new ``k`` rarely compiles anew and pads at most 50%."""
    b = 64
    while b < k:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3
    return b


def fit_generalized_pareto(excesses, *, polish_steps: int = 6) -> tuple[float, float, np.ndarray, float]:
    """Maximum-likelihood generalized Pareto fit of excesses over a threshold (on the host).

    Math: ``S(y) = (1 + xi y / sigma)^(-1/xi)``; Grimshaw's (1993) profile likelihood in
    ``theta = xi / sigma`` (``xi(theta) = mean log(1 + theta y)``, ``sigma = xi / theta``),
    maximised over ``theta > -1 / max y`` with ``xi >= -1`` (a coarse grid, then safeguarded
    Newton steps on its derivative), then Newton steps on ``(xi, sigma)``; covariance: the
    inverse observed information.  Above 512 excesses (padded), that search runs on every
    ``s``-th excess only (256 of them) and starts Newton steps on the profile of all of them,
    which are kept where they converge; otherwise the search runs on all of them.

    Runs as one compiled float64 JAX program (whatever ``jax_enable_x64`` says) on the
    excesses zero-padded to the next length of 64, 96, 128, 192, 256, ... (a zero excess adds
    nothing to the likelihood or its derivatives), so new counts seldom compile anew; the
    validation and the covariance are on the host.  Takes concrete arrays, not traceable.

    Args:
        excesses: the excesses ``y >= 0`` (at least 30, not all equal).
        polish_steps: Newton steps on the full likelihood after the profile search (where it
            ran on all the excesses; the fast path's converged Newton steps need none).

    Returns:
        ``(xi, sigma, cov, loglik)``: ``cov`` the 2x2 covariance of ``(xi, sigma)`` (from the
        expected information ``[[(1+xi)^2, sigma (1+xi)], [sigma (1+xi), 2 sigma^2 (1+xi)]] / k``
        where the observed one is not positive definite, e.g. near ``xi = -1``).

    Raises:
        ValueError: fewer than 30 excesses, a negative or non-finite one, or all equal.

    Example:
        >>> import numpy as np
        >>> y = np.random.default_rng(1).exponential(2.0, 5000)
        >>> xi, sigma, cov, _ = fit_generalized_pareto(y)
        >>> bool(abs(xi) < 3 * np.sqrt(cov[0, 0])), round(sigma, 1)
        (True, 2.0)
    """
    y = np.asarray(excesses, dtype=np.float64).ravel()
    if y.size < MIN_TAIL:
        raise ValueError(f"excesses: at least {MIN_TAIL} points are needed above a tail "
                         f"threshold to fit a generalized Pareto tail, got {y.size}")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError("excesses must be finite and >= 0")
    ybar, ymax = float(np.mean(y)), float(np.max(y))
    if not ymax > 0:
        raise ValueError(f"excesses: all {y.size} points above the tail threshold are equal; "
                         "a generalized Pareto tail cannot be fitted")
    k = y.size
    size = _bucket(k)
    padded = np.zeros(size)
    padded[:k] = y
    with jax.enable_x64(True):
        out = _gpd_fit_jit(padded, float(k), ybar, ymax, int(polish_steps))
        xi, sigma, best, h = (np.asarray(v) for v in out)
    xi, sigma, best = float(xi), float(sigma), float(best)
    info = -h
    cov = None
    if np.all(np.isfinite(info)) and info[0, 0] > 0 and np.linalg.det(info) > 0:
        cov = np.linalg.inv(info)
    if cov is None or not np.all(np.isfinite(cov)) or cov[0, 0] <= 0:
        q = 1.0 + max(xi, -0.999)
        cov = np.array([[q * q, sigma * q], [sigma * q, 2.0 * sigma * sigma * q]]) / k
    return xi, sigma, cov, best


class GPDFit(NamedTuple):
    """A fitted generalized Pareto tail of an :class:`Empirical` law.

    Attributes:
        xi: the shape (tail index; ``xi > 0``: power law ``S ~ x^(-1/xi)``, ``0``: exponential,
            ``< 0``: bounded).
        scale: ``sigma``.
        threshold: ``u`` (the tail is ``x > u`` for the upper tail, ``x < u`` for the lower).
        count: ``k``, the number of samples beyond the threshold.
        n: the sample size (``k / n`` is the tail's probability).
        xi_se: the standard error of ``xi`` (observed information).
        scale_se: the standard error of ``sigma``.
        xi_ci: the 95% confidence interval ``xi +- 1.96 xi_se``.
        cov: the 2x2 covariance of ``(xi, sigma)``.
    """

    xi: float
    scale: float
    threshold: float
    count: int
    n: int
    xi_se: float
    scale_se: float
    xi_ci: tuple[float, float]
    cov: np.ndarray

    @property
    def mass(self) -> float:
        """``k / n``, the tail's probability."""
        return self.count / self.n

    def tail_exponent_ci(self) -> tuple[float, float]:
        """A 95% interval for the power-law exponent ``1 / xi`` (delta method:
        ``se(1/xi) = se(xi) / xi^2``; meaningful for ``xi`` well above 0)."""
        a, se = 1.0 / self.xi, self.xi_se / self.xi ** 2
        return a - _Z95 * se, a + _Z95 * se


# --- the body: a smooth monotone map of the normal scale (host fit, float64) ---------------

#: Candidate degrees of the body's polynomial ``x(z)``, tried in this order.
DEGREES = (3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96)
#: A body whose rms misfit (in standard errors of p) exceeds this is fitted with a warning.
MISFIT_WARNING = 2.0
#: Points of the inversion table ``(z, x(z))`` (a start for Newton's method).
TABLE = 257
_NORMAL = statistics.NormalDist()
_GL64 = gauss_legendre(64)


def _ndtr(z: np.ndarray) -> np.ndarray:
    """``Phi(z)`` (host float64)."""
    return 0.5 * np.vectorize(math.erfc)(-np.asarray(z, np.float64) / math.sqrt(2.0))


def _ndtri(p: np.ndarray) -> np.ndarray:
    """``Phi^-1(p)`` for ``p`` in ``(0, 1)`` (host float64; Wichura's AS241 via the standard
    library; for ``p`` near 1 pass ``1 - p`` and negate, keeping its relative accuracy)."""
    p = np.asarray(p, np.float64)
    return np.vectorize(_NORMAL.inv_cdf)(p)


def _cheb_derivative_matrix(degree: int) -> np.ndarray:
    """``M`` with ``chebder(a) = M @ a`` (shape ``(degree, degree + 1)``)."""
    return np.stack([np.polynomial.chebyshev.chebder(np.eye(degree + 1)[k])
                     for k in range(degree + 1)], axis=1)


class _BodyFit(NamedTuple):
    coef: np.ndarray  # Chebyshev coefficients of x(z) on [z_lo, z_hi]
    degree: int
    rms: float  # root mean square of F - p at the knots, in standard errors of p


def _fit_map(z, x, sd, z_lo, z_hi, x_lo, x_hi, dx_lo, dx_hi, degree):
    """Weighted least squares of ``x(z)`` (degree ``degree``) with ``(x, x', x'')`` fixed at the
    ends where a tail is spliced on (``x_lo`` and ``dx_lo``, ``x_hi`` and ``dx_hi``; a ``dx``
    of ``None`` leaves that end free)."""
    half = 0.5 * (z_hi - z_lo)
    s = (z - 0.5 * (z_lo + z_hi)) / half
    a = np.polynomial.chebyshev.chebvander(s, degree) / sd[:, None]
    rows, rhs = [], []
    ends = np.polynomial.chebyshev.chebvander(np.array([-1.0, 1.0]), degree)
    k = np.arange(degree + 1, dtype=np.float64)
    # T_k(+-1) = (+-1)^k, T_k'(+-1) = (+-1)^(k+1) k^2, T_k''(+-1) = (+-1)^k (k^4 - k^2) / 3,
    # T_k'''(+-1) = (+-1)^(k+1) k^2 (k^2 - 1) (k^2 - 4) / 15
    for row, val, sign, slope in ((ends[0], x_lo, -1.0, dx_lo), (ends[1], x_hi, 1.0, dx_hi)):
        if slope is None:  # a free end (no tail): where the support ends is fitted too
            continue
        rows.append(row)
        rhs.append(val)
        rows.append(sign ** (k + 1) * k * k / half)
        rhs.append(slope[0])
        rows.append(sign ** k * (k ** 4 - k * k) / 3.0 / half ** 2)
        rhs.append(slope[1])
        rows.append(sign ** (k + 1) * k * k * (k * k - 1) * (k * k - 4) / 15.0 / half ** 3)
        rhs.append(slope[2])
    if len(rows) >= degree + 1:
        return None  # no freedom left to fit the data
    # the constraints exactly (null-space method): coef = c0 + N y, y by least squares
    if not rows:  # both ends free
        return np.linalg.lstsq(a, x / sd, rcond=None)[0]
    c = np.array(rows)
    c0 = np.linalg.lstsq(c, np.array(rhs), rcond=None)[0]
    null = np.linalg.svd(c)[2][c.shape[0]:].T
    if null.shape[1] == 0:
        return c0
    y = np.linalg.lstsq(a @ null, x / sd - a @ c0, rcond=None)[0]
    return c0 + null @ y


def _map_and_slope(coef, z, z_lo, z_hi):
    half = 0.5 * (z_hi - z_lo)
    s = (z - 0.5 * (z_lo + z_hi)) / half
    cheb = np.polynomial.chebyshev
    return cheb.chebval(s, coef), cheb.chebval(s, cheb.chebder(coef)) / half


def _fit_body(z, x, p, n, z_lo, z_hi, x_lo, x_hi, dx_lo, dx_hi, c, m_lo) -> _BodyFit:
    """The lowest degree in :data:`DEGREES` whose monotone fit has ``F`` within the data's
    at the knots by a root mean square of at most one standard error ``sqrt(p (1 - p) / n)``
    (else the monotone fit with the smallest)."""
    grid = np.linspace(z_lo, z_hi, 2049)
    best = None
    for degree in DEGREES:
        if degree + 1 > z.size:
            break
        sd = np.ones_like(z)
        for _ in range(2):  # unweighted, then weighted by the quantiles' standard errors
            coef = _fit_map(z, x, sd, z_lo, z_hi, x_lo, x_hi, dx_lo, dx_hi, degree)
            if coef is None:
                break
            fx, dfx = _map_and_slope(coef, z, z_lo, z_hi)
            floor = 0.1 * float(np.median(np.abs(dfx)))  # a non-monotone first pass
            dens = c * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / np.maximum(dfx, floor)
            sd = np.sqrt(p * (1.0 - p) / n) / dens
        if coef is None:
            continue
        xg, dg = _map_and_slope(coef, grid, z_lo, z_hi)
        if not np.all(dg > 0):
            continue  # not monotone
        # the fitted law's F at the knots against the data's, in standard errors of p
        zz = np.interp(x, xg, grid)
        for _ in range(3):
            fz, dz = _map_and_slope(coef, zz, z_lo, z_hi)
            zz = np.clip(zz - (fz - x) / dz, z_lo, z_hi)
        f_fit = m_lo + c * (_ndtr(zz) - _ndtr(z_lo))
        rms = float(np.sqrt(np.mean((f_fit - p) ** 2 / (p * (1.0 - p) / n))))
        if best is None or rms < best.rms:
            best = _BodyFit(coef, degree, rms)
        if rms <= 1.0:
            break
    if best is None:
        raise ValueError("samples: no increasing smooth body fits these samples (degree "
                         f"{DEGREES[0]} to {DEGREES[-1]}); fit both tails (upper_tail=True, "
                         "lower_tail=True) or give more distinct values")
    return best


# --- reading data --------------------------------------------------------------------------


def read_samples(path: str) -> np.ndarray:
    """The samples in ``path``: a ``.npy`` array (one-dimensional, or one column) or a text
    file of one number per line (a one-column CSV, optionally under a header line).

    Raises:
        ValueError: the file is missing or unreadable, has more than one column, or holds
            something that is not a number (the message names the file).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "s.csv")
        >>> _ = open(p, "w").write("score\\n1.5\\n2\\n")
        >>> read_samples(p).tolist()
        [1.5, 2.0]
    """
    where = f"empirical: file {str(path)!r}"
    if not os.path.isfile(path):
        raise ValueError(f"{where} does not exist or is not a file")
    if str(path).lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{where} is not a readable .npy array ({exc})") from None
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(f"{where} must hold a one-dimensional array (or one column), got "
                             f"shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{where} must hold numbers, got dtype {arr.dtype}")
        return arr.astype(np.float64)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} cannot be read ({exc})") from None
    values = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if len(re.split(r"[,;\t]", text)) > 1 or len(text.split()) > 1:
            raise ValueError(f"{where}: line {i + 1} has more than one column ({text!r}); "
                             "expected one number per line")
        try:
            values.append(float(text))
        except ValueError:
            if not values and i == next(j for j, ln in enumerate(lines) if ln.strip()):
                continue  # a header line
            raise ValueError(f"{where}: line {i + 1} is not a number ({text!r})") from None
    return np.asarray(values, dtype=np.float64)


# --- the law ------------------------------------------------------------------------------


class _Unchecked(Constraint):
    """A leaf parameter that is not range-checked (a covariance may hold anything)."""

    __slots__ = ()

    def check(self, name: str, value: Any, owner: str = "") -> Any:
        return value


class _Static(NamedTuple):
    """What the numerics must know at trace time (pytree auxiliary data)."""

    lower_end: bool  # the support is bounded below (no lower tail, or its xi < 0)
    upper_end: bool  # the support is bounded above (no upper tail, or its xi < 0)
    tail: str  # the right-tail class: "heavy", "exponential" or "light"


def _gpd(xi, scale, loc):
    from goodhart_jax.distributions import GeneralizedPareto

    return GeneralizedPareto(xi, scale, loc)


def _gpd_isf(gpd, s):
    """The GPD's inverse survival function at ``s`` in ``(0, 1]``: its own inverse transform
    ``loc + scale expm1(xi E) / xi`` at ``E = -log s`` (:func:`~goodhart_jax.numerics.expm1_ratio`)."""
    return gpd.loc + gpd.scale * expm1_ratio(-jnp.log(s), gpd.xi)


_NEWTON_STEPS = 4


def _clenshaw(coef, s):
    """``Σ_k coef[k] T_k(s)`` (Chebyshev series, Clenshaw's recurrence as one loop: a short
    program to compile whatever the degree)."""
    def step(carry, c):
        b1, b2 = carry
        return (2.0 * s * b1 - b2 + c, b1), None

    zero = jnp.zeros_like(s)
    (b1, b2), _ = jax.lax.scan(step, (zero, zero), coef[:0:-1])
    return s * b1 - b2 + coef[0]


def _phi(z):
    """``Phi(z)`` from its log (accurate in both tails)."""
    return jnp.exp(log_ndtr(z))


class Empirical(Distribution):
    """A law fitted to samples: a smooth monotone body spliced to generalized-Pareto tails.

    Build it with :meth:`fit` (or ``parse_dist("empirical(FILE)")``); the constructor takes the
    fitted pieces.

    Math: ``S(x) = m_U S_GPD(x - u_U; xi_U, sigma_U)`` above ``u_U``,
    ``F(x) = m_L S_GPD'(u_L - x; xi_L, sigma_L)`` below ``u_L``, and between them
    ``F(x) = m_L + c (Phi(z(x)) - Phi(z_lo))``, ``z(x)`` the inverse of the smooth increasing
    polynomial ``x(z)`` on ``[z_lo, z_hi]`` (``c = (1 - m_L - m_U) / (Phi(z_hi) - Phi(z_lo))``,
    1 with both tails; ``m = k / n``).

    Args:
        coef: Chebyshev coefficients of ``x(z)`` on ``[z_lo, z_hi]``.
        zt: ``z`` on an equally spaced table from ``z_lo`` to ``z_hi`` (the ends of the body's
            normal scale).
        xt: ``x(z)`` on that table (its ends are the thresholds, or the smallest / largest
            sample where there is no tail).
        masses: ``(m_L, m_U)``, the tails' probabilities (0 without a tail).
        n: the sample size.
        upper: the upper tail, a ``GeneralizedPareto(xi, scale, loc=u_U)``, or ``None``.
        upper_cov: the 2x2 covariance of its ``(xi, scale)``.
        lower: the lower tail as the law of ``-V``'s excess, ``GeneralizedPareto(xi, scale,
            loc=-u_L)``, or ``None``.
        lower_cov: the 2x2 covariance of its ``(xi, scale)``.

    Example:
        >>> import numpy as np, jax.numpy as jnp, goodhart_jax as gj
        >>> x = np.random.default_rng(0).standard_t(3.0, 100_000)
        >>> law = gj.Empirical.fit(x)
        >>> lo, hi = law.upper_tail.xi_ci
        >>> bool(lo < 1 / 3 < hi)
        True
        >>> u = law.upper_tail.threshold
        >>> bool(jnp.abs(law.log_prob(u - 1e-9) - law.log_prob(u + 1e-9)) < 1e-6)
        True
    """

    name = "empirical"
    constraints = {"n": POSITIVE, "upper": Constraint(leaf=False), "lower": Constraint(leaf=False),
                   "upper_cov": _Unchecked(), "lower_cov": _Unchecked()}
    data_parameters = ("coef", "zt", "xt", "masses", "upper_cov", "lower_cov")
    _static = _Static(False, False, "light")
    _source = None

    def __init__(self, coef, zt, xt, masses, n, upper=None, upper_cov=None, lower=None,
                 lower_cov=None):
        params = dict(coef=coef, zt=zt, xt=xt, masses=masses, n=n)
        if upper is not None:
            params.update(upper=upper, upper_cov=np.zeros((2, 2)) if upper_cov is None
                          else upper_cov)
        if lower is not None:
            params.update(lower=lower, lower_cov=np.zeros((2, 2)) if lower_cov is None
                          else lower_cov)
        super().__init__(**params)
        object.__setattr__(self, "_static", self._read_static())

    def _read_static(self) -> _Static:
        def xi(d):
            return float(d.xi) if is_concrete(d.xi) and np.ndim(d.xi) == 0 else 0.0

        up, lo = self.parameters.get("upper"), self.parameters.get("lower")
        upper_end = up is None or xi(up) < 0
        lower_end = lo is None or xi(lo) < 0
        if up is None or xi(up) < 0:
            tail = "light"
        else:
            tail = "heavy" if xi(up) > 0 else "exponential"
        return _Static(lower_end, upper_end, tail)

    # --- pytree: the static flags travel as auxiliary data ------------------------------------
    def _flatten(self):
        children, names = super()._flatten()
        return children, (names, self._static)

    @classmethod
    def _unflatten(cls, aux, children):
        names, static = aux
        obj = super()._unflatten(names, children)
        object.__setattr__(obj, "_static", static)
        return obj

    # --- construction from data -------------------------------------------------------------
    @classmethod
    def fit(cls, samples, *, upper_tail: bool = True, lower_tail: bool | None = None,
            tail_fraction: float | None = None, upper_threshold: float | None = None,
            lower_threshold: float | None = None, knots: int = KNOTS) -> "Empirical":
        """Fit the spliced law to ``samples``.

        Math: tail count ``k = max(30, min(ceil(n^(2/3)), floor(n / 20)))`` per tail (or
        ``ceil(tail_fraction n)``); ``u_U`` the ``(k+1)``-th largest sample; GPD maximum
        likelihood on the ``k`` excesses (:func:`fit_generalized_pareto`).

        Args:
            samples: a 1-D array of finite numbers (any length that leaves 30 points in each
                fitted tail and 8 in the body).
            upper_tail: fit a generalized Pareto upper tail (``False``: the body runs up to the
                largest sample, where the support ends).
            lower_tail: fit a lower tail (default ``None``: yes, also for data on a
                half-line, whose lower tail then has ``xi < 0``).
            tail_fraction: the share of the samples in each fitted tail (overrides the rule).
            upper_threshold, lower_threshold: explicit thresholds (override the rule and
                ``tail_fraction`` for that side).
            knots: the most quantile knots the body is fitted to (at most one per 32 body
                samples, at least 8).

        Raises:
            ValueError: ``samples`` empty, not 1-D or not finite; fewer than 30 points beyond a
                tail threshold or fewer than 8 in the body; a bad option (each names the
                argument).
        """
        try:
            x = np.asarray(samples, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("samples must be a 1-D array of numbers") from None
        if x.ndim != 1:
            raise ValueError(f"samples must be a 1-D array of numbers, got shape {x.shape}")
        if x.size == 0:
            raise ValueError("samples: the sample set is empty")
        bad = ~np.isfinite(x)
        if bad.any():
            raise ValueError(f"samples must be finite; {int(bad.sum())} of {x.size} are not "
                             f"(e.g. {x[bad][0]!r})")
        if tail_fraction is not None and not (0.0 < float(tail_fraction) < 0.5):
            raise ValueError(f"tail_fraction must be in (0, 0.5), got {tail_fraction!r}")
        knots = int(knots)
        if knots < 8:
            raise ValueError(f"knots must be an integer >= 8, got {knots}")
        xs = np.sort(x)
        n = xs.size
        if lower_tail is None:
            lower_tail = True

        def count_for(threshold, name):
            if threshold is not None:
                t = float(threshold)
                if not math.isfinite(t):
                    raise ValueError(f"{name} must be a finite number, got {threshold!r}")
                return None, t
            if tail_fraction is not None:
                return math.ceil(float(tail_fraction) * n), None
            return tail_count(n), None

        pieces = {}
        for side, wanted, thr, name in (("upper", upper_tail, upper_threshold, "upper_threshold"),
                                        ("lower", lower_tail, lower_threshold, "lower_threshold")):
            if not wanted:
                continue
            k, u = count_for(thr, name)
            z = xs[::-1] if side == "upper" else -xs  # descending in the tail's direction
            if u is not None:
                u = u if side == "upper" else -u
                k = int(np.sum(z > u))
            else:
                if k >= n:
                    k = n - 1
                u = float(z[k])
            if k < MIN_TAIL:
                raise ValueError(f"samples: {k} point(s) lie {'above' if side == 'upper' else 'below'}"
                                 f" the {side} tail threshold {u if side == 'upper' else -u:g}; at "
                                 f"least {MIN_TAIL} are needed to fit a generalized Pareto tail "
                                 f"(n = {n}; pass {side}_tail=False or more data)")
            y = z[:k] - u
            try:
                xi, sigma, cov, _ = fit_generalized_pareto(y)
            except ValueError as exc:
                raise ValueError(f"samples: {side} tail: {exc}") from None
            pieces[side] = (k, u, xi, sigma, cov)

        # the body's ends
        if "lower" in pieces:
            k_lo, u_lo = pieces["lower"][0], -pieces["lower"][1]
        else:
            k_lo, u_lo = 0, float(xs[0])
        if "upper" in pieces:
            k_hi, u_hi = pieces["upper"][0], pieces["upper"][1]
        else:
            k_hi, u_hi = 0, float(xs[-1])
        a = int(np.searchsorted(xs, u_lo, side="right"))
        b = int(np.searchsorted(xs, u_hi, side="left"))
        m = b - a
        if not u_hi > u_lo or m < 8:
            raise ValueError(f"samples: {max(m, 0)} point(s) lie between the tail thresholds "
                             f"{u_lo:g} and {u_hi:g}; at least 8 are needed for the body (n = {n})")
        m_lo, m_hi = k_lo / n, k_hi / n
        # the body's normal scale: F = m_L + c (Phi(z) - Phi(z_lo)) on [z_lo, z_hi]; with a tail
        # at an end, Phi(z_end) is that tail's mass (c = 1 with both tails)
        z_lo = float(_ndtri(m_lo if k_lo else 0.5 / n))
        z_hi = -float(_ndtri(m_hi if k_hi else 0.5 / n))
        c = (1.0 - m_lo - m_hi) / (1.0 - float(_ndtr(z_lo)) - float(_ndtr(-z_hi)))
        # knots: quantiles of the data, half equally spaced in p, half in logit p
        kk = int(np.clip(m // 32, 8, knots))
        half = kk // 2
        p_lo, p_hi = m_lo, 1.0 - m_hi
        pu = np.linspace(p_lo, p_hi, half + 2)[1:-1]
        lg = np.linspace(math.log(max(p_lo, 0.5 / n) / (1 - max(p_lo, 0.5 / n))),
                         math.log(min(p_hi, 1 - 0.5 / n) / (1 - min(p_hi, 1 - 0.5 / n))),
                         kk - half + 2)[1:-1]
        targets = np.concatenate([pu, 1.0 / (1.0 + np.exp(-lg))])
        idx = np.unique(np.clip(np.rint(targets * n - 0.5).astype(np.int64), a, b - 1))
        kx = xs[idx]
        keep = np.concatenate([[True], np.diff(kx) > 0]) & (kx > u_lo) & (kx < u_hi)
        idx, kx = idx[keep], kx[keep]
        if kx.size < 4:
            raise ValueError(f"samples: only {kx.size} distinct value(s) lie between the tail "
                             f"thresholds {u_lo:g} and {u_hi:g}; at least 4 are needed")
        pk = (idx + 0.5) / n
        low = pk <= 0.5
        zk = np.empty_like(pk)
        zk[low] = _ndtri(np.clip(_ndtr(z_lo) + (pk[low] - m_lo) / c, 1e-300, 1.0))
        zk[~low] = -_ndtri(np.clip(_ndtr(-z_hi) + (1.0 - pk[~low] - m_hi) / c, 1e-300, 1.0))
        phi = (lambda z: c * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))
        tails, slopes = {}, {}
        for side, z_end in (("upper", z_hi), ("lower", z_lo)):
            if side not in pieces:
                slopes[side] = None
                continue
            k, u, xi, sigma, cov = pieces[side]
            tails[side] = _gpd(xi, sigma, u)
            tails[side + "_cov"] = as_float(cov, xp=np)
            # the density and its first two derivatives continuous at the splice:
            # f = c phi(z) / x'(z) is the tail's (k / n) / sigma there; (log f)' =
            # -(z + x''/x') / x' is the GPD's -(1 + xi) / sigma (mirrored below); with
            # L(z) = -z^2/2 - log x'(z), (log f)'' = (L'' x' - L' x'') / x'^3 is the GPD's
            # xi (1 + xi) / sigma^2, where L'' = -1 - (x''' x' - x''^2) / x'^2
            d1 = phi(z_end) / (k / n / sigma)
            g = (1.0 + xi) / sigma * (-1.0 if side == "upper" else 1.0)
            d2 = -z_end * d1 - g * d1 * d1
            dl = -z_end - d2 / d1
            ddl = (xi * (1.0 + xi) / sigma ** 2 * d1 ** 3 + dl * d2) / d1
            slopes[side] = (d1, d2, ((-1.0 - ddl) * d1 * d1 + d2 * d2) / d1)
        fit = _fit_body(zk, kx, pk, n, z_lo, z_hi, u_lo, u_hi, slopes["lower"], slopes["upper"], c,
                        m_lo)
        if fit.rms > MISFIT_WARNING:
            warnings.warn(f"Empirical.fit: the smooth body (degree {fit.degree}) misses the data's "
                          f"quantiles by {fit.rms:.1f} standard errors (rms); the data may have "
                          "gaps or sharp modes that a smooth law cannot follow (docs/empirical.md)",
                          stacklevel=2)
        zt = np.linspace(z_lo, z_hi, TABLE)
        xt = _map_and_slope(fit.coef, zt, z_lo, z_hi)[0]
        if "lower" in pieces:
            xt[0] = u_lo
        if "upper" in pieces:
            xt[-1] = u_hi
        return cls(as_float(fit.coef, xp=np), as_float(zt, xp=np), as_float(xt, xp=np),
                   as_float(np.array([m_lo, m_hi]), xp=np), float(n), **tails)

    @classmethod
    def from_file(cls, path: str, **options) -> "Empirical":
        """:meth:`fit` to the samples in ``path`` (:func:`read_samples`); its spec is
        ``empirical(path)``."""
        x = read_samples(path)
        law = cls.fit(x, **options)
        object.__setattr__(law, "_source", str(path))
        return law

    # --- spec -------------------------------------------------------------------------------
    @classmethod
    def from_spec_text(cls, text: str, spec: str) -> "Empirical":
        """The ``parse_dist`` hook on the raw text inside ``empirical(...)``: a file name, bare
        or quoted."""
        path = text.strip()
        if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
            path = path[1:-1]
        if not path:
            raise ValueError(f"spec {spec!r}: expected empirical(FILE), FILE a .npy array or a "
                             "one-column CSV")
        try:
            return cls.from_file(path)
        except ValueError as exc:
            raise ValueError(f"spec {spec!r}: {exc}") from None

    @classmethod
    def from_spec_args(cls, args, keywords, parse_node, spec: str) -> "Empirical":
        """The ``parse_dist`` hook inside a larger spec (``mixture(0.5*empirical(a.npy), ...)``):
        the argument's source text is the file name."""
        if len(args) != 1 or keywords:
            raise ValueError(f"spec {spec!r}: expected empirical(FILE), FILE a .npy array or a "
                             "one-column CSV")
        text = ast.get_source_segment(spec.strip(), args[0]) or ast.unparse(args[0])
        return cls.from_spec_text(text, spec)

    @property
    def spec(self) -> str:
        if self._source is None:
            raise ValueError("empirical: a law fitted in memory has no spec; save the samples "
                             "(np.save) and use empirical(FILE)")
        return f"empirical({self._source})"

    def __repr__(self) -> str:
        if not is_concrete(self.coef):
            return "Empirical(traced)"
        parts = [f"n={int(float(self.n))}", f"body of degree {np.shape(self.coef)[-1] - 1}"]
        for side in ("lower", "upper"):
            g = self.parameters.get(side)
            if g is not None:
                parts.append(f"{side} GPD xi={float(g.xi):.4g} scale={float(g.scale):.4g}")
        return f"Empirical({', '.join(parts)})"

    # --- pieces -----------------------------------------------------------------------------
    @property
    def _a_table(self):
        """``(zt, xt)``: the body's inversion table (its ends are the body's ends)."""
        return jnp.asarray(self.zt), jnp.asarray(self.xt)

    @property
    def _a_masses(self):
        """``(m_L, m_U)``."""
        return jnp.asarray(self.masses)

    @property
    def _upper(self):
        return self.parameters.get("upper")

    @property
    def _lower(self):
        return self.parameters.get("lower")

    def _tail_fit(self, side: str) -> GPDFit | None:
        g = self.parameters.get(side)
        if g is None:
            return None
        n = int(round(float(self.n)))
        mass = float(self._a_masses[1 if side == "upper" else 0])
        cov = np.asarray(self.parameters[side + "_cov"], np.float64)
        xi, se = float(g.xi), math.sqrt(max(cov[0, 0], 0.0))
        u = float(g.loc) if side == "upper" else -float(g.loc)
        return GPDFit(xi, float(g.scale), u, int(round(mass * n)), n, se,
                      math.sqrt(max(cov[1, 1], 0.0)), (xi - _Z95 * se, xi + _Z95 * se), cov)

    @property
    def upper_tail(self) -> GPDFit | None:
        """The fitted upper tail (:class:`GPDFit`), or ``None`` without one."""
        return self._tail_fit("upper")

    @property
    def lower_tail(self) -> GPDFit | None:
        """The fitted lower tail (of ``-V`` below the lower threshold), or ``None``."""
        return self._tail_fit("lower")

    def _map(self, z):
        """``x(z)`` and ``x'(z)`` of the body's polynomial."""
        coef = jnp.asarray(self.coef)
        zt = jnp.asarray(self.zt)
        half = 0.5 * (zt[-1] - zt[0])
        s = (z - 0.5 * (zt[0] + zt[-1])) / half
        deriv = jnp.asarray(_cheb_derivative_matrix(coef.shape[0] - 1), coef.dtype) @ coef
        return _clenshaw(coef, s), _clenshaw(deriv, s) / half

    def _z(self, x):
        """``z(x)`` on the body: the table's interpolant, then Newton steps on ``x(z) = x``."""
        zt, xt = self._a_table
        x = jnp.clip(x, xt[0], xt[-1])
        def newton(_, z):
            xz, dz = self._map(z)
            return jnp.clip(z - (xz - x) / dz, zt[0], zt[-1])

        return jax.lax.fori_loop(0, _NEWTON_STEPS, newton, jnp.interp(x, xt, zt))

    def _scale_c(self, dtype):
        zt = jnp.asarray(self.zt, dtype)
        m = self._a_masses.astype(dtype)
        return (1.0 - m[0] - m[1]) / (1.0 - _phi(zt[0]) - _phi(-zt[-1]))

    def _body(self, x):
        """``(F, S, f)`` of the body at ``x`` (clipped to its ends)."""
        zt = jnp.asarray(self.zt, x.dtype)
        m = self._a_masses.astype(x.dtype)
        c = self._scale_c(x.dtype)
        z = self._z(x)
        f_ = m[0] + c * (_phi(z) - _phi(zt[0]))
        s_ = m[1] + c * (_phi(-z) - _phi(-zt[-1]))
        dens = c * jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) / self._map(z)[1]
        return f_, s_, dens

    def _pieces(self, x):
        """``(x, in the lower tail, in the upper tail, log m_L, log m_U)``."""
        x = jnp.asarray(x)
        dtype = jnp.result_type(x, jnp.asarray(self.xt).dtype, float)
        x = x.astype(dtype)
        kx = jnp.asarray(self.xt, dtype)
        low = (x < kx[0]) if self._lower is not None else jnp.zeros(x.shape, bool)
        high = (x > kx[-1]) if self._upper is not None else jnp.zeros(x.shape, bool)
        m = self._a_masses.astype(dtype)
        return x, low, high, jnp.log(m[0]), jnp.log(m[1])

    @staticmethod
    def _log(v):
        pos = v > 0
        return jnp.where(pos, jnp.log(jnp.where(pos, v, 1.0)), -jnp.inf)

    def _outside(self, x, out, below_value, above_value):
        """``out`` with the values outside the support's finite ends (no tail there)."""
        kx = jnp.asarray(self.xt, x.dtype)
        if self._lower is None:
            out = jnp.where(x < kx[0], below_value, out)
        if self._upper is None:
            out = jnp.where(x > kx[-1], above_value, out)
        return out

    # --- the five basic methods ---------------------------------------------------------------
    def log_prob(self, x):
        x, low, high, lml, lmu = self._pieces(x)
        kx = jnp.asarray(self.xt, x.dtype)
        out = self._log(self._body(x)[2])
        if self._upper is not None:
            xu = jnp.where(high, x, kx[-1])
            out = jnp.where(high, lmu + self._upper.log_prob(xu), out)
        if self._lower is not None:
            xl = jnp.where(low, -x, -kx[0])
            out = jnp.where(low, lml + self._lower.log_prob(xl), out)
        return self._outside(x, out, -jnp.inf, -jnp.inf)

    def log_sf(self, x):
        x, low, high, lml, lmu = self._pieces(x)
        kx = jnp.asarray(self.xt, x.dtype)
        out = self._log(self._body(x)[1])
        if self._upper is not None:
            xu = jnp.where(high, x, kx[-1])
            out = jnp.where(high, lmu + self._upper.log_sf(xu), out)
        if self._lower is not None:
            xl = jnp.where(low, -x, -kx[0])
            lf = jnp.minimum(lml + self._lower.log_sf(xl), 0.0)
            out = jnp.where(low, log1mexp(jnp.where(low, lf, -1.0)), out)
        return self._outside(x, out, 0.0, -jnp.inf)

    def log_cdf(self, x):
        x, low, high, lml, lmu = self._pieces(x)
        kx = jnp.asarray(self.xt, x.dtype)
        out = self._log(self._body(x)[0])
        if self._upper is not None:
            xu = jnp.where(high, x, kx[-1])
            ls = jnp.minimum(lmu + self._upper.log_sf(xu), 0.0)
            out = jnp.where(high, log1mexp(jnp.where(high, ls, -1.0)), out)
        if self._lower is not None:
            xl = jnp.where(low, -x, -kx[0])
            out = jnp.where(low, lml + self._lower.log_sf(xl), out)
        return self._outside(x, out, -jnp.inf, 0.0)

    def quantile(self, p):
        """The inverse distribution function at ``p`` in ``(0, 1)`` (traceable).

        Math: on the body ``x(z)`` with ``Phi(z) = Phi(z_lo) + (p - m_L) / c`` (for ``p > 1/2``
        from ``1 - p``, keeping its accuracy); in a tail the GPD's quantile of
        ``(1 - p) / m_U`` (or ``p / m_L``).
        """
        p = jnp.asarray(p)
        dtype = jnp.result_type(p, jnp.asarray(self.xt).dtype, float)
        p = p.astype(dtype)
        zt = jnp.asarray(self.zt, dtype)
        m = self._a_masses.astype(dtype)
        c = self._scale_c(dtype)
        pc = jnp.clip(p, m[0], 1.0 - m[1])
        low = pc <= 0.5
        z = jnp.where(low, ndtri(jnp.clip(_phi(zt[0]) + (pc - m[0]) / c, 0.0, 1.0)),
                      -ndtri(jnp.clip(_phi(-zt[-1]) + (1.0 - pc - m[1]) / c, 0.0, 1.0)))
        out = self._map(jnp.clip(z, zt[0], zt[-1]))[0]
        if self._upper is not None:
            hi = p > 1.0 - m[1]
            s = jnp.where(hi, (1.0 - p) / m[1], 0.5)
            out = jnp.where(hi, _gpd_isf(self._upper, s), out)
        if self._lower is not None:
            lo = p < m[0]
            s = jnp.where(lo, p / m[0], 0.5)
            out = jnp.where(lo, -_gpd_isf(self._lower, s), out)
        return out

    def sample(self, key, shape=(), dtype=None):
        dtype = float_dtype(dtype)
        u = jax.random.uniform(key, tuple(shape), dtype, minval=jnp.finfo(dtype).tiny)
        law = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), self)
        return law.quantile(u).astype(dtype)

    def mean(self):
        dtype = jnp.asarray(self.xt).dtype
        zt = jnp.asarray(self.zt, dtype)
        m = self._a_masses.astype(dtype)
        # the body's c ∫ x(z) phi(z) dz over [z_lo, z_hi]: Gauss-Legendre, 64 nodes (the
        # integrand is a polynomial times a Gaussian)
        g, w = (jnp.asarray(a, dtype) for a in _GL64)
        z = zt[0] + (zt[-1] - zt[0]) * g
        phi = jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        total = self._scale_c(dtype) * (zt[-1] - zt[0]) * jnp.sum(w * self._map(z)[0] * phi)
        if self._upper is not None:
            total = total + m[1] * self._upper.mean()
        if self._lower is not None:
            total = total - m[0] * self._lower.mean()
        return total

    # --- hooks ------------------------------------------------------------------------------
    def support(self):
        kx = jnp.asarray(self.xt)
        if self._static.lower_end:
            lo = kx[0] if self._lower is None else -self._lower.support()[1]
        else:
            lo = jnp.asarray(-jnp.inf, kx.dtype)
        if self._static.upper_end:
            hi = kx[-1] if self._upper is None else self._upper.support()[1]
        else:
            hi = jnp.asarray(jnp.inf, kx.dtype)
        return lo, hi

    def bulk(self):
        q = self.quantile(jnp.asarray(_BULK_P, jnp.asarray(self.xt).dtype))
        return q[1], jnp.maximum(0.5 * (q[2] - q[0]), jnp.finfo(q.dtype).tiny ** 0.5)

    @property
    def tail(self) -> str:
        return self._static.tail

    def right_tail(self) -> Tail:
        """The fitted upper tail's class, the GPD's (``Tail("power", 1 / xi)`` for ``xi > 0``,
        ``Tail("weibull", 1, scale)`` at ``xi = 0``, ``Tail("bounded", -1 / xi, end=...)`` for
        ``xi < 0``), its coefficient times ``m_U``; without an upper tail
        ``Tail("bounded", 1, coef=f(max), end=max)``."""
        if self._upper is None:  # the body ends at the largest sample: S ~ f (end - x)
            end = jnp.asarray(self.xt)[-1]
            return Tail("bounded", 1.0, coef=float(jnp.exp(self.log_prob(end))), end=float(end))
        t = self._upper.right_tail()
        if t.kind in ("power", "bounded"):
            return t._replace(coef=float(t.coef * float(self._a_masses[1])))
        return t


FAMILIES.setdefault(Empirical.name, Empirical)
