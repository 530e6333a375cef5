"""The seven distribution families of the simulator, as pytrees, and ``parse_dist``.

Every family is an immutable pytree whose parameters are its leaves, so ``jit``, ``vmap`` and
``grad`` go through them (gradients flow to the parameters).  Each offers

* ``sample(key, shape=(), dtype=None)``: draws, through an explicit key;
* ``log_prob(x)``: log density (``-inf`` outside the support);
* ``log_sf(x)`` / ``log_cdf(x)``: log survival / log distribution function, accurate far into
  the tail (they never go through ``log(1 - cdf)``);
* ``mean()``: the mean (``inf`` where it is infinite, ``nan`` where undefined);
* ``tail``: the tail class, ``"light"``, ``"exponential"`` or ``"heavy"`` (subexponential).

Private hooks used by the quadrature (:mod:`goodhart_jax.quadrature`): ``support()``,
``_bulk()`` (a centre and width of the bulk) and ``_log_mean_excess(y)``, the log of
``G(y) = E[(V - E V) 1{V > y}] >= 0``, which lets E[V | V + X >= t] - E[V] be computed as an
integral of positive terms (no cancellation, even when the answer is 1e-100).

Parameterisations (normative, see docs/design.md):

==================================  ============================================================
``Normal(loc=0, scale=1)``
``StudentT(df, loc=0, scale=1)``    standard t scaled and shifted
``GenNormal(p, loc=0, scale=1)``    density ∝ exp(-|(x - loc) / scale|^p)
``Exponential(rate=1)``             support x >= 0
``LogNormal(sigma, loc=0)``         loc + exp(sigma Z)
``Pareto(alpha, scale=1)``          support x >= scale, S(x) = (scale / x)^alpha
``Levy(scale=1)``                   scale / Z^2 (no finite mean)
==================================  ============================================================

Example:
    >>> import jax, goodhart_jax as gj
    >>> x = gj.StudentT(df=3.0)
    >>> float(x.log_sf(10.0))  # doctest: +ELLIPSIS
    -6.84...
"""

from __future__ import annotations

import ast
import inspect
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.scipy import special as jsp

from goodhart_jax import _special
from goodhart_jax._validation import check_param, is_concrete

__all__ = [
    "Distribution",
    "Normal",
    "StudentT",
    "GenNormal",
    "Exponential",
    "LogNormal",
    "Pareto",
    "Levy",
    "parse_dist",
    "FAMILIES",
]

_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI
_LOG_2_OVER_SQRT_PI = math.log(2.0 / math.sqrt(math.pi))
_LOG_2 = math.log(2.0)


def _float_dtype(dtype=None):
    if dtype is None:
        return jnp.asarray(1.0).dtype
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return jax.dtypes.canonicalize_dtype(dtype)


def _safe(cond, x, fill):
    """``x`` where ``cond``, else ``fill`` (to keep unused branches finite for gradients)."""
    return jnp.where(cond, x, fill)



def _as_float(x) -> jax.Array:
    """``x`` as an array of its own float dtype (integers become the default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))

class Distribution:
    """Base class: parameters are pytree leaves, methods are pure JAX."""

    _params: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def _flatten(self):
        return tuple(getattr(self, p) for p in self._params), None

    @classmethod
    def _unflatten(cls, aux, children):
        obj = object.__new__(cls)  # no validation: leaves may be tracers or placeholders
        for p, v in zip(cls._params, children):
            object.__setattr__(obj, p, v)
        return obj

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **params):
        for k, v in params.items():
            if is_concrete(v) and not hasattr(v, "shape"):
                v = float(v)
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={_short(getattr(self, p))}" for p in self._params)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        try:
            return all(bool(jnp.all(jnp.asarray(getattr(self, p)) == jnp.asarray(getattr(other, p))))
                       for p in self._params)
        except jax.errors.ConcretizationTypeError:
            return self is other

    __hash__ = object.__hash__

    @property
    def spec(self) -> str:
        """The ``parse_dist`` spec that rebuilds this distribution (concrete parameters only)."""
        args = ", ".join(f"{p}={float(getattr(self, p))!r}" for p in self._params)
        return f"{self.name}({args})"

    # --- interface -------------------------------------------------------------------------
    def sample(self, key: jax.Array, shape: tuple[int, ...] = (), dtype=None) -> jax.Array:
        raise NotImplementedError

    def log_prob(self, x) -> jax.Array:
        raise NotImplementedError

    def log_sf(self, x) -> jax.Array:
        raise NotImplementedError

    def log_cdf(self, x) -> jax.Array:
        raise NotImplementedError

    def _log_cdf_or_sf(self, x, upper) -> jax.Array:
        """``log_sf(x)`` where ``upper``, ``log_cdf(x)`` elsewhere (families with a cheaper
        form override this: one special-function evaluation instead of two)."""
        return jnp.where(upper, self.log_sf(x), self.log_cdf(x))

    def mean(self) -> jax.Array:
        raise NotImplementedError

    @property
    def tail(self) -> str:
        raise NotImplementedError

    # Static: the density is analytic on the whole real line (no cusp, kink or support edge),
    # so quadrature near its bulk needs no grading for singularities.
    smooth = False

    def support(self) -> tuple[jax.Array, jax.Array]:
        """Lower and upper end of the support (``-inf``/``inf`` when unbounded)."""
        return jnp.asarray(-jnp.inf), jnp.asarray(jnp.inf)

    def _bulk(self) -> tuple[jax.Array, jax.Array]:
        """A centre of the bulk and its width (for placing quadrature panels)."""
        raise NotImplementedError

    def _log_mean_excess(self, y) -> jax.Array:
        """log G(y), G(y) = E[(V - E V) 1{V > y}]; ``-inf`` where G = 0."""
        raise ValueError(f"{self.name} has no finite mean")

    @property
    def has_finite_mean(self) -> bool:
        return bool(jnp.all(jnp.isfinite(self.mean())))


def _log1mexp(u):
    """``log(1 - e^u)`` for ``u <= 0``, accurate at both ends (``-inf`` at ``u = 0``)."""
    u = jnp.asarray(u)
    far = u < -_LOG_2
    return jnp.where(far, jnp.log1p(-jnp.exp(_safe(far, u, -1.0))),
                     jnp.log(-jnp.expm1(_safe(far, -1.0, u))))


def _abs_pow(z, p):
    """``|z|^p`` with a finite (zero) derivative at ``z = 0`` for every ``p > 0``."""
    t = jnp.abs(jnp.asarray(z))
    pos = t > 0
    return jnp.where(pos, jnp.where(pos, t, 1.0) ** p, 0.0)


def _require_mean(dist: Distribution, name: str, value: Any, bound: float) -> None:
    """Raise ``ValueError`` if a concrete ``value <= bound`` (the mean is not finite)."""
    if is_concrete(value) and bool(jnp.any(jnp.asarray(value) <= bound)):
        raise ValueError(f"{dist.name}: the mean excess needs a finite mean, i.e. {name} in "
                         f"({bound:g}, inf)")


def _short(v: Any) -> str:
    if is_concrete(v):
        try:
            return f"{float(v):g}"
        except (TypeError, ValueError):
            return "array"
    return "traced"


class _LocScale(Distribution):
    """Symmetric location-scale family with a standard log density ``_std_log_prob``."""

    loc: Any
    scale: Any

    def _z(self, x):
        return (jnp.asarray(x) - self.loc) / self.scale

    def log_prob(self, x):
        return self._std_log_prob(self._z(x)) - jnp.log(self.scale)

    def log_sf(self, x):
        return self._std_log_sf(self._z(x))

    def log_cdf(self, x):
        return self._std_log_sf(-self._z(x))

    def _log_cdf_or_sf(self, x, upper):
        z = self._z(x)  # symmetric: F(z) = S(-z)
        return self._std_log_sf(jnp.where(upper, z, -z))

    def mean(self):
        return _as_float(self.loc)

    def _bulk(self):
        return jnp.asarray(self.loc), jnp.asarray(self.scale)

    def _log_mean_excess(self, y):
        return jnp.log(self.scale) + self._std_log_mean_excess(self._z(y))

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        z = self._std_sample(key, shape, dtype)
        return (self.loc + self.scale * z).astype(dtype)


class Normal(_LocScale):
    """Normal distribution ``N(loc, scale^2)``.

    Math: ``log f(x) = -z^2/2 - log(scale) - log(2 pi)/2``, ``z = (x - loc)/scale``.

    Example:
        >>> float(Normal().log_sf(37.0))  # doctest: +ELLIPSIS
        -689.0...
    """

    _params = ("loc", "scale")
    name = "normal"

    def __init__(self, loc=0.0, scale=1.0):
        check_param("loc", loc, owner="normal")
        check_param("scale", scale, lo=0.0, lo_open=True, owner="normal")
        self._set(loc=loc, scale=scale)

    tail = "light"
    smooth = True

    @staticmethod
    def _std_log_prob(z):
        return -0.5 * z * z - _HALF_LOG_2PI

    @staticmethod
    def _std_log_sf(z):
        return _special.log_ndtr(-z)

    @staticmethod
    def _std_log_mean_excess(z):
        return -0.5 * z * z - _HALF_LOG_2PI

    @staticmethod
    def _std_sample(key, shape, dtype):
        return jax.random.normal(key, shape, dtype)


class StudentT(_LocScale):
    """Student's t with ``df`` degrees of freedom, scaled and shifted.

    Math: ``log f(z) = lgamma((df+1)/2) - lgamma(df/2) - log(df pi)/2 - (df+1)/2 log(1 + z^2/df)``,
    ``S(z) = I_x(df/2, 1/2) / 2`` for ``z >= 0``, ``x = df / (df + z^2)``.

    Example:
        >>> round(float(StudentT(df=3.0).log_sf(1e30)), 3)
        -207.135
    """

    _params = ("df", "loc", "scale")
    name = "student_t"
    tail = "heavy"
    smooth = True

    def __init__(self, df, loc=0.0, scale=1.0):
        check_param("df", df, lo=0.0, lo_open=True, owner="student_t")
        check_param("loc", loc, owner="student_t")
        check_param("scale", scale, lo=0.0, lo_open=True, owner="student_t")
        self._set(df=df, loc=loc, scale=scale)

    def _std_log_prob(self, z):
        return _special.t_log_pdf(z, self.df)

    def _std_log_sf(self, z):
        return _special.t_log_sf(z, self.df)

    def _std_log_mean_excess(self, z):
        # E[T 1{T > z}] = (df + z^2) / (df - 1) f(z)  (df > 1)
        _require_mean(self, "df", self.df, 1.0)
        return (jnp.log(self.df) + _special.t_log1p_sq(z, self.df) - jnp.log(self.df - 1.0)
                + self._std_log_prob(z))

    def mean(self):
        loc = _as_float(self.loc)
        return jnp.where(self.df > 1.0, loc, jnp.nan)

    def _std_sample(self, key, shape, dtype):
        return jax.random.t(key, jnp.asarray(self.df, dtype), shape, dtype)


class GenNormal(_LocScale):
    """Generalised normal: density ∝ ``exp(-|(x - loc)/scale|^p)``.

    ``p = 2`` is normal (with standard deviation ``scale/sqrt(2)``), ``p = 1`` Laplace,
    ``p < 1`` subexponential (heavy).

    Math: ``log f(z) = log p - log 2 - lgamma(1/p) - |z|^p``;
    ``S(z) = Q(1/p, z^p) / 2`` for ``z >= 0``.
    """

    _params = ("p", "loc", "scale")
    name = "gennorm"

    def __init__(self, p, loc=0.0, scale=1.0):
        check_param("p", p, lo=0.0, lo_open=True, owner="gennorm")
        check_param("loc", loc, owner="gennorm")
        check_param("scale", scale, lo=0.0, lo_open=True, owner="gennorm")
        self._set(p=p, loc=loc, scale=scale)

    @property
    def tail(self):
        p = jnp.asarray(self.p)  # concrete parameters only
        for cls, cond in (("light", p > 1), ("exponential", p == 1), ("heavy", p < 1)):
            if bool(jnp.all(cond)):
                return cls
        raise ValueError("gennorm: the p values of this batch fall in different tail classes")

    def _std_log_prob(self, z):
        p = self.p
        return jnp.log(p) - jnp.log(2.0) - jsp.gammaln(1.0 / p) - _abs_pow(z, p)

    def _std_log_sf(self, z):
        return _special.gennorm_log_sf(z, self.p)

    def _std_log_mean_excess(self, z):
        # E[Z 1{Z > z}] = Gamma(2/p, |z|^p) / (2 Gamma(1/p)), symmetric in z
        p = self.p
        t = jnp.abs(jnp.asarray(z))
        pos = t > 0
        lq = _special.log_gammaincc(2.0 / p, _abs_pow(jnp.where(pos, t, 1.0), p))
        return (jsp.gammaln(2.0 / p) - jsp.gammaln(1.0 / p) - jnp.log(2.0)
                + jnp.where(pos, lq, 0.0))

    def _std_sample(self, key, shape, dtype):
        return jax.random.generalized_normal(key, jnp.asarray(self.p, dtype), shape, dtype)


class Exponential(Distribution):
    """Exponential with ``rate``; support ``x >= 0``.

    Math: ``log f(x) = log(rate) - rate x``, ``log S(x) = -rate x``.
    """

    _params = ("rate",)
    name = "exponential"
    tail = "exponential"

    def __init__(self, rate=1.0):
        check_param("rate", rate, lo=0.0, lo_open=True, owner="exponential")
        self._set(rate=rate)

    def log_prob(self, x):
        x = jnp.asarray(x)
        return jnp.where(x >= 0, jnp.log(self.rate) - self.rate * x, -jnp.inf)

    def log_sf(self, x):
        # d/dx = -rate from x = 0 on (the hazard), 0 to the left of the support
        x = jnp.asarray(x)
        pos = x >= 0
        return jnp.where(pos, -self.rate * _safe(pos, x, 0.0), 0.0)

    def log_cdf(self, x):
        x = jnp.asarray(x)
        pos = x > 0
        xs = _safe(pos, x, 1.0)
        return jnp.where(pos, _log1mexp(-self.rate * xs), -jnp.inf)

    def mean(self):
        return 1.0 / _as_float(self.rate)

    def support(self):
        return jnp.zeros_like(_as_float(self.rate)), jnp.asarray(jnp.inf)

    def _bulk(self):
        lo = jnp.zeros_like(_as_float(self.rate))
        return lo, 1.0 / self.rate

    def _log_mean_excess(self, y):
        # G(y) = y exp(-rate y) for y > 0, else 0
        y = jnp.asarray(y)
        pos = y > 0
        ys = _safe(pos, y, 1.0)
        return jnp.where(pos, jnp.log(ys) - self.rate * ys, -jnp.inf)

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        return (jax.random.exponential(key, shape, dtype) / self.rate).astype(dtype)


class LogNormal(Distribution):
    """``loc + exp(sigma Z)``, ``Z ~ N(0, 1)``; support ``x > loc``.

    Math: ``log S(x) = log Phi(-log(x - loc) / sigma)``.
    """

    _params = ("sigma", "loc")
    name = "lognormal"
    tail = "heavy"

    def __init__(self, sigma, loc=0.0):
        check_param("sigma", sigma, lo=0.0, lo_open=True, owner="lognormal")
        check_param("loc", loc, owner="lognormal")
        self._set(sigma=sigma, loc=loc)

    def _a(self, x):
        x = jnp.asarray(x)
        pos = x > self.loc
        d = _safe(pos, x - self.loc, 1.0)
        return pos, jnp.log(d) / self.sigma, jnp.log(d)

    def log_prob(self, x):
        pos, a, logd = self._a(x)
        val = -0.5 * a * a - _HALF_LOG_2PI - jnp.log(self.sigma) - logd
        return jnp.where(pos, val, -jnp.inf)

    def log_sf(self, x):
        pos, a, _ = self._a(x)
        return jnp.where(pos, _special.log_ndtr(-a), 0.0)

    def log_cdf(self, x):
        pos, a, _ = self._a(x)
        return jnp.where(pos, _special.log_ndtr(a), -jnp.inf)

    def mean(self):
        return self.loc + jnp.exp(0.5 * _as_float(self.sigma) ** 2)

    def support(self):
        return _as_float(self.loc), jnp.asarray(jnp.inf)

    def _bulk(self):
        mode = jnp.exp(-jnp.asarray(self.sigma) ** 2)
        return self.loc + mode, mode * jnp.minimum(self.sigma, 1.0)

    def _log_mean_excess(self, y):
        # G(y) = exp(sigma^2/2) P(a - sigma < Z <= a), a = log(y - loc)/sigma; 0 for y <= loc.
        # By symmetry P(a - s < Z <= a) = P(c - s < Z <= c) with c = max(a, s - a) >= s/2,
        # a difference of two upper tails that never cancels badly.
        pos, a, _ = self._a(y)
        s = self.sigma
        c = jnp.where(a > 0.5 * s, a, s - a)
        hi = _special.log_ndtr(s - c)  # log P(Z > c - s)
        lo = _special.log_ndtr(-c)  # log P(Z > c)
        val = 0.5 * s * s + hi + jnp.log(-jnp.expm1(lo - hi))
        return jnp.where(pos, val, -jnp.inf)

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        z = jax.random.normal(key, shape, dtype)
        return (self.loc + jnp.exp(self.sigma * z)).astype(dtype)


class Pareto(Distribution):
    """Pareto with index ``alpha``: support ``x >= scale``, ``S(x) = (scale/x)^alpha``."""

    _params = ("alpha", "scale")
    name = "pareto"
    tail = "heavy"

    def __init__(self, alpha, scale=1.0):
        check_param("alpha", alpha, lo=0.0, lo_open=True, owner="pareto")
        check_param("scale", scale, lo=0.0, lo_open=True, owner="pareto")
        self._set(alpha=alpha, scale=scale)

    def _in(self, x):
        x = jnp.asarray(x)
        ok = x >= self.scale
        return ok, _safe(ok, x, self.scale)

    def _log_ratio(self, xs):
        """``log(xs / scale)`` for ``xs >= scale``, accurate as ``xs -> scale``."""
        s = self.scale
        near = xs < 2.0 * s
        xn = _safe(near, xs, s)
        return jnp.where(near, jnp.log1p((xn - s) / s), jnp.log(xs) - jnp.log(s))

    def log_prob(self, x):
        ok, xs = self._in(x)
        a = self.alpha
        val = jnp.log(a) - jnp.log(self.scale) - (a + 1.0) * self._log_ratio(xs)
        return jnp.where(ok, val, -jnp.inf)

    def log_sf(self, x):
        ok, xs = self._in(x)
        return jnp.where(ok, -self.alpha * self._log_ratio(xs), 0.0)

    def log_cdf(self, x):
        x = jnp.asarray(x)
        ok = x > self.scale
        xs = _safe(ok, x, 2.0 * self.scale)
        return jnp.where(ok, _log1mexp(-self.alpha * self._log_ratio(xs)), -jnp.inf)

    def mean(self):
        a = _as_float(self.alpha)
        return jnp.where(a > 1.0, a * self.scale / _safe(a > 1.0, a - 1.0, 1.0), jnp.inf)

    def support(self):
        return _as_float(self.scale), jnp.asarray(jnp.inf)

    def _bulk(self):
        return jnp.asarray(self.scale), self.scale / self.alpha

    def _log_mean_excess(self, y):
        # G(y) = (scale/y)^alpha alpha (y - scale) / (alpha - 1) for y > scale, else 0
        y = jnp.asarray(y)
        ok = y > self.scale
        ys = _safe(ok, y, 2.0 * self.scale)
        a = self.alpha
        _require_mean(self, "alpha", a, 1.0)
        val = (-a * self._log_ratio(ys) + jnp.log(a) + jnp.log(ys - self.scale)
               - jnp.log(a - 1.0))
        return jnp.where(ok, val, -jnp.inf)

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        e = jax.random.exponential(key, shape, dtype)
        return (self.scale * jnp.exp(e / self.alpha)).astype(dtype)


class Levy(Distribution):
    """Lévy distribution ``scale / Z^2``: support ``x > 0``, no finite mean.

    Math: ``S(x) = erf(sqrt(scale / (2 x)))``, ``log f(x) = log(scale/2pi)/2 - 1.5 log x - scale/(2x)``.
    """

    _params = ("scale",)
    name = "levy"
    tail = "heavy"

    def __init__(self, scale=1.0):
        check_param("scale", scale, lo=0.0, lo_open=True, owner="levy")
        self._set(scale=scale)

    def _y(self, x):
        """``(x > 0, safe x, log y)`` with ``y = sqrt(scale / (2x))`` (in logs: no underflow
        of ``scale / 2x`` and finite derivatives for every positive ``x``)."""
        x = jnp.asarray(x)
        pos = x > 0
        xs = _safe(pos, x, 1.0)
        return pos, xs, 0.5 * (jnp.log(self.scale) - jnp.log(2.0) - jnp.log(xs))

    def log_prob(self, x):
        pos, xs, log_y = self._y(x)
        # y^2 = scale / 2x; as exp(2 log y) where 1/x^2 would underflow in the derivative
        ok = xs > 1e-150
        y2 = jnp.where(ok, self.scale / (2.0 * _safe(ok, xs, 1.0)), jnp.exp(2.0 * log_y))
        val = 0.5 * (jnp.log(self.scale) - _LOG_2PI) - 1.5 * jnp.log(xs) - y2
        return jnp.where(pos, val, -jnp.inf)

    def log_sf(self, x):
        pos, _, log_y = self._y(x)
        tiny = log_y < -40.0  # erf(y) = 2y/sqrt(pi) (1 - y^2/3 + ...), y^2 < 1e-34
        huge = log_y > math.log(27.0)  # erfc(y) < 1e-318: log S = 0 to double precision
        y = jnp.exp(_safe(tiny | huge, -0.5, log_y))
        val = jnp.where(y < 1.0, jnp.log(jsp.erf(y)), jnp.log1p(-jsp.erfc(y)))
        val = jnp.where(tiny, _LOG_2_OVER_SQRT_PI + log_y, jnp.where(huge, 0.0, val))
        return jnp.where(pos, val, 0.0)

    def log_cdf(self, x):
        pos, _, log_y = self._y(x)
        # P(X <= x) = erfc(y) = 2 Phi(-sqrt(2) y); for small y, log1p(-erf(y)) keeps the
        # relative accuracy of log F ~ -2y/sqrt(pi)
        y = jnp.exp(log_y)
        small = y < 0.5
        near_one = jnp.log1p(-jsp.erf(_safe(small, y, 0.25)))
        tail = jnp.log(2.0) + _special.log_ndtr(-jnp.sqrt(2.0) * _safe(small, 1.0, y))
        return jnp.where(pos, jnp.where(small, near_one, tail), -jnp.inf)

    def mean(self):
        return jnp.full_like(_as_float(self.scale), jnp.inf)

    def support(self):
        return jnp.zeros_like(_as_float(self.scale)), jnp.asarray(jnp.inf)

    def _bulk(self):
        return self.scale / 3.0, jnp.asarray(self.scale) / 3.0

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        z = jax.random.normal(key, shape, dtype)
        return (self.scale / (z * z)).astype(dtype)


FAMILIES: dict[str, type[Distribution]] = {
    cls.name: cls for cls in (Normal, StudentT, GenNormal, Exponential, LogNormal, Pareto, Levy)
}


def parse_dist(spec: str | Distribution) -> Distribution:
    """Build a distribution from a spec such as ``"student_t(df=3)"`` or ``"normal(0, 2)"``.

    Arguments are numbers, positional or by keyword, as in the constructor; ``normal`` and
    ``normal()`` both mean the default.

    Raises:
        ValueError: unknown family, malformed spec, or a parameter outside its range.

    Example:
        >>> parse_dist("pareto(alpha=1.5)")
        Pareto(alpha=1.5, scale=1)
    """
    if isinstance(spec, Distribution):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a string like 'normal(0, 1)', got {spec!r}")
    known = ", ".join(FAMILIES)
    try:
        tree = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"spec {spec!r} is malformed; expected NAME or NAME(args), NAME one of {known}") from None
    if isinstance(tree, ast.Name):
        func, args, kwargs = tree.id, [], []
    elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        func, args, kwargs = tree.func.id, tree.args, tree.keywords
    else:
        raise ValueError(f"spec {spec!r} is malformed; expected NAME or NAME(args), NAME one of {known}")
    if func not in FAMILIES:
        raise ValueError(f"spec {spec!r}: unknown distribution {func!r}; allowed: {known}")
    cls = FAMILIES[func]

    def number(node):
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"spec {spec!r}: arguments must be numbers")
        return float(value)

    pos = [number(a) for a in args]
    kw = {}
    for k in kwargs:
        if k.arg is None:
            raise ValueError(f"spec {spec!r}: arguments must be numbers")
        kw[k.arg] = number(k.value)
    sig = inspect.signature(cls.__init__)
    try:
        sig.bind(None, *pos, **kw)
    except TypeError as exc:
        params = ", ".join(p for p in sig.parameters if p != "self")
        raise ValueError(f"spec {spec!r}: {exc}; {func} takes ({params})") from None
    return cls(*pos, **kw)
