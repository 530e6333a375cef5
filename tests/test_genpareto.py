"""The generalized Pareto law: pointwise functions against mpmath, continuity in xi through 0
(values and gradients), sampling (KS against SciPy), mean, mean excess, tails, regimes, bad input.

Accuracy measure: ``|ours - ref| / max(|ref|, 1)`` on ``log S``, ``log F`` and ``log f``
(relative on the log, absolute where the log is near 0), at float64 points ``x`` whose survival
runs from 1 - 1e-6 to 1e-300 (as far as a float ``x`` reaches), and at the last floats below
the upper end of a bounded law.
"""

from __future__ import annotations

import math
import subprocess
from functools import partial
import sys

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.stats

import goodhart_jax as gj
from goodhart_jax import conditioning
from goodhart_jax.numerics import expm1_ratio, log1p_ratio

G = gj.GeneralizedPareto
XIS = [-0.9, -0.5, -0.1, -1e-6, 0.0, 1e-6, 0.1, 0.5, 1.0, 2.0]
LEVELS = [1 - 1e-6, 0.999, 0.9, 0.5, 0.1, 1e-3, 1e-6, 1e-12, 1e-30, 1e-100, 1e-300]


def _ref(xi, scale, loc, x):
    """(log S, log F, log f) at the float x, by mpmath at 60 digits."""
    with mp.workdps(60):
        xi_m = mp.mpf(xi)
        z = (mp.mpf(x) - mp.mpf(loc)) / mp.mpf(scale)
        big = z if xi == 0 else mp.log1p(xi_m * z) / xi_m
        return -big, mp.log(-mp.expm1(-big)), -mp.log(mp.mpf(scale)) - (1 + xi_m) * big


def _points(xi, scale, loc):
    xs = []
    for s in LEVELS:
        z = -math.log(s) if xi == 0 else math.expm1(min(-xi * math.log(s), 700.0)) / xi
        x = loc + scale * z
        if math.isfinite(x) and x > loc:
            xs.append(x)
    if xi < 0:
        hi = loc - scale / xi
        xs += [hi - 1e-3 * hi, hi - 1e-9 * hi, np.nextafter(hi, 0.0),
               np.nextafter(np.nextafter(hi, 0.0), 0.0)]
        xs = [x for x in xs if x < hi]
    return np.array(sorted(set(xs)))


@pytest.mark.parametrize("xi", XIS)
def test_log_functions_against_mpmath(xi):
    scale, loc = 1.7, 0.3
    d = G(xi, scale, loc)
    xs = _points(xi, scale, loc)
    ours = [np.asarray(f(jnp.asarray(xs))) for f in (d.log_sf, d.log_cdf, d.log_prob)]
    worst = 0.0
    for i, x in enumerate(xs):
        ref = _ref(xi, scale, loc, x)
        for k in range(3):
            r = float(ref[k])
            worst = max(worst, abs(ours[k][i] - r) / max(abs(r), 1.0))
    assert worst < 1e-13, worst
    # survival reaches 1e-300 wherever a float x can reach it (xi <= 1 here)
    if 0.0 <= xi <= 1.0:
        assert float(d.log_sf(xs[-1])) < math.log(1e-299)


def test_outside_the_support():
    for xi in (-0.5, 0.0, 0.5):
        d = G(xi, 2.0, 1.0)
        x = jnp.asarray([-jnp.inf, 0.0, 1.0, jnp.inf])
        np.testing.assert_array_equal(d.log_sf(x), [0.0, 0.0, 0.0, -np.inf])
        np.testing.assert_array_equal(d.log_cdf(x), [-np.inf, -np.inf, -np.inf, 0.0])
        np.testing.assert_array_equal(np.asarray(d.log_prob(x))[[0, 1, 3]], [-np.inf] * 3)
    d = G(-0.5, 2.0, 1.0)  # support [1, 5]
    np.testing.assert_array_equal(d.log_sf(jnp.asarray([5.0, 6.0])), [-np.inf, -np.inf])
    np.testing.assert_array_equal(d.log_cdf(jnp.asarray([5.0, 6.0])), [0.0, 0.0])
    np.testing.assert_array_equal(d.log_prob(jnp.asarray([5.0, 6.0])), [-np.inf, -np.inf])
    u = G(-1.0, 2.0, 1.0)  # uniform on [1, 3]
    np.testing.assert_allclose(u.log_prob(jnp.asarray([1.0, 2.0, 2.999])), [math.log(0.5)] * 3)


def _all_logs(xi, scale, loc, x, with_excess=True):
    d = G(xi, scale, loc)
    out = d.log_sf(x) + d.log_cdf(x) + d.log_prob(x)
    return out + d.log_mean_excess(x) if with_excess else out


@pytest.mark.parametrize("x", [0.4, 2.0, 9.0])
def test_continuous_in_xi_through_zero_with_gradients(x):
    """Values and gradients (xi, scale, loc, x) at xi = +-1e-12, +-1e-7 sit on the line through
    xi = 0 (the first-order Taylor step from xi = 0), with no NaN."""
    args = (1.5, 0.2, x)
    grad = jax.grad(_all_logs, argnums=(0, 1, 2, 3))
    v0 = float(_all_logs(0.0, *args))
    g0 = np.array([float(a) for a in grad(0.0, *args)])
    assert np.all(np.isfinite(g0))
    for xi in (-1e-7, -1e-12, 1e-12, 1e-7):
        v = float(_all_logs(xi, *args))
        g = np.array([float(a) for a in grad(xi, *args)])
        assert np.all(np.isfinite(g))
        assert abs(v - (v0 + g0[0] * xi)) < 1e-12 * max(1.0, abs(v0))
        np.testing.assert_allclose(g, g0, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("xi", [-2.0, -1.0, -0.5, -1e-3, 0.0, 0.3, 1.5])
def test_gradients_finite_inside_the_support_and_match_differences(xi):
    scale, loc = 1.3, -0.4
    top = loc - scale / xi if xi < 0 else loc + 20 * scale
    f = partial(_all_logs, with_excess=xi < 1.0)
    for x in np.linspace(loc, top, 9)[1:-1]:
        g = [float(a) for a in jax.grad(f, argnums=(0, 1, 2, 3))(xi, scale, loc, x)]
        assert np.all(np.isfinite(g)), (xi, x, g)
        h = 1e-6
        fd = (float(f(xi, scale, loc, x + h)) - float(f(xi, scale, loc, x - h))) / (2 * h)
        assert abs(g[3] - fd) < 1e-6 * max(1.0, abs(fd))


def test_numerics_helpers_at_zero():
    for f, d1 in ((log1p_ratio, -2.0), (expm1_ratio, 2.0)):  # d/dxi at 0: -+a^2/2, a = 2
        assert float(f(2.0, 0.0)) == 2.0
        assert abs(float(jax.grad(f, argnums=1)(2.0, 0.0)) - d1) < 1e-15
        for xi in (-0.3, -0.005, 0.005, 0.3):  # both branches against the direct formula
            direct = (math.log1p if f is log1p_ratio else math.expm1)(xi * 2.0) / xi
            assert abs(float(f(2.0, xi)) - direct) < 2e-16 * abs(direct) * 4


@pytest.mark.parametrize("xi, seed", [(-1.5, 1), (-0.9, 2), (-0.3, 3), (0.0, 4), (1e-7, 5), (0.3, 6),
                                      (1.5, 7)])
def test_sampling_ks(xi, seed):
    d = G(xi, 1.3, 0.5)
    x = np.asarray(d.sample(jax.random.key(seed), (100_000,)))
    p = scipy.stats.kstest(x, scipy.stats.genpareto(c=xi, scale=1.3, loc=0.5).cdf).pvalue
    assert p > 1e-3, p
    lo, hi = (float(a) for a in d.support())
    assert x.min() >= lo and x.max() <= hi


def test_sample_continuous_in_xi_and_float32():
    key = jax.random.key(0)
    a = np.asarray(G(0.0).sample(key, (1000,)))
    b = np.asarray(G(1e-12).sample(key, (1000,)))
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert G(0.3).sample(key, (4,), jnp.float32).dtype == jnp.float32


def test_mean_and_mean_excess():
    for xi in (-2.0, -0.5, 0.0, 0.5, 0.9):
        d = G(xi, 2.0, 1.0)
        assert abs(float(d.mean()) - (1.0 + 2.0 / (1.0 - xi))) < 1e-14
        ref = scipy.stats.genpareto(c=xi, scale=2.0, loc=1.0)
        for y in (1.5, 3.0):
            if xi < 0 and y >= 1.0 - 2.0 / xi:
                continue
            m = ref.mean()
            g = scipy.integrate.quad(lambda v: (v - m) * ref.pdf(v), y, ref.support()[1])[0]
            assert abs(math.exp(float(d.log_mean_excess(y))) - g) < 1e-9 * abs(g)
        assert float(d.log_mean_excess(0.5)) == -math.inf
    assert float(G(1.0).mean()) == math.inf and float(G(2.0).mean()) == math.inf
    with pytest.raises(ValueError, match="xi"):
        G(1.2).log_mean_excess(3.0)


def test_tails():
    t = G(0.5, 2.0, 1.0).right_tail()
    assert (t.kind, t.exponent, t.coef, t.tail_class) == ("power", 2.0, 16.0, "heavy")
    t = G(0.0, 2.0).right_tail()
    assert (t.kind, t.exponent, t.scale, t.tail_class) == ("weibull", 1.0, 2.0, "exponential")
    t = G(-0.5, 2.0, 1.0).right_tail()
    assert (t.kind, t.exponent, t.end, t.tail_class) == ("bounded", 2.0, 5.0, "light")
    assert abs(t.coef - 0.0625) < 1e-15  # S = (0.25 (5 - x))^2 near the end
    assert [G(xi).tail for xi in (-0.1, 0.0, 0.1)] == ["light", "exponential", "heavy"]


def test_predicted_regimes():
    pr = gj.predicted_regime
    assert pr("normal", "genpareto(-0.3)").regime == "unbounded"        # bounded error: Thm 6
    assert pr("normal", "genpareto(0.3)").regime == "catastrophic"      # power-law error: Thm 5
    p = pr("normal", "genpareto(0)")                                    # exponential error
    assert p.regime == "bounded" and abs(p.limit - 1.0) < 1e-9
    p = pr("genpareto(-0.5)", "normal")                                 # V capped at 2
    assert p.regime == "bounded" and p.limit == 2.0
    assert pr("genpareto(-0.5)", "genpareto(-0.5)").limit == 2.0
    assert pr("genpareto(-0.5)", "student_t(3)").regime == "catastrophic"
    p = pr("genpareto(-0.5)", "exponential")  # tilted mean: V = 2 (1 - e^-E/2), by mpmath
    ref = mp.quad(lambda e: 2 * (1 - mp.exp(-e / 2)) * mp.exp(2 * (1 - mp.exp(-e / 2)) - e), [0, mp.inf]) \
        / mp.quad(lambda e: mp.exp(2 * (1 - mp.exp(-e / 2)) - e), [0, mp.inf])
    assert p.regime == "bounded" and abs(p.limit - float(ref)) < 1e-12
    assert pr("genpareto(0.2)", "normal").regime == "unbounded"
    assert pr("genpareto(0.25)", "genpareto(0.5)").regime == "catastrophic"  # a_V - a_X = 2


def test_spec_and_bad_input():
    d = gj.parse_dist("genpareto(0.3, 2, loc=-1)")
    assert d == G(0.3, 2.0, -1.0) and gj.parse_dist(d.spec) == d
    assert "genpareto" in gj.FAMILIES if hasattr(gj, "FAMILIES") else True
    with pytest.raises(ValueError, match="xi"):
        G(float("nan"))
    with pytest.raises(ValueError, match="scale"):
        G(0.3, 0.0)
    with pytest.raises(ValueError, match="scale"):
        gj.parse_dist("genpareto(xi=0.3, scale=-1)")
    with pytest.raises(ValueError, match="loc"):
        G(0.3, 1.0, float("inf"))


def test_cli_bad_scale_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", "condition", "--value",
                           "normal(0,1)", "--error", "genpareto(xi=0.3, scale=-1)", "--threshold",
                           "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("goodhart-jax: error:"), proc.stderr
    assert "scale" in lines[0] and "Traceback" not in proc.stderr


def test_singular_error_refused_by_the_exact_quadrature():
    # a passed check is remembered per parameter values, never per family: a bounded
    # genpareto error checked first does not let a singular one through
    checks = conditioning._VERDICTS
    conditioning.check_exact(gj.Normal(), gj.GeneralizedPareto(-0.5))
    assert any(key[0] == "exact" for key in checks)
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        conditioning.check_exact(gj.Normal(), gj.GeneralizedPareto(-1.5))
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        conditioning.check_exact(gj.Normal(), gj.GeneralizedPareto(-1.5))
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        gj.conditional_value("normal", "genpareto(-1.5)", 1.0)
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        gj.log_tail_prob("normal", "genpareto(-3)", 1.0)
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        gj.value_given_proxy("genpareto(-1.5)", "normal", 1.0)
    with pytest.raises(ValueError, match="unbounded at the upper end"):
        gj.best_of_n_value("genpareto(-1.5)", "normal", 4.0)
    # as the value of the tail integrals it is fine (S_V and G are continuous there): the
    # genpareto(-1.5) / normal pair of tests/test_laws.py
