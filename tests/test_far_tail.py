"""Far-tail conditioning against asymptotic expansions that are exact at double precision.

At t = 1e100 with a power-law (or lognormal) tail, the Taylor expansion of S(t - v) about t
gives E[V | U >= t] = E[V] + Var(V) f_X(t) / S_X(t) (1 + O(1/t^2)) when X is the heavy one,
and E[V | U >= t] = E[V | V >= t] (1 + O(1/t^2)) when V is; log P(U >= t) = log S(t) + O(1/t).
At t = 1e100 the neglected terms are 1e-100 relative and below, so the leading terms, evaluated
in mpmath, are references to every digit float64 can hold.  (The mpmath table in
tests/reference covers the bulk to P = 1e-6; this covers P down to 1e-300.)
"""

import jax.numpy as jnp
import mpmath as mp
import pytest

import goodhart_jax as gj

mp.mp.dps = 60
T = mp.mpf("1e100")


def t3_pdf(x, nu=3):
    return mp.gamma((nu + 1) / mp.mpf(2)) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / mp.mpf(2))) * (1 + x * x / nu) ** (-(nu + 1) / mp.mpf(2))


def t3_sf(x, nu=3):
    return mp.betainc(nu / mp.mpf(2), mp.mpf(1) / 2, 0, nu / (nu + x * x), regularized=True) / 2


def lognorm_sf(x, s):
    return mp.erfc(mp.log(x) / s / mp.sqrt(2)) / 2


def lognorm_pdf(x, s):
    return mp.exp(-(mp.log(x) / s) ** 2 / 2) / (x * s * mp.sqrt(2 * mp.pi))


def levy_sf(x, c=1):
    return mp.erf(mp.sqrt(c / (2 * x)))


def levy_pdf(x, c=1):
    return mp.sqrt(c / (2 * mp.pi)) * x ** (-mp.mpf(3) / 2) * mp.exp(-c / (2 * x))


HEAVY_ERRORS = {
    "student_t(df=3)": (t3_pdf, t3_sf),
    "pareto(alpha=1.5)": (lambda x: mp.mpf("1.5") * x ** mp.mpf("-2.5"), lambda x: x ** mp.mpf("-1.5")),
    "lognormal(sigma=1)": (lambda x: lognorm_pdf(x, 1), lambda x: lognorm_sf(x, 1)),
    "levy(scale=1)": (levy_pdf, levy_sf),
}


@pytest.mark.parametrize("error", list(HEAVY_ERRORS))
@pytest.mark.parametrize("value,var", [("normal(0, 1)", 1), ("normal(0, 3)", 9),
                                       pytest.param("gennorm(p=1.5)", None, marks=pytest.mark.slow)])
def test_heavy_error_far_threshold(value, var, error):
    pdf, sf = HEAVY_ERRORS[error]
    V = gj.parse_dist(value)
    if var is None:  # gennorm(p): Var = Gamma(3/p) / Gamma(1/p)
        p = mp.mpf("1.5")
        var = mp.gamma(3 / p) / mp.gamma(1 / p)
    ref = mp.mpf(var) * pdf(T) / sf(T)
    got = gj.conditional_value(V, error, jnp.float64(1e100))
    assert abs(float(got) / float(ref) - 1.0) < 1e-8, (float(got), float(ref))
    logp = gj.log_tail_prob(V, error, jnp.float64(1e100))
    assert abs(float(logp) - float(mp.log(sf(T)))) < 1e-8 * abs(float(mp.log(sf(T))))


@pytest.mark.parametrize("error", ["normal(0, 2)",
                                   pytest.param("gennorm(p=0.7, scale=0.5)", marks=pytest.mark.slow),
                                   pytest.param("exponential(rate=0.5)", marks=pytest.mark.slow)])
def test_heavy_value_far_threshold(error):
    # V ~ t(3): E[V | V >= t] = (nu + t^2) / (nu - 1) f(t) / S(t); P(U >= t) ~ S_V(t)
    ref = (3 + T * T) / 2 * t3_pdf(T) / t3_sf(T)
    got = gj.conditional_value("student_t(df=3)", error, jnp.float64(1e100))
    assert abs(float(got) / float(ref) - 1.0) < 1e-8
    logp = gj.log_tail_prob("student_t(df=3)", error, jnp.float64(1e100))
    assert abs(float(logp) / float(mp.log(t3_sf(T))) - 1.0) < 1e-8
    # V ~ Pareto(2.5): E[V | V >= t] = 2.5 t / 1.5
    got = gj.conditional_value("pareto(alpha=2.5)", error, jnp.float64(1e100))
    assert abs(float(got) / (2.5e100 / 1.5) - 1.0) < 1e-8
