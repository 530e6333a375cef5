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

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import special as ss

import goodhart_jax as gj
from tests.pool_checks import push_fixed_point


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


# --- references: tests/reference/user_families.json (mpmath; best-of-n by SciPy) ----------

REFERENCE = json.loads((Path(__file__).parent / "reference" / "user_families.json").read_text())
LAWS = {"logistic": Logistic, "gumbel": Gumbel, "normal": gj.Normal}


def _law(spec):
    if spec[0] == "student_t":
        return gj.StudentT(spec[3], spec[1], spec[2])
    return LAWS[spec[0]](spec[1], spec[2])


ROWS = {row["name"]: row for row in REFERENCE["pairs"]}
# the user's law as value, and as error, in the default run; the other pairings with -m slow
QUICK = ("logistic/normal", "normal/gumbel")
PAIRS = [pytest.param(name, marks=() if name in QUICK else pytest.mark.slow) for name in ROWS]
BON_PAIRS = [p for p in PAIRS if ROWS[p.values[0]]["best_of_n"]]
# best-of-n compiles for ~20 s per pairing with the generic hooks, and late in a full default
# run (after ~600 other tests in the same process) XLA's CPU compiler crashed on it with a
# segmentation fault (jax 0.10.2; alone, and in this file's own run, it passes): -m slow, where
# it runs early in a short process, until that is understood
BON_QUICK = [pytest.param(*p.values, marks=pytest.mark.slow) for p in BON_PAIRS]


def _pair(name):
    row = ROWS[name]
    return _law(row["value"]), _law(row["error"]), row


@pytest.mark.parametrize("name", PAIRS)
def test_exact_conditioning_matches_mpmath(name):
    value, error, row = _pair(name)
    t = jnp.asarray([c["t"] for c in row["cases"]])
    ref_lp = np.array([c["log_tail_prob"] for c in row["cases"]])
    ref_cv = np.array([c["conditional_value"] for c in row["cases"]])
    assert ref_lp.min() <= math.log(1e-30)  # out to P(U >= t) = 1e-30 at least
    log_p = np.asarray(gj.log_tail_prob(value, error, t))
    cond = np.asarray(gj.conditional_value(value, error, t))
    np.testing.assert_allclose(log_p, ref_lp, rtol=0, atol=1e-8)  # P to 1e-8 relative
    np.testing.assert_allclose(cond, ref_cv, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", PAIRS)
def test_value_given_proxy_matches_mpmath(name):
    value, error, row = _pair(name)
    u = jnp.asarray([c["t"] for c in row["cases"]])
    ref = np.array([c["value_given_proxy"] for c in row["cases"]])
    np.testing.assert_allclose(np.asarray(gj.value_given_proxy(value, error, u)), ref,
                               rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", BON_QUICK)
def test_best_of_n_matches_scipy(name):
    value, error, row = _pair(name)
    ns = [b["n"] for b in row["best_of_n"]]
    ref = np.array([b["best_of_n_value"] for b in row["best_of_n"]])
    got = np.asarray(gj.best_of_n_value(value, error, jnp.asarray(ns)))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROWS))
def test_reference_file_is_current(name):
    """The JSON is what tests/reference/make_user_families.py computes (two rows per pairing)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_user_families", Path(__file__).parent / "reference" / "make_user_families.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    row = ROWS[name]
    dps = {p[0]: p[4] for p in mk.PAIRS}[name]
    mp.mp.dps = dps
    for case in (row["cases"][1], row["cases"][-1]):
        lp, cv, vp = mk.exact(tuple(row["value"]), tuple(row["error"]), case["t"])
        assert lp == pytest.approx(case["log_tail_prob"], rel=1e-13, abs=1e-13)
        assert cv == pytest.approx(case["conditional_value"], rel=1e-13, abs=1e-13)
        assert vp == pytest.approx(case["value_given_proxy"], rel=1e-13, abs=1e-13)


# --- Monte Carlo ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["mc", "cmc"])
@pytest.mark.parametrize("name", BON_PAIRS)
def test_monte_carlo_within_four_standard_errors(name, method):
    value, error, row = _pair(name)
    t, ref = row["cases"][1]["t"], row["cases"][1]["conditional_value"]
    est = gj.sample_conditional_value(jax.random.key(7), value, error, t, num_samples=1 << 18,
                                      method=method)
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
    got, est, se = push_fixed_point(pool, beta)
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
