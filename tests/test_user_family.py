"""A user's own family, written with only the five basic methods, works everywhere.

Two laws the library does not have -- the logistic and the Gumbel (maximum) law -- are defined
here exactly as docs/adding_a_family.md shows: parameters declared with ``super().__init__``,
then ``log_prob``, ``log_sf``, ``log_cdf``, ``sample`` and ``mean``; every other hook is the
generic default of :class:`goodhart_jax.Distribution`.  They run through the exact conditioning
(against mpmath, panels of width <= 0.5 so no peak is missed), best-of-n (against SciPy's
QUADPACK in float64), the Monte Carlo estimators, pools and the regime theory (against closed
forms), as value and as error.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.integrate as si
from scipy import special as ss

import goodhart_jax as gj


class Logistic(gj.Distribution):
    """Logistic law: ``S(x) = 1 / (1 + e^z)``, ``z = (x - loc) / scale``."""

    constraints = {"scale": gj.POSITIVE}

    def __init__(self, loc=0.0, scale=1.0):
        super().__init__(loc=loc, scale=scale)

    def log_prob(self, x):
        z = (x - self.loc) / self.scale
        return -z - 2.0 * jnp.logaddexp(0.0, -z) - jnp.log(self.scale)

    def log_sf(self, x):
        return -jnp.logaddexp(0.0, (x - self.loc) / self.scale)

    def log_cdf(self, x):
        return -jnp.logaddexp(0.0, -(x - self.loc) / self.scale)

    def sample(self, key, shape=(), dtype=None):
        z = jax.random.logistic(key, shape, dtype or jnp.result_type(float))
        return self.loc + self.scale * z

    def mean(self):
        return jnp.asarray(self.loc, jnp.result_type(float))


class Gumbel(gj.Distribution):
    """Gumbel (maximum) law: ``F(x) = exp(-e^-z)``, ``z = (x - loc) / scale``."""

    constraints = {"scale": gj.POSITIVE}

    def __init__(self, loc=0.0, scale=1.0):
        super().__init__(loc=loc, scale=scale)

    def log_prob(self, x):
        z = (x - self.loc) / self.scale
        return -z - jnp.exp(-z) - jnp.log(self.scale)

    def log_sf(self, x):
        # log(1 - exp(-e^-z)): log(-expm1(-r)) with r = e^-z; for large z, r underflows, so
        # log(r) + log1p(-r/2 + ...) = -z - r/2 there
        z = (x - self.loc) / self.scale
        big = z > 30.0
        zs = jnp.where(big, 0.0, z)
        return jnp.where(big, -z - 0.5 * jnp.exp(-z), jnp.log(-jnp.expm1(-jnp.exp(-zs))))

    def log_cdf(self, x):
        return -jnp.exp(-(x - self.loc) / self.scale)

    def sample(self, key, shape=(), dtype=None):
        z = jax.random.gumbel(key, shape, dtype or jnp.result_type(float))
        return self.loc + self.scale * z

    def mean(self):
        return jnp.asarray(self.loc + self.scale * np.euler_gamma, jnp.result_type(float))


# --- mpmath references ---------------------------------------------------------------------

mp.mp.dps = 30


def _mp_law(d):
    """(log pdf, log sf, log cdf, mean) of a law as mpmath functions."""
    if isinstance(d, Logistic):
        loc, s = mp.mpf(d.loc), mp.mpf(d.scale)
        z = lambda x: (x - loc) / s
        return (lambda x: -z(x) - 2 * mp.log1p(mp.exp(-z(x))) - mp.log(s),
                lambda x: -mp.log1p(mp.exp(z(x))), lambda x: -mp.log1p(mp.exp(-z(x))), loc)
    if isinstance(d, Gumbel):
        loc, s = mp.mpf(d.loc), mp.mpf(d.scale)
        z = lambda x: (x - loc) / s
        return (lambda x: -z(x) - mp.exp(-z(x)) - mp.log(s),
                lambda x: mp.log(-mp.expm1(-mp.exp(-z(x)))), lambda x: -mp.exp(-z(x)),
                loc + s * mp.euler)
    if isinstance(d, gj.Normal):
        loc, s = mp.mpf(d.loc), mp.mpf(d.scale)
        return (lambda x: mp.log(mp.npdf(x, loc, s)), lambda x: mp.log(mp.ncdf(-(x - loc) / s)),
                lambda x: mp.log(mp.ncdf((x - loc) / s)), loc)
    if isinstance(d, gj.StudentT):
        nu, loc, s = mp.mpf(d.df), mp.mpf(d.loc), mp.mpf(d.scale)

        def lsf(x):
            z = (x - loc) / s
            tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + z * z), regularized=True) / 2
            return mp.log(tail) if z >= 0 else mp.log(1 - tail)

        lpdf = lambda x: (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
                          - mp.log(s) - (nu + 1) / 2 * mp.log(1 + ((x - loc) / s) ** 2 / nu))
        return lpdf, lsf, lambda x: lsf(2 * loc - x), loc
    raise TypeError(d)


def _panels(centre, half, width=0.5):
    """Break points every ``width`` across ``centre +- half``, open to both infinities."""
    k = int(math.ceil(half / width))
    return [-mp.inf] + [mp.mpf(centre) + width * i for i in range(-k, k + 1)] + [mp.inf]


def _ref(value, error, t):
    """(log P(U >= t), E[V | U >= t], E[V | U = t]) by mpmath, integrating over y = V."""
    lpv, lsv, _, mv = _mp_law(value)
    lpx, lsx, _, _ = _mp_law(error)
    t = mp.mpf(t)
    pts = sorted(set(_panels(0, 60) + _panels(t, 60)))
    p = mp.quad(lambda y: mp.exp(lpv(y) + lsx(t - y)), pts)
    n = mp.quad(lambda y: y * mp.exp(lpv(y) + lsx(t - y)), pts)
    d = mp.quad(lambda y: mp.exp(lpv(y) + lpx(t - y)), pts)
    dn = mp.quad(lambda y: y * mp.exp(lpv(y) + lpx(t - y)), pts)
    return float(mp.log(p)), float(n / p), float(dn / d)


PAIRS = [
    ("logistic/normal", Logistic(0.5, 1.5), gj.Normal(0.0, 1.0)),
    ("normal/logistic", gj.Normal(0.0, 1.0), Logistic(0.0, 0.7)),
    ("gumbel/logistic", Gumbel(0.0, 1.0), Logistic(0.0, 1.0)),
    ("normal/gumbel", gj.Normal(1.0, 2.0), Gumbel(-1.0, 0.8)),
    ("logistic/student_t", Logistic(0.0, 1.0), gj.StudentT(3.0)),
]
# thresholds from the bulk out to P(U >= t) <= 1e-30 (the last one, checked below)
THRESHOLDS = {"logistic/normal": [0.0, 3.0, 25.0, 110.0], "normal/logistic": [0.0, 3.0, 25.0, 55.0],
              "gumbel/logistic": [0.0, 3.0, 25.0, 75.0], "normal/gumbel": [0.0, 3.0, 25.0, 70.0],
              "logistic/student_t": [0.0, 3.0, 30.0, 1e10]}


@pytest.fixture(scope="module")
def references():
    return {name: [_ref(v, x, t) for t in THRESHOLDS[name]] for name, v, x in PAIRS}


@pytest.mark.parametrize("name,value,error", PAIRS, ids=[p[0] for p in PAIRS])
def test_exact_conditioning_matches_mpmath(name, value, error, references):
    t = jnp.asarray(THRESHOLDS[name])
    ref = np.array(references[name])
    assert ref[-1, 0] <= math.log(1e-30)  # the last threshold reaches P(U >= t) = 1e-30
    log_p = np.asarray(gj.log_tail_prob(value, error, t))
    cond = np.asarray(gj.conditional_value(value, error, t))
    np.testing.assert_allclose(log_p, ref[:, 0], rtol=0, atol=1e-8)  # P to 1e-8 relative
    np.testing.assert_allclose(cond, ref[:, 1], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name,value,error", PAIRS[:4], ids=[p[0] for p in PAIRS[:4]])
def test_value_given_proxy_matches_mpmath(name, value, error, references):
    u = jnp.asarray(THRESHOLDS[name])
    got = np.asarray(gj.value_given_proxy(value, error, u))
    np.testing.assert_allclose(got, np.array(references[name])[:, 2], rtol=1e-8, atol=1e-8)


# --- best-of-n against SciPy (QUADPACK, float64) -------------------------------------------


def _np_law(d):
    """float64 (pdf, cdf) of a law, for SciPy."""
    if isinstance(d, Logistic):
        return (lambda x: ss.expit((x - d.loc) / d.scale) * ss.expit(-(x - d.loc) / d.scale) / d.scale,
                lambda x: ss.expit((x - d.loc) / d.scale))
    if isinstance(d, Gumbel):
        z = lambda x: (x - d.loc) / d.scale
        return (lambda x: math.exp(-z(x) - math.exp(-z(x))) / d.scale,
                lambda x: math.exp(-math.exp(-z(x))))
    if isinstance(d, gj.Normal):
        return (lambda x: math.exp(-0.5 * ((x - d.loc) / d.scale) ** 2) / (d.scale * math.sqrt(2 * math.pi)),
                lambda x: ss.ndtr((x - d.loc) / d.scale))
    raise TypeError(d)


def _bon_ref(value, error, n):
    """E[V of the best of n by proxy] = ∫ n F_U(u)^(n-1) h(u) du, h(u) = ∫ v f_V(v) f_X(u-v) dv."""
    fv, cv = _np_law(value)
    fx, _ = _np_law(error)
    _, cx = _np_law(error)
    m = float(value.mean())
    opts = dict(epsabs=0.0, epsrel=1e-12, limit=400)

    def inner(u, g):
        pts = [u - 40, u - 10, u, u + 10, u + 40]
        return si.quad(lambda v: g(v) * fx(u - v) if fx(u - v) > 0 else 0.0, -80 + min(u, 0),
                       80 + max(u, 0), points=sorted(pts), **opts)[0]

    def F(u):  # P(U <= u) = ∫ f_V(v) F_X(u - v) dv
        return inner_cdf(u)

    def inner_cdf(u):
        return si.quad(lambda v: fv(v) * cx(u - v), -80 + min(u, 0), 80 + max(u, 0),
                       points=sorted([u - 40, u - 10, u, u + 10, u + 40]), **opts)[0]

    def outer(u):
        h = inner(u, lambda v: (v - m) * fv(v))
        return n * F(u) ** (n - 1) * h

    pts = [-10.0, -3.0, 0.0, 3.0, 6.0, 10.0]
    return m + si.quad(outer, -40.0, 40.0, points=pts, epsabs=1e-13, epsrel=1e-10, limit=400)[0]


@pytest.mark.parametrize("name,value,error", PAIRS[:4], ids=[p[0] for p in PAIRS[:4]])
def test_best_of_n_matches_scipy(name, value, error):
    ns = [1, 4, 64]
    got = np.asarray(gj.best_of_n_value(value, error, jnp.asarray(ns)))
    ref = np.array([_bon_ref(value, error, n) for n in ns])
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


# --- Monte Carlo ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["mc", "cmc"])
@pytest.mark.parametrize("name,value,error", PAIRS[:4], ids=[p[0] for p in PAIRS[:4]])
def test_monte_carlo_within_four_standard_errors(name, value, error, method, references):
    t = THRESHOLDS[name][1]
    est = gj.sample_conditional_value(jax.random.key(7), value, error, t, num_samples=1 << 18,
                                      method=method)
    ref = references[name][1][1]
    assert abs(float(est.mean) - ref) < 4 * float(est.stderr), (float(est.mean), ref, float(est.stderr))


def _logistic_tilted_mean(loc, s, lam):
    """E[V e^(lam V)] / E[e^(lam V)] for a logistic V: M(lam) = e^(loc lam) pi s lam / sin(pi s lam)."""
    x = math.pi * s * lam
    return loc + 1.0 / lam - math.pi * s / math.tan(x)


def test_pool_push_reaches_the_tilted_policy():
    """With beta, push converges to pi ∝ e^(u / beta); for independent V, X its E_pi[V] is V's
    mean tilted by e^(v / beta) (closed form for the logistic), up to the pool's own error."""
    value, error, beta = Logistic(0.3, 0.5), Gumbel(0.0, 0.4), 2.0
    pool = gj.sample_pool(jax.random.key(3), value, error, 200_000)
    res = gj.push(pool, beta=beta, steps=400, learning_rate=0.5)
    got = float(res.trace.value[-1])
    w = np.exp((np.asarray(pool.proxy) - np.max(np.asarray(pool.proxy))) / beta)
    v = np.asarray(pool.value)
    est = np.sum(w * v) / np.sum(w)
    se = math.sqrt(np.sum(w ** 2 * (v - est) ** 2)) / np.sum(w)
    assert abs(got - est) < 1e-6  # push reached the fixed point
    ref = _logistic_tilted_mean(0.3, 0.5, 1.0 / beta)
    assert abs(got - ref) < 4 * se, (got, ref, se)


# --- the regime theory ---------------------------------------------------------------------


def test_generic_right_tails():
    lt = Logistic(2.0, 0.7).right_tail()
    assert (lt.kind, lt.exponent) == ("weibull", 1.0) and lt.scale == pytest.approx(0.7, rel=1e-9)
    gt = Gumbel(-3.0, 1.3).right_tail()
    assert (gt.kind, gt.exponent) == ("weibull", 1.0) and gt.scale == pytest.approx(1.3, rel=1e-9)
    assert Logistic().tail == "exponential" and Gumbel().tail == "exponential"


def test_predicted_regimes_for_user_families():
    # exponential-class error (rate 1/s), normal value: bounded at mu + sigma^2 / s
    p = gj.predicted_regime(gj.Normal(0.5, 1.2), Logistic(0.0, 0.8))
    assert p.regime == "bounded" and p.limit == pytest.approx(0.5 + 1.2 ** 2 / 0.8, rel=1e-9)
    # Gumbel value under a logistic error of larger scale: V's mean tilted by e^(v / s):
    # mu - beta psi(1 - beta / s)
    p = gj.predicted_regime(Gumbel(0.2, 0.5), Logistic(0.0, 1.0))
    assert p.regime == "bounded"
    assert p.limit == pytest.approx(0.2 - 0.5 * float(ss.digamma(1.0 - 0.5)), rel=1e-7)
    # logistic value tilted by a Gumbel error
    p = gj.predicted_regime(Logistic(0.3, 0.5), Gumbel(0.0, 1.0))
    assert p.regime == "bounded" and p.limit == pytest.approx(_logistic_tilted_mean(0.3, 0.5, 1.0), rel=1e-7)
    # a light error: unbounded (Thm 6); a heavy error: catastrophic (Thm 5)
    assert gj.predicted_regime(Logistic(), gj.Normal()).regime == "unbounded"
    p = gj.predicted_regime(Logistic(0.4), gj.StudentT(3.0))
    assert p.regime == "catastrophic" and p.limit == pytest.approx(0.4)
    # equal exponential tails: unbounded (t / 2)
    assert gj.predicted_regime(Gumbel(0.0, 1.0), Logistic(0.0, 1.0)).regime == "unbounded"


def test_user_family_validates_and_flows_gradients():
    with pytest.raises(ValueError, match="scale must be a finite number in"):
        Logistic(0.0, -1.0)
    g = jax.grad(lambda s: gj.conditional_value(Logistic(0.0, s), gj.Normal(), 2.0))(1.0)
    h = 1e-5
    fd = (float(gj.conditional_value(Logistic(0.0, 1.0 + h), gj.Normal(), 2.0))
          - float(gj.conditional_value(Logistic(0.0, 1.0 - h), gj.Normal(), 2.0))) / (2 * h)
    assert float(g) == pytest.approx(fd, rel=1e-6)
