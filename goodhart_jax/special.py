"""Far-tail special functions in log space (private).

``log_ndtr(x)``           log Phi(x), the standard normal distribution function.
``t_log_sf(z, df)``       log P(T > z) for a standard Student t with ``df`` degrees of freedom.
``log_gammaincc(a, y)``   log Q(a, y), the regularised upper incomplete gamma function.
``gennorm_log_sf(z, p)``  log P(Z > z) for the density ``p / (2 Gamma(1/p)) exp(-|z|^p)``.
``vlog(x)``, ``vlog1p(u)``  log and log1p in plain arithmetic, within 1-2 ulp: on CPU they
                          vectorise inside fused loops, where XLA calls scalar libm.

All of them are pure ``jax.numpy``: they jit, vmap, run in float32 or float64 and
differentiate in *every* argument (``jax.scipy.special.betainc`` has no gradient in its shape
parameters, and ``log(gammaincc)`` underflows to ``-inf`` once ``Q < 1e-308``).  Series and
continued fractions use a fixed number of terms (unrolled, so XLA fuses them into one
elementwise kernel and reverse-mode autodiff goes through them), and the branches are chosen
so that the fixed count suffices:

* ``log_gammaincc``: the Legendre continued fraction for ``Q`` in log form when
  ``y > max(a + 1, 2.5)``, the power series for ``P = 1 - Q`` otherwise
  (then ``log Q = log1p(-P)``).
* ``t_log_sf``: ``P(T > |z|) = I_x(df/2, 1/2) / 2`` with ``x = df / (df + z^2)``; the
  continued fraction of ``I_x(a, b)`` in log form when ``x < (a + 1)/(a + b + 2)`` (this
  covers the whole far tail, where it converges in a few terms), and that of the complement
  ``I_{1-x}(b, a)`` otherwise.

Derivatives: the derivative in the argument is analytic (minus the hazard rate for the
survival functions) and the derivative in the shape parameter is forward-mode autodiff
through the fixed-length expansions; both are given through ``jax.custom_jvp`` with symbolic
zeros, so a gradient in ``x`` alone never pays for the shape derivative.

The public functions are ``jax.jit``-compiled (inlined when called under an outer ``jit``), so
eager calls do not retrace the unrolled loops each time.

Accuracy (float64, measured against mpmath at 40 digits): about ``1e-13`` relative or better
for ``df <= 1e3`` and ``a <= 50`` over the whole real line, including values far below the
float64 range of the function itself (``log Q(2, 1e6) ~ -1e6``); ``6e-11`` at ``df = 1e4``.
For larger shape parameters the fixed term counts stop being enough and the error grows
(the result stays finite).  Unused ``jnp.where`` branches are fed safe arguments (the "double
where"), so gradients are finite wherever the function is.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.scipy import special as jsp

from goodhart_jax.numerics import float_dtype, log1mexp

__all__ = ["log_ndtr", "t_log_sf", "t_log_pdf", "t_log1p_sq", "log_gammaincc", "gennorm_log_sf",
           "log_gamma_ratio_half", "vlog", "vlog1p"]

# Number of terms (pairs of terms for the beta fraction) of each fixed-length expansion,
# measured to reach ~1e-14 for a <= 50 (gamma) and df <= 1e3 (beta).
_GAMMA_SERIES_TERMS = 64
_GAMMA_CF_TERMS = 40
_BETA_CF_PAIRS = 32
_UNROLL = 8  # partial unrolling: fused loop bodies at a modest compile time

_LOG_HALF = math.log(0.5)
_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_LOG_PI = 0.5 * math.log(math.pi)


def _promote(*xs):
    """Arrays of one common floating dtype (integers become the default float)."""
    arrs = [jnp.asarray(x) for x in xs]
    dtype = jnp.result_type(*arrs)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = float_dtype()
    return tuple(x.astype(dtype) for x in arrs)


# --------------------------------------------------------------------------------------------
# log and log1p in plain arithmetic
# --------------------------------------------------------------------------------------------
# XLA's CPU backend lowers log and log1p to scalar libm calls; inside a large fused loop every
# call also spills the vector registers, and the two of them were most of the time of the
# tail integrals.  These are Cephes' algorithm (log.c: x = 2^k (1 + f) with
# sqrt(1/2) <= 1 + f < sqrt(2), log(1 + f) = f - f^2/2 + f^3 P(f)/Q(f), log 2 split in two) in
# plain arithmetic, which vectorises and needs a single division (a quotient read twice ends
# XLA's fused loop there and is stored): within 1 ulp of the correctly rounded log for normal
# float64 numbers.  A subnormal input reads as 0 (XLA's CPU backend flushes them anyway).
_LOG_P = (1.01875663804580931796e-4, 4.97494994976747001425e-1, 4.70579119878881725854e0,
          1.44989225341610930846e1, 1.79368678507819816313e1, 7.70838733755885391666e0)
_LOG_Q = (1.0, 1.12873587189167450590e1, 4.52279145837532221105e1, 8.29875266912776603211e1,
          7.11544750618563894466e1, 2.31251620126765340583e1)
_LN2_HI, _LN2_LO = 0.693359375, -2.121944400546905827679e-4  # hi + lo = log 2, hi exact in 9 bits
_SQRT_HALF = math.sqrt(0.5)


def _horner(coefs, x):
    out = coefs[0]
    for c in coefs[1:]:
        out = out * x + c
    return out


# IEEE layout per float width: (integer type, mantissa bits, exponent bias)
_IEEE = {8: (jnp.int64, 52, 1023), 4: (jnp.int32, 23, 127)}


def _reduce(x):
    """``(k, f, ok, edge)``: ``x = 2^k (1 + f)`` with ``sqrt(1/2) <= 1 + f < sqrt(2)`` (``f``
    exact) where ``ok`` (``x`` positive, normal and finite), and log's value elsewhere
    (``-inf`` at 0 and subnormals, ``inf``, ``NaN``).

    All from the bits of ``x``: integer operations that vectorise, edge values included.
    """
    itype, mant, bias = _IEEE[jnp.dtype(x.dtype).itemsize]
    bits = lax.bitcast_convert_type(x, itype)
    one = itype(bias) << mant  # the bits of 1.0
    inf_bits = itype(2 * bias + 1) << mant
    low_normal = itype(1) << mant  # the bits of the smallest normal number
    ok = (bits >= low_normal) & (bits < inf_bits)  # signed: negative numbers fail
    y = lax.bitcast_convert_type((bits & (low_normal - 1)) | one, x.dtype)  # 1.mantissa
    high = y >= 2.0 * _SQRT_HALF
    k = ((bits >> mant) - bias).astype(x.dtype) + high.astype(x.dtype)
    f = jnp.where(high, 0.5 * y, y) - 1.0
    magnitude = bits & jnp.iinfo(itype).max  # sign bit cleared
    edge = jnp.where(magnitude < low_normal, -jnp.inf, jnp.where(bits == inf_bits, jnp.inf, jnp.nan))
    return k, f, ok, edge.astype(x.dtype)


def _log_parts(k, f):
    """``k log 2 + log(1 + f)`` (Cephes' summation order)."""
    z = f * f
    y = f * (z * (_horner(_LOG_P, f) / _horner(_LOG_Q, f))) + k * _LN2_LO - 0.5 * z
    return (f + y) + k * _LN2_HI


@jax.custom_jvp
def vlog(x):
    """``log(x)`` in arithmetic that vectorises (see above); derivative ``1 / x``."""
    x = jnp.asarray(x)
    k, f, ok, edge = _reduce(x)
    return jnp.where(ok, _log_parts(k, f), edge)


vlog.defjvps(lambda dx, _, x: dx / x)


@jax.custom_jvp
def vlog1p(u):
    """``log(1 + u)`` in arithmetic that vectorises; near 0 without forming ``1 + u``."""
    u = jnp.asarray(u)
    m = 1.0 + u
    near = (u > _SQRT_HALF - 1.0) & (u < 2.0 * _SQRT_HALF - 1.0)
    k, f, ok, edge = _reduce(m)
    # one evaluation of the polynomial: log(1 + u) itself near 0, k log 2 + log(1 + f) beyond
    return jnp.where(ok, _log_parts(jnp.where(near, 0.0, k), jnp.where(near, u, f)), edge)


vlog1p.defjvps(lambda du, _, u: du / (1.0 + u))

# Arrays (per vmapped element) at least this large take vlog / vlog1p, smaller ones jnp.log /
# jnp.log1p: the arithmetic pays off in the quadrature's node loops (760+ nodes a threshold),
# while each of its call sites costs compile time, and the probes, cuts and saddle searches
# around them are small.  The two agree to 1-2 ulp.
_VLOG_MIN_SIZE = 256


def _log(x):
    return vlog(x) if jnp.size(x) >= _VLOG_MIN_SIZE else jnp.log(x)


def _log1p(u):
    return vlog1p(u) if jnp.size(u) >= _VLOG_MIN_SIZE else jnp.log1p(u)


def _is_zero(t) -> bool:
    return isinstance(t, SymbolicZero)


def _jvp_rule(impl, primals, tangents, shape_index: int, arg_index: int):
    """JVP of ``impl(*primals)[0]``; ``impl`` returns ``(value, d value / d arg)``.

    The derivative in the argument uses the analytic slope returned by ``impl``; the one in
    the shape parameter is forward-mode autodiff through ``impl`` (skipped when its tangent
    is a symbolic zero).
    """
    dshape, darg = tangents[shape_index], tangents[arg_index]
    if _is_zero(dshape):
        val, slope = impl(*primals)
        out = jnp.zeros_like(val)
    else:
        # The elementwise partial derivative in the shape parameter, computed as a primal
        # quantity (forward mode with a unit tangent on the broadcast parameter), so that the
        # tangent map below is a plain product: reverse mode never transposes the loops.
        shape = jnp.broadcast_shapes(*(jnp.shape(p) for p in primals))
        s_b = jnp.broadcast_to(primals[shape_index], shape)

        def f(v):
            args = list(primals)
            args[shape_index] = v
            return impl(*args)

        (val, slope), (d_shape, _) = jax.jvp(f, (s_b,), (jnp.ones_like(s_b),))
        out = d_shape * dshape
    if not _is_zero(darg):
        out = out + slope * darg
    return val, out


# --------------------------------------------------------------------------------------------
# log Phi
# --------------------------------------------------------------------------------------------
# Below this, log Phi(x) comes from its asymptotic series (erfc underflows near x = -37 in
# float64 and x = -13 in float32).
_NDTR_LOWER = {8: -20.0, 4: -10.0, 2: -5.0}
_NDTR_SERIES_TERMS = 12
# Terms of -log(1 - p) = p + p^2/2 + ... used for p < 0.01.
_LOG1P_SERIES_TERMS = 10


def _log_ndtr_impl(x):
    # One erfc for every element (p = Phi(-|x|)), one log and one log1p: each branch of the
    # jnp.where below is computed for every element, so they share what they can.
    neg = -jnp.abs(x)
    p = 0.5 * lax.erfc(neg * -math.sqrt(0.5))
    # x <= -20: log Phi(x) = -x^2/2 - log(2 pi)/2 + log(s / -x),
    # s = 1 + sum_n (-1)^n (2n-1)!! / x^(2n) (error below the first omitted term, < 1e-16)
    lower = _NDTR_LOWER[jnp.dtype(neg.dtype).itemsize]
    far = neg < lower
    xf = jnp.where(far, neg, 2.0 * lower)
    inv2 = 1.0 / (xf * xf)
    term = jnp.ones_like(xf)
    s = term
    for n in range(1, _NDTR_SERIES_TERMS + 1):
        term = -(2 * n - 1) * inv2 * term
        s = s + term
    # one log for both sides: log Phi(x) = log(1 - p) for x > 0, and for p < 0.01 (x > 2.33)
    # the series -p (1 + p/2 + ... + p^9/10) instead (relative error < p^10 / 11 < 1e-21; above,
    # log(1 - p) is within ulp(1) / p <= 1.2e-14 relative)
    upper = x > 0
    lg = _log(jnp.where(upper, 1.0 - p, jnp.where(far, s / -xf, p)))
    left = jnp.where(far, -0.5 * xf * xf - _HALF_LOG_2PI + lg, lg)
    series = jnp.ones_like(p) / _LOG1P_SERIES_TERMS
    for k in range(_LOG1P_SERIES_TERMS - 1, 0, -1):
        series = 1.0 / k + p * series
    val = jnp.where(upper, jnp.where(p < 0.01, -p * series, lg), left)
    # phi(x)/Phi(x); below -1e3 the asymptotic -x / (1 - 1/x^2 + 3/x^4) (no x^2 cancellation)
    far = x < -1e3
    xf = jnp.where(far, x, -2e3)
    inv2 = 1.0 / (xf * xf)
    mills_far = -xf / (1.0 - inv2 * (1.0 - 3.0 * inv2))
    mills = jnp.where(far, mills_far, jnp.exp(-0.5 * x * x - _HALF_LOG_2PI - val))
    return val, mills


@jax.custom_jvp
def _log_ndtr(x):
    return _log_ndtr_impl(x)[0]


@_log_ndtr.defjvp
def _log_ndtr_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    val, mills = _log_ndtr_impl(x)
    return val, mills * dx


@jax.jit
def log_ndtr(x) -> jax.Array:
    """Log of the standard normal distribution function, accurate on the whole real line.

    Math: ``log Phi(x)``; for ``x > 0`` it is ``log1p(-Phi(-x))`` (relative accuracy holds
    where ``Phi(x)`` is within ``1e-16`` of one, unlike ``jax.scipy.special.log_ndtr``), for
    ``x <= 0`` ``log Phi(x)`` with a 12-term asymptotic series below ``-20``.  The derivative
    is ``phi(x) / Phi(x)``.

    Args:
        x: real array.

    Returns:
        ``log Phi(x)`` (finite down to the float minimum, e.g. ``-5e5`` at ``x = -1e3``).
    """
    (x,) = _promote(x)
    return _log_ndtr(x)


# --------------------------------------------------------------------------------------------
# log Q(a, y)
# --------------------------------------------------------------------------------------------
def _gamma_series_sum(a, y):
    """``sum_{n>=0} y^n / ((a+1)...(a+n))`` with a fixed number of terms."""

    def body(n, carry):
        term, total = carry
        term = term * y / (a + n)
        return term, total + term

    one = jnp.ones_like(a * y)
    _, total = lax.fori_loop(1, _GAMMA_SERIES_TERMS, body, (one, one), unroll=_UNROLL)
    return total


def _gamma_cf(a, y):
    """Legendre fraction ``1/(y+1-a - 1(1-a)/(y+3-a - 2(2-a)/(y+5-a - ...)))``, backwards."""
    n_max = _GAMMA_CF_TERMS

    def body(i, g):
        n = n_max - i  # n_max .. 1
        b_prev = y + 2.0 * n - 1.0 - a  # b_{n-1}
        return b_prev - n * (n - a) / g

    g0 = (y + 2.0 * n_max + 1.0 - a) * jnp.ones_like(a * y)
    g = lax.fori_loop(0, n_max, body, g0, unroll=_UNROLL)
    return 1.0 / g


def _log_gammaincc_impl(a, y):
    """``(log Q(a, y), d log Q / dy)``."""
    use_cf = y > jnp.maximum(a + 1.0, 2.5)
    pos = y > 0.0
    inf = jnp.isinf(y)
    # continued fraction branch (safe argument elsewhere)
    y_cf = jnp.where(use_cf & ~inf, y, a + 3.0)
    cf = _gamma_cf(a, y_cf)
    log_cf = -y_cf + a * jnp.log(y_cf) - jsp.gammaln(a) + jnp.log(cf)
    # series branch
    y_s = jnp.where(use_cf | ~pos, 0.5 * (a + 1.0), y)
    log_p = -y_s + a * jnp.log(y_s) - jsp.gammaln(a + 1.0) + jnp.log(_gamma_series_sum(a, y_s))
    log_series = log1mexp(log_p)
    val = jnp.where(use_cf, log_cf, jnp.where(pos, log_series, jnp.zeros_like(log_series)))
    val = jnp.where(inf, -jnp.inf, val)
    # d/dy log Q = -y^(a-1) e^-y / (Gamma(a) Q) = -1 / (y CF) on the fraction branch;
    # at y = 0 it is 0 (a > 1), -1 (a = 1) or -inf (a < 1).
    slope_s = -jnp.exp((a - 1.0) * jnp.log(y_s) - y_s - jsp.gammaln(a) - log_series)
    at0 = jnp.where(a > 1.0, 0.0, jnp.where(a < 1.0, -jnp.inf, -1.0))
    slope = jnp.where(use_cf, -1.0 / (y_cf * cf), jnp.where(pos, slope_s, at0))
    slope = jnp.where(inf, -1.0, slope)  # the limit y -> inf
    return val, slope


@jax.custom_jvp
def _log_gammaincc(a, y):
    return _log_gammaincc_impl(a, y)[0]


_log_gammaincc.defjvp(
    lambda primals, tangents: _jvp_rule(_log_gammaincc_impl, primals, tangents, 0, 1),
    symbolic_zeros=True)


@jax.jit
def log_gammaincc(a, y) -> jax.Array:
    """Log of the regularised upper incomplete gamma function, in log space throughout.

    Math: ``log Q(a, y)``, ``Q(a, y) = int_y^inf t^(a-1) e^-t dt / Gamma(a)``;
    for ``y > max(a + 1, 2.5)``: ``log Q = -y + a log y - lgamma(a) + log CF(a, y)``
    (Legendre fraction), else ``log Q = log1p(-P)`` with
    ``P = y^a e^-y / Gamma(a+1) * sum_n y^n / ((a+1)...(a+n))``.

    Args:
        a: shape, ``a > 0``.
        y: argument, ``y >= 0`` (``y = inf`` gives ``-inf``).

    Returns:
        ``log Q(a, y)``, finite wherever ``Q > 0`` (about ``-1e6`` at ``y = 1e6``).
    """
    a, y = _promote(a, y)
    return _log_gammaincc(a, y)


# --------------------------------------------------------------------------------------------
# Student t
# --------------------------------------------------------------------------------------------
@jax.jit
def log_gamma_ratio_half(a) -> jax.Array:
    """``log(Gamma(a + 1/2) / Gamma(a))`` without the cancellation of two large lgammas.

    Math: for ``a > 25``: ``log a / 2 - 1/(8a) + 1/(192 a^3) - 1/(640 a^5) + 17/(14336 a^7)``
    (next term ``~ -0.0017 / a^9``); else ``lgamma(a + 1/2) - lgamma(a)``.

    Args:
        a: ``a > 0``.

    Returns:
        The log ratio.
    """
    (a,) = _promote(a)
    big = a > 25.0
    ab = jnp.where(big, a, 30.0)
    inv = 1.0 / ab
    inv2 = inv * inv
    asym = 0.5 * jnp.log(ab) - inv * (
        0.125 - inv2 * (1.0 / 192.0 - inv2 * (1.0 / 640.0 - inv2 * (17.0 / 14336.0))))
    as_ = jnp.where(big, 1.0, a)
    direct = jsp.gammaln(as_ + 0.5) - jsp.gammaln(as_)
    return jnp.where(big, asym, direct)


def _beta_cf_either(first, ab1, ab2, x):
    """Continued fraction of ``I_x(a1, b1)`` where ``first``, of ``I_x(a2, b2)`` elsewhere:
    ``1/(1 + d1/(1 + d2/(1 + ...)))``, evaluated backwards, with
    ``d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1))``, ``d_{2m} = m(b-m) x / ((a+2m-1)(a+2m))``.

    The coefficients ``d_k / x`` depend on the parameters alone: for scalar parameters (a t law
    under ``vmap`` over points) they are computed once per term for both fractions and picked
    per element, so a term costs each element a select, a product and a quotient, against the
    four products and two quotients of computing them per element.
    """
    m_max = _BETA_CF_PAIRS

    def d_odd(a, b, m):
        return -(a + m) * (a + b + m) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))

    def d_even(a, b, m):
        return m * (b - m) / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))

    def pick(d, m):
        return jnp.where(first, d(*ab1, m), d(*ab2, m)) * x

    def body(i, g):
        m = (m_max - i).astype(x.dtype)  # m_max .. 1
        g = 1.0 + pick(d_odd, m) / g
        return 1.0 + pick(d_even, m) / g

    shape = jnp.broadcast_shapes(jnp.shape(first), jnp.shape(x), *map(jnp.shape, ab1 + ab2))
    g = lax.fori_loop(0, m_max, body, jnp.ones(shape, x.dtype), unroll=_UNROLL)
    g = 1.0 + pick(d_odd, jnp.zeros((), x.dtype)) / g
    return 1.0 / g


def _t_geometry(t, df):
    """``x = df/(df + t^2)``, ``log x``, ``sqrt(1 - x)`` for ``t >= 0``, without overflow or
    cancellation for ``t`` up to the float maximum: with ``v = t^2/df`` (``t^2 <= df``) or
    ``v = df/t^2`` (beyond; it may underflow), ``v <= 1``, one ``log1p(v)``, one quotient
    ``1/(1 + v)``, one square root and one log per element."""
    small = t * t <= df
    ts = jnp.where(small, t, 0.0)
    tb = jnp.where(small, jnp.sqrt(df) + 1.0, t)
    inv_tb = 1.0 / tb
    r = df * inv_tb * inv_tb  # df/t^2 < 1 (may underflow)
    v = jnp.where(small, ts * ts * (1.0 / df), r)
    lg = jnp.log1p(v)
    inv = 1.0 / (1.0 + v)
    # log r, or log df - 2 log t where r underflows: one log of whichever is needed
    tiny = r <= 1e-30
    lr = jnp.log(jnp.where(tiny, tb, jnp.where(small, 1.0, r)))
    log_r = jnp.where(tiny, jnp.log(df) - 2.0 * lr, lr)
    log_x = jnp.where(small, -lg, log_r - lg)
    x = jnp.where(small, inv, r * inv)
    sqrt_y = jnp.sqrt(jnp.where(small, v * inv, inv))
    return x, log_x, sqrt_y


def _t_log_x(z, df):
    """``log(df / (df + z^2)) = -log1p(z^2 / df)`` with one transcendental per element (against
    five for :func:`_t_geometry`): beyond ``|z| = 1e15 sqrt(df)`` it is ``-2 log1p(|z| / sqrt
    df)``, i.e. ``-2 log(|z| / sqrt df)`` to 1e-15 absolute (the omitted ``log1p(df / z^2)`` is
    below 1e-30), so ``z^2`` never overflows, in float32 either."""
    t = jnp.abs(z)
    root = jnp.sqrt(df)
    big = t > 1e15 * root
    # products with the reciprocals, not quotients: no divide per element (on CPU each one
    # ends a fused loop and stores its result); the square only of the small ones, so that the
    # branch not taken holds no inf whose derivative (0 * inf) would make the gradient NaN
    small_t = jnp.where(big, 0.0, t)
    u = jnp.where(big, t * (1.0 / root), (small_t * small_t) * (1.0 / df))
    lg = _log1p(u)
    return -jnp.where(big, 2.0 * lg, lg)


def _t_log_pdf(z, df):
    """Log density of the standard t (no overflow of ``z^2``)."""
    log_x = _t_log_x(z, df)
    a = 0.5 * df
    return log_gamma_ratio_half(a) - _HALF_LOG_PI - 0.5 * jnp.log(df) + (a + 0.5) * log_x


def _t_log_sf_impl(z, df):
    a = 0.5 * df
    upper = z >= 0
    t = jnp.where(upper, z, -z)
    x, log_x, sqrt_y = _t_geometry(t, df)
    log_beta = _HALF_LOG_PI - log_gamma_ratio_half(a)  # log B(a, 1/2)

    use_x = x < (a + 1.0) / (a + 2.5)
    # One continued fraction per element: I_x(a, 1/2) on the tail side (branch A), and the
    # complement I_y(1/2, a) = 1 - I_x(a, 1/2), y = 1 - x, on the centre side (branch B).
    cf = _beta_cf_either(use_x, (a, 0.5), (0.5, a), jnp.where(use_x, x, sqrt_y * sqrt_y))
    # A: I_x(a, 1/2) = x^a y^(1/2) / (a B) * CF;  B: I_y(1/2, a) = y^(1/2) x^a / (B / 2) * CF:
    # one log-space expression, log I = a log x + log sqrt(y) - log B + log CF + (-log a | log 2)
    # (sqrt(y) = t / sqrt(df + t^2): 0 at t = 0, where I_y = 0 and its logs are left out)
    some = sqrt_y > 0
    log_i = (a * log_x + jnp.log(jnp.where(some, sqrt_y, 1.0)) - log_beta + jnp.log(cf)
             + jnp.where(use_x, -jnp.log(a), _LOG_2))
    big_i = jnp.where(some, jnp.exp(log_i), 0.0)
    # A: log S = log(I / 2) above the centre, log(1 - I / 2) below; B: log((1 -+ I) / 2)
    l1p = jnp.log1p(jnp.where(use_x, -0.5 * big_i, jnp.where(upper, -big_i, big_i)))
    val = jnp.where(use_x, jnp.where(upper, _LOG_HALF + log_i, l1p), _LOG_HALF + l1p)
    # d/dz log S = -f/S; on the far tail f/S = df / (t CF) (no cancellation of two huge logs)
    far = upper & use_x
    t_far = jnp.where(far, t, 1.0)
    slope = jnp.where(far, -df / (t_far * cf), -jnp.exp(_t_log_pdf(z, df) - val))
    return val, slope


@jax.custom_jvp
def _t_log_sf(z, df):
    return _t_log_sf_impl(z, df)[0]


_t_log_sf.defjvp(
    lambda primals, tangents: _jvp_rule(_t_log_sf_impl, primals, tangents, 1, 0),
    symbolic_zeros=True)


@jax.jit
def t_log_sf(z, df) -> jax.Array:
    """Log survival function of the standard Student t, accurate far into both tails.

    Math: ``log P(T > z)``; ``P(T > |z|) = I_x(df/2, 1/2) / 2`` with ``x = df / (df + z^2)``,
    ``I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * CF``; for ``z < 0``,
    ``P(T > z) = 1 - P(T > |z|)``.  ``d/dz = -f(z) / S(z)``.

    Args:
        z: real array (any magnitude up to the float maximum).
        df: degrees of freedom, ``df > 0``.

    Returns:
        ``log P(T > z)`` (about ``-690.68`` at ``z = 1e100``, ``df = 3``).
    """
    z, df = _promote(z, df)
    return _t_log_sf(z, df)


@jax.jit
def t_log1p_sq(z, df) -> jax.Array:
    """``log(1 + z^2 / df)`` without overflow of ``z^2`` and without cancellation.

    Args:
        z: real array.
        df: ``df > 0``.

    Returns:
        ``log(1 + z^2/df)``.
    """
    z, df = _promote(z, df)
    return -_t_log_x(z, df)


@jax.jit
def t_log_pdf(z, df) -> jax.Array:
    """Log density of the standard Student t, finite for ``|z|`` up to the float maximum.

    Math: ``log f(z) = log Gamma((df+1)/2) - log Gamma(df/2) - log(df pi)/2
    - (df+1)/2 log(1 + z^2/df)``.

    Args:
        z: real array.
        df: degrees of freedom, ``df > 0``.

    Returns:
        ``log f(z)``.
    """
    z, df = _promote(z, df)
    return _t_log_pdf(z, df)


# --------------------------------------------------------------------------------------------
# Generalised normal
# --------------------------------------------------------------------------------------------
def _gennorm_log_pdf(z, p):
    t = jnp.abs(z)
    pos = t > 0
    ts = jnp.where(pos, t, 1.0)
    tp = jnp.where(pos, ts ** p, 0.0)
    return jnp.log(p) - _LOG_2 - jsp.gammaln(1.0 / p) - tp


def _gennorm_log_sf_impl(z, p):
    """``(log P(Z > z), d/dz of it)``."""
    upper = z >= 0
    t = jnp.where(upper, z, -z)
    pos = t > 0
    ts = jnp.where(pos, t, 1.0)
    y = ts ** p
    a = 1.0 / p
    lq, dlq_dy = _log_gammaincc_impl(a, y)
    half_q = jnp.where(pos, _LOG_HALF + lq, _LOG_HALF)  # log P(Z > |z|)
    val = jnp.where(upper, half_q, log1mexp(half_q))
    # d/dz log S = -f/S; far on the right it is dlogQ/dy * p t^(p-1) (finite even where
    # t^p overflows)
    far = upper & pos & (y > jnp.maximum(a + 1.0, 2.5))
    slope = jnp.where(far, dlq_dy * p * ts ** (p - 1.0), -jnp.exp(_gennorm_log_pdf(z, p) - val))
    return val, slope


@jax.custom_jvp
def _gennorm_log_sf(z, p):
    return _gennorm_log_sf_impl(z, p)[0]


_gennorm_log_sf.defjvp(
    lambda primals, tangents: _jvp_rule(_gennorm_log_sf_impl, primals, tangents, 1, 0),
    symbolic_zeros=True)


@jax.jit
def gennorm_log_sf(z, p) -> jax.Array:
    """Log survival function of the standard generalised normal.

    Math: density ``f(z) = p / (2 Gamma(1/p)) exp(-|z|^p)``; ``P(Z > z) = Q(1/p, z^p) / 2``
    for ``z >= 0`` and ``1 - Q(1/p, |z|^p) / 2`` for ``z < 0``.  ``d/dz = -f(z) / S(z)``
    (finite at ``z = 0`` for every ``p``).

    Args:
        z: real array.
        p: shape, ``p > 0``.

    Returns:
        ``log P(Z > z)``.
    """
    z, p = _promote(z, p)
    return _gennorm_log_sf(z, p)
