"""Estimators of a sample's right tail, each with a 95% confidence interval.

Every estimator looks at the ``k`` largest points ``X_(n) >= ... >= X_(n-k+1)`` of ``x`` above the
threshold ``X_(n-k)`` (the ``(k+1)``-th largest) and returns a :class:`TailEstimate` (the
estimate, its 95% interval, its standard error, ``k``, the threshold and ``n``):

* :func:`hill`: Hill's (1975) estimator of the extreme-value index ``xi > 0`` (power-law tails,
  ``S(x) ~ x^(-1/xi)``); ``k`` may be an array (a Hill plot in one call);
* :func:`hill_double_bootstrap`: Hill at the ``k`` chosen by Danielsson, de Haan, Peng & de Vries's
  (2001) double bootstrap;
* :func:`moments_estimator`: Dekkers, Einmahl & de Haan's (1989) moment estimator of ``xi`` of
  either sign;
* :func:`gpd_tail`: peaks over threshold, the excesses fitted by a generalized Pareto law
  (:func:`goodhart_jax.empirical.fit_generalized_pareto`);
* :func:`weibull_tail`: the Weibull-tail coefficient ``c`` of ``S(x) ~ exp(-x^c)`` (Girard 2004):
  ``c < 1`` heavier than exponential, ``c = 1`` exponential, ``c > 1`` lighter (normal: ``c = 2``);
* :func:`mean_excess`: ``e(u) = E[X - u | X > u]`` per threshold.

Intervals are asymptotic (normal approximations, ``+- 1.959964 se``): right when the ``k`` points
above the threshold follow the limiting tail law; biased when ``k`` reaches into the body (the
estimators' bias, not their variance, then dominates).  Fewer than :data:`MIN_K` (50) points above
a threshold is refused: below that the normal approximations are poor.

Randomness (the double bootstrap only) comes from an explicit ``jax.random`` key.

Example:
    >>> import jax, jax.numpy as jnp
    >>> x = jax.random.pareto(jax.random.PRNGKey(0), 2.0, (20_000,))  # xi = 1/2
    >>> est = hill(x, 500)
    >>> bool(est.ci[0] < 0.5 < est.ci[1]), int(est.k), est.n
    (True, 500, 20000)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.empirical import fit_generalized_pareto
from goodhart_jax.numerics import as_float, host_float, mean_estimate, prefix_sum
from goodhart_jax.validation import check_param, check_positive_int, is_concrete

__all__ = ["MIN_K", "TailEstimate", "DoubleBootstrap", "hill", "hill_double_bootstrap",
           "moments_estimator", "gpd_tail", "weibull_tail", "mean_excess"]

#: The fewest points above a threshold that an estimate (and its interval) is given for.
MIN_K = 50
_Z95 = 1.959963984540054


class TailEstimate(NamedTuple):
    """A tail estimate and its 95% confidence interval.

    Attributes:
        estimate: the estimate (an array shaped like ``k`` or the thresholds).
        ci: ``(lo, hi)``, the 95% confidence interval.
        se: the (asymptotic) standard error.
        k: the number of points above the threshold.
        threshold: the threshold (``X_(n-k)``, the ``(k+1)``-th largest point, or the given ``u``).
        n: the sample size.
    """

    estimate: jax.Array
    ci: tuple[jax.Array, jax.Array]
    se: jax.Array
    k: jax.Array
    threshold: jax.Array
    n: int


class DoubleBootstrap(NamedTuple):
    """Hill's estimate at the double bootstrap's ``k`` (:func:`hill_double_bootstrap`).

    Attributes:
        estimate, ci, se, k, threshold, n: as in :class:`TailEstimate`, at the chosen ``k``.
        k_star: the double bootstrap's ``k`` before it is raised to :data:`MIN_K` (``k`` is
            ``min(max(k_star, MIN_K), n - 1)``).
        k1, k2: the minimisers of the bootstrapped criterion in the two subsamples.
        n1, n2: the two subsample sizes.
        amse1, amse2: the bootstrapped criteria ``mean((M2 - 2 M1^2)^2)`` for ``k = 1 .. K1``
            and ``1 .. K2`` (entry ``j`` is ``k = j + 1``), for diagnostic plots: ``K`` is the
            search cap ``min(m - 1, max(200, ceil(4 m^(2/3))))`` of the subsample size ``m``, or
            ``m - 1`` (every ``k``) when the minimiser came within 10% of the cap.
    """

    estimate: jax.Array
    ci: tuple[jax.Array, jax.Array]
    se: jax.Array
    k: int
    threshold: jax.Array
    n: int
    k_star: int
    k1: int
    k2: int
    n1: int
    n2: int
    amse1: np.ndarray
    amse2: np.ndarray


# --- validation -----------------------------------------------------------------------------


def _sample(x, owner: str, minimum: int = MIN_K + 1):
    """``x`` as a one-dimensional float array, checked when concrete."""
    x = host_float(x)
    if x.ndim != 1:
        raise ValueError(f"{owner}: x must be one-dimensional, got shape {tuple(x.shape)}")
    if x.shape[0] < minimum:
        raise ValueError(f"{owner}: x needs at least {minimum} points, got {x.shape[0]}")
    if is_concrete(x):
        check_param("x", x, owner=owner)
    return x


def _host_counts(k, n: int, owner: str) -> np.ndarray:
    """Concrete ``k`` as a NumPy integer array, each in ``[MIN_K, n - 1]``."""
    arr = np.asarray(k)
    ok = arr.size > 0 and np.all(np.isfinite(arr.astype(float))) and np.all(arr == np.round(arr))
    if not ok or np.any(arr < MIN_K) or np.any(arr > n - 1):
        raise ValueError(
            f"{owner}: k must be an integer (or integers) in [{MIN_K}, n - 1 = {n - 1}], the "
            f"number of points above the threshold (fewer than {MIN_K} give no usable "
            f"interval), got {k!r}")
    return arr.astype(np.int64) if arr.dtype.kind == "f" else arr


def _counts(k, n: int, owner: str):
    """``k`` as an integer array, each in ``[MIN_K, n - 1]`` (checked when concrete)."""
    if is_concrete(k):
        return jnp.asarray(_host_counts(k, n, owner))
    return jnp.asarray(k)


def _top_points(x: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` largest points of ``x`` (host arrays), the smallest of them first, the rest in no
    particular order.

    Above 200,000 points, a strided subsample of about 20,000 gives a value ``q`` that at least
    ``m`` points should exceed (its ``1.2 m n_s / n + 30`` largest); when at least ``m`` of ``x``
    are ``>= q`` (which makes them hold the ``m`` largest, so the result is exact) only those are
    partitioned: one comparison pass instead of a partition of all ``n``; otherwise all are.
    """
    n = x.shape[0]
    if n > 200_000 and m < n // 50:
        sub = x[::n // 20_000]
        j = min(sub.size, int(1.2 * m * sub.size / n) + 30)
        q = np.partition(sub, sub.size - j)[sub.size - j]
        above = x[x >= q]
        if above.size >= m:
            x, n = above, above.size
    return np.partition(x, n - m)[n - m:]


def _check_positive_threshold(threshold, owner: str, hint: str = ""):
    if is_concrete(threshold) and not np.all(np.asarray(threshold) > 0):
        bad = float(np.min(np.asarray(threshold)))
        raise ValueError(f"{owner}: x must be > 0 at and above the threshold X_(n-k) (the estimator "
                         f"takes logarithms); the threshold is {bad:g}{hint}")


# --- shared kernels (jitted) -----------------------------------------------------------------


def _desc(x):
    return jnp.flip(jnp.sort(x))


def _log_moments(d, k):
    """``M1, M2`` of the log-excesses over the ``(k+1)``-th largest, from log-spacings ``d``.

    ``d_i = log(X_(1) / X_(i+1))`` (0-based, nondecreasing) of a descending sample; for each
    ``k``: ``M_j = mean_{i < k} (d_k - d_i)^j`` from cumulative sums.
    """
    c1, c2 = prefix_sum(jnp.stack([d, d * d]))
    kf = k.astype(d.dtype)
    dk, s1, s2 = d[k], c1[k - 1] / kf, c2[k - 1] / kf
    m1 = dk - s1
    m2 = jnp.maximum(dk * dk - 2.0 * dk * s1 + s2, 0.0)
    return m1, m2


def _log_spacings(xd):
    """``log(X_(1) / X_(i))`` for a descending sample (``inf``/``nan`` past the positive part)."""
    return jnp.log(xd[0] / xd)


def _hill_desc(xd, k):
    m1, _ = _log_moments(_log_spacings(xd), k)
    se = m1 / jnp.sqrt(k.astype(m1.dtype))
    return m1, se, xd[k]


_hill_desc_jit = jax.jit(_hill_desc)


@jax.jit
def _hill_core(x, k):
    return _hill_desc(_desc(x), k)


@jax.jit
def _moments_core(x, k):
    xd = _desc(x)
    m1, m2 = _log_moments(_log_spacings(xd), k)
    g = m1 + 1.0 - 0.5 / (1.0 - m1 * m1 / m2)
    gn = jnp.minimum(g, 0.0)
    var_neg = ((1.0 - gn) ** 2 * (1.0 - 2.0 * gn) * (1.0 - gn + 6.0 * gn * gn)
               / ((1.0 - 3.0 * gn) * (1.0 - 4.0 * gn)))
    var = jnp.where(g >= 0.0, 1.0 + g * g, var_neg)
    return g, jnp.sqrt(var / k.astype(g.dtype)), xd[k]


@jax.jit
def _weibull_core(x, k):
    xd = _desc(x)
    n = xd.shape[0]
    m1x, m2x = _log_moments(_log_spacings(xd), k)
    # log of the exact means of the standard exponential order statistics, largest first:
    # E[E_(n-i+1)] = sum_{j=i..n} 1/j, i = 1..n (summed from the smallest term up)
    inv = 1.0 / jnp.arange(1, n + 1, dtype=xd.dtype)
    lt = jnp.log(jnp.flip(jnp.cumsum(jnp.flip(inv))))
    m1t, _ = _log_moments(lt[0] - lt, k)
    theta = m1x / m1t
    kf = k.astype(theta.dtype)
    cv = jnp.sqrt(jnp.maximum(m2x - m1x * m1x, 0.0) * kf / (kf - 1.0)) / m1x
    return theta, cv / jnp.sqrt(kf), xd[k]


# --- public estimators ---------------------------------------------------------------------


def _result(est, se, k, threshold, n) -> TailEstimate:
    return TailEstimate(est, (est - _Z95 * se, est + _Z95 * se), se, k, threshold, n)


def hill(x, k) -> TailEstimate:
    """Hill's estimator of the extreme-value index ``xi > 0`` from the ``k`` largest points.

    Math: ``xi = (1/k) Σ_{i=1..k} log X_(n-i+1) - log X_(n-k)``; ``se = xi / sqrt(k)``
    (asymptotic normality, ``sqrt(k) (xi_hat - xi) -> N(0, xi^2)``), interval
    ``xi +- 1.96 se``.  For exact Pareto data ``k xi_hat / xi`` is ``Gamma(k)`` (Rényi), so the
    estimator is unbiased; otherwise ``k`` must stay where the tail is a power law.

    Args:
        x: the sample (one-dimensional; the top ``k + 1`` points must be positive).
        k: the number of points above the threshold, an integer in ``[50, n - 1]``, or an array
            of them (all estimated in one pass over cumulative sums of the sorted logs: a Hill
            plot).

    Returns:
        A :class:`TailEstimate` shaped like ``k``.

    Raises:
        ValueError: ``x`` not one-dimensional, shorter than 51 or not finite; ``k`` out of range;
            the threshold ``X_(n-k)`` not positive.

    Example:
        >>> import math, numpy as np
        >>> x = (1000.0 / np.arange(1, 1000)) ** 0.5  # exact Pareto quantiles, xi = 1/2
        >>> [round(float(v), 4) for v in hill(x, np.array([100, 400])).estimate]
        [0.4889, 0.4964]
        >>> round(0.5 * (math.log(101) - math.lgamma(101) / 100), 4)  # the closed form at k = 100
        0.4889
    """
    x = _sample(x, "hill")
    n = x.shape[0]
    kk = _counts(k, n, "hill")
    est, se, threshold = _hill_core(as_float(x), kk)
    _check_positive_threshold(threshold, "hill")
    return _result(est, se, kk, threshold, n)


def moments_estimator(x, k, *, shift: float = 0.0) -> TailEstimate:
    """Dekkers, Einmahl & de Haan's (1989) moment estimator of the extreme-value index ``xi``.

    Math: with ``M_j = (1/k) Σ_{i=1..k} (log X_(n-i+1) - log X_(n-k))^j``,
    ``xi = M1 + 1 - (1/2) / (1 - M1^2 / M2)``; asymptotic variance ``v / k`` with
    ``v = 1 + xi^2`` for ``xi >= 0`` and
    ``v = (1 - xi)^2 (1 - 2 xi) (1 - xi + 6 xi^2) / ((1 - 3 xi) (1 - 4 xi))`` for ``xi < 0``
    (Dekkers et al. 1989; de Haan & Ferreira 2006, ch. 3; the same form as the independent
    ``evt`` package's ``Moment``), at the estimate; interval ``xi +- 1.96 sqrt(v / k)``
    (measured coverage on exact samples: 92-94% for ``xi`` in ``{-1, -0.25, 0, 0.5}``).

    Valid for ``xi`` of either sign, but it takes logarithms: the points at and above the
    threshold must be positive.  For data that are not, pass ``shift`` (the estimator is applied
    to ``x + shift``).  The estimator is not location invariant: for ``xi <= 0`` a shift changes
    its finite-sample bias (a larger ``x + shift`` relative to the tail's spread makes the
    log-excesses smaller and the estimate closer to the moment-ratio estimator of the excesses).

    Args:
        x: the sample (one-dimensional).
        k: the number of points above the threshold, in ``[50, n - 1]`` (or an array of them).
        shift: added to ``x`` first.

    Returns:
        A :class:`TailEstimate` shaped like ``k`` (``threshold`` is that of ``x``, unshifted).

    Raises:
        ValueError: bad ``x`` or ``k``; the threshold ``X_(n-k) + shift`` not positive.

    Example:
        >>> import jax
        >>> x = 1.0 + jax.random.uniform(jax.random.PRNGKey(1), (20_000,))  # xi = -1, endpoint 2
        >>> est = moments_estimator(x, 500)
        >>> bool(est.ci[0] < -1.0 < est.ci[1])
        True
    """
    x = _sample(x, "moments_estimator")
    check_param("shift", shift, owner="moments_estimator")
    n = x.shape[0]
    kk = _counts(k, n, "moments_estimator")
    est, se, threshold = _moments_core(as_float(x) + shift, kk)
    _check_positive_threshold(threshold, "moments_estimator",
                              " (pass shift= to move the data above 0)")
    return _result(est, se, kk, threshold - shift, n)


def gpd_tail(x, k) -> TailEstimate:
    """Peaks over threshold: a generalized Pareto fit of the ``k`` excesses over ``X_(n-k)``.

    Math: ``y_i = X_(n-i+1) - X_(n-k)``, ``i = 1..k``, fitted by maximum likelihood to
    ``S(y) = (1 + xi y / sigma)^(-1/xi)`` with
    :func:`goodhart_jax.empirical.fit_generalized_pareto` (Grimshaw's profile, Newton polish);
    ``se`` from the inverse observed information (delta method), interval ``xi +- 1.96 se``.
    Valid for ``xi`` of either sign (``xi > -1/2`` for the usual asymptotics).  Concrete data
    only, not traceable: the top ``k + 1`` points are found on the host (``np.partition`` of the
    points above a subsample's estimate of the threshold, no sort) and the fit is one compiled float64 program per padded ``k``.  The fitted scale is ``fit_generalized_pareto(y)[1]``.

    Args:
        x: the sample (one-dimensional, concrete).
        k: the number of excesses, an integer in ``[50, n - 1]``.

    Returns:
        A :class:`TailEstimate` (scalars).

    Raises:
        ValueError: bad ``x`` or ``k``; all ``k`` excesses equal.

    Example:
        >>> import numpy as np
        >>> y = np.random.default_rng(0).exponential(size=20_000)  # xi = 0
        >>> est = gpd_tail(y, 1000)
        >>> bool(est.ci[0] < 0.0 < est.ci[1]), float(est.threshold) > 0
        (True, True)
    """
    if not is_concrete(x):
        raise ValueError("gpd_tail: x must be concrete (the fit runs on the host); it cannot be traced")
    x = np.asarray(_sample(x, "gpd_tail"), dtype=np.float64)
    n = x.shape[0]
    if np.ndim(k) != 0:
        raise ValueError(f"gpd_tail: k must be a single integer, got shape {np.shape(k)}")
    kk = int(_host_counts(k, n, "gpd_tail"))
    # the k + 1 largest, ascending (sorted, the fit's subsample is evenly spread over the order
    # statistics: a better start, fewer passes than the partition's order gives)
    top = np.sort(_top_points(x, kk + 1))
    threshold = top[0]
    xi, _, cov, _ = fit_generalized_pareto(top[1:] - threshold)
    se = math.sqrt(cov[0, 0])
    return _result(xi, se, kk, float(threshold), n)


def weibull_tail(x, k) -> TailEstimate:
    """The Weibull-tail coefficient ``c`` of ``S(x) ~ exp(-x^c)`` from the ``k`` largest points.

    Girard's (2004) Hill-type estimator of ``theta = 1 / c`` (the slope of ``log X_(n-i+1)``
    against ``log log(n / i)``), with the plotting positions ``log(n / i)`` replaced by the exact
    means of the standard exponential order statistics,
    ``T_i = E[E_(n-i+1)] = Σ_{j=i..n} 1/j`` (``= log(n/i) + O(1/i)``; the same asymptotics, less
    small-sample bias: for an exact Weibull law ``log X = theta log E + const``).

    Math: ``theta = Σ_{i=1..k} (log X_(n-i+1) - log X_(n-k)) / Σ_{i=1..k} (log T_i - log T_(k+1))``,
    ``c = 1 / theta``.  Interval: ``sqrt(k) (theta_hat - theta) -> N(0, theta^2)`` (Girard
    2004); the standard error used is ``theta r / sqrt(k)`` with ``r = sd(Z) / mean(Z)`` the
    sample coefficient of variation of the log-excesses ``Z_i = log X_(n-i+1) - log X_(n-k)``
    (``r -> 1``, Girard's limit; at finite ``log(n/k)`` the logarithm compresses the excesses and
    the limit overstates the variance: by ~40% at ``n/k = 17``, where the ``theta / sqrt(k)``
    interval covered 98% of exact Weibull replicates instead of 95%).  The interval for ``theta``,
    ``theta (1 +- 1.96 r / sqrt(k))``, is mapped to ``c`` by ``c = 1 / theta``
    (``ci = (c / (1 + 1.96 r/sqrt(k)), c / (1 - 1.96 r/sqrt(k)))``); ``se = c r / sqrt(k)``
    (delta method).  The interval is asymptotic: laws with a slowly varying factor in front of
    ``exp(-x^c)`` carry a bias of order ``1 / log(n/k)`` that it does not cover; the normal
    (``exp(-x^2/2) / x``) has local coefficient ``(x^2 + 1) / (x^2 / 2 + log x + log sqrt(2 pi))``,
    below 2 (about 1.5 at ``n = 10^5 .. 10^6`` and ``k = sqrt(n)``).  Not location invariant; the
    points at and above the threshold must be positive.

    Args:
        x: the sample (one-dimensional).
        k: the number of points above the threshold, in ``[50, n - 1]`` (or an array of them).

    Returns:
        A :class:`TailEstimate` of ``c``, shaped like ``k``.

    Raises:
        ValueError: bad ``x`` or ``k``; the threshold ``X_(n-k)`` not positive.

    Example:
        >>> import jax
        >>> x = jax.random.exponential(jax.random.PRNGKey(2), (20_000,))  # c = 1
        >>> est = weibull_tail(x, 1000)
        >>> bool(est.ci[0] < 1.0 < est.ci[1])
        True
    """
    x = _sample(x, "weibull_tail")
    n = x.shape[0]
    kk = _counts(k, n, "weibull_tail")
    theta, rel, threshold = _weibull_core(as_float(x), kk)
    _check_positive_threshold(threshold, "weibull_tail")
    c = 1.0 / theta
    half = _Z95 * rel
    return TailEstimate(c, (c / (1.0 + half), c / (1.0 - half)), c * rel, kk, threshold, n)


@jax.jit
def _mean_excess_core(x, u):
    def one(t):
        above = x > t
        y = jnp.where(above, x - t, 0.0)
        return jnp.sum(above), jnp.sum(y), jnp.sum(y * y)

    m, s1, s2 = jax.lax.map(one, u.ravel(), batch_size=8)
    return m.reshape(u.shape), s1.reshape(u.shape), s2.reshape(u.shape)


def mean_excess(x, thresholds) -> TailEstimate:
    """The mean excess ``e(u) = E[X - u | X > u]`` at each threshold, with its standard error.

    Math: over the ``m`` points ``x > u``: ``e = mean(x - u)``, ``se = sd(x - u) / sqrt(m)``
    (``sd`` with ``m - 1``), interval ``e +- 1.96 se``.  Exponential: ``e(u) = 1 / rate``;
    Pareto ``S(x) = x^(-alpha)``: ``e(u) = u / (alpha - 1)``; a rising ``e`` means a heavy tail.
    The interval needs a finite variance of the excesses (``xi < 1/2``).

    Args:
        x: the sample (one-dimensional).
        thresholds: the thresholds ``u`` (any shape); each must leave at least 50 points above it.

    Returns:
        A :class:`TailEstimate` shaped like ``thresholds`` (``k``: the counts above them).

    Raises:
        ValueError: bad ``x``; a threshold not finite or with fewer than 50 points above it.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(3).exponential(2.0, 100_000)
        >>> est = mean_excess(x, np.array([1.0, 4.0]))
        >>> [round(float(e), 1) for e in est.estimate], [int(m) for m in est.k]
        ([2.0, 2.0], [60569, 13602])
    """
    x = _sample(x, "mean_excess")
    n = x.shape[0]
    u = host_float(thresholds)
    if is_concrete(u):
        check_param("thresholds", u, owner="mean_excess")
    m, s1, s2 = _mean_excess_core(as_float(x), as_float(u))
    if is_concrete(m) and np.any(np.asarray(m) < MIN_K):
        top = float(np.sort(np.asarray(x))[n - 1 - MIN_K])
        raise ValueError(f"mean_excess: thresholds must each leave at least {MIN_K} points of x "
                         f"above them (the largest allowed here is {top:g}), got "
                         f"{float(np.max(np.asarray(u))):g}")
    e = mean_estimate(m.astype(s1.dtype), s1, s2)
    return _result(e.mean, e.stderr, m, u, n)


# --- the double bootstrap ------------------------------------------------------------------


def _renyi_top(key, xd, m: int, j: int):
    """The ``j`` largest points, descending, of a size-``m`` resample (with replacement) of the
    descending sample ``xd``, drawn in ``O(j)`` work without drawing or sorting the resample
    (``xd`` may be any nonincreasing function of the descending sample, e.g. its logarithms).

    Math: a resample point is ``X_asc[floor(n U)]``, ``U`` uniform, so the resample's ``i``-th
    largest is ``xd[floor(n V_(i))]`` with ``V_(i) = 1 - U_(m-i+1)`` the ``i``-th smallest of
    ``m`` uniforms.  Rényi: ``(V_(1), .., V_(m)) = (S_1, .., S_m) / S_(m+1)`` in law, ``S_i``
    the partial sums of i.i.d. standard exponentials, and ``S_(m+1) = S_j + G`` with
    ``G ~ Gamma(m + 1 - j)`` independent of ``S_1 .. S_j``; so ``j`` exponentials and one gamma
    give the top ``j`` with exactly the bootstrap's joint law.
    """
    n = xd.shape[0]
    idx = jnp.minimum(jnp.floor(n * _renyi_uniforms(key, m, j, xd.dtype)).astype(jnp.int32), n - 1)
    return xd[idx]


def _renyi_uniforms(key, m: int, j: int, dtype):
    """The ``j`` smallest of ``m`` i.i.d. uniforms, ascending: ``S_i / (S_j + G)``, ``i <= j``
    (see :func:`_renyi_top`)."""
    k_e, k_g = jax.random.split(key)
    s = prefix_sum(jax.random.exponential(k_e, (j,), dtype))
    return s / (s[-1] + jax.random.gamma(k_g, float(m + 1 - j), dtype=dtype))


def _amse_curve(key, lxd, size: int, top: int, reps: int, batch: int):
    """``mean over reps of (M2 - 2 M1^2)^2`` for ``k = 1 .. top`` over bootstrap resamples of
    size ``size`` of the sample whose descending logarithms are ``lxd`` (each resample's top
    ``top + 1`` drawn by :func:`_renyi_top`)."""
    k = jnp.arange(1, top + 1)

    def one(key):
        ls = _renyi_top(key, lxd, size, top + 1)
        m1, m2 = _log_moments(ls[0] - ls, k)
        return (m2 - 2.0 * m1 * m1) ** 2

    keys = jax.random.split(key, reps)
    full = reps // batch * batch

    def body(acc, kb):
        return acc + jnp.sum(jax.vmap(one)(kb), axis=0), None

    acc = jnp.zeros(top, lxd.dtype)
    if full:
        # (typed keys have no trailing data axis, raw uint32 keys have one: keep it as it is)
        acc, _ = jax.lax.scan(body, acc, keys[:full].reshape((full // batch, batch) + keys.shape[1:]))
    if reps > full:
        acc = acc + jnp.sum(jax.vmap(one)(keys[full:]), axis=0)
    return acc / reps


_amse_jit = jax.jit(_amse_curve, static_argnums=(2, 3, 4, 5))


def _search_cap(m: int) -> int:
    """The largest ``k`` the criterion is first computed for at subsample size ``m``:
    ``min(m - 1, max(4 MIN_K, ceil(4 m^(2/3))))``.

    Hill's mean-squared-error-optimal ``k`` at sample size ``m`` grows like
    ``m^(2|rho| / (1 + 2|rho|))`` (Hall's second-order class, parameter ``rho < 0``), at most
    ``m^(2/3)`` for ``|rho| <= 1`` (``|t_nu|``: ``rho = -2 / nu``), and the criterion's minimiser
    like it; four times ``m^(2/3)`` leaves room for the constant.  When the minimiser lands in the
    top 10% of the capped range (``|rho| > 1``, e.g. exact Pareto tails with no bias at any ``k``)
    the curve is computed again over the whole range ``k = 1 .. m - 1``.
    """
    return min(m - 1, max(4 * MIN_K, math.ceil(4.0 * m ** (2.0 / 3.0))))


def _argmin_range(amse: np.ndarray, lo: int, hi: int) -> int | None:
    """tail-estimation's ``nanargmin(amse[lo:hi]) + 1 + lo``: the ``k`` (1-based) minimising."""
    part = amse[lo:hi]
    if part.size == 0 or np.all(np.isnan(part)):
        return None
    return int(np.nanargmin(part)) + 1 + lo


def hill_double_bootstrap(x, *, key, t_bootstrap: float = 0.5, r_bootstrap: int = 500,
                          eps_stop: float = 0.99, constant: str = "danielsson") -> DoubleBootstrap:
    """Hill's estimator at the ``k`` chosen by the double bootstrap of Danielsson, de Haan, Peng
    & de Vries (2001, J. Multivariate Anal. 76, 226-248).

    The bootstrapped criterion ``Q(m, k) = mean((M2(k) - 2 M1(k)^2)^2)`` over ``r_bootstrap``
    resamples (with replacement) of size ``m`` estimates the asymptotic mean squared error of the
    difference of two estimators of ``xi^2`` (``M1`` is Hill's estimator, ``M2 / 2`` another),
    whose optimal ``k`` is proportional to Hill's.  It is minimised over ``k`` for two subsample
    sizes ``n1 = floor(n^eps)``, ``eps = (1 + log(floor(t n)) / log n) / 2`` (so
    ``n1 ~ sqrt(t) n``) and ``n2 = floor(n1^2 / n)`` (``~ t n``), giving ``k1`` and ``k2``.

    Math: ``k* = round(k1^2 / k2 * rho)`` with (``constant="danielsson"``, the paper's)
    ``rho = ((log k1)^2 / (2 log n1 - log k1)^2)^((log n1 - log k1) / log n1)`` or
    (``constant="qi"``, the constant tail-estimation uses, from Qi 2008)
    ``rho = (2 (log n1 / log k1 - 1))^(log k1 / log n1 - 1)``; then ``k = min(max(k*, 50), n - 1)``
    and :func:`hill` there.

    Conventions follow Voitalov et al.'s (2019) ``tail-estimation`` (``hill_dbs``): the defaults
    ``t_bootstrap = 0.5``, ``r_bootstrap = 500``, ``eps_stop = 0.99`` (its ``hill_estimator``
    default); each minimisation runs over ``k`` from 2 to ``round(eps_stop m)`` (1-based;
    excluding ``k = 1``, where ties in a resample give a spurious zero); and when ``k2 >= k1``
    (a false minimum) both lower ends move up by ``floor(0.005 n)`` and the minimisations are
    repeated.  Differences: the repeat re-minimises the same averaged criteria (tail-estimation
    draws ``r_bootstrap`` more resamples and averages them in); the resamples are drawn from
    ``key`` (the first subsample's with ``split(key)[0]``, the second's with ``[1]``) and
    vmapped; ``k`` is raised to 50 where ``k*`` is smaller (``k_star`` keeps the raw choice);
    the default ``rho`` is the paper's, not Qi's; the criterion is first computed for ``k`` up
    to a cap, ``K = min(m - 1, max(200, ceil(4 m^(2/3))))`` (Hill's optimal ``k`` grows like
    ``m^(2|rho| / (1 + 2|rho|))``, at most ``m^(2/3)`` for second-order ``|rho| <= 1``), and
    over every ``k`` only when the minimiser lands within 10% of the cap (or the raised lower end
    passes it; e.g. exact Pareto tails, whose criterion has no bias and falls to the largest
    ``k``).

    The resamples are not drawn and sorted: only each resample's top ``K + 1`` order statistics
    enter the criterion, and they are drawn directly with exactly the bootstrap's joint law.
    Math: a resample point is ``X_asc[floor(n U)]`` (``U`` uniform), so its ``i``-th largest is
    ``X_desc[floor(n V_(i))]`` with ``V_(i)`` the ``i``-th smallest of ``m`` uniforms, and
    (Rényi) ``V_(i) = S_i / (S_(K+1) + G)``, ``i <= K + 1``, with ``S_i`` the partial sums of
    i.i.d. ``Exp(1)`` and ``G ~ Gamma(m - K)`` independent: ``O(K)`` work per resample (one host
    sort of ``x``), no ``O(m log m)`` sort.

    Args:
        x: the sample (one-dimensional, positive in the tail, at least 200 points).
        key: a ``jax.random`` key.
        t_bootstrap: ``t`` in ``(0, 1)``: ``n2 ~ t n``.
        r_bootstrap: resamples per subsample size.
        eps_stop: the largest fraction ``k / m`` searched, in ``(0, 1]``.
        constant: ``"danielsson"`` or ``"qi"`` (see Math).

    Returns:
        A :class:`DoubleBootstrap`.

    Raises:
        ValueError: bad ``x`` or options; no minimum found (the search ranges emptied).

    Example:
        >>> import jax
        >>> x = jax.random.pareto(jax.random.PRNGKey(4), 2.0, (5_000,))  # xi = 1/2
        >>> fit = hill_double_bootstrap(x, key=jax.random.PRNGKey(5), r_bootstrap=100)
        >>> fit.n1, fit.n2, bool(fit.ci[0] < 0.5 < fit.ci[1])
        (3535, 2499, True)
    """
    owner = "hill_double_bootstrap"
    if not is_concrete(x):
        raise ValueError(f"{owner}: x must be concrete (k is chosen on the host)")
    x = _sample(x, owner, minimum=4 * MIN_K)
    check_param("t_bootstrap", t_bootstrap, lo=0.0, hi=1.0, lo_open=True, hi_open=True, owner=owner)
    reps = check_positive_int("r_bootstrap", r_bootstrap, owner=owner)
    check_param("eps_stop", eps_stop, lo=0.0, hi=1.0, lo_open=True, owner=owner)
    if constant not in ("danielsson", "qi"):
        raise ValueError(f"{owner}: constant must be 'danielsson' or 'qi', got {constant!r}")
    n = x.shape[0]
    if not np.min(np.asarray(x)) > 0:
        raise ValueError(f"{owner}: x must be > 0 (every point can enter a resample's tail); "
                         f"got a minimum of {float(np.min(np.asarray(x))):g}")
    eps = 0.5 * (1.0 + math.log(int(t_bootstrap * n)) / math.log(n))
    n1 = int(n ** eps)
    n2 = int(n1 * n1 / n)
    if n2 < 4 * MIN_K // 2:
        raise ValueError(f"{owner}: the second subsample (n2 = {n2}) is too small; raise "
                         f"t_bootstrap or pass more data")
    k_a, k_b = jax.random.split(key)
    xd = np.sort(np.asarray(x))[::-1].copy()  # one host sort; the resamples need none
    lxd = as_float(np.log(xd))
    top1 = int(np.argmin(np.abs(np.linspace(1.0 / n1, 1.0, n1) - eps_stop)))
    top2 = int(np.argmin(np.abs(np.linspace(1.0 / n2, 1.0, n2) - eps_stop)))

    def curve(k_m, m, cap):
        # batches of at most about 4e5 criterion entries: they stay in the caches (at 1e6
        # points, batches of 10 resamples instead of 100 take 0.6x the time); a divisor of
        # reps where one is at least half that, so no remainder batch compiles separately
        most = max(1, min(reps, 400_000 // cap))
        batch = max(d for d in range(1, most + 1) if reps % d == 0)
        batch = batch if 2 * batch >= most else most
        return np.asarray(_amse_jit(k_m, lxd, m, cap, reps, batch))

    amse1 = curve(k_a, n1, _search_cap(n1))
    amse2 = curve(k_b, n2, _search_cap(n2))

    def near_cap(amse, kk, lo, m):
        # the minimiser in the top 10% of a capped range (or the range emptied): search all k
        return amse.size < m - 1 and (kk is None or kk > 0.9 * amse.size or lo >= amse.size)

    lo1 = lo2 = 1
    while True:
        k1 = _argmin_range(amse1, lo1, min(top1, amse1.size))
        k2 = _argmin_range(amse2, lo2, min(top2, amse2.size))
        if near_cap(amse1, k1, lo1, n1):
            amse1 = curve(k_a, n1, n1 - 1)
            continue
        if near_cap(amse2, k2, lo2, n2):
            amse2 = curve(k_b, n2, n2 - 1)
            continue
        if k1 is None or k2 is None:
            raise ValueError(f"{owner}: no minimum of the bootstrapped criterion with k2 < k1 "
                             "(the search ranges emptied); the tail may not be a power law")
        if k2 < k1:
            break
        lo1 += int(0.005 * n)
        lo2 += int(0.005 * n)
    l1, ln1 = math.log(k1), math.log(n1)
    if constant == "danielsson":
        rho = (l1 * l1 / (2.0 * ln1 - l1) ** 2) ** ((ln1 - l1) / ln1)
    else:
        rho = (2.0 * (ln1 / l1 - 1.0)) ** (l1 / ln1 - 1.0)
    k_star = int(round(k1 * k1 / k2 * rho))
    k = min(max(k_star, MIN_K), n - 1)
    m1, se, threshold = _hill_desc_jit(as_float(xd), jnp.asarray(k))  # = hill(x, k), sorted here
    est = _result(m1, se, k, threshold, n)
    return DoubleBootstrap(est.estimate, est.ci, est.se, k, est.threshold, n, k_star, k1, k2,
                           n1, n2, amse1, amse2)
