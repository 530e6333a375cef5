"""Where E[V | V + X >= t] goes as t -> inf: the theory's prediction and the numerical verdict.

Three regimes for independent ``V`` (finite mean) and ``X``:

* ``"catastrophic"``: ``E[V | U >= t] -> E[V]`` (selection on the proxy stops helping);
* ``"bounded"``: a finite limit other than ``E[V]``;
* ``"unbounded"``: ``E[V | U >= t] -> inf``.

:func:`predicted_regime` reads the right tails of the two distributions and applies the theorems
of Kwa, Thomas & Garriga-Alonso (2024) and the boundary cases between them:

* Thm 6: ``S_X(t + 1) / S_X(t) -> 0`` (``X`` lighter than exponential) gives ``unbounded``;
* Thm 5: ``X`` subexponential and ``t^p S_V(t) / S_X(t) -> 0`` for some ``p > 1`` gives
  ``catastrophic``;
* ``X`` exponential with rate ``lam`` and ``E[exp(lam V)] < inf``: ``bounded``, the limit is the
  mean of ``V`` tilted by ``exp(lam v)``: ``d/dlam log E[exp(lam V)]`` (``mu + lam s^2`` for
  ``V ~ N(mu, s^2)``);
* power laws ``S_V ~ A_V t^-a_V``, ``S_X ~ A_X t^-a_X`` with ``a_V - a_X = 1`` (the edge of Thm 5):
  ``bounded``, limit ``E[V] + a_V A_V / ((a_V - 1) A_X)``; with ``a_V - a_X < 1``, ``V``'s tail
  wins and ``E[V | U >= t] - E[V]`` grows like ``t^(1 - (a_V - a_X))``;
* ``V`` at least as heavy as ``X`` otherwise (``V`` heavier, or equal tails: ``≈ t/2``):
  ``unbounded``;
* bounded supports (``Tail("bounded", ...)``, generalized Pareto with ``xi < 0``): an ``X``
  bounded above is lighter than any exponential (Thm 6: ``unbounded`` for an unbounded ``V``);
  a ``V`` bounded above is capped at its upper end ``hi_V``: the limit is ``hi_V`` when ``X`` is
  bounded or lighter than exponential, the tilted mean when ``X`` is exponential, and ``E[V]``
  (Thm 5, ``catastrophic``) when ``X`` is subexponential.

:func:`numerical_regime` decides the same question from the exact estimator
(:func:`goodhart_jax.conditional_value`) alone, by the trend in ``log t`` of the excess
``D(t) = E[V | U >= t] - E[V]`` far out (see :func:`classify_trend` for the rule).

Example:
    >>> import goodhart_jax as gj
    >>> predicted_regime(gj.Normal(0.0, 1.0), gj.Exponential(2.0)).limit
    2.0
    >>> predicted_regime(gj.GenNormal(2.0), gj.GenNormal(0.5)).regime
    'catastrophic'
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from goodhart_jax.distributions import Distribution, Tail, parse_dist
from goodhart_jax.mixture import leaf_components
from goodhart_jax.validation import is_concrete

__all__ = [
    "CATASTROPHIC",
    "BOUNDED",
    "UNBOUNDED",
    "UNDETERMINED",
    "REGIMES",
    "Tail",
    "Prediction",
    "LimitTrend",
    "right_tail",
    "predicted_regime",
    "classify_trend",
    "numerical_regime",
]

CATASTROPHIC = "catastrophic"
BOUNDED = "bounded"
UNBOUNDED = "unbounded"
UNDETERMINED = "undetermined"
REGIMES = (CATASTROPHIC, BOUNDED, UNBOUNDED)

# Relative tolerance for "equal" tail parameters (boundaries such as c_X = 1, a_V - a_X = 1).
_EQ = 1e-9


def _eq(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_EQ, abs_tol=_EQ)


def _scalar(d: Distribution, name: str, owner: str) -> float:
    try:
        value = float(np.asarray(getattr(d, name)))
    except (TypeError, ValueError):
        raise ValueError(f"{owner} must have scalar concrete parameters; {name} of {d!r} "
                         "is batched or traced") from None
    return value


def right_tail(dist: Distribution, *, name: str = "dist") -> Tail:
    """The class of ``dist``'s right tail (a :class:`Tail`).

    Math: Student t ``S(x) ~ c_nu nu^((nu-1)/2) scale^nu x^-nu``,
    ``c_nu = Gamma((nu+1)/2) / (sqrt(nu pi) Gamma(nu/2))``; Levy ``S(x) ~ sqrt(2 scale/(pi x))``.

    Args:
        dist: a distribution (or its spec string) with scalar parameters; its
            :meth:`~goodhart_jax.Distribution.right_tail` hook gives the answer.
        name: the argument's name for error messages.

    Raises:
        ValueError: ``dist`` is not a distribution or has batched parameters.

    Example:
        >>> import goodhart_jax as gj
        >>> round(right_tail(gj.StudentT(1.0)).coef, 12)  # Cauchy: S(x) ~ 1 / (pi x)
        0.318309886184
    """
    if isinstance(dist, str):
        dist = parse_dist(dist)
    if not isinstance(dist, Distribution):
        raise ValueError(f"{name} must be a goodhart_jax distribution or spec string, got {dist!r}")
    for _, part in leaf_components(dist):  # a mixture's pieces (its weights: its own check)
        for k, v in part.parameters.items():
            if k in part.data_parameters:  # arrays by design: concrete is enough
                if not is_concrete(v):
                    raise ValueError(f"{name} must have concrete parameters; {k} of {part!r} "
                                     "is traced")
            elif not isinstance(v, Distribution):
                _scalar(part, k, name)
    return dist.right_tail()


class Prediction(NamedTuple):
    """The theory's verdict on ``lim E[V | U >= t]``.

    Attributes:
        regime: ``"catastrophic"``, ``"bounded"`` or ``"unbounded"``.
        limit: the limit (``E[V]`` when catastrophic, ``inf`` when unbounded; when bounded the
            value where the theory gives one in closed form, else ``nan``).
        reason: the theorem or argument, in words.
    """

    regime: str
    limit: float
    reason: str


def predicted_regime(value: Distribution, error: Distribution) -> Prediction:
    """The theory's regime of ``lim_{t -> inf} E[V | V + X >= t]`` for independent ``V``, ``X``.

    Math: compare right tails (:func:`right_tail`); a ``V`` bounded above: limit ``hi_V``
    (``X`` bounded or ``c_X > 1``), the tilted mean (``c_X = 1``), ``E[V]`` (``X``
    subexponential); an ``X`` bounded above counts as ``c_X > 1``.  Thm 6 (``c_X > 1``) unbounded; ``c_X = 1``
    bounded iff ``E[e^{lam V}] < inf``, limit ``d/dlam log E[e^{lam V}]``; Thm 5
    (``X`` subexponential, ``t^p S_V/S_X -> 0``, ``p > 1``) catastrophic; power laws with
    ``a_V - a_X = 1`` bounded, limit ``E[V] + a_V A_V / ((a_V - 1) A_X)``; otherwise unbounded.

    Args:
        value: distribution of ``V`` (finite mean; scalar parameters), or a spec string.
        error: distribution of ``X`` (scalar parameters), or a spec string.

    Returns:
        :class:`Prediction` (regime, limit, reason).

    Raises:
        ValueError: a distribution that is not one of the seven families, has batched
            parameters, or (``value``) has no finite mean.

    Example:
        >>> import goodhart_jax as gj
        >>> predicted_regime(gj.StudentT(3.0), gj.StudentT(1.0)).regime
        'catastrophic'
        >>> predicted_regime(gj.StudentT(2.0), gj.StudentT(1.0)).limit  # doctest: +ELLIPSIS
        3.14159...
    """
    vt = right_tail(value, name="value")
    xt = right_tail(error, name="error")
    value, error = parse_dist(value), parse_dist(error)
    mean = float(np.asarray(value.mean()))
    if not math.isfinite(mean):
        raise ValueError(f"value must have a finite mean; {value!r} has none")
    inf = math.inf
    heavier = Prediction(UNBOUNDED, inf, "V's tail is heavier than X's: E[V | U >= t] ~ t")
    equal = Prediction(UNBOUNDED, inf, "equal tails: E[V | U >= t] ~ t/2 (exchangeability)")
    thm5 = Prediction(CATASTROPHIC, mean, "Thm 5: X subexponential and t^p S_V/S_X -> 0 (p > 1)")
    if vt.kind == "bounded":  # V capped at its upper end vt.end
        if xt.kind == "bounded" or xt.kind == "weibull" and xt.exponent > 1.0 and not _eq(
                xt.exponent, 1.0):
            return Prediction(BOUNDED, vt.end, "V bounded above, X bounded or lighter than "
                              "exponential (Thm 6's argument): E[V | U >= t] -> V's upper end")
        if xt.kind == "weibull" and _eq(xt.exponent, 1.0):
            return Prediction(BOUNDED, value.tilted_mean(1.0 / xt.scale),
                              "exponential X (c = 1 boundary), V bounded: V's mean tilted by "
                              "exp(lam v)")
        return Prediction(CATASTROPHIC, mean, "Thm 5: X subexponential, V bounded above "
                          "(S_V = 0 beyond its end)")
    if xt.kind == "bounded":
        return Prediction(UNBOUNDED, inf, "Thm 6: X bounded above (lighter than any "
                          "exponential), V unbounded: E[V | U >= t] >= t - X's upper end")
    if xt.kind == "weibull" and xt.exponent > 1.0 and not _eq(xt.exponent, 1.0):
        return Prediction(UNBOUNDED, inf, "Thm 6: X lighter than exponential, V unbounded")
    if xt.kind == "weibull" and _eq(xt.exponent, 1.0):
        lam = 1.0 / xt.scale
        if vt.kind != "weibull" or vt.exponent < 1.0 and not _eq(vt.exponent, 1.0):
            return heavier
        if _eq(vt.exponent, 1.0):
            rate_v = 1.0 / vt.scale
            if _eq(rate_v, lam):
                return equal
            if rate_v < lam:
                return heavier
        return Prediction(BOUNDED, value.tilted_mean(lam),
                          "exponential X (c = 1 boundary), E[exp(lam V)] finite: V's mean "
                          "tilted by exp(lam v)")
    # X subexponential from here on
    if vt.kind == "weibull":
        if xt.kind != "weibull" or vt.exponent > xt.exponent and not _eq(vt.exponent, xt.exponent):
            return thm5
        if _eq(vt.exponent, xt.exponent):
            if _eq(vt.scale, xt.scale):
                return equal
            return thm5 if vt.scale < xt.scale else heavier
        return heavier
    if vt.kind == "lognormal":
        if xt.kind == "power":
            return thm5
        if xt.kind == "weibull":
            return heavier
        if _eq(vt.exponent, xt.exponent):
            return equal
        return thm5 if vt.exponent < xt.exponent else heavier
    # V power law (a_V > 1: finite mean)
    if xt.kind != "power":
        return heavier
    delta = vt.exponent - xt.exponent
    if _eq(delta, 1.0):
        limit = mean + vt.exponent * vt.coef / ((vt.exponent - 1.0) * xt.coef)
        return Prediction(BOUNDED, limit, "power laws with a_V - a_X = 1 (edge of Thm 5): "
                          "limit E[V] + a_V A_V / ((a_V - 1) A_X)")
    if delta > 1.0:
        return thm5
    if _eq(delta, 0.0) and _eq(vt.coef, xt.coef):
        return equal
    return Prediction(UNBOUNDED, inf, f"power laws with a_V - a_X = {delta:g} < 1: "
                      f"E[V | U >= t] - E[V] ~ t^{1.0 - delta:g}")


class LimitTrend(NamedTuple):
    """The numerical verdict of :func:`numerical_regime`.

    Attributes:
        regime: ``"catastrophic"``, ``"bounded"``, ``"unbounded"`` or ``"undetermined"``.
        slope: secant slope of ``log D`` against ``log t`` over the last quarter of the log-t
            window, ``D = E[V | U >= t] - E[V]``.
        slope_before: the same over the quarter before (the trend of the slope).
        t_max: the largest threshold used.
        log_p: ``log P(U >= t_max)``.
        value: ``E[V | U >= t_max]``.
        mean: ``E[V]``.
    """

    regime: str
    slope: float
    slope_before: float
    t_max: float
    log_p: float
    value: float
    mean: float


def classify_trend(t, excess, *, slope_tol: float = 0.02) -> tuple[str, float, float]:
    """Classify the limit of ``D(t) = E[V | U >= t] - E[V]`` from its trend in ``log t``.

    Rule: split the log-t range of the points into quarters; ``s`` is the secant slope of
    ``log D`` against ``log t`` across the last quarter (``s_before`` across the one before).
    ``s < -slope_tol``: ``D -> 0`` like a power of ``t`` (catastrophic); ``s > slope_tol``:
    ``D`` grows like a power of ``t`` (unbounded); ``|s| <= slope_tol``: ``D`` levels off
    (bounded).  ``D <= 0`` or non-finite anywhere in the last half: ``"undetermined"``.

    Math: ``s = [log D(t_n) - log D(t_q)] / [log t_n - log t_q]``, ``log t_q`` three quarters
    of the way from ``log t_1`` to ``log t_n``.

    Args:
        t: increasing thresholds (at least 5, positive).
        excess: ``D(t)`` at those thresholds.
        slope_tol: the band of slopes that counts as level (``> 0``).

    Returns:
        ``(regime, s, s_before)``.

    Raises:
        ValueError: fewer than 5 thresholds, thresholds not positive and increasing, shapes
            that differ, or ``slope_tol`` not positive.

    Example:
        >>> import numpy as np
        >>> t = np.geomspace(10.0, 1e6, 21)
        >>> classify_trend(t, 3.0 / np.sqrt(t))[0]
        'catastrophic'
    """
    from goodhart_jax.validation import check_param

    check_param("slope_tol", slope_tol, lo=0.0, lo_open=True)
    t = np.asarray(t, dtype=float)
    d = np.asarray(excess, dtype=float)
    if t.ndim != 1 or t.shape != d.shape:
        raise ValueError(f"t and excess must be 1-D of equal length, got shapes {t.shape} "
                         f"and {d.shape}")
    if t.size < 5:
        raise ValueError(f"t must hold at least 5 thresholds, got {t.size}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.diff(t) > 0)):
        raise ValueError("t must be positive, finite and increasing")
    lt = np.log(t)
    span = lt[-1] - lt[0]
    q3 = int(np.argmin(np.abs(lt - (lt[0] + 0.75 * span))))
    q2 = int(np.argmin(np.abs(lt - (lt[0] + 0.5 * span))))
    q3 = min(max(q3, q2 + 1), t.size - 1)
    tail = d[q2:]
    if not (np.all(np.isfinite(tail)) and np.all(tail > 0)) or q3 >= t.size - 1:
        return UNDETERMINED, math.nan, math.nan
    ld = np.log(d)
    s = float((ld[-1] - ld[q3]) / (lt[-1] - lt[q3]))
    s_before = float((ld[q3] - ld[q2]) / (lt[q3] - lt[q2]))
    if s < -slope_tol:
        return CATASTROPHIC, s, s_before
    if s > slope_tol:
        return UNBOUNDED, s, s_before
    return BOUNDED, s, s_before


def _exact(value, error, t):
    """``(log D, log P(U >= t))`` with ``D = E[V | U >= t] - E[V]``, from one quadrature."""
    from goodhart_jax.conditioning import log_value_excess

    log_d, log_p = log_value_excess(value, error, np.asarray(t, dtype=float))
    return np.asarray(log_d), np.asarray(log_p)


def _crossing(t, log_p, nats):
    """Interpolated ``t`` where ``log P`` first falls to ``-nats`` (index of the bracket, t)."""
    below = np.flatnonzero(~(log_p > -nats))  # NaN counts as beyond: stop before it
    if below.size == 0:
        return None, float(t[-1])
    i = int(below[0])
    if i == 0:
        return 0, float(t[0])
    a = math.log(max(-log_p[i - 1], 1e-300))
    c = math.log(-log_p[i]) if np.isfinite(log_p[i]) else a + 50.0
    frac = (math.log(nats) - a) / (c - a) if c > a else 1.0
    lt0, lt1 = math.log(t[i - 1]), math.log(t[i])
    return i, math.exp(lt0 + min(max(frac, 0.0), 1.0) * (lt1 - lt0))


def numerical_regime(value, error, *, max_nats: float = 1e8, t_cap: float = 1e150,
                     num_points: int = 41, slope_tol: float = 0.02) -> LimitTrend:
    """The regime of ``lim E[V | V + X >= t]`` decided from the exact estimator alone.

    Thresholds run geometrically from ``sqrt(t_max)`` to ``t_max``, where ``t_max`` is the
    threshold at which ``log P(U >= t)`` reaches ``-max_nats`` (found on a geometric scan of
    ``[1, t_cap]``, refined once), or ``t_cap`` if it never does (power laws).  ``D(t) =
    E[V | U >= t] - E[V]`` there is classified by :func:`classify_trend`.  The estimator's
    log-space terms are of size ``max_nats``, so its relative accuracy is about
    ``max_nats * 1e-16``; the default ``1e8`` (``P(U >= t_max) = e^-1e8``) keeps it near
    ``1e-8`` (beyond ``~1e13`` nats the estimator breaks down).  Every call evaluates the
    quadrature on arrays of ``num_points`` thresholds: one compilation per pair of families.

    Math: ``s ≈ d log(E[V | U >= t] - E[V]) / d log t`` at ``t ≈ t_max``.

    Args:
        value: distribution of ``V`` (finite mean), or a spec string.
        error: distribution of ``X``, or a spec string.
        max_nats: ``-log P(U >= t_max)`` to aim for (in ``[10, 1e12]``).
        t_cap: the largest threshold allowed (in ``[10, 1e250]``).
        num_points: thresholds per evaluation (``>= 9``).
        slope_tol: see :func:`classify_trend`.

    Returns:
        :class:`LimitTrend`.

    Raises:
        ValueError: a parameter out of range (named), float64 off, or ``value`` without a
            finite mean.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> jax.config.update("jax_enable_x64", True)
        >>> numerical_regime(gj.Normal(), gj.Exponential(1.0)).regime
        'bounded'
    """
    import jax

    from goodhart_jax.validation import check_param, check_positive_int
    from goodhart_jax.distributions import parse_dist

    check_param("max_nats", max_nats, lo=10.0, hi=1e12)
    check_param("t_cap", t_cap, lo=10.0, hi=1e250)
    num_points = check_positive_int("num_points", num_points, minimum=9)
    check_param("slope_tol", slope_tol, lo=0.0, lo_open=True)
    value, error = parse_dist(value), parse_dist(error)
    if not jax.config.jax_enable_x64:
        raise ValueError("numerical_regime needs float64: "
                         "jax.config.update('jax_enable_x64', True)")
    mean = float(np.asarray(value.mean()))
    if not math.isfinite(mean):
        raise ValueError(f"value must have a finite mean; {value!r} has none")
    scan = np.geomspace(1.0, t_cap, num_points)
    _, lp = _exact(value, error, scan)
    i, t_max = _crossing(scan, lp, max_nats)
    if i is not None and i > 0:  # refine inside the bracket
        fine = np.geomspace(scan[i - 1], scan[i], num_points)
        _, lp_fine = _exact(value, error, fine)
        _, t_max = _crossing(fine, lp_fine, max_nats)
    t_lo = max(math.sqrt(t_max), min(2.0, t_max / 10.0))
    t = np.geomspace(t_lo, t_max, num_points)
    log_d, log_p = _exact(value, error, t)
    with np.errstate(over="ignore"):
        excess = np.exp(log_d)
    regime, s, s_before = classify_trend(t, excess, slope_tol=slope_tol)
    return LimitTrend(regime, s, s_before, float(t[-1]), float(log_p[-1]),
                      mean + float(excess[-1]), mean)
