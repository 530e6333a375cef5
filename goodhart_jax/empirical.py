"""Laws fitted to data: ``Empirical.fit(samples)``, a smooth body spliced to generalized-Pareto tails.

A fitted :class:`Empirical` is a :class:`~goodhart_jax.Distribution` like any other (a pytree:
its arrays are leaves), so it serves as the value ``V`` or the error ``X`` of the exact
conditioning, best-of-n, the samplers and the regime theory (the exact quadrature does not yet
resolve the kinks of the body's density at its knots: ~1e-3 relative in the bulk, exact in the
fitted tails; see docs/empirical.md).  It has three pieces:

* **the upper tail**: above a threshold ``u`` (the ``(k+1)``-th largest sample), the ``k`` excesses
  ``y = x - u`` are fitted by a generalized Pareto law ``GPD(xi, sigma)`` (maximum likelihood),
  and ``S(x) = (k / n) S_GPD(x - u)`` there;
* **the lower tail** (two-sided data): the same for ``-x`` below a lower threshold;
* **the body**: between the thresholds, a monotone C1 cubic (Fritsch–Carlson / PCHIP Hermite
  interpolant) of the empirical distribution function on up to 256 quantile knots, its end
  slopes set to the tails' densities at the thresholds, so that ``F``, ``S`` and the density are
  continuous across the splice and the density is positive.

Threshold rule (:func:`tail_count`): ``k = max(30, min(ceil(n^(2/3)), floor(n / 20)))`` order
statistics above the threshold (``k / n -> 0`` and ``k -> inf``, as the GPD approximation of the
excesses needs; at most 5% of the data per tail).  ``tail_fraction=`` or an explicit
``upper_threshold=`` / ``lower_threshold=`` overrides it; fewer than 30 points above a threshold
is refused.  One-sided data (every sample ``>= 0``: counts, lognormal or exponential scores) get
no lower tail by default: the body runs down to the smallest sample, where the support starts
(``lower_tail=True`` fits one anyway).

Tail fit (:func:`fit_generalized_pareto`): Grimshaw's (1993) reduction of the two-parameter
likelihood to one dimension, in ``theta = xi / sigma``: for fixed ``theta`` the likelihood is
maximised by ``xi(theta) = mean(log(1 + theta y))``, ``sigma = xi / theta``, leaving the profile
``l(theta) = -k log sigma(theta) - k (1 + xi(theta))``; it is maximised over a grid spanning
``theta > -1 / max y`` (``xi >= -1``, where the maximum likelihood estimate exists) and refined
by golden-section search, then polished by Newton steps on the full likelihood.  Standard errors
come from the observed information (the inverse of the negative Hessian of the log-likelihood at
the estimate); the 95% interval for ``xi`` is ``xi +- 1.96 se``.

Math: with ``m_U = k_U / n``, ``m_L = k_L / n``: ``S(x) = m_U S_GPD(x - u_U)`` for ``x > u_U``,
``F(x) = m_L S_GPD'(u_L - x)`` for ``x < u_L``, and ``F`` the Hermite cubic between; the mean is
the body's ``∫ x dF`` (closed form per cubic piece) plus ``m_U E[u_U + Y_U] - m_L E[-u_L + Y_L]``.

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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.distributions import FAMILIES, POSITIVE, Constraint, Distribution, Tail
from goodhart_jax.numerics import as_float, expm1_ratio, float_dtype, log1mexp
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


def _log1p_over(z: np.ndarray) -> np.ndarray:
    """``log1p(z) / z`` (1 at ``z = 0``; a series for ``|z| < 1e-4``)."""
    small = np.abs(z) < 1e-4
    zs = np.where(small, 1.0, z)
    return np.where(small, 1.0 - z / 2.0 + z * z / 3.0 - z ** 3 / 4.0, np.log1p(zs) / zs)


def _series(z: np.ndarray, coef, direct) -> np.ndarray:
    """``direct(z)`` for ``|z| >= 0.01``, else ``Σ_j coef(j) z^j`` (12 terms)."""
    small = np.abs(z) < 0.01
    zs = np.where(small, z, 0.0)
    poly = np.zeros_like(zs)
    for j in range(11, -1, -1):
        poly = poly * zs + coef(j)
    zd = np.where(small, 0.5, z)
    return np.where(small, poly, direct(zd))


def _f1(z):
    """``(log1p(z) - z / (1 + z)) / z^2`` (-> 1/2 at 0)."""
    return _series(z, lambda j: (-1) ** j * (j + 1) / (j + 2),
                   lambda z: (np.log1p(z) - z / (1.0 + z)) / z ** 2)


def _g3(z):
    """``(-2 log1p(z) + 2 z / (1 + z) + z^2 / (1 + z)^2) / z^3`` (-> -2/3 at 0)."""
    return _series(z, lambda j: (-1) ** (j + 3) * (j + 2) * (j + 1) / (j + 3),
                   lambda z: (-2.0 * np.log1p(z) + 2.0 * z / (1.0 + z)
                              + z * z / (1.0 + z) ** 2) / z ** 3)


def _gpd_loglik(xi: float, sigma: float, y: np.ndarray) -> float:
    """The log-likelihood of excesses ``y`` (``-inf`` outside the parameter space)."""
    if not (sigma > 0 and np.isfinite(xi)):
        return -math.inf
    z = xi * y / sigma
    if np.any(1.0 + z <= 0):
        return -math.inf
    return float(-y.size * math.log(sigma) - np.sum(np.log1p(z)) - np.sum(y / sigma * _log1p_over(z)))


def _gpd_derivatives(xi: float, sigma: float, y: np.ndarray):
    """Gradient and Hessian of the log-likelihood in ``(xi, sigma)`` (stable through ``xi = 0``).

    Math: with ``u = y / sigma``, ``z = xi u``, ``A = 1 + z``:
    ``l_xi = Σ u^2 f1(z) - Σ u / A``, ``l_sigma = (-k + (1 + xi) Σ u / A) / sigma``,
    ``l_xixi = Σ u^3 g3(z) + Σ u^2 / A^2``, ``l_xisigma = (Σ u / A - (1 + xi) Σ u^2 / A^2) / sigma``,
    ``l_sigmasigma = (k - 2 (1 + xi) Σ u / A + xi (1 + xi) Σ u^2 / A^2) / sigma^2``.
    """
    k = y.size
    u = y / sigma
    z = xi * u
    a = 1.0 + z
    su_a = np.sum(u / a)
    su2_a2 = np.sum(u * u / (a * a))
    g = np.array([np.sum(u * u * _f1(z)) - su_a, (-k + (1.0 + xi) * su_a) / sigma])
    h_xx = np.sum(u ** 3 * _g3(z)) + su2_a2
    h_xs = (su_a - (1.0 + xi) * su2_a2) / sigma
    h_ss = (k - 2.0 * (1.0 + xi) * su_a + xi * (1.0 + xi) * su2_a2) / sigma ** 2
    return g, np.array([[h_xx, h_xs], [h_xs, h_ss]])


def _profile(theta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grimshaw's profile: ``(l(theta), xi(theta), sigma(theta))`` for an array of ``theta``."""
    k = y.size
    out = [np.empty(theta.shape) for _ in range(3)]
    rows = max(1, 2_000_000 // k)
    for s in range(0, theta.size, rows):
        th = theta[s:s + rows]
        z = th[:, None] * y[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.mean(y[None, :] * _log1p_over(z), axis=1)
        xi = th * sigma
        with np.errstate(invalid="ignore", divide="ignore"):
            ll = -k * np.log(sigma) - k * (1.0 + xi)
        ok = np.isfinite(ll) & (sigma > 0) & (xi >= -1.0) & np.all(z > -1.0, axis=1)
        out[0][s:s + rows] = np.where(ok, ll, -np.inf)
        out[1][s:s + rows] = xi
        out[2][s:s + rows] = sigma
    return tuple(out)


def fit_generalized_pareto(excesses, *, polish_steps: int = 6) -> tuple[float, float, np.ndarray, float]:
    """Maximum-likelihood generalized Pareto fit of excesses over a threshold (on the host).

    Math: ``S(y) = (1 + xi y / sigma)^(-1/xi)``; Grimshaw's (1993) profile likelihood in
    ``theta = xi / sigma`` (``xi(theta) = mean log(1 + theta y)``, ``sigma = xi / theta``),
    maximised over ``theta > -1 / max y`` with ``xi >= -1`` (a grid, then golden-section
    search), then Newton steps on ``(xi, sigma)``; covariance: the inverse observed information.

    Args:
        excesses: the excesses ``y >= 0`` (at least 30, not all equal).
        polish_steps: Newton steps on the full likelihood after the profile search.

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
    # theta in (-1/ymax, 0): 1 + theta ymax from 1e-12 to ~1; theta > 0: theta ybar to 1e6
    neg = -(1.0 - np.logspace(-12, 0, 160)[::-1][:-1]) / ymax
    neg = np.concatenate([neg, -np.logspace(math.log10(1e-8 / ybar),
                                            math.log10(0.999 / ymax), 80)])
    pos = np.logspace(-8, 6, 240) / ybar
    grid = np.unique(np.concatenate([neg, [0.0], pos]))
    ll, _, _ = _profile(grid, y)
    i = int(np.argmax(ll))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - gr * (b - a), a + gr * (b - a)
    fc, fd = _profile(np.array([c, d]), y)[0]
    for _ in range(80):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - gr * (b - a)
            fc = _profile(np.array([c]), y)[0][0]
        else:
            a, c, fc = c, d, fd
            d = a + gr * (b - a)
            fd = _profile(np.array([d]), y)[0][0]
    cand = np.array([grid[i], c, d])
    lls, xis, sigmas = _profile(cand, y)
    j = int(np.argmax(lls))
    xi, sigma = float(xis[j]), float(sigmas[j])
    if not math.isfinite(lls[j]):  # theta = 0 exactly: the exponential law
        xi, sigma = 0.0, ybar
    best = _gpd_loglik(xi, sigma, y)
    for _ in range(polish_steps):
        g, h = _gpd_derivatives(xi, sigma, y)
        try:
            step = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        xn, sn = xi + step[0], sigma + step[1]
        if xn < -1.0 or not sn > 0:
            break
        ln = _gpd_loglik(xn, sn, y)
        if not ln >= best:
            break
        xi, sigma, best = float(xn), float(sn), ln
    _, h = _gpd_derivatives(xi, sigma, y)
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


def _bisect_pchip(p, f0, f1, d0, d1, h, steps: int = 64):
    """``t`` in ``[0, 1]`` with the Hermite cubic through ``(0, f0)``, ``(1, f1)`` equal to ``p``."""
    def value(t):
        return (f0 * (1 + 2 * t) * (1 - t) ** 2 + h * d0 * t * (1 - t) ** 2
                + f1 * t * t * (3 - 2 * t) + h * d1 * t * t * (t - 1))

    def body(_, ab):
        a, b = ab
        mid = 0.5 * (a + b)
        below = value(mid) < p
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = jax.lax.fori_loop(0, steps, body, (jnp.zeros_like(p), jnp.ones_like(p)))
    return 0.5 * (a + b)


class Empirical(Distribution):
    """A law fitted to samples: a monotone cubic body spliced to generalized-Pareto tails.

    Build it with :meth:`fit` (or ``parse_dist("empirical(FILE)")``); the constructor takes the
    fitted pieces.

    Math: ``S(x) = m_U S_GPD(x - u_U; xi_U, sigma_U)`` above ``u_U``,
    ``F(x) = m_L S_GPD(u_L - x; xi_L, sigma_L)`` below ``u_L``, the Hermite cubic ``F`` on the
    knots between (``m = k / n``).

    Args:
        knots: the body's knots ``x_0 < ... < x_K`` (the first and last are the thresholds, or
            the smallest / largest sample where there is no tail).
        cdf: ``F`` at the knots (``cdf[0] = m_L``, ``cdf[-1] = 1 - m_U``).
        sf: ``S`` at the knots (``1 - cdf``, kept separately for its relative accuracy).
        slope: the density at the knots (the Hermite cubic's derivatives).
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
    data_parameters = ("knots", "cdf", "sf", "slope", "upper_cov", "lower_cov")
    _static = _Static(False, False, "light")
    _source = None

    def __init__(self, knots, cdf, sf, slope, n, upper=None, upper_cov=None, lower=None,
                 lower_cov=None):
        params = dict(knots=knots, cdf=cdf, sf=sf, slope=slope, n=n)
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
            lower_tail: fit a lower tail; ``None`` (default): only if some sample is negative
                (data on a half-line, all ``>= 0``, get a body down to the smallest sample).
            tail_fraction: the share of the samples in each fitted tail (overrides the rule).
            upper_threshold, lower_threshold: explicit thresholds (override the rule and
                ``tail_fraction`` for that side).
            knots: the most body knots (at most one per 32 body samples, at least 8).

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
            lower_tail = bool(xs[0] < 0.0)

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
        p_lo, p_hi = k_lo / n, (n - k_hi) / n
        kk = int(np.clip(m // 32, 8, knots))
        half = kk // 2
        pu = np.linspace(p_lo, p_hi, half + 2)[1:-1]
        lg = np.linspace(math.log(max(p_lo, 0.5 / n) / (1 - max(p_lo, 0.5 / n))),
                         math.log(min(p_hi, 1 - 0.5 / n) / (1 - min(p_hi, 1 - 0.5 / n))),
                         kk - half + 2)[1:-1]
        targets = np.concatenate([pu, 1.0 / (1.0 + np.exp(-lg))])
        idx = np.unique(np.clip(np.rint(targets * n - 0.5).astype(np.int64), a, b - 1))
        kx = xs[idx]
        keep = np.concatenate([[True], np.diff(kx) > 0]) & (kx > u_lo) & (kx < u_hi)
        idx, kx = idx[keep], kx[keep]
        cdf = np.concatenate([[p_lo], (idx + 0.5) / n, [p_hi]])
        sf = np.concatenate([[(n - k_lo) / n], (n - idx - 0.5) / n, [k_hi / n]])
        kx = np.concatenate([[u_lo], kx, [u_hi]])
        h = np.diff(kx)
        delta = np.diff(cdf) / h
        d = np.empty(kx.size)
        w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
        d[1:-1] = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])  # Fritsch–Butland (PCHIP)
        for end, seg, nxt in ((0, 0, 1), (-1, -1, -2)):
            ratio = ((2 * h[seg] + h[nxt]) * delta[seg] - h[seg] * delta[nxt]) / (h[seg] + h[nxt])
            d[end] = delta[seg] * float(np.clip(ratio / delta[seg], 0.25, 2.9))
        tails = {}
        for side, end, seg in (("upper", -1, -1), ("lower", 0, 0)):
            if side not in pieces:
                continue
            k, u, xi, sigma, cov = pieces[side]
            gpd = _gpd(xi, sigma, u)
            dens = k / n * float(np.exp(np.asarray(gpd.log_prob(u + 0.0), np.float64)))
            d[end] = min(dens, 2.9 * delta[seg])  # (1/sigma: the density at the splice)
            tails[side] = gpd
            tails[side + "_cov"] = as_float(cov, xp=np)
        law = cls(as_float(kx, xp=np), as_float(cdf, xp=np), as_float(sf, xp=np),
                  as_float(d, xp=np), float(n), **tails)
        return law

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
        if not is_concrete(self.knots):
            return "Empirical(traced)"
        parts = [f"n={int(float(self.n))}", f"{np.shape(self.knots)[-1]} knots"]
        for side in ("lower", "upper"):
            g = self.parameters.get(side)
            if g is not None:
                parts.append(f"{side} GPD xi={float(g.xi):.4g} scale={float(g.scale):.4g}")
        return f"Empirical({', '.join(parts)})"

    # --- pieces -----------------------------------------------------------------------------
    @property
    def _a_knots(self):
        return jnp.asarray(self.knots)

    @property
    def _a_cdf(self):
        return jnp.asarray(self.cdf)

    @property
    def _a_sf(self):
        return jnp.asarray(self.sf)

    @property
    def _a_slope(self):
        return jnp.asarray(self.slope)

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
        mass = float(self._a_sf[-1]) if side == "upper" else float(self._a_cdf[0])
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

    def _body(self, x):
        """``(F, S, f)`` of the body's cubic at ``x`` (clipped to the knots)."""
        kx = self._a_knots
        dtype = kx.dtype
        x = jnp.clip(jnp.asarray(x, dtype), kx[0], kx[-1])
        j = jnp.clip(jnp.searchsorted(kx, x, side="right") - 1, 0, kx.shape[0] - 2)
        x0, h = kx[j], kx[j + 1] - kx[j]
        t = jnp.clip((x - x0) / h, 0.0, 1.0)
        d0, d1 = self._a_slope[j], self._a_slope[j + 1]
        h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
        h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
        f_ = self._a_cdf[j] * h00 + h * d0 * h10 + self._a_cdf[j + 1] * h01 + h * d1 * h11
        s_ = self._a_sf[j] * h00 - h * d0 * h10 + self._a_sf[j + 1] * h01 - h * d1 * h11
        delta = (self._a_cdf[j + 1] - self._a_cdf[j]) / h
        dens = delta * 6 * t * (1 - t) + d0 * (1 - t) * (1 - 3 * t) + d1 * t * (3 * t - 2)
        return f_, s_, dens

    def _pieces(self, x):
        """``(x, in the lower tail, in the upper tail, log m_L, log m_U)``."""
        x = jnp.asarray(x)
        dtype = jnp.result_type(x, self._a_knots.dtype, float)
        x = x.astype(dtype)
        kx = self._a_knots
        low = (x < kx[0]) if self._lower is not None else jnp.zeros(x.shape, bool)
        high = (x > kx[-1]) if self._upper is not None else jnp.zeros(x.shape, bool)
        return x, low, high, jnp.log(self._a_cdf[0]), jnp.log(self._a_sf[-1])

    @staticmethod
    def _log(v):
        pos = v > 0
        return jnp.where(pos, jnp.log(jnp.where(pos, v, 1.0)), -jnp.inf)

    def _outside(self, x, out, below_value, above_value):
        """``out`` with the values outside the support's finite ends (no tail there)."""
        kx = self._a_knots
        if self._lower is None:
            out = jnp.where(x < kx[0], below_value, out)
        if self._upper is None:
            out = jnp.where(x > kx[-1], above_value, out)
        return out

    # --- the five basic methods ---------------------------------------------------------------
    def log_prob(self, x):
        x, low, high, lml, lmu = self._pieces(x)
        kx = self._a_knots
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
        kx = self._a_knots
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
        kx = self._a_knots
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

        Math: the body's cubic inverted by bisection on its piece; in a tail the GPD's
        quantile of ``(1 - p) / m_U`` (or ``p / m_L``).
        """
        p = jnp.asarray(p)
        dtype = jnp.result_type(p, self._a_knots.dtype, float)
        p = p.astype(dtype)
        kx, cdf = self._a_knots, self._a_cdf
        pc = jnp.clip(p, cdf[0], cdf[-1])
        j = jnp.clip(jnp.searchsorted(cdf, pc, side="right") - 1, 0, kx.shape[0] - 2)
        h = kx[j + 1] - kx[j]
        t = _bisect_pchip(pc, cdf[j], cdf[j + 1], self._a_slope[j], self._a_slope[j + 1], h)
        out = kx[j] + h * t
        if self._upper is not None:
            hi = p > cdf[-1]
            s = jnp.where(hi, (1.0 - p) / self._a_sf[-1], 0.5)
            out = jnp.where(hi, _gpd_isf(self._upper, s), out)
        if self._lower is not None:
            lo = p < cdf[0]
            s = jnp.where(lo, p / cdf[0], 0.5)
            out = jnp.where(lo, -_gpd_isf(self._lower, s), out)
        return out

    def sample(self, key, shape=(), dtype=None):
        dtype = float_dtype(dtype)
        u = jax.random.uniform(key, tuple(shape), dtype, minval=jnp.finfo(dtype).tiny)
        law = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), self)
        return law.quantile(u).astype(dtype)

    def mean(self):
        kx, cdf, d = self._a_knots, self._a_cdf, self._a_slope
        h = jnp.diff(kx)
        c = kx[0]
        # ∫ (x - c) dF over the body = (x_K - c) F_K - ∫ F dx; ∫ of each cubic piece closed form
        integral = jnp.sum(h * (cdf[:-1] + cdf[1:]) / 2 + h * h * (d[:-1] - d[1:]) / 12)
        body = c * (cdf[-1] - cdf[0]) + (kx[-1] - c) * cdf[-1] - integral
        total = body
        if self._upper is not None:
            total = total + self._a_sf[-1] * self._upper.mean()
        if self._lower is not None:
            total = total - cdf[0] * self._lower.mean()
        return total

    # --- hooks ------------------------------------------------------------------------------
    def support(self):
        kx = self._a_knots
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
        q = self.quantile(jnp.asarray(_BULK_P, self._a_knots.dtype))
        return q[1], jnp.maximum(0.5 * (q[2] - q[0]), jnp.finfo(q.dtype).tiny ** 0.5)

    @property
    def tail(self) -> str:
        return self._static.tail

    def right_tail(self) -> Tail:
        """The fitted upper tail's class, the GPD's (``Tail("power", 1 / xi)`` for ``xi > 0``,
        ``Tail("weibull", 1, scale)`` at ``xi = 0``, ``Tail("bounded", -1 / xi, end=...)`` for
        ``xi < 0``), its coefficient times ``m_U``; without an upper tail
        ``Tail("bounded", 1, coef=f(max), end=max)``."""
        if self._upper is None:  # the body's cubic ends at the largest sample: S ~ f (end - x)
            return Tail("bounded", 1.0, coef=float(self._a_slope[-1]), end=float(self._a_knots[-1]))
        t = self._upper.right_tail()
        if t.kind in ("power", "bounded"):
            return t._replace(coef=float(t.coef * float(self._a_sf[-1])))
        return t


FAMILIES.setdefault(Empirical.name, Empirical)
