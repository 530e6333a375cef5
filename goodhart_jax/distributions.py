"""The distribution protocol, the built-in families as pytrees, and ``parse_dist``.

Every family is an immutable pytree whose parameters are its leaves, so ``jit``, ``vmap`` and
``grad`` go through them (gradients flow to the parameters).  Each offers

* ``sample(key, shape=(), dtype=None)``: draws, through an explicit key;
* ``log_prob(x)``: log density (``-inf`` outside the support);
* ``log_sf(x)`` / ``log_cdf(x)``: log survival / log distribution function, accurate far into
  the tail (they never go through ``log(1 - cdf)``);
* ``mean()``: the mean (``inf`` where it is infinite, ``nan`` where undefined);
* ``tail``: the tail class, ``"light"``, ``"exponential"`` or ``"heavy"`` (subexponential).

A family is one class here: it declares its parameters once (``super().__init__(**params)``,
checked against its ``constraints``) and implements five basic methods; everything the numerics
need to know about it (where its mass is, the closed form of the mean excess
``G(y) = E[(V - E V) 1{V > y}]``, its right tail, cusps and support edges, a fast sampler) is a
hook of :class:`Distribution` with a generic default that a family may override.  The protocol
and how far the defaults reach: ``docs/adding_a_family.md``.

Parameterisations (normative, see docs/design.md):

==================================  ============================================================
``Normal(loc=0, scale=1)``
``StudentT(df, loc=0, scale=1)``    standard t scaled and shifted
``GenNormal(p, loc=0, scale=1)``    density ∝ exp(-|(x - loc) / scale|^p)
``Exponential(rate=1)``             support x >= 0
``LogNormal(sigma, loc=0)``         loc + exp(sigma Z)
``Pareto(alpha, scale=1)``          support x >= scale, S(x) = (scale / x)^alpha
``Levy(scale=1)``                   scale / Z^2 (no finite mean)
``GeneralizedPareto(xi, scale=1,    S(x) = (1 + xi (x - loc) / scale)^(-1/xi); xi < 0 bounded,
loc=0)``                            xi = 0 exponential, xi > 0 power law
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
import re
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp

from goodhart_jax import rng, special
from goodhart_jax.validation import check_param, check_positive_int, is_concrete
from goodhart_jax.numerics import as_float as _as_float
from goodhart_jax.numerics import float_dtype as _float_dtype
from goodhart_jax.numerics import expm1_ratio as _expm1_ratio
from goodhart_jax.numerics import log1mexp as _log1mexp
from goodhart_jax.numerics import log1p_ratio as _log1p_ratio
from goodhart_jax.numerics import two_prod as _two_prod
from goodhart_jax.numerics import two_sum as _two_sum

__all__ = [
    "Distribution",
    "Normal",
    "StudentT",
    "GenNormal",
    "Exponential",
    "LogNormal",
    "Pareto",
    "Levy",
    "GeneralizedPareto",
    "MeanOf",
    "mean_of",
    "Constraint",
    "REAL",
    "POSITIVE",
    "Tail",
    "tail_integral_log",
    "quantiles_by_logit",
    "parse_dist",
    "FAMILIES",
]

_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI
_LOG_2_OVER_SQRT_PI = math.log(2.0 / math.sqrt(math.pi))
_LOG_2 = math.log(2.0)


def _safe(cond, x, fill):
    """``x`` where ``cond``, else ``fill`` (to keep unused branches finite for gradients)."""
    return jnp.where(cond, x, fill)


class Constraint(NamedTuple):
    """The allowed range of a parameter: ``[lo, hi]``, open at either end on request.

    Every parameter of a family is checked against its constraint when the family is built
    with concrete values (NaN and infinities always fail).  ``integer`` keeps the value a
    Python ``int`` (for counts); ``leaf=False`` marks a parameter that is itself a pytree (a
    distribution), which is not checked.

    Example:
        >>> Constraint(lo=0.0, lo_open=True).describe()
        '(0, inf]'
    """

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    leaf: bool = True

    def describe(self) -> str:
        lb, rb = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"{lb}{self.lo:g}, {self.hi:g}{rb}"

    def check(self, name: str, value: Any, owner: str = "") -> Any:
        """``value`` if it satisfies the constraint (an ``int`` if ``integer``), else raise."""
        if not self.leaf:
            if not isinstance(value, Distribution):
                raise ValueError(f"{owner + ': ' if owner else ''}{name} must be a "
                                 f"goodhart_jax Distribution, got {value!r}")
            return value
        if self.integer:
            return check_positive_int(name, value, minimum=int(self.lo), owner=owner)
        check_param(name, value, lo=self.lo, hi=self.hi, lo_open=self.lo_open,
                    hi_open=self.hi_open, owner=owner)
        return value


#: A finite real number (the default for a parameter without a declared constraint).
REAL = Constraint()
#: A finite number ``> 0``.
POSITIVE = Constraint(lo=0.0, lo_open=True)


class Tail(NamedTuple):
    """Asymptotic right tail ``S(x)`` of a distribution, by class.

    * ``kind="weibull"``: ``log S(x) ~ -(x / scale)^exponent`` (normal: 2, gennorm: ``p``,
      exponential: 1);
    * ``kind="lognormal"``: ``log S(x) ~ -(log x)^2 / (2 exponent^2)`` (``exponent = sigma``);
    * ``kind="power"``: ``S(x) ~ coef x^-exponent`` (Student t: ``df``, Pareto: ``alpha``,
      Levy: 1/2);
    * ``kind="bounded"``: the support ends at ``end < inf``, ``S(x) ~ coef (end - x)^exponent``
      as ``x -> end`` (generalized Pareto with ``xi < 0``: ``exponent = -1/xi``).
    """

    kind: str
    exponent: float
    scale: float = 1.0
    coef: float = 1.0
    end: float = math.inf

    @property
    def tail_class(self) -> str:
        """``"light"`` (Weibull exponent > 1, or a bounded support), ``"exponential"`` (= 1) or
        ``"heavy"``."""
        if self.kind == "bounded":
            return "light"
        if self.kind != "weibull" or self.exponent < 1.0:
            return "heavy"
        return "exponential" if self.exponent == 1.0 else "light"


class Distribution:
    """A law of a real random variable: the protocol every family follows (one class each).

    A family declares its parameters once, by calling ``super().__init__(**params)`` from its
    constructor: they become pytree leaves (so ``jit``, ``vmap`` and ``grad`` go through them),
    read as attributes (``self.scale``), checked against the class's ``constraints`` (a mapping
    from parameter name to :class:`Constraint`; undeclared parameters must be finite reals).
    It implements five basic methods:

    * ``log_prob(x)``: log density (``-inf`` outside the support);
    * ``log_sf(x)`` and ``log_cdf(x)``: log survival and log distribution function, each
      accurate far into its own tail (never through ``log(1 - cdf)``);
    * ``sample(key, shape=(), dtype=None)``: draws, through an explicit key;
    * ``mean()``: the mean (``inf`` where infinite, ``nan`` where undefined).

    Everything else the numerics use is a hook with a generic default built from those five
    (see ``docs/adding_a_family.md`` for their reach); a family overrides a hook where it knows
    better:

    * ``support()``: the ends of the support (default: the whole line);
    * ``bulk()``: a centre and width of the mass (default: the median and the half-distance
      between the 15.9% and 84.1% quantiles, by bisection on ``log_cdf - log_sf``);
    * ``log_mean_excess(y)``: ``log E[(V - E V) 1{V > y}]`` (default: a fixed-node quadrature
      of ``S`` above ``y`` or of ``F`` below it, all terms positive);
    * ``log_cdf_or_sf(x, upper)``: ``log_sf`` where ``upper`` else ``log_cdf`` (one evaluation
      where a symmetric family can);
    * ``right_tail()``: the :class:`Tail` (class and exponent; default: read off ``log_sf`` at
      ``S = e^-8 ... e^-2^40``), and ``tail``, its class;
    * ``tilted_mean(lam)``: ``E[V e^(lam V)] / E[e^(lam V)]`` (default: quadrature);
    * ``smooth`` / ``cusp`` (static): the density is analytic on the line / has a cusp at the
      centre of ``bulk()`` (defaults: ``False``);
    * ``bulk_at_lower_end`` (static): the centre of ``bulk()`` is the lower end of the support
      for every parameter value (default ``False``; exponential, Pareto, generalized Pareto):
      the exact quadrature then places one panel anchor there, not two at the same point;
    * ``sf_cost`` (static): the relative cost of ``log_sf`` at one point (default 1; 2 for a
      survival function by a continued fraction or series, Student t and gennorm, or by two
      error functions, Levy): best-of-n
      computes ``P(V + X >= u)`` with the cheaper of the two survival functions;
    * ``sample_halves(key, h, dtype)``: two arrays of ``h`` draws (a fast sampler; default:
      ``sample``), and ``as_normal()``: ``(loc, scale)`` when the law is ``loc + scale Z``;
    * ``mean_of_copies(k)``: the law of the mean of ``k`` copies when the family is stable
      under averaging (default ``None``).

    Example:
        >>> import jax.numpy as jnp, goodhart_jax as gj
        >>> class Logistic(gj.Distribution):
        ...     constraints = {"scale": gj.POSITIVE}
        ...     def __init__(self, loc=0.0, scale=1.0):
        ...         super().__init__(loc=loc, scale=scale)
        ...     def log_prob(self, x):
        ...         z = (x - self.loc) / self.scale
        ...         return -z - 2 * jnp.logaddexp(0.0, -z) - jnp.log(self.scale)
        ...     def log_sf(self, x):
        ...         return -jnp.logaddexp(0.0, (x - self.loc) / self.scale)
        ...     def log_cdf(self, x):
        ...         return -jnp.logaddexp(0.0, -(x - self.loc) / self.scale)
        ...     def sample(self, key, shape=(), dtype=None):
        ...         return self.loc + self.scale * jax.random.logistic(key, shape, dtype)
        ...     def mean(self):
        ...         return jnp.asarray(self.loc, float)
        >>> Logistic(scale=2.0)
        Logistic(loc=0, scale=2)
        >>> Logistic().right_tail().tail_class
        'exponential'
    """

    constraints: ClassVar[Mapping[str, Constraint]] = {}
    # parameters that are arrays by design (a fitted law's knots), not a batch of laws
    data_parameters: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""
    smooth: ClassVar[bool] = False
    cusp: ClassVar[bool] = False
    bulk_at_lower_end: ClassVar[bool] = False
    sf_cost: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.lower()
        jax.tree_util.register_pytree_node(cls, cls._flatten, cls._unflatten)

    def __init__(self, **params):
        checked = {}
        for k, v in params.items():
            checked[k] = self.constraints.get(k, REAL).check(k, v, owner=self.name)
        object.__setattr__(self, "_names", tuple(params))
        for k, v in checked.items():
            if (self.constraints.get(k, REAL).leaf and not self.constraints.get(k, REAL).integer
                    and is_concrete(v) and not hasattr(v, "shape")):
                v = float(v)
            object.__setattr__(self, k, v)

    def _flatten(self):
        names = self._names
        return tuple(getattr(self, p) for p in names), names

    @classmethod
    def _unflatten(cls, names, children):
        obj = object.__new__(cls)  # no validation: leaves may be tracers or placeholders
        object.__setattr__(obj, "_names", names)
        for p, v in zip(names, children):
            object.__setattr__(obj, p, v)
        return obj

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters, by name, in declaration order."""
        return {p: getattr(self, p) for p in self._names}

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={_short(v)}" for p, v in self.parameters.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        a, b = jax.tree_util.tree_flatten(self), jax.tree_util.tree_flatten(other)
        if a[1] != b[1]:
            return False
        try:
            return all(bool(jnp.all(jnp.asarray(x) == jnp.asarray(y))) for x, y in zip(a[0], b[0]))
        except jax.errors.ConcretizationTypeError:
            return self is other

    __hash__ = object.__hash__

    @property
    def spec(self) -> str:
        """The ``parse_dist`` spec that rebuilds this distribution (concrete parameters only)."""
        args = ", ".join(f"{p}={float(v)!r}" for p, v in self.parameters.items())
        return f"{self.name}({args})"

    # --- the five basic methods --------------------------------------------------------------
    def sample(self, key: jax.Array, shape: tuple[int, ...] = (), dtype=None) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} must implement sample")

    def log_prob(self, x) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} must implement log_prob")

    def log_sf(self, x) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} must implement log_sf")

    def log_cdf(self, x) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} must implement log_cdf")

    def mean(self) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} must implement mean")

    # --- hooks with generic defaults -----------------------------------------------------------
    def log_cdf_or_sf(self, x, upper) -> jax.Array:
        """``log_sf(x)`` where ``upper``, ``log_cdf(x)`` elsewhere."""
        return jnp.where(upper, self.log_sf(x), self.log_cdf(x))

    def support(self) -> tuple[jax.Array, jax.Array]:
        """Lower and upper end of the support (``-inf``/``inf`` when unbounded).

        The default is the whole line; a family whose density vanishes below a point must say
        so (the quadrature places a panel edge there).
        """
        return jnp.asarray(-jnp.inf), jnp.asarray(jnp.inf)

    def bulk(self) -> tuple[jax.Array, jax.Array]:
        """A centre of the mass and its width (where the quadrature places its first panels).

        Default: the median, and half the distance between the quantiles at ``Φ(∓1)``, found
        by bisection on ``log_cdf(x) - log_sf(x)`` (traceable; 100 steps in ``asinh x``).
        """
        q = _quantiles_by_logit(self, jnp.asarray(_BULK_LOGITS))
        return q[1], jnp.maximum(0.5 * (q[2] - q[0]), jnp.finfo(q.dtype).tiny ** 0.5)

    def log_mean_excess(self, y) -> jax.Array:
        """``log G(y)``, ``G(y) = E[(V - E V) 1{V > y}] >= 0``; ``-inf`` where ``G = 0``.

        Math: with ``m = E V``, ``G(y) = (y - m) S(y) + ∫_y^∞ S`` for ``y >= m`` and
        ``G(y) = (m - y) F(y) + ∫_{-∞}^y F`` below (two positive terms either way).  Default:
        the integral by :func:`tail_integral_log` (fixed nodes, scaled by the local
        ``S / f``).

        Raises:
            ValueError: the mean is not finite (concrete parameters).
        """
        m = jnp.asarray(self.mean())
        if is_concrete(m) and not bool(jnp.all(jnp.isfinite(m))):
            raise ValueError(f"{self.name} has no finite mean")
        return _generic_log_mean_excess(self, jnp.asarray(y), m)

    def right_tail(self) -> Tail:
        """The asymptotic right tail (concrete, scalar parameters).

        Default: read off ``log_sf`` at the points ``x_k`` where ``-log S(x_k) = 2^k`` (the
        highest three reached, ``x < 1e300``): a power law if ``d(-log S) / d(log x)`` is
        constant there, else Weibull ``exp(-((x - x0) / scale)^c)`` if ``d log(-log S) / d log
        x`` is (``c`` to six decimals), else lognormal.  It needs ``log_sf`` accurate out
        there.
        """
        return _generic_right_tail(self)

    @property
    def tail(self) -> str:
        """The right-tail class: ``"light"``, ``"exponential"`` or ``"heavy"`` (subexponential)."""
        return self.right_tail().tail_class

    def tilted_mean(self, lam: float) -> float:
        """``E[V e^(lam V)] / E[e^(lam V)]`` (``inf`` when the tilt is not integrable).

        Default: a trapezoid rule in ``u``, ``v = c + w sinh(u)`` around :meth:`bulk`
        (exponentially convergent for a smooth density).
        """
        return _generic_tilted_mean(self, float(lam))

    def sample_halves(self, key: jax.Array, h: int, dtype) -> tuple[jax.Array, jax.Array]:
        """Two arrays of ``h`` draws (families with a faster paired sampler override this)."""
        d = self.sample(key, (2 * h,), dtype)
        return d[:h], d[h:]

    def as_normal(self):
        """``(loc, scale)`` when the law is ``loc + scale Z`` with ``Z ~ N(0, 1)``, else ``None``."""
        return None

    def mean_of_copies(self, k: int):
        """The law of the mean of ``k`` independent copies, where it stays in the family."""
        return None

    def mixture_components(self):
        """``(log_weights, components)`` for a finite mixture (``gj.Mixture``), else ``None``.

        The exact conditioning lays out its quadrature from the components of a mixture
        (``goodhart_jax.mixture.leaf_components``); every other law is its own single piece.
        """
        return None

    @property
    def has_finite_mean(self) -> bool:
        return bool(jnp.all(jnp.isfinite(self.mean())))


# --- generic defaults ----------------------------------------------------------------------

# logit F at Phi(-1), Phi(0), Phi(1): the bulk's quantiles
_BULK_LOGITS = (-1.6674930, 0.0, 1.6674930)
_BISECT_STEPS = 100
_U_MAX = 710.0  # asinh(x) range: |x| up to sinh(710) ~ 1e308


def _quantiles_by_logit(dist: Distribution, logits: jax.Array) -> jax.Array:
    """``x`` with ``log F(x) - log S(x) = logits`` by bisection in ``u = asinh x``."""
    lo0, hi0 = dist.support()
    dtype = jnp.result_type(float)
    logits = jnp.asarray(logits, dtype)
    ulo = jnp.broadcast_to(jnp.maximum(-_U_MAX, jnp.arcsinh(jnp.asarray(lo0, dtype))), logits.shape)
    uhi = jnp.broadcast_to(jnp.minimum(_U_MAX, jnp.arcsinh(jnp.asarray(hi0, dtype))), logits.shape)

    def body(_, b):
        a, c = b
        mid = 0.5 * (a + c)
        x = jnp.sinh(mid)
        g = dist.log_cdf(x) - dist.log_sf(x)
        below = g < logits
        return jnp.where(below, mid, a), jnp.where(below, c, mid)

    a, c = jax.lax.fori_loop(0, _BISECT_STEPS, body, (ulo, uhi))
    return jax.lax.stop_gradient(jnp.sinh(0.5 * (a + c)))


def quantiles_by_logit(dist: Distribution, logits) -> jax.Array:
    """The quantiles of any law at levels given as logits, by bisection (traceable).

    The generic inverse of ``log_cdf``/``log_sf`` that ``bulk()`` uses, public for laws without
    a closed-form quantile (QQ plots, :func:`goodhart_jax.law_fits.qq_data`).  Levels are
    logits so that both tails keep their accuracy: ``logit p = log p - log1p(-p)``.  No
    gradient flows through the result.

    Math: ``x`` with ``log F(x) - log S(x) = logits``, by 100 bisection steps in
    ``u = asinh x`` over the support (``|x|`` up to ``sinh 710``).

    Example:
        >>> import goodhart_jax as gj
        >>> round(float(quantiles_by_logit(gj.Exponential(), 0.0)), 12)  # the median, log 2
        0.69314718056
    """
    return _quantiles_by_logit(dist, logits)


# Panels in w (u = s expm1(w)) for the tail integrals of the generic mean excess: fine near
# w = 0 (the bulk of an exponential-like tail), geometric beyond (power laws decay like
# e^(-(a - 1) w)).
_W_EDGES = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
_GL_POINTS = 12


def _w_rule():
    x, w = np.polynomial.legendre.leggauss(_GL_POINTS)
    nodes, lw = [], []
    for a, b in zip(_W_EDGES[:-1], _W_EDGES[1:]):
        nodes.append(0.5 * (b - a) * x + 0.5 * (a + b))
        lw.append(np.log(0.5 * (b - a) * w))
    return np.concatenate(nodes), np.concatenate(lw)


_W_NODES, _W_LOG_WEIGHTS = _w_rule()


def tail_integral_log(log_tail, y, log_scale, sign):
    """``log ∫_0^∞ T(y + sign u) du`` by fixed nodes ``u = s expm1(w)``, ``s = e^log_scale``.

    ``log_tail(x, sign)`` is ``log T`` (``log S`` where ``sign > 0``, going right; ``log F``
    going left), vectorised; ``log_scale`` the local decay length (``log(T / f)`` at ``y``:
    exact scaling for an exponential tail); ``sign`` is ``+1`` or ``-1`` per ``y``.  Accurate to
    ~1e-12 relative for tails that decay at least like ``u^-2.5`` beyond the scale.
    """
    dtype = jnp.result_type(y)
    w = jnp.asarray(_W_NODES, dtype)
    lw = jnp.asarray(_W_LOG_WEIGHTS, dtype)
    s = jnp.exp(log_scale)[..., None]
    sign = jnp.asarray(sign, dtype)[..., None]
    x = y[..., None] + sign * (s * jnp.expm1(w))
    ok = jnp.isfinite(x)
    x = jnp.where(ok, x, y[..., None])  # nodes past the float range hold nothing
    lt = log_tail(x, sign)
    terms = jnp.where(ok & ~jnp.isnan(lt), lt, -jnp.inf) + log_scale[..., None] + w + lw
    m = jax.lax.stop_gradient(jnp.max(terms, axis=-1, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m[..., 0] + jnp.log(jnp.sum(jnp.exp(terms - m), axis=-1))


def _generic_log_mean_excess(dist: Distribution, y: jax.Array, m: jax.Array) -> jax.Array:
    dtype = jnp.result_type(y, float)
    y = y.astype(dtype)
    upper = y >= m
    lt = dist.log_cdf_or_sf(y, upper)
    lf = dist.log_prob(y)
    log_scale = jax.lax.stop_gradient(jnp.clip(lt - lf, -600.0, 600.0))
    log_scale = jnp.where(jnp.isnan(log_scale), 0.0, log_scale)
    sign = jnp.where(upper, 1.0, -1.0)
    integral = tail_integral_log(lambda x, sg: dist.log_cdf_or_sf(x, sg > 0), y, log_scale, sign)
    gap = jnp.abs(y - m)
    pos = gap > 0
    first = jnp.where(pos, jnp.log(jnp.where(pos, gap, 1.0)) + lt, -jnp.inf)
    val = jnp.logaddexp(first, integral)
    return jnp.where(jnp.isnan(val), -jnp.inf, val)


def _host_scalar(dist: Distribution) -> None:
    for p, v in dist.parameters.items():
        if isinstance(v, Distribution):
            _host_scalar(v)
            continue
        if not is_concrete(v) or np.ndim(v) != 0:
            raise ValueError(f"{dist.name} must have scalar concrete parameters; {p} of "
                             f"{dist!r} is batched or traced")


@jax.jit
def _tail_points(dist, levels):
    """``x_k`` with ``log S(x_k) = -levels_k`` by bisection in ``asinh x`` (``nan`` if none)."""
    dtype = levels.dtype
    top = jnp.sinh(jnp.asarray(_U_MAX, dtype))
    reach = dist.log_sf(top)
    ulo = jnp.full(levels.shape, -_U_MAX, dtype)
    uhi = jnp.full(levels.shape, _U_MAX, dtype)

    def body(_, b):
        a, c = b
        mid = 0.5 * (a + c)
        ls = dist.log_sf(jnp.sinh(mid))
        right = ls > -levels  # still above the level: go right
        return jnp.where(right, mid, a), jnp.where(right, c, mid)

    a, c = jax.lax.fori_loop(0, 2 * _BISECT_STEPS, body, (ulo, uhi))
    x = jnp.sinh(0.5 * (a + c))
    ok = (reach < -levels) & (x > 0) & (x < 1e300)
    return jnp.where(ok, x, jnp.nan), dist.log_sf(x)


def _generic_right_tail(dist: Distribution) -> Tail:
    _host_scalar(dist)
    levels = 2.0 ** np.arange(3, 41, dtype=np.float64)
    x, ls = (np.asarray(a, np.float64) for a in _tail_points(dist, jnp.asarray(levels)))
    ok = np.isfinite(x) & np.isfinite(ls)
    if ok.sum() < 3:
        raise ValueError(f"{dist.name}: its right tail could not be read off log_sf (needs "
                         "log_sf accurate to S ~ e^-64 at least); override right_tail()")
    xs, ls = x[ok][-3:], -ls[ok][-3:]  # the highest three levels reached: L = -log S
    lx = np.log(xs)
    a12 = (ls[1] - ls[0]) / (lx[1] - lx[0])
    a23 = (ls[2] - ls[1]) / (lx[2] - lx[1])
    if abs(a23 / a12 - 1.0) < 1e-3:
        return Tail("power", float(a23), coef=float(np.exp(a23 * lx[2] - ls[2])))
    ll = np.log(ls)
    c12 = (ll[1] - ll[0]) / (lx[1] - lx[0])
    c23 = (ll[2] - ll[1]) / (lx[2] - lx[1])
    if abs(c23 / c12 - 1.0) < 1e-2:
        # refine: x = x0 + b L^(1/c), so log(-log S) = c log((x - x0) / b) exactly
        c = c23
        for _ in range(3):
            r = ls ** (1.0 / c)
            b = (xs[2] - xs[1]) / (r[2] - r[1])
            x0 = xs[2] - b * r[2]
            d = np.log(xs - x0)
            c = (ll[2] - ll[1]) / (d[2] - d[1])
        c = round(float(c), 6)
        r = ls ** (1.0 / c)
        b = (xs[2] - xs[1]) / (r[2] - r[1])
        return Tail("weibull", c, float(b))
    # lognormal-like: -log S ~ (log x)^2 / (2 sigma^2)
    root = np.sqrt(2.0 * ls)
    return Tail("lognormal", float((lx[2] - lx[1]) / (root[2] - root[1])))


def _generic_tilted_mean(dist: Distribution, lam: float) -> float:
    _host_scalar(dist)
    c, w = (float(a) for a in dist.bulk())
    u = np.linspace(-40.0, 40.0, 160_001)
    v = c + w * np.sinh(u)
    jac = np.log(w * np.cosh(u))
    with np.errstate(invalid="ignore", over="ignore"):
        g = lam * v + np.asarray(dist.log_prob(jnp.asarray(v)), np.float64) + jac
    g = np.where(np.isnan(g), -np.inf, g)
    if not np.isfinite(g.max()) or g[0] > g.max() - 40.0 or g[-1] > g.max() - 40.0:
        return math.inf  # the tilted density does not decay within reach: E[e^(lam V)] = inf
    e = np.exp(g - g.max())
    return float(np.sum(v * e) / np.sum(e))


def _short(v: Any) -> str:
    if isinstance(v, Distribution):
        return repr(v)
    if is_concrete(v):
        try:
            return f"{float(v):g}"
        except (TypeError, ValueError):
            return "array"
    return "traced"


def _require_mean(dist: Distribution, name: str, value: Any, bound: float) -> None:
    """Raise ``ValueError`` if a concrete ``value <= bound`` (the mean is not finite)."""
    if is_concrete(value) and bool(jnp.any(jnp.asarray(value) <= bound)):
        raise ValueError(f"{dist.name}: the mean excess needs a finite mean, i.e. {name} in "
                         f"({bound:g}, inf)")


def _require_mean_below(dist: Distribution, name: str, value: Any, bound: float) -> None:
    """Raise ``ValueError`` if a concrete ``value >= bound`` (the mean is not finite)."""
    if is_concrete(value) and bool(jnp.any(jnp.asarray(value) >= bound)):
        raise ValueError(f"{dist.name}: the mean excess needs a finite mean, i.e. {name} in "
                         f"(-inf, {bound:g})")


def _abs_pow(z, p):
    """``|z|^p`` with a finite (zero) derivative at ``z = 0`` for every ``p > 0``."""
    t = jnp.abs(jnp.asarray(z))
    pos = t > 0
    return jnp.where(pos, jnp.where(pos, t, 1.0) ** p, 0.0)


def _gennorm_tilt_mean(p: float, loc: float, scale: float, lam: float) -> float:
    """``E[V e^{lam V}] / E[e^{lam V}]`` for ``V ~ gennorm(p > 1, loc, scale)``.

    Math: with ``x = lam scale``, ``M(x) = sum_k x^2k m_2k / (2k)!``, ``m_2k = Gamma((2k+1)/p) /
    Gamma(1/p)`` (all terms positive), the answer is ``loc + scale M'(x) / M(x)``.
    """
    x = lam * scale
    n = 256
    while True:
        k = np.arange(n, dtype=float)
        lg = np.array([math.lgamma((2.0 * j + 1.0) / p) for j in k])
        with np.errstate(divide="ignore"):
            lx = math.log(x)
        log_m = lg + 2.0 * k * lx - np.array([math.lgamma(2.0 * j + 1.0) for j in k])
        log_d = lg[1:] + (2.0 * k[1:] - 1.0) * lx - np.array([math.lgamma(2.0 * j) for j in k[1:]])
        top = max(log_m.max(), log_d.max())
        if (log_m[-1] < top - 60.0 and log_m[-1] < log_m[-2]) or n > 1 << 20:
            break
        n *= 4
    lse = lambda a: a.max() + math.log(np.exp(a - a.max()).sum())
    return loc + scale * math.exp(lse(log_d) - lse(log_m))



class _LocScale(Distribution):
    """Symmetric location-scale family with a standard log density ``_std_log_prob``."""

    constraints = {"loc": REAL, "scale": POSITIVE}
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

    def log_cdf_or_sf(self, x, upper):
        z = self._z(x)  # symmetric: F(z) = S(-z)
        return self._std_log_sf(jnp.where(upper, z, -z))

    def mean(self):
        return _as_float(self.loc)

    def bulk(self):
        return jnp.asarray(self.loc), jnp.asarray(self.scale)

    def log_mean_excess(self, y):
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

    name = "normal"

    def __init__(self, loc=0.0, scale=1.0):
        super().__init__(loc=loc, scale=scale)

    tail = "light"
    smooth = True

    def right_tail(self):
        _host_scalar(self)
        return Tail("weibull", 2.0, math.sqrt(2.0) * float(self.scale))

    def tilted_mean(self, lam):
        return float(self.loc) + float(lam) * float(self.scale) ** 2

    def as_normal(self):
        return self.loc, self.scale

    def sample_halves(self, key, h, dtype):
        """Box–Muller pairs (one Threefry hash per pair)."""
        return tuple((self.loc + self.scale * z).astype(dtype)
                     for z in rng.normal_pair(key, h, dtype))

    def mean_of_copies(self, k):
        return Normal(self.loc, self.scale / math.sqrt(k))

    @staticmethod
    def _std_log_prob(z):
        return -0.5 * z * z - _HALF_LOG_2PI

    @staticmethod
    def _std_log_sf(z):
        return special.log_ndtr(-z)

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

    name = "student_t"
    sf_cost = 2  # I_x(df/2, 1/2) by a continued fraction
    constraints = {"df": POSITIVE, "loc": REAL, "scale": POSITIVE}
    tail = "heavy"
    smooth = True

    def right_tail(self):
        """``S(x) ~ c_nu nu^((nu-1)/2) scale^nu x^-nu``, ``c_nu = Gamma((nu+1)/2) / (sqrt(nu pi)
        Gamma(nu/2))``."""
        _host_scalar(self)
        nu, scale = float(self.df), float(self.scale)
        log_c = (math.lgamma(0.5 * (nu + 1.0)) - 0.5 * math.log(nu * math.pi)
                 - math.lgamma(0.5 * nu) + 0.5 * (nu - 1.0) * math.log(nu) + nu * math.log(scale))
        return Tail("power", nu, coef=math.exp(log_c))

    def sample_halves(self, key, h, dtype):
        """``Z / sqrt(2 G / df)``, ``G ~ Gamma(df / 2)`` (Box–Muller and Marsaglia–Tsang)."""
        kz, kg = jax.random.split(key)
        df = jnp.asarray(self.df, dtype)
        gs = rng.log_gamma_halves(kg, 0.5 * df, h, dtype)
        c = jnp.log(df) - jnp.log(jnp.asarray(2.0, dtype))
        zs = [z * jnp.exp(0.5 * (c - g)) for z, g in zip(rng.normal_pair(kz, h, dtype), gs)]
        return tuple((self.loc + self.scale * z).astype(dtype) for z in zs)

    def mean_of_copies(self, k):
        # Cauchy is stable with index 1: the mean of k copies has the same law
        if is_concrete(self.df) and np.ndim(self.df) == 0 and float(self.df) == 1.0:
            return self
        return None

    def __init__(self, df, loc=0.0, scale=1.0):
        super().__init__(df=df, loc=loc, scale=scale)

    def _std_log_prob(self, z):
        return special.t_log_pdf(z, self.df)

    def _std_log_sf(self, z):
        return special.t_log_sf(z, self.df)

    def _std_log_mean_excess(self, z):
        # E[T 1{T > z}] = (df + z^2) / (df - 1) f(z)  (df > 1)
        _require_mean(self, "df", self.df, 1.0)
        return (jnp.log(self.df) + special.t_log1p_sq(z, self.df) - jnp.log(self.df - 1.0)
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

    name = "gennorm"
    sf_cost = 2  # Q(1/p, z^p) by a series or a continued fraction
    constraints = {"p": POSITIVE, "loc": REAL, "scale": POSITIVE}
    cusp = True  # |z|^p at z = 0 (p <= 1; the grading is harmless for p > 1)

    def __init__(self, p, loc=0.0, scale=1.0):
        super().__init__(p=p, loc=loc, scale=scale)

    def right_tail(self):
        _host_scalar(self)
        return Tail("weibull", float(self.p), float(self.scale))

    def sample_halves(self, key, h, dtype):
        """``±G^(1/p)``, ``G ~ Gamma(1 / p)`` (as ``jax.random.generalized_normal``)."""
        kg, ks = jax.random.split(key)
        p = jnp.asarray(self.p, dtype)
        gs = rng.log_gamma_halves(kg, 1.0 / p, h, dtype)
        signs = rng.bits_halves(ks, 2 * h)
        zs = [jnp.where((w & 1) == 1, -1.0, 1.0).astype(dtype) * jnp.exp(g / p)
              for w, g in zip(signs, gs)]
        return tuple((self.loc + self.scale * z).astype(dtype) for z in zs)

    def tilted_mean(self, lam):
        loc, s, p = float(self.loc), float(self.scale), float(self.p)
        if p < 1.0 or (p == 1.0 and lam * s >= 1.0):
            return math.inf
        if math.isclose(p, 1.0, rel_tol=1e-9, abs_tol=1e-9):
            return loc + 2.0 * lam * s * s / (1.0 - (lam * s) ** 2)
        return _gennorm_tilt_mean(p, loc, s, float(lam))

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
        return special.gennorm_log_sf(z, self.p)

    def _std_log_mean_excess(self, z):
        # E[Z 1{Z > z}] = Gamma(2/p, |z|^p) / (2 Gamma(1/p)), symmetric in z
        p = self.p
        t = jnp.abs(jnp.asarray(z))
        pos = t > 0
        lq = special.log_gammaincc(2.0 / p, _abs_pow(jnp.where(pos, t, 1.0), p))
        return (jsp.gammaln(2.0 / p) - jsp.gammaln(1.0 / p) - jnp.log(2.0)
                + jnp.where(pos, lq, 0.0))

    def _std_sample(self, key, shape, dtype):
        return jax.random.generalized_normal(key, jnp.asarray(self.p, dtype), shape, dtype)


class Exponential(Distribution):
    """Exponential with ``rate``; support ``x >= 0``.

    Math: ``log f(x) = log(rate) - rate x``, ``log S(x) = -rate x``.
    """

    name = "exponential"
    constraints = {"rate": POSITIVE}
    bulk_at_lower_end = True
    tail = "exponential"

    def right_tail(self):
        _host_scalar(self)
        return Tail("weibull", 1.0, 1.0 / float(self.rate))

    def tilted_mean(self, lam):
        rate = float(self.rate)
        return 1.0 / (rate - lam) if lam < rate else math.inf

    def __init__(self, rate=1.0):
        super().__init__(rate=rate)

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

    def bulk(self):
        lo = jnp.zeros_like(_as_float(self.rate))
        return lo, 1.0 / self.rate

    def log_mean_excess(self, y):
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

    name = "lognormal"
    constraints = {"sigma": POSITIVE, "loc": REAL}
    tail = "heavy"

    def right_tail(self):
        _host_scalar(self)
        return Tail("lognormal", float(self.sigma))

    def tilted_mean(self, lam):
        return math.inf if lam > 0 else _generic_tilted_mean(self, float(lam))

    def __init__(self, sigma, loc=0.0):
        super().__init__(sigma=sigma, loc=loc)

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
        return jnp.where(pos, special.log_ndtr(-a), 0.0)

    def log_cdf(self, x):
        pos, a, _ = self._a(x)
        return jnp.where(pos, special.log_ndtr(a), -jnp.inf)

    def mean(self):
        return self.loc + jnp.exp(0.5 * _as_float(self.sigma) ** 2)

    def support(self):
        return _as_float(self.loc), jnp.asarray(jnp.inf)

    def bulk(self):
        mode = jnp.exp(-jnp.asarray(self.sigma) ** 2)
        return self.loc + mode, mode * jnp.minimum(self.sigma, 1.0)

    def log_mean_excess(self, y):
        # G(y) = exp(sigma^2/2) P(a - sigma < Z <= a), a = log(y - loc)/sigma; 0 for y <= loc.
        # By symmetry P(a - s < Z <= a) = P(c - s < Z <= c) with c = max(a, s - a) >= s/2,
        # a difference of two upper tails that never cancels badly.
        pos, a, _ = self._a(y)
        s = self.sigma
        c = jnp.where(a > 0.5 * s, a, s - a)
        hi = special.log_ndtr(s - c)  # log P(Z > c - s)
        lo = special.log_ndtr(-c)  # log P(Z > c)
        val = 0.5 * s * s + hi + _log1mexp(lo - hi)
        return jnp.where(pos, val, -jnp.inf)

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        z = jax.random.normal(key, shape, dtype)
        return (self.loc + jnp.exp(self.sigma * z)).astype(dtype)


class Pareto(Distribution):
    """Pareto with index ``alpha``: support ``x >= scale``, ``S(x) = (scale/x)^alpha``."""

    name = "pareto"
    constraints = {"alpha": POSITIVE, "scale": POSITIVE}
    bulk_at_lower_end = True
    tail = "heavy"

    def right_tail(self):
        _host_scalar(self)
        a = float(self.alpha)
        return Tail("power", a, coef=float(self.scale) ** a)

    def __init__(self, alpha, scale=1.0):
        super().__init__(alpha=alpha, scale=scale)

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

    def bulk(self):
        return jnp.asarray(self.scale), self.scale / self.alpha

    def log_mean_excess(self, y):
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


class GeneralizedPareto(Distribution):
    """Generalized Pareto law with shape ``xi``, ``scale`` and ``loc`` (peaks over a threshold).

    Math: ``S(x) = (1 + xi z)^(-1/xi)``, ``z = (x - loc) / scale``, and ``S(x) = e^(-z)`` at
    ``xi = 0``; support ``[loc, inf)`` for ``xi >= 0``, ``[loc, loc - scale / xi]`` for
    ``xi < 0``.  ``log S = -log1p(xi z) / xi`` (:func:`goodhart_jax.numerics.log1p_ratio`:
    continuous, with its derivatives, through ``xi = 0``), ``log f = -log(scale) - (1 + xi)
    log1p(xi z) / xi``.  Near the upper end of a bounded law (``xi < 0``) ``1 + xi z`` is
    formed without rounding (:func:`~goodhart_jax.numerics.two_prod`), so ``log S`` keeps its
    relative accuracy out to the last float below the end.

    ``xi > 0``: a power law, ``S(x) ~ (scale / xi)^(1/xi) x^(-1/xi)``; ``xi = 0``: the
    exponential law shifted to ``loc``; ``xi = -1``: uniform on ``[loc, loc + scale]``;
    ``xi < -1``: the density grows without bound (integrably) at the upper end.  The mean is
    ``loc + scale / (1 - xi)`` for ``xi < 1`` (``inf`` otherwise) and
    ``G(y) = E[(V - E V) 1{V > y}] = (y - loc) S(y) / (1 - xi)`` for ``y >= loc``.

    Example:
        >>> import goodhart_jax as gj
        >>> d = gj.GeneralizedPareto(0.5, scale=2.0)
        >>> round(float(d.log_sf(2.0)), 12), float(d.mean())  # -2 log(1.5), 2 / (1 - 0.5)
        (-0.810930216216, 4.0)
        >>> gj.GeneralizedPareto(-0.5).support()[1].item(), gj.GeneralizedPareto(-0.5).tail
        (2.0, 'light')
    """

    name = "genpareto"
    constraints = {"xi": REAL, "scale": POSITIVE, "loc": REAL}
    bulk_at_lower_end = True

    def __init__(self, xi, scale=1.0, loc=0.0):
        super().__init__(xi=xi, scale=scale, loc=loc)

    # --- pieces -------------------------------------------------------------------------------
    def _one_plus(self, x):
        """``(z, 1 + xi z)``, the latter from an error-free ``scale + xi (x - loc)`` (its
        derivatives are those of ``1 + xi z``: the correction is held fixed)."""
        x = jnp.asarray(x)
        xi, scale, loc = self.xi, self.scale, self.loc
        z = (x - loc) / scale
        naive = 1.0 + xi * z
        dh, dl = _two_sum(x, -jnp.asarray(loc, jnp.result_type(x, float)))
        p, e = _two_prod(xi, dh)
        exact = ((scale + p) + (e + xi * dl)) / scale
        fix = jax.lax.stop_gradient(exact - naive)
        return z, naive + jnp.where(jnp.isfinite(fix), fix, 0.0)

    def _parts(self, x):
        """``(below, above, L)``: ``x < loc``, ``x`` at or past the upper end, and
        ``L = -log S(x)`` (with a safe argument off the support)."""
        x = jnp.asarray(x)
        z, r = self._one_plus(x)
        below = x < self.loc
        above = ~below & (jnp.isposinf(x) | (r <= 0))
        inside = ~below & ~above
        big = _log1p_ratio(_safe(inside, z, 0.0), self.xi, one_plus=_safe(inside, r, 1.0))
        return below, above, big

    # --- the five basic methods ---------------------------------------------------------------
    def log_sf(self, x):
        below, above, big = self._parts(x)
        return jnp.where(below, 0.0, jnp.where(above, -jnp.inf, -big))

    def log_cdf(self, x):
        below, above, big = self._parts(x)
        pos = big > 0
        val = _log1mexp(-_safe(pos, big, 1.0))
        return jnp.where(above, 0.0, jnp.where(below | ~pos, -jnp.inf, val))

    def log_prob(self, x):
        below, above, big = self._parts(x)
        val = -jnp.log(self.scale) - (1.0 + self.xi) * big
        return jnp.where(below | above, -jnp.inf, val)

    def mean(self):
        xi = _as_float(self.xi)
        ok = xi < 1.0
        return jnp.where(ok, self.loc + self.scale / (1.0 - _safe(ok, xi, 0.0)), jnp.inf)

    def sample(self, key, shape=(), dtype=None):
        """Inverse transform: ``loc + scale expm1(xi E) / xi``, ``E ~ Exp(1)``."""
        dtype = _float_dtype(dtype)
        e = jax.random.exponential(key, shape, dtype)
        xi = jnp.asarray(self.xi, dtype)
        return (self.loc + self.scale * _expm1_ratio(e, xi)).astype(dtype)

    # --- hooks --------------------------------------------------------------------------------
    def support(self):
        xi = _as_float(self.xi)
        neg = xi < 0
        hi = self.loc - self.scale / _safe(neg, xi, -1.0)
        return jnp.asarray(self.loc, xi.dtype) + jnp.zeros_like(xi), jnp.where(neg, hi, jnp.inf)

    def bulk(self):
        xi = _as_float(self.xi)
        return jnp.asarray(self.loc, xi.dtype) + jnp.zeros_like(xi), \
            self.scale / jnp.maximum(1.0, -2.0 * xi)

    def log_mean_excess(self, y):
        # G(y) = (y - loc) S(y) / (1 - xi) for y > loc, else 0
        y = jnp.asarray(y)
        _require_mean_below(self, "xi", self.xi, 1.0)
        ok = y > self.loc
        ys = _safe(ok, y, self.loc + self.scale)
        val = jnp.log(ys - self.loc) + self.log_sf(ys) - jnp.log1p(-self.xi)
        return jnp.where(ok, val, -jnp.inf)

    @property
    def tail(self) -> str:
        """``"heavy"`` (``xi > 0``), ``"exponential"`` (``xi = 0``), ``"light"`` (``xi < 0``:
        bounded); needs a concrete scalar ``xi``."""
        xi = float(self.xi)
        return "heavy" if xi > 0 else "exponential" if xi == 0 else "light"

    def right_tail(self):
        """``xi > 0``: ``Tail("power", 1/xi, coef=(scale/xi)^(1/xi))``; ``xi = 0``:
        ``Tail("weibull", 1, scale)``; ``xi < 0``: ``Tail("bounded", -1/xi, end=loc - scale/xi,
        coef=(-xi/scale)^(-1/xi))`` (``S(x) ~ coef (end - x)^(-1/xi)`` at the end)."""
        _host_scalar(self)
        xi, scale, loc = float(self.xi), float(self.scale), float(self.loc)
        if xi > 0:
            return Tail("power", 1.0 / xi, coef=(scale / xi) ** (1.0 / xi))
        if xi == 0:
            return Tail("weibull", 1.0, scale)
        return Tail("bounded", -1.0 / xi, coef=(-xi / scale) ** (-1.0 / xi),
                    end=loc - scale / xi)

    def tilted_mean(self, lam):
        """``E[V e^(lam V)] / E[e^(lam V)]``: ``inf`` for ``xi > 0 < lam`` or ``xi = 0``,
        ``lam >= 1/scale``; ``loc + scale / (1 - lam scale)`` at ``xi = 0``; else a
        Gauss-Legendre rule in ``E`` (``V = loc + scale expm1(xi E) / xi``, ``E ~ Exp(1)``)."""
        _host_scalar(self)
        lam = float(lam)
        xi, scale, loc = float(self.xi), float(self.scale), float(self.loc)
        if xi > 0 and lam > 0:
            return math.inf
        if xi == 0:
            return loc + scale / (1.0 - lam * scale) if lam * scale < 1.0 else math.inf
        gx, gw = np.polynomial.legendre.leggauss(40)
        edges = np.concatenate([[0.0], np.geomspace(1e-3, 800.0, 60)])
        a, b = edges[:-1, None], edges[1:, None]
        e = (0.5 * (b - a) * gx + 0.5 * (a + b)).ravel()
        w = (0.5 * (b - a) * gw).ravel()
        u = xi * e
        v = loc + scale * np.where(np.abs(u) > 1e-8, np.expm1(u) / (xi if xi else 1.0), e)
        g = lam * v - e
        g = g - g.max()
        p = w * np.exp(g)
        return float(np.sum(v * p) / np.sum(p))


class Levy(Distribution):
    """Lévy distribution ``scale / Z^2``: support ``x > 0``, no finite mean.

    Math: ``S(x) = erf(sqrt(scale / (2 x)))``, ``log f(x) = log(scale/2pi)/2 - 1.5 log x - scale/(2x)``.
    """

    name = "levy"
    sf_cost = 2  # erf and erfc at every point: 33 ns on CPU, as a t's 35 (a normal's 10)
    constraints = {"scale": POSITIVE}
    tail = "heavy"

    def right_tail(self):
        """``S(x) ~ sqrt(2 scale / (pi x))``."""
        _host_scalar(self)
        return Tail("power", 0.5, coef=math.sqrt(2.0 * float(self.scale) / math.pi))

    def mean_of_copies(self, k):
        # stable with index 1/2: the mean of k copies is k times one copy
        return Levy(self.scale * k)

    def __init__(self, scale=1.0):
        super().__init__(scale=scale)

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
        tail = jnp.log(2.0) + special.log_ndtr(-jnp.sqrt(2.0) * _safe(small, 1.0, y))
        return jnp.where(pos, jnp.where(small, near_one, tail), -jnp.inf)

    def mean(self):
        return jnp.full_like(_as_float(self.scale), jnp.inf)

    def support(self):
        return jnp.zeros_like(_as_float(self.scale)), jnp.asarray(jnp.inf)

    def bulk(self):
        return self.scale / 3.0, jnp.asarray(self.scale) / 3.0

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        z = jax.random.normal(key, shape, dtype)
        return (self.scale / (z * z)).astype(dtype)

class MeanOf(Distribution):
    """The mean of ``k`` independent copies of ``base`` (an ensemble of ``k`` evaluators).

    Sampling is exact: ``k`` draws averaged, accumulated in a ``fori_loop`` (memory of one
    draw, one compilation whatever ``k``: ``k`` is a pytree leaf).  No density is offered (the
    ``k``-fold convolution has no closed form for most families): use Monte Carlo (pools,
    streaming best-of-n) with it, or :func:`mean_of`, which returns a closed form where the
    family is stable under averaging (normal: ``N(mu, s^2/k)``; Cauchy: unchanged; Lévy(c):
    Lévy(k c)).

    Math: ``X̄_k = (1/k) Σ_{j<k} X_j``; ``E X̄_k = E X``, ``Var X̄_k = Var X / k``; the tail
    class is that of ``X`` (``P(X̄_k > x) ~ k P(X > k x)`` for subexponential ``X``).

    Example:
        >>> import jax, goodhart_jax as gj
        >>> d = gj.MeanOf(gj.StudentT(3.0), 4)
        >>> d.sample(jax.random.key(0), (3,)).shape
        (3,)
    """

    name = "mean_of"
    constraints = {"base": Constraint(leaf=False), "k": Constraint(lo=1, integer=True)}

    def __init__(self, base: Distribution, k: int):
        super().__init__(base=base, k=k)

    def __repr__(self) -> str:
        k = self.k if is_concrete(self.k) else "traced"
        return f"MeanOf({self.base!r}, k={k})"

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return int(self.k) == int(other.k) and self.base == other.base

    __hash__ = object.__hash__

    @property
    def spec(self) -> str:
        return f"mean_of({self.base.spec}, k={int(self.k)})"

    @property
    def tail(self) -> str:
        return self.base.tail

    def mean(self) -> jax.Array:
        return self.base.mean()

    def support(self):
        return self.base.support()

    def right_tail(self) -> Tail:
        """The base's tail class and exponent; ``P(X̄_k > x) ~ k P(X > k x)`` (subexponential),
        ``exp(-k (x / b)^c)`` (Weibull, ``c > 1``)."""
        t = self.base.right_tail()
        k = int(self.k)
        if t.kind == "power":
            return t._replace(coef=t.coef * k ** (1.0 - t.exponent))
        if t.kind == "weibull":
            return t._replace(scale=t.scale * (k ** (-1.0 / t.exponent) if t.exponent > 1.0
                                               else 1.0 / k))
        return t

    def bulk(self):
        c, s = self.base.bulk()
        return c, s / jnp.sqrt(jnp.asarray(self.k, jnp.result_type(float)))

    def sample(self, key, shape=(), dtype=None):
        dtype = _float_dtype(dtype)
        shape = tuple(shape)

        def body(j, acc):
            return acc + self.base.sample(jax.random.fold_in(key, j), shape, dtype)

        k = jnp.asarray(self.k)
        total = jax.lax.fori_loop(0, k, body, jnp.zeros(shape, dtype))
        return (total / k.astype(dtype)).astype(dtype)


def mean_of(error: Any, k: int) -> Distribution:
    """The distribution of the mean of ``k`` independent copies of ``error``.

    Closed forms where averaging keeps the family: ``Normal(mu, s)`` -> ``Normal(mu, s/sqrt k)``;
    Cauchy ``StudentT(1, mu, s)`` -> itself (stable with index 1: averaging does nothing);
    ``Levy(c)`` -> ``Levy(k c)`` (stable with index 1/2: averaging makes it *worse*).  Otherwise
    a :class:`MeanOf` (sampling only).

    Math: for a stable law of index ``a``, ``Σ_{j<k} X_j =_d k^{1/a} X``, so the mean is
    ``k^{1/a - 1} X``: ``1/sqrt k`` (normal), ``1`` (Cauchy), ``k`` (Lévy).

    Example:
        >>> import goodhart_jax as gj
        >>> gj.mean_of(gj.Levy(1.0), 4)
        Levy(scale=4)
    """
    error = parse_dist(error)
    k = check_positive_int("k", k, owner="mean_of")
    if k == 1:
        return error
    closed = error.mean_of_copies(k)
    return MeanOf(error, k) if closed is None else closed



FAMILIES: dict[str, type[Distribution]] = {
    cls.name: cls for cls in (Normal, StudentT, GenNormal, Exponential, LogNormal, Pareto, Levy,
                              GeneralizedPareto)
}


def parse_dist(spec: str | Distribution) -> Distribution:
    """Build a distribution from a spec such as ``"student_t(df=3)"`` or ``"normal(0, 2)"``.

    Arguments are numbers, positional or by keyword, as in the constructor; ``normal`` and
    ``normal()`` both mean the default.  A family may parse its own arguments (a classmethod
    ``from_spec_args(args, keywords, parse_node, spec)`` on ``ast`` nodes): ``mixture(0.99*normal,
    0.01*pareto(alpha=1.5))`` (see ``goodhart_jax.mixture``; a number followed by a space and a
    law, ``0.99 normal``, reads as ``0.99*normal``) A family with a classmethod
    ``from_spec_text(text, spec)`` gets the raw text between the parentheses of a whole spec
    ``NAME(text)`` before any parsing: ``empirical(data/scores.csv)``, a file name that is no
    Python expression (see ``goodhart_jax.empirical``).

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
    malformed = f"spec {spec!r} is malformed; expected NAME or NAME(args), NAME one of {known}"
    raw = _RAW_CALL.fullmatch(spec)
    from_text = getattr(FAMILIES.get(raw.group(1)), "from_spec_text", None) if raw else None
    if from_text is not None:  # a family that reads its own raw text: empirical(data/x.csv)
        return from_text(raw.group(2), spec)
    try:
        tree = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError:
        try:  # "0.99 normal(0, 1)": a number, a space, a law -> 0.99*normal(0, 1)
            tree = ast.parse(_WEIGHT_SPACE.sub(r"\1*", spec.strip()), mode="eval").body
        except SyntaxError:
            raise ValueError(malformed) from None
    return _parse_node(tree, spec, malformed)


# NAME(TEXT), the whole spec: a family with a ``from_spec_text`` classmethod parses TEXT itself
_RAW_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", re.S)

# a number (not part of a name) followed by spaces and a name
_WEIGHT_SPACE = re.compile(r"(?<![\w.])((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s+(?=[A-Za-z_])")


def _parse_node(tree, spec: str, malformed: str) -> Distribution:
    """The distribution an ``ast`` node of a spec describes (``NAME`` or ``NAME(args)``)."""
    known = ", ".join(FAMILIES)
    if isinstance(tree, ast.Name):
        func, args, kwargs = tree.id, [], []
    elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        func, args, kwargs = tree.func.id, tree.args, tree.keywords
    else:
        raise ValueError(malformed)
    if func not in FAMILIES:
        raise ValueError(f"spec {spec!r}: unknown distribution {func!r}; allowed: {known}")
    cls = FAMILIES[func]
    from_args = getattr(cls, "from_spec_args", None)
    if from_args is not None:
        return from_args(args, kwargs, lambda node: _parse_node(node, spec, malformed), spec)

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
