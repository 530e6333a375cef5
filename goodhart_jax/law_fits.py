"""Maximum-likelihood fits of whole laws to a sample of scores, compared by AIC and KS.

:func:`fit_law` fits one family (a built-in, the generalized Pareto, or a two-component
mixture) by maximum likelihood with optax's L-BFGS (zoom line search) in an unconstrained
parameterisation, from moment-based starts (several for mixtures); :func:`compare_laws` fits
several and sorts them by AIC; :func:`qq_data` gives the points of a QQ plot.  Parameterisations,
optimiser, starts and what AIC and KS mean here: ``docs/law_fits.md``.

A fit is one compiled program per family structure and sample size: the sample, the starts,
the data-dependent constants (``min x``, ``max x``, fixed values), the iteration limit and the
tolerance are traced arguments, so new samples of the same size and new settings reuse it.

Math: ``theta* = argmax_theta Σ_i log f_theta(x_i)`` (L-BFGS on the mean negative
log-likelihood); ``AIC = 2k - 2 l``, ``BIC = k log n - 2 l``; ``KS = sup_x |F_n(x) - F(x)|
= max_i max(i/n - F(x_(i)), F(x_(i)) - (i-1)/n)`` (exact, ties included).

Example:
    >>> import jax, goodhart_jax as gj
    >>> x = gj.Normal(1.0, 2.0).sample(jax.random.key(0), (2000,))
    >>> fit = gj.fit_law(x, "normal")
    >>> round(fit.law.loc, 1), round(fit.law.scale, 1), fit.n_params, fit.converged
    (1.0, 2.0, 2, True)
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from goodhart_jax.distributions import (
    Distribution,
    Exponential,
    GeneralizedPareto,
    GenNormal,
    LogNormal,
    Normal,
    Pareto,
    StudentT,
    quantiles_by_logit,
)
from goodhart_jax.mixture import Mixture
from goodhart_jax.numerics import float_dtype
from goodhart_jax.validation import check_param, check_positive_int

__all__ = ["LawFit", "FIT_FAMILIES", "fit_law", "compare_laws", "qq_data"]

#: The fewest points a fit accepts.
MIN_POINTS = 10


class LawFit(NamedTuple):
    """A maximum-likelihood fit of one family to a sample.

    Attributes:
        law: the fitted :class:`~goodhart_jax.Distribution` (concrete float parameters); ``None``
            for a family :func:`compare_laws` skipped (its support cannot hold the sample).
        loglik: ``Σ_i log f(x_i)`` at the fit (``nan`` when skipped).
        n_params: the parameters estimated from the sample (free ones, plus a support bound
            set to ``min x``, its MLE; a value the caller fixed does not count).
        aic: ``2 n_params - 2 loglik``; ``inf`` when skipped, and when the likelihood has no
            maximum (a generalized Pareto run away to ``xi < -1``: see ``message``).
        bic: ``n_params log n - 2 loglik`` (``inf`` where ``aic`` is).
        ks: the Kolmogorov-Smirnov distance ``sup |F_n - F|``, exact at the sample points.
        converged: the optimiser stopped on its gradient test (``max |grad| <= tol`` of the mean
            negative log-likelihood in the unconstrained parameters) at a finite value.  It
            also stops, unconverged, after 5 iterations in a row without a decrease beyond
            rounding (a kink: ``gennorm`` with ``p <= 1`` has one at ``loc``; its maximum over
            ``loc`` is at a sample point, so such a fit then tries the sample points next to
            ``loc``, re-fitting ``p`` and ``scale`` at each), when a generalized Pareto runs
            away to ``xi < -1`` (no maximum), or after ``steps``.
        message: what happened, in words (iterations, gradient, fixed parameters, or why the
            family was skipped).
        family: the family's name (a key of :data:`FIT_FAMILIES`).
    """

    law: Distribution | None
    loglik: float
    n_params: int
    aic: float
    bic: float
    ks: float
    converged: bool
    message: str
    family: str = ""


# --- the families ----------------------------------------------------------------------------
# Each family: its unconstrained parameters theta (a vector), a traceable ``build(theta, aux)``
# with ``aux = (min x, max x, fixed value)``, host-side ``starts(x, aux)`` (rows of theta) and
# ``theta_of(dist, aux)`` (the inverse, for a user's starting law), the one parameter that may be
# fixed (its name; ``None`` if none) and whether, left unfixed, it is set to ``min x`` (counted
# in ``n_params``) or free.


class _Family(NamedTuple):
    name: str
    k: int  # length of theta
    build: Callable[[jax.Array, jax.Array, bool], Distribution]
    starts: Callable[[np.ndarray, np.ndarray, bool], np.ndarray]
    theta_of: Callable[[Distribution, np.ndarray, bool], np.ndarray]
    fixable: str | None = None
    at_min: bool = False  # the fixable parameter, when not given, is min(x) (else it is free)
    runaway: Callable[[jax.Array, jax.Array, bool], jax.Array] | None = None  # no maximum ahead
    runaway_note: str = ""


def _scale_of(x: np.ndarray) -> float:
    sd = float(np.std(x))
    return sd if sd > 0 else 1.0


def _loc_scale_starts(x):
    return float(np.mean(x)), _scale_of(x)


def _normal():
    def build(t, aux, fixed):
        return Normal(t[0], jnp.exp(t[1]))

    def starts(x, aux, fixed):
        m, s = _loc_scale_starts(x)
        return np.array([[m, math.log(s)]])

    def theta_of(d, aux, fixed):
        return np.array([float(d.loc), math.log(float(d.scale))])

    return _Family("normal", 2, build, starts, theta_of)


def _student_t():
    def build(t, aux, fixed):
        return StudentT(jnp.exp(t[0]), t[1], jnp.exp(t[2]))

    def starts(x, aux, fixed):
        med = float(np.median(x))
        mad = float(np.median(np.abs(x - med))) * 1.4826 or _scale_of(x)
        return np.array([[math.log(5.0), med, math.log(mad)]])

    def theta_of(d, aux, fixed):
        return np.array([math.log(float(d.df)), float(d.loc), math.log(float(d.scale))])

    return _Family("student_t", 3, build, starts, theta_of)


def _gennorm():
    def build(t, aux, fixed):
        return GenNormal(jnp.exp(t[0]), t[1], jnp.exp(t[2]))

    def starts(x, aux, fixed):
        m, s = _loc_scale_starts(x)
        return np.array([[math.log(2.0), m, math.log(math.sqrt(2.0) * s)]])

    def theta_of(d, aux, fixed):
        return np.array([math.log(float(d.p)), float(d.loc), math.log(float(d.scale))])

    return _Family("gennorm", 3, build, starts, theta_of)


def _exponential():
    def build(t, aux, fixed):
        return Exponential(jnp.exp(t[0]))

    def starts(x, aux, fixed):
        return np.array([[-math.log(max(float(np.mean(x)), 1e-300))]])

    def theta_of(d, aux, fixed):
        return np.array([math.log(float(d.rate))])

    return _Family("exponential", 1, build, starts, theta_of)


def _lognormal():
    # loc + exp(sigma Z): theta = (log sigma, log(min x - loc)), or (log sigma,) with loc fixed
    def loc_of(t, aux, fixed):
        return aux[2] if fixed else aux[0] - jnp.exp(t[1])

    def build(t, aux, fixed):
        return LogNormal(jnp.exp(t[0]), loc_of(t, aux, fixed))

    def starts(x, aux, fixed):
        lo = float(aux[0])
        if fixed:
            loc = float(aux[2])
        else:  # the median is loc + 1; keep loc below the sample
            gap = max(1e-3 * _scale_of(x), 1e-12 * max(abs(lo), 1.0))
            loc = min(float(np.median(x)) - 1.0, lo - max(gap, 0.1 * _scale_of(x)))
        sigma = max(float(np.sqrt(np.mean(np.log(x - loc) ** 2))), 1e-3)
        row = [math.log(sigma)] + ([] if fixed else [math.log(lo - loc)])
        return np.array([row])

    def theta_of(d, aux, fixed):
        row = [math.log(float(d.sigma))]
        if not fixed:
            gap = float(aux[0]) - float(d.loc)
            if gap <= 0:
                raise ValueError(f"init: a lognormal start needs loc < min(x) = {float(aux[0]):g}, "
                                 f"got loc = {float(d.loc):g}")
            row.append(math.log(gap))
        return np.array(row)

    return _Family("lognormal", 2, build, starts, theta_of, fixable="loc")


def _pareto():
    # scale = min x (its MLE) unless fixed; theta = (log alpha,)
    def build(t, aux, fixed):
        return Pareto(jnp.exp(t[0]), aux[2] if fixed else aux[0])

    def starts(x, aux, fixed):
        scale = float(aux[2] if fixed else aux[0])
        s = float(np.mean(np.log(x / scale)))
        return np.array([[-math.log(s) if s > 0 else 0.0]])

    def theta_of(d, aux, fixed):
        return np.array([math.log(float(d.alpha))])

    return _Family("pareto", 1, build, starts, theta_of, fixable="scale", at_min=True)


def _genpareto():
    # loc = min x unless fixed; theta = (log1p(tau R), log scale) with tau = xi / scale and
    # R = max x - loc: every theta keeps the sample inside the support (1 + tau R > 0), and
    # xi = 0 (u = 0) is an interior point
    def loc_of(aux, fixed):
        return aux[2] if fixed else aux[0]

    def build(t, aux, fixed):
        r = aux[1] - loc_of(aux, fixed)
        scale = jnp.exp(t[1])
        tau = jnp.expm1(t[0]) / r
        return GeneralizedPareto(tau * scale, scale, loc_of(aux, fixed))

    def starts(x, aux, fixed):
        loc = float(aux[2] if fixed else aux[0])
        y = x - loc
        m, v = float(np.mean(y)), float(np.var(y))
        xi = min(max(0.5 * (1.0 - m * m / v), -0.4), 0.45) if v > 0 else 0.0
        scale = max(0.5 * m * (m * m / v + 1.0), 1e-300) if v > 0 else max(m, 1e-300)
        r = float(aux[1]) - loc
        return np.array([[math.log1p(max(xi * r / scale, -0.5)), math.log(scale)]])

    def theta_of(d, aux, fixed):
        loc = float(aux[2] if fixed else aux[0])
        r = float(aux[1]) - loc
        u = float(d.xi) * r / float(d.scale)
        if u <= -1.0:
            raise ValueError("init: the generalized Pareto start must hold the sample "
                             f"(loc - scale / xi > max(x) = {float(aux[1]):g})")
        return np.array([math.log1p(u), math.log(float(d.scale))])

    def runaway(t, aux, fixed):
        r = aux[1] - loc_of(aux, fixed)
        return jnp.expm1(t[0]) / r * jnp.exp(t[1]) < -1.0

    return _Family("genpareto", 2, build, starts, theta_of, fixable="loc", at_min=True,
                   runaway=runaway,
                   runaway_note="xi < -1: the likelihood has no maximum, it grows without "
                   "bound as the support's upper end reaches max(x)")


_SPLITS = (0.5, 0.25, 0.75, 0.1, 0.9)


def _split_moments(x, q):
    """Weight, mean and sd of the lower ``q`` share of the sorted sample and of the rest."""
    xs = np.sort(x)
    j = min(max(int(round(q * len(xs))), 2), len(xs) - 2)
    lo, hi = xs[:j], xs[j:]
    sd = _scale_of(x)
    return (j / len(xs), float(lo.mean()), max(float(lo.std()), 1e-3 * sd),
            float(hi.mean()), max(float(hi.std()), 1e-3 * sd))


def _logit(w):
    return math.log(w) - math.log1p(-w)


def _mixture2():
    # theta = (logit w1, m1, log s1, m2, log s2)
    def build(t, aux, fixed):
        w = jax.nn.sigmoid(jnp.stack([t[0], -t[0]]))
        return Mixture([Normal(t[1], jnp.exp(t[2])), Normal(t[3], jnp.exp(t[4]))], w)

    def starts(x, aux, fixed):
        rows = []
        for q in _SPLITS:
            w, m1, s1, m2, s2 = _split_moments(x, q)
            rows.append([_logit(w), m1, math.log(s1), m2, math.log(s2)])
        return np.array(rows)

    def theta_of(d, aux, fixed):
        a, b = d.components
        w = np.asarray(d.weights, float)
        w = w / w.sum()
        return np.array([_logit(w[0]), float(a.loc), math.log(float(a.scale)), float(b.loc),
                         math.log(float(b.scale))])

    return _Family("mixture2", 5, build, starts, theta_of)


def _mixture2_t():
    # normal + Student t: theta = (logit w_normal, m1, log s1, log df, m2, log s2)
    def build(t, aux, fixed):
        w = jax.nn.sigmoid(jnp.stack([t[0], -t[0]]))
        return Mixture([Normal(t[1], jnp.exp(t[2])),
                        StudentT(jnp.exp(t[3]), t[4], jnp.exp(t[5]))], w)

    def starts(x, aux, fixed):
        rows = []
        for q in _SPLITS[:3]:
            w, m1, s1, m2, s2 = _split_moments(x, q)
            rows.append([_logit(w), m1, math.log(s1), math.log(5.0), m2, math.log(s2)])
            rows.append([_logit(1.0 - w), m2, math.log(s2), math.log(5.0), m1, math.log(s1)])
        med, sd = float(np.median(x)), _scale_of(x)  # a normal body, a broad t background
        rows.append([_logit(0.8), med, math.log(0.5 * sd), math.log(3.0), med, math.log(sd)])
        return np.array(rows)

    def theta_of(d, aux, fixed):
        a, b = d.components
        w = np.asarray(d.weights, float)
        w = w / w.sum()
        return np.array([_logit(w[0]), float(a.loc), math.log(float(a.scale)),
                         math.log(float(b.df)), float(b.loc), math.log(float(b.scale))])

    return _Family("mixture2_t", 6, build, starts, theta_of)


#: The families :func:`fit_law` knows, by name.
FIT_FAMILIES: dict[str, _Family] = {f.name: f for f in (
    _normal(), _student_t(), _gennorm(), _lognormal(), _exponential(), _pareto(), _genpareto(),
    _mixture2(), _mixture2_t())}

_DEFAULT_FAMILIES = tuple(FIT_FAMILIES)


def _family_of(dist: Distribution) -> str:
    """The fit family of a starting law (a built-in, or a two-component mixture), by the
    family names the laws declare (``Distribution.name``) and ``mixture_components()``."""
    simple = ("normal", "student_t", "gennorm", "lognormal", "exponential", "pareto",
              "genpareto")
    parts = dist.mixture_components()
    if parts is None and dist.name in simple:
        return dist.name
    if parts is not None and len(parts[1]) == 2:
        kinds = tuple(c.name for c in parts[1])
        if kinds == ("normal", "normal"):
            return "mixture2"
        if kinds == ("normal", "student_t"):
            return "mixture2_t"
    raise ValueError("family: a starting law must be one of Normal, StudentT, GenNormal, "
                     "LogNormal, Exponential, Pareto, GeneralizedPareto, or a Mixture of two "
                     f"Normals or of a Normal and a StudentT (in that order); got {dist!r}")


# --- the compiled fit -----------------------------------------------------------------------


def _ks(law: Distribution, xs: jax.Array) -> jax.Array:
    """``sup |F_n - F|`` over the sorted sample ``xs`` (exact, ties included)."""
    n = xs.shape[0]
    f = jnp.exp(law.log_cdf(xs))
    i = jnp.arange(1, n + 1, dtype=xs.dtype)
    return jnp.maximum(jnp.max(i / n - f), jnp.max(f - (i - 1) / n))


# stop after this many iterations in a row that lower the objective by no more than
# _FLAT eps |objective| (rounding)
_STALL = 5
_FLAT = 2.0


@partial(jax.jit, static_argnames=("name", "fixed"))
def _fit_core(x, theta0, aux, maxiter, tol, *, name: str, fixed: bool):
    fam = FIT_FAMILIES[name]

    def nll(t):
        return -jnp.mean(fam.build(t, aux, fixed).log_prob(x))

    opt = optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(
        max_linesearch_steps=30, initial_guess_strategy="one"))
    value_and_grad = optax.value_and_grad_from_state(nll)

    def one(t0):
        def step(carry):
            t, state, prev, _, stall = carry
            value, grad = value_and_grad(t, state=state)
            updates, state = opt.update(grad, state, t, value=value, grad=grad, value_fn=nll)
            t = optax.apply_updates(t, updates)
            # no decrease beyond rounding: a kink (gennorm with p <= 1 at its loc) or the end of
            # what float64 resolves
            flat = prev - value <= _FLAT * jnp.finfo(x.dtype).eps * jnp.abs(value)
            return t, state, value, jnp.max(jnp.abs(grad)), jnp.where(flat, stall + 1, 0)

        def going(carry):
            t, state, value, gmax, stall = carry
            count = optax.tree_utils.tree_get(state, "count")
            ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(t)) & (stall < _STALL)
            if fam.runaway is not None:
                ok &= ~fam.runaway(t, aux, fixed)
            return (count == 0) | ((count < maxiter) & (gmax > tol) & ok)

        inf = jnp.asarray(jnp.inf, x.dtype)
        t, state, _, _, stall = jax.lax.while_loop(
            going, step, (t0, opt.init(t0), inf, inf, jnp.asarray(0)))
        value, grad = jax.value_and_grad(nll)(t)
        count = optax.tree_utils.tree_get(state, "count")
        run = fam.runaway(t, aux, fixed) if fam.runaway is not None else jnp.asarray(False)
        return t, value, jnp.max(jnp.abs(grad)), count, stall >= _STALL, run

    thetas, values, gmaxes, counts, stalls, runs = jax.vmap(one)(theta0)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    best = jnp.argmin(values)
    t = thetas[best]
    law = fam.build(t, aux, fixed)
    loglik = jnp.sum(law.log_prob(x))
    ks = _ks(law, jnp.sort(x))
    return law, loglik, ks, gmaxes[best], counts[best], stalls[best], runs[best]


def _sample(x, owner: str) -> np.ndarray:
    """The sample as a 1-D float64 numpy array, validated."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: x must be a 1-D array of real numbers, got {type(x).__name__}"
                         ) from None
    if arr.ndim != 1:
        raise ValueError(f"{owner}: x must be a 1-D array of scores, got shape {arr.shape}")
    if arr.size < MIN_POINTS:
        raise ValueError(f"{owner}: x must hold at least {MIN_POINTS} points, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: x must be finite (no NaN or infinity); "
                         f"{int(np.sum(~np.isfinite(arr)))} of {arr.size} values are not")
    if arr.min() == arr.max():
        raise ValueError(f"{owner}: x must hold at least two distinct values, got all {arr[0]:g}")
    return arr


def _support_problem(fam: _Family, x: np.ndarray, fixed_value: float | None) -> str | None:
    """Why the family cannot hold the sample (``None`` if it can)."""
    lo = float(x.min())
    if fam.name == "exponential" and lo < 0:
        return f"exponential needs x >= 0, got min(x) = {lo:g}"
    if fam.name == "pareto":
        if fixed_value is None and lo <= 0:
            return f"pareto needs x > 0, got min(x) = {lo:g}"
        if fixed_value is not None and lo < fixed_value:
            return f"pareto with scale = {fixed_value:g} needs x >= scale, got min(x) = {lo:g}"
    if fam.name == "genpareto" and fixed_value is not None and lo < fixed_value:
        return f"genpareto with loc = {fixed_value:g} needs x >= loc, got min(x) = {lo:g}"
    if fam.name == "lognormal" and fixed_value is not None and lo <= fixed_value:
        return f"lognormal with loc = {fixed_value:g} needs x > loc, got min(x) = {lo:g}"
    return None


def _tol(tol: float | None, owner: str) -> float:
    """The gradient tolerance: given (``> 0``), or the default of the working precision."""
    if tol is None:
        return 1e-9 if float_dtype() == jnp.float64 else 1e-4
    check_param("tol", tol, lo=0.0, lo_open=True, owner=owner)
    return float(tol)


def _resolve_family(family: Any) -> tuple[_Family, Distribution | None]:
    if isinstance(family, Distribution):
        return FIT_FAMILIES[_family_of(family)], family
    if not isinstance(family, str) or family not in FIT_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FIT_FAMILIES)} or a Distribution of "
                         f"one of them, got {family!r}")
    return FIT_FAMILIES[family], None


def _fixed_value(fam: _Family, fixed: Mapping[str, float] | None) -> float | None:
    if not fixed:
        return None
    if not isinstance(fixed, Mapping):
        raise ValueError(f"fixed must be a mapping such as {{'loc': 0.0}}, got {fixed!r}")
    allowed = fam.fixable
    keys = set(fixed)
    if allowed is None or keys != {allowed}:
        what = f"only {allowed!r}" if allowed else "nothing"
        raise ValueError(f"fixed: {fam.name} can fix {what}, got {sorted(keys)}")
    value = fixed[allowed]
    positive = fam.name == "pareto"
    check_param(f"fixed[{allowed!r}]", value, lo=0.0 if positive else -math.inf,
                lo_open=positive, owner="fit_law")
    return float(value)


def fit_law(x, family: str | Distribution, *, init: Distribution | None = None,
            fixed: Mapping[str, float] | None = None, steps: int = 500,
            tol: float | None = None) -> LawFit:
    """Fit one family to a 1-D sample by maximum likelihood (optax L-BFGS).

    Math: ``theta* = argmin_theta -(1/n) Σ_i log f_theta(x_i)`` in unconstrained parameters
    (logs of positive ones, the logit of a mixture weight, ``log(min x - loc)`` for the
    lognormal's ``loc``, ``log1p(xi (max x - loc) / scale)`` for the generalized Pareto's
    ``xi``); ``AIC = 2k - 2l``, ``BIC = k log n - 2l``, ``KS = sup |F_n - F|``.  Details:
    ``docs/law_fits.md``.

    Args:
        x: the sample, 1-D, finite, at least 10 points, not all equal.
        family: a name, one of ``normal``, ``student_t``, ``gennorm``, ``lognormal``,
            ``exponential``, ``pareto``, ``genpareto``, ``mixture2`` (two normals) and
            ``mixture2_t`` (a normal and a Student t); or a law of one of these families, used
            as the starting point.
        init: a starting law of the family (instead of the moment-based starts).
        fixed: a parameter held fixed, the one each family allows: ``{"loc": v}`` for
            ``lognormal`` (default: fitted, below ``min x``) and ``genpareto`` (default:
            ``min x``, its MLE), ``{"scale": v}`` for ``pareto`` (default: ``min x``, its MLE).
        steps: the most L-BFGS iterations per start.
        tol: the gradient test: stop when ``max |grad| <= tol`` (mean negative log-likelihood,
            unconstrained parameters); default ``1e-9`` in float64, ``1e-4`` in float32
            (``jax_enable_x64`` off).

    Returns:
        A :class:`LawFit`.

    Raises:
        ValueError: ``x`` is not a finite 1-D sample of at least 10 distinct-valued points or
            lies outside the family's support (e.g. ``x < 0`` for ``exponential``, ``x <= 0``
            for ``pareto``); an unknown ``family``; ``init`` of another family or not holding
            the sample; ``fixed`` naming a parameter the family cannot fix; ``steps`` or
            ``tol`` out of range.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> x = gj.Pareto(2.0, 1.0).sample(jax.random.key(1), (5000,))
        >>> fit = gj.fit_law(x, "pareto")   # scale = min(x), alpha = n / Σ log(x / min x)
        >>> round(float(fit.law.alpha), 1), fit.n_params
        (2.0, 2)
    """
    arr = _sample(x, "fit_law")
    fam, start = _resolve_family(family)
    if init is not None:
        if start is not None:
            raise ValueError("init: give the starting law either as family or as init, not both")
        if not isinstance(init, Distribution) or _family_of(init) != fam.name:
            raise ValueError(f"init must be a {fam.name} law, got {init!r}")
        start = init
    steps = check_positive_int("steps", steps, owner="fit_law")
    tol = _tol(tol, "fit_law")
    value = _fixed_value(fam, fixed)
    problem = _support_problem(fam, arr, value)
    if problem is not None:
        raise ValueError(f"fit_law: x is outside the support: {problem}")
    return _fit(arr, fam, start, value, steps, float(tol))


def _fit(arr: np.ndarray, fam: _Family, start: Distribution | None, value: float | None,
         steps: int, tol: float) -> LawFit:
    is_fixed = value is not None
    aux = np.array([arr.min(), arr.max(), value if is_fixed else 0.0])
    if start is not None:
        theta0 = fam.theta_of(start, aux, is_fixed)[None, :]
    else:
        theta0 = fam.starts(arr, aux, is_fixed)
    k = fam.k - (1 if fam.name == "lognormal" and is_fixed else 0)
    theta0 = theta0[:, :k]
    dtype = float_dtype()
    law, loglik, ks, gmax, count, stalled, runaway = _fit_core(
        jnp.asarray(arr, dtype), jnp.asarray(theta0, dtype), jnp.asarray(aux, dtype), steps, tol,
        name=fam.name, fixed=is_fixed)
    law = _concrete(law)
    if fam.name == "mixture2":
        law = _ordered(law)
    loglik, ks, gmax, count = float(loglik), float(ks), float(gmax), int(count)
    polished = False
    if fam.name == "gennorm" and bool(stalled) and float(law.p) <= 1.0:
        law, loglik, polished = _gennorm_at_a_point(arr, law, loglik)
        if polished:
            ks = float(_ks(law, jnp.sort(jnp.asarray(arr, dtype))))
    n_params = k + (1 if fam.at_min and not is_fixed else 0)
    n = arr.size
    converged = bool(np.isfinite(loglik) and gmax <= tol)
    notes = []
    if fam.fixable:
        if is_fixed:
            notes.append(f"{fam.fixable} fixed at {value:g}")
        elif fam.at_min:
            notes.append(f"{fam.fixable} = min(x) = {aux[0]:g} (its MLE)")
    state = "converged" if converged else "not converged"
    message = f"{state}: max |grad| = {gmax:.1e} after {count} L-BFGS iterations"
    if not converged:
        if bool(runaway):
            message += f" ({fam.runaway_note})"
        elif bool(stalled):
            message += " (stalled: no decrease beyond rounding; the likelihood may have a kink"
            message += " here, e.g. gennorm with p <= 1 at its loc)"
            if polished:
                message += "; loc moved to the best sample point next to it, p and scale re-fitted"
        elif count >= steps:
            message += " (the iteration limit, steps)"
    if notes:
        message += "; " + "; ".join(notes)
    aic, bic = 2 * n_params - 2 * loglik, n_params * math.log(n) - 2 * loglik
    if bool(runaway) and not converged:  # no maximum: the criteria are undefined
        aic = bic = math.inf
    return LawFit(law=law, loglik=loglik, n_params=n_params, aic=aic, bic=bic, ks=ks,
                  converged=converged, message=message, family=fam.name)


# Sample points on either side of a stalled gennorm fit's loc tried as its loc, and the
# half-width (in log p) of the bracket of the profile search in p at each.
_KINK_POINTS = 4
_KINK_LOG_P = 0.25


def _gennorm_at_a_point(x: np.ndarray, law: Distribution, loglik: float):
    """A stalled gennorm fit with ``p <= 1`` moved to its maximum over ``loc`` (host side).

    For ``p <= 1`` the log-likelihood ``-sum |x_i - loc|^p / scale^p + ...`` is convex in
    ``loc`` between neighbouring sample points, so its maximum over ``loc`` is at a sample point,
    where it has a kink that stalls a gradient method near, not at, the best point.  Here each of
    the ``_KINK_POINTS`` sample points on either side of the fitted ``loc`` is tried; at each,
    ``scale`` has its closed-form maximiser ``scale^p = p mean |x - loc|^p`` and the profile
    likelihood in ``log p`` is maximised by golden section.  Returns ``(law, loglik, moved)``:
    the best of these and the fit given, by log-likelihood.
    """
    n = x.size
    xs = np.sort(x)
    j = int(np.searchsorted(xs, float(law.loc)))
    log_p0 = math.log(float(law.p))

    def profile(loc, log_p):
        p = math.exp(log_p)
        d = np.abs(x - loc)
        scale = (p * float(np.mean(d ** p))) ** (1.0 / p)
        ll = n * (log_p - math.log(2.0) - math.lgamma(1.0 / p) - math.log(scale) - 1.0 / p)
        return ll, scale

    best = (law, loglik, False)
    bracket = (log_p0 - _KINK_LOG_P, min(log_p0 + _KINK_LOG_P, 0.0))
    for loc in np.unique(xs[max(0, j - _KINK_POINTS):j + _KINK_POINTS]):
        log_p = _golden_max(lambda lp, loc=loc: profile(loc, lp)[0], *bracket)
        ll, scale = profile(loc, log_p)
        if ll > best[1]:
            best = (GenNormal(math.exp(log_p), float(loc), scale), ll, True)
    return best


def _golden_max(f: Callable[[float], float], a: float, b: float, tol: float = 1e-12) -> float:
    """The maximiser of a unimodal ``f`` on ``[a, b]`` by golden-section search (host side)."""
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = f(d)
    return 0.5 * (a + b)


def _concrete(law: Distribution) -> Distribution:
    """The law rebuilt through its constructor with Python floats (validated, readable)."""
    parts = law.mixture_components()
    if parts is not None:
        return Mixture([_concrete(c) for c in parts[1]], np.asarray(law.weights, dtype=float))
    return type(law)(**{p: float(v) for p, v in law.parameters.items()})


def _ordered(law: Distribution) -> Distribution:
    """A two-normal mixture with its components in increasing order of mean."""
    a, b = law.components
    if float(b.loc) < float(a.loc):
        return Mixture([b, a], np.asarray(law.weights)[::-1].copy())
    return law


def compare_laws(x, families: Sequence[str] = _DEFAULT_FAMILIES, *, steps: int = 500,
                 tol: float | None = None) -> list[LawFit]:
    """Fit several families to one sample and sort the fits by AIC (best first).

    A family whose support cannot hold the sample (``exponential`` with ``x < 0``, ``pareto``
    with ``x <= 0``) is not fitted: it comes last, as a :class:`LawFit` with ``law=None``,
    ``aic = inf`` and the reason in ``message``.

    Math: ``AIC = 2k - 2 l``: a difference of 2 is worth one parameter; a family nested in
    another (normal in Student t, gennorm and the mixtures; Pareto and exponential in the
    generalized Pareto) still wins when the extra parameters buy less than that.

    Args:
        x: the sample (as for :func:`fit_law`).
        families: names of :data:`FIT_FAMILIES` (default: all of them).
        steps, tol: as for :func:`fit_law`.

    Returns:
        A list of :class:`LawFit`, the fitted ones by increasing AIC, then the skipped ones.

    Raises:
        ValueError: a bad sample, an unknown family name or an empty ``families``.

    Example:
        >>> import jax, goodhart_jax as gj
        >>> x = gj.Normal(-1.0, 1.0).sample(jax.random.key(2), (1000,))
        >>> fits = gj.compare_laws(x, ("normal", "exponential"))
        >>> [(f.family, f.law is None) for f in fits]
        [('normal', False), ('exponential', True)]
        >>> fits[1].message
        'skipped: exponential needs x >= 0, got min(x) = -5.25176'
    """
    arr = _sample(x, "compare_laws")
    if isinstance(families, str):
        families = (families,)
    families = tuple(families)
    if not families:
        raise ValueError("compare_laws: families must name at least one family")
    for f in families:
        if not isinstance(f, str) or f not in FIT_FAMILIES:
            raise ValueError(f"families: unknown family {f!r}; allowed: {', '.join(FIT_FAMILIES)}")
    steps = check_positive_int("steps", steps, owner="compare_laws")
    tol = _tol(tol, "compare_laws")
    fitted, skipped = [], []
    for name in dict.fromkeys(families):
        fam = FIT_FAMILIES[name]
        problem = _support_problem(fam, arr, None)
        if problem is not None:
            skipped.append(LawFit(law=None, loglik=math.nan, n_params=0, aic=math.inf,
                                  bic=math.inf, ks=math.nan, converged=False,
                                  message=f"skipped: {problem}", family=name))
            continue
        fitted.append(_fit(arr, fam, None, None, steps, float(tol)))
    fitted.sort(key=lambda f: f.aic if np.isfinite(f.aic) else math.inf)
    return fitted + skipped


def qq_data(law: Distribution, x, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The points of a QQ plot of a sample against a law: ``(theoretical, sample)`` quantiles.

    The sorted sample's order statistics ``x_(i)`` sit at plotting positions
    ``p_i = (i - 0.5) / n``; up to ``points`` of them are kept, evenly spaced in ``logit p``
    (so both tails are shown), always the smallest and the largest.  The theoretical quantile
    is ``law.quantile(p_i)`` where the law has one, else the inverse of ``log_cdf`` by
    bisection (:func:`goodhart_jax.distributions.quantiles_by_logit`).

    Math: ``(Q(p_i), x_(i))`` with ``p_i = (i - 1/2) / n``; a law that fits puts the points on
    the diagonal.

    Args:
        law: a :class:`~goodhart_jax.Distribution`.
        x: the sample (1-D, finite, at least 10 points).
        points: the most points returned (at least 2).

    Returns:
        Two float64 numpy arrays of equal length, increasing.

    Raises:
        ValueError: ``law`` is not a distribution, a bad sample, or ``points < 2``.

    Example:
        >>> import numpy as np, goodhart_jax as gj
        >>> q, s = gj.qq_data(gj.Exponential(), np.arange(1.0, 21.0), points=3)
        >>> s.tolist(), np.round(q, 4).tolist()   # p = 0.025, 0.525, 0.975
        ([1.0, 11.0, 20.0], [0.0253, 0.7444, 3.6889])
    """
    if not isinstance(law, Distribution):
        raise ValueError(f"law must be a goodhart_jax Distribution, got {law!r}")
    arr = _sample(x, "qq_data")
    points = check_positive_int("points", points, minimum=2, owner="qq_data")
    xs = np.sort(arr)
    n = xs.size
    if n <= points:
        idx = np.arange(n)
    else:
        lo = math.log(0.5 / n) - math.log1p(-0.5 / n)
        grid = 1.0 / (1.0 + np.exp(-np.linspace(lo, -lo, points)))
        idx = np.unique(np.clip(np.rint(grid * n - 0.5), 0, n - 1).astype(int))
    p = (idx + 0.5) / n
    quantile = getattr(law, "quantile", None)
    if callable(quantile):
        theo = np.asarray(quantile(jnp.asarray(p)), dtype=float)
    else:
        logits = np.log(p) - np.log1p(-p)
        theo = np.asarray(quantiles_by_logit(law, jnp.asarray(logits)), dtype=float)
    return theo, xs[idx]
